//! The `mldeploy` binary against the in-process fake API server: what only the whole binary
//! shows — flags, exit codes and output of diff, apply, status and delete, kubeconfig contexts,
//! and a few faults end to end (a 500 that stops the apply before any prune, 429 and 503 retried
//! by the client stack, a conflict, a missing CRD, a wait timeout). The cluster logic itself
//! (ordering, concurrency, prune order, retries of 500/502 and broken connections, deadlines,
//! conflicts, pagination, wait per kind) is unit-tested below HTTP in src/cluster/tests.rs.

use std::path::{Path, PathBuf};

use http::Method;
use predicates::prelude::*;
use serde_json::json;

use crate::support::fake_api::{FakeApi, Fault};
use crate::{json, mldeploy, root, without_model};

/// A fake cluster with the ML CRDs installed and controllers that make objects ready at once.
struct Cluster {
    api: FakeApi,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Cluster {
    fn new() -> Cluster {
        let api = FakeApi::start();
        api.register_ml_crds();
        api.auto_ready(true);
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = api.write_kubeconfig(dir.path());
        Cluster {
            api,
            dir,
            kubeconfig,
        }
    }

    /// `mldeploy ARGS -f CONFIG --kubeconfig K`, with fast polling and backoff.
    fn run(&self, config: &Path, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = mldeploy();
        cmd.env("MLDEPLOY_POLL_MS", "20")
            .env("MLDEPLOY_RETRY_BASE_MS", "5")
            .env_remove("KUBECONFIG")
            .arg("-f")
            .arg(config)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args);
        cmd
    }

    /// The aws example (KServe, Seldon v2 and a Deployment), optionally without some models.
    fn config(&self, drop_models: &[&str]) -> PathBuf {
        let text = std::fs::read_to_string(root().join("examples/aws.yaml")).expect("example");
        let out = drop_models
            .iter()
            .fold(text, |text, m| without_model(&text, m));
        let path = self
            .dir
            .path()
            .join(format!("mldeploy-{}.yaml", drop_models.join("-")));
        std::fs::write(&path, out).expect("write config");
        path
    }

    fn exists(&self, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> bool {
        self.api.get(api_version, kind, ns, name).is_some()
    }
}

#[test]
fn diff_exit_codes_and_json_plan() {
    let c = Cluster::new();
    let config = c.config(&[]);
    let plan = json(
        &c.run(&config, &["diff", "--env", "dev", "--output", "json"])
            .assert()
            .code(2),
    );
    assert_eq!(plan["changed"], true);
    assert_eq!(plan["context"], "fake");
    assert!(plan["summary"]["create"].as_u64().expect("count") >= 8);
    let first = &plan["changes"][0];
    for key in ["action", "apiVersion", "kind", "namespace", "name", "diff"] {
        assert!(first.get(key).is_some(), "change lacks {key}: {first}");
    }
    assert!(c.api.writes().is_empty(), "diff must not write");
    c.run(&config, &["apply", "--env", "dev"])
        .assert()
        .success();
    c.run(&config, &["diff", "--env", "dev"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 to create, 0 to update"));
    // Change a value: an update with a unified diff.
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("OMP_NUM_THREADS: 2", "OMP_NUM_THREADS: 4"),
    )
    .expect("write");
    c.run(&config, &["diff", "--env", "dev"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains(
            "~ update Deployment doc-ai-dev/ocr",
        ))
        .stdout(predicate::str::is_match(r#"(?m)^-\s+value: ['"]?2"#).expect("regex"))
        .stdout(predicate::str::is_match(r#"(?m)^\+\s+value: ['"]?4"#).expect("regex"));
}

#[test]
fn prune_removes_exactly_the_dropped_objects() {
    let c = Cluster::new();
    c.run(&c.config(&[]), &["apply", "--env", "dev"])
        .assert()
        .success();
    // Someone else's object in the same namespace, with look-alike labels but no membership.
    c.api.put(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "theirs", "namespace": "doc-ai-dev", "labels": {"app.kubernetes.io/name": "ocr"}},
        "data": {"k": "v"}
    }));
    let smaller = c.config(&["ocr"]);
    c.run(&smaller, &["diff", "--env", "dev"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains(
            "- prune  Deployment doc-ai-dev/ocr",
        ));
    // Without --prune nothing is deleted.
    c.run(&smaller, &["apply", "--env", "dev"])
        .assert()
        .success();
    assert!(c.exists("apps/v1", "Deployment", Some("doc-ai-dev"), "ocr"));
    c.api.clear_requests();
    c.run(&smaller, &["apply", "--env", "dev", "--prune"])
        .assert()
        .success();
    let deletes: Vec<String> = c
        .api
        .writes()
        .into_iter()
        .filter(|r| r.method == Method::DELETE)
        .map(|r| r.path)
        .collect();
    let mut expected = vec![
        "/apis/apps/v1/namespaces/doc-ai-dev/deployments/ocr".to_string(),
        "/api/v1/namespaces/doc-ai-dev/services/ocr".to_string(),
        "/apis/monitoring.coreos.com/v1/namespaces/doc-ai-dev/servicemonitors/ocr".to_string(),
        "/apis/networking.k8s.io/v1/namespaces/doc-ai-dev/networkpolicies/ocr-serving".to_string(),
    ];
    let mut got = deletes.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "pruned exactly ocr's objects");
    assert!(c.exists("v1", "ConfigMap", Some("doc-ai-dev"), "theirs"));
    assert!(c.exists(
        "serving.kserve.io/v1beta1",
        "InferenceService",
        Some("doc-ai-dev"),
        "summarizer"
    ));
    c.run(&smaller, &["diff", "--env", "dev"]).assert().code(0);
}

#[test]
fn nothing_is_pruned_after_a_failed_apply() {
    let c = Cluster::new();
    c.run(&c.config(&[]), &["apply", "--env", "dev"])
        .assert()
        .success();
    let smaller = c.config(&["ocr"]);
    // Change something so the apply has a write to fail, then make that write fail for good.
    let text = std::fs::read_to_string(&smaller).expect("config");
    std::fs::write(
        &smaller,
        text.replace("HF_HUB_OFFLINE: \"1\"", "HF_HUB_OFFLINE: \"0\""),
    )
    .expect("write");
    c.api.inject(
        Fault::new(500)
            .method(Method::PATCH)
            .path("inferenceservices")
            .dry_run(false)
            .times(100),
    );
    c.run(&smaller, &["apply", "--env", "dev", "--prune"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("InferenceService"));
    assert!(
        c.exists("apps/v1", "Deployment", Some("doc-ai-dev"), "ocr"),
        "pruned after a failure"
    );
    assert!(c.api.writes().iter().all(|r| r.method != Method::DELETE));
}

#[test]
fn the_client_stack_retries_429_with_retry_after_and_503() {
    // kube's retry policy in the binary's client stack (src/cluster/connect.rs); 500, 502 and
    // broken connections are retried above it, unit-tested in src/cluster/tests.rs.
    let c = Cluster::new();
    let config = c.config(&[]);
    c.api.inject(Fault::new(429).retry_after(1).times(2));
    c.api.inject(Fault::new(503).method(Method::PATCH).times(3));
    c.run(&config, &["apply", "--env", "dev"])
        .assert()
        .success();
    assert_eq!(c.api.pending_faults(), 0);
    c.api.clear_requests();
    c.run(&config, &["apply", "--env", "dev"])
        .assert()
        .success();
    assert!(c.api.writes().is_empty());
}

#[test]
fn conflicts_name_the_field_and_the_manager() {
    let c = Cluster::new();
    let config = c.config(&[]);
    c.run(&config, &["apply", "--env", "dev"])
        .assert()
        .success();
    let mut ocr = c
        .api
        .get("apps/v1", "Deployment", Some("doc-ai-dev"), "ocr")
        .expect("ocr");
    // Another applier took the object over with one value changed: still ours (its labels say
    // so), but that field now has another owner.
    ocr["spec"]["revisionHistoryLimit"] = json!(9);
    ocr["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("managedFields");
    c.api.put_owned(ocr, "kubectl-edit");
    c.run(&config, &["apply", "--env", "dev"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("revisionHistoryLimit"))
        .stderr(predicate::str::contains("kubectl-edit"))
        .stderr(predicate::str::contains("--force-conflicts"));
    c.run(&config, &["apply", "--env", "dev", "--force-conflicts"])
        .assert()
        .success();
    let live = c
        .api
        .get("apps/v1", "Deployment", Some("doc-ai-dev"), "ocr")
        .expect("ocr");
    assert_eq!(live["spec"]["revisionHistoryLimit"], 5);
}

#[test]
fn a_missing_crd_says_what_to_install() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.write_kubeconfig(dir.path());
    mldeploy()
        .args(["apply", "-f"])
        .arg(root().join("examples/aws.yaml"))
        .args(["--env", "dev", "--kubeconfig"])
        .arg(&kubeconfig)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "InferenceService (serving.kserve.io/v1beta1)",
        ))
        .stderr(predicate::str::contains("not installed on context fake"))
        .stderr(predicate::str::contains("mldeploy infra apply"))
        .stderr(predicate::str::contains("KServe"));
    assert!(api.writes().is_empty());
}

#[test]
fn wait_timeout_names_each_object_and_why() {
    let c = Cluster::new();
    c.api.auto_ready(false);
    c.api.add_event(
        "doc-ai-dev",
        "Deployment",
        "ocr",
        "Warning",
        "FailedCreate",
        "quota exceeded",
    );
    c.run(
        &c.config(&[]),
        &["apply", "--env", "dev", "--timeout", "1s"],
    )
    .assert()
    .code(1)
    .stderr(predicate::str::contains("not ready after 1s"))
    .stderr(predicate::str::contains("Deployment doc-ai-dev/ocr"))
    .stderr(predicate::str::contains("quota exceeded"))
    .stderr(predicate::str::contains(
        "InferenceService doc-ai-dev/summarizer",
    ));
    // --no-wait skips it.
    c.run(&c.config(&[]), &["apply", "--env", "dev", "--no-wait"])
        .assert()
        .success();
}

#[test]
fn status_shows_each_model() {
    let c = Cluster::new();
    let config = c.config(&[]);
    c.run(&config, &["apply", "--env", "dev"])
        .assert()
        .success();
    let rows = json(
        &c.run(&config, &["status", "--env", "dev", "--output", "json"])
            .assert()
            .success(),
    );
    let names: Vec<&str> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["summarizer", "doc-router", "ocr"]);
    let ocr = &rows[2];
    assert_eq!(ocr["state"], "ready");
    assert_eq!(ocr["endpoint"], "http://ocr.doc-ai-dev.svc:8000");
    c.run(&config, &["status", "--env", "dev"])
        .assert()
        .success()
        .stdout(predicate::str::contains("summarizer"))
        .stdout(predicate::str::contains("kserve"));
}

#[test]
fn delete_asks_then_removes_members_and_keeps_a_shared_namespace() {
    let c = Cluster::new();
    let config = c.config(&[]);
    c.run(&config, &["apply", "--env", "dev"])
        .assert()
        .success();
    c.run(&config, &["delete", "--env", "dev"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--yes"));
    assert!(c.exists("apps/v1", "Deployment", Some("doc-ai-dev"), "ocr"));
    c.api.put(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "theirs", "namespace": "doc-ai-dev"}, "data": {}
    }));
    c.run(&config, &["delete", "--env", "dev", "--yes"])
        .assert()
        .success();
    assert!(!c.exists("apps/v1", "Deployment", Some("doc-ai-dev"), "ocr"));
    assert!(!c.exists(
        "serving.kserve.io/v1beta1",
        "InferenceService",
        Some("doc-ai-dev"),
        "summarizer"
    ));
    assert!(!c.exists("v1", "Secret", Some("doc-ai-dev"), "mldeploy.doc-ai.dev"));
    assert!(
        c.exists("v1", "Namespace", None, "doc-ai-dev"),
        "a namespace holding other objects is kept"
    );
    assert!(c.exists("v1", "ConfigMap", Some("doc-ai-dev"), "theirs"));
}

#[test]
fn unknown_context_is_a_clear_error() {
    let c = Cluster::new();
    c.run(
        &c.config(&[]),
        &["diff", "--env", "dev", "--context", "fak"],
    )
    .assert()
    .code(1)
    .stderr(predicate::str::contains("no such context"))
    .stderr(predicate::str::contains("did you mean `fake`?"));
}

#[test]
fn the_context_infra_kubeconfig_writes_is_found_without_context() {
    let c = Cluster::new();
    // The current context points nowhere; `mldeploy-<project>-<cluster>` points at the fake.
    let text = std::fs::read_to_string(&c.kubeconfig).expect("kubeconfig");
    let text = text
        .replace(
            "- name: other\n  context:\n    cluster: fake",
            "- name: mldeploy.doc-ai.eks-main\n  context:\n    cluster: fake",
        )
        .replace("current-context: fake", "current-context: nowhere")
        .replace(
            "contexts:\n",
            "contexts:\n- name: nowhere\n  context:\n    cluster: dead\n    user: fake\n",
        )
        .replace(
            "clusters:\n",
            "clusters:\n- name: dead\n  cluster:\n    server: http://127.0.0.1:9\n",
        );
    std::fs::write(&c.kubeconfig, text).expect("write");
    c.run(
        &c.config(&[]),
        &["diff", "--env", "dev", "--output", "json"],
    )
    .assert()
    .code(2)
    .stdout(predicate::str::contains(
        "\"context\": \"mldeploy.doc-ai.eks-main\"",
    ));
}

#[test]
fn a_context_under_the_old_ambiguous_name_is_not_used_nor_passed_over_silently() {
    let c = Cluster::new();
    // Only the name an older mldeploy wrote (which another project may share) is there; the
    // current context points elsewhere. Neither may be used without the user saying so.
    let text = std::fs::read_to_string(&c.kubeconfig).expect("kubeconfig");
    let text = text.replace(
        "- name: other\n  context:\n    cluster: fake",
        "- name: mldeploy-doc-ai-eks-main\n  context:\n    cluster: fake",
    );
    std::fs::write(&c.kubeconfig, text).expect("write");
    c.run(&c.config(&[]), &["diff", "--env", "dev"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "kubectl config rename-context mldeploy-doc-ai-eks-main mldeploy.doc-ai.eks-main",
        ));
    assert!(c.api.requests().is_empty(), "no request may be sent");
    c.run(
        &c.config(&[]),
        &["diff", "--env", "dev", "--context", "fake"],
    )
    .assert()
    .code(2);
}
