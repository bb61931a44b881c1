//! Against a real kube-apiserver (`../shared/kube/up.sh`, started by `.ci/run`): the whole cycle
//! with writes counted in the API server's audit log, drift by another field manager, prune and
//! delete; and the ownership rules — two projects whose names once collided, an unlabelled
//! same-named object, a namespace holding a foreign custom resource; Seldon and KServe resources
//! with the real CRDs of `../shared/crds` installed; TLS failures named by cause; workload
//! identity ServiceAccounts as GKE and then AKS read them.
//!
//! These need `MLDEPLOY_TEST_KUBECONFIG` (and `KUBE_TEST_DIR` for the audit log), so they are
//! `#[ignore]`d in a plain `cargo test` (reported as ignored, never as passed); `.ci/run` starts
//! the server and runs them with `--ignored`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use predicates::prelude::*;
use serde_json::{Value, json};

use crate::{mldeploy, root};

fn kubeconfig() -> PathBuf {
    PathBuf::from(
        std::env::var_os("MLDEPLOY_TEST_KUBECONFIG")
            .expect("MLDEPLOY_TEST_KUBECONFIG: start ../shared/kube/up.sh first (see .ci/run)"),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn client() -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

/// kube's dynamic API for one kind, in `ns` (or cluster-wide when `None`).
async fn dynamic(api_version: &str, plural: &str, ns: Option<&str>) -> kube::Api<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let ar = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: String::new(),
        plural: plural.into(),
    };
    match ns {
        Some(ns) => kube::Api::namespaced_with(client().await, ns, &ar),
        None => kube::Api::all_with(client().await, &ar),
    }
}

/// Server-side applies `obj` as field manager `manager` (another tool than mldeploy).
fn apply_as(manager: &str, plural: &str, obj: Value) {
    runtime().block_on(async {
        let api_version = obj["apiVersion"].as_str().expect("apiVersion");
        let name = obj["metadata"]["name"].as_str().expect("name").to_string();
        let api = dynamic(api_version, plural, obj["metadata"]["namespace"].as_str()).await;
        api.patch(
            &name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&obj),
        )
        .await
        .expect("apply as another manager");
    });
}

/// A merge patch as `kubectl edit` would send it (an update, not an apply).
fn edit_as(manager: &str, plural: &str, api_version: &str, ns: &str, name: &str, patch: Value) {
    runtime().block_on(async {
        let api = dynamic(api_version, plural, Some(ns)).await;
        let pp = PatchParams {
            field_manager: Some(manager.into()),
            ..PatchParams::default()
        };
        api.patch(name, &pp, &Patch::Merge(&patch))
            .await
            .expect("merge patch");
    });
}

fn get(plural: &str, api_version: &str, ns: &str, name: &str) -> Option<Value> {
    runtime().block_on(async {
        let scope = (plural != "namespaces").then_some(ns);
        dynamic(api_version, plural, scope)
            .await
            .get_opt(name)
            .await
            .expect("get")
            .map(|o| serde_json::to_value(o).expect("json"))
    })
}

/// Installs every CRD of `../shared/crds` once per test run and waits until each is served.
fn install_crds() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = root().join("../shared/crds");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("../shared/crds")
            .flatten()
            .filter(|e| e.path().is_dir())
            .flat_map(|d| std::fs::read_dir(d.path()).expect("dir").flatten())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("crd");
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("crd parses");
            for crd in docs
                .into_iter()
                .filter(|d| d["kind"] == "CustomResourceDefinition")
            {
                apply_as("test-setup", "customresourcedefinitions", crd);
            }
        }
        // Served once Established: poll discovery of the groups the examples use.
        for _ in 0..100 {
            let ok = [
                "serving.kserve.io/v1beta1",
                "machinelearning.seldon.io/v1",
                "mlops.seldon.io/v1alpha1",
                "monitoring.coreos.com/v1",
            ]
            .iter()
            .all(|gv| {
                runtime()
                    .block_on(async { client().await.list_api_group_resources(gv).await.is_ok() })
            });
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the CRDs of ../shared/crds were not served within 20s");
    });
}

/// Writes to the API server by mldeploy in namespace `ns` since `from` (a byte offset in the
/// audit log): not dry runs, not reads. Other tests run at the same time in other namespaces.
fn writes_since(from: u64, ns: &str) -> Vec<String> {
    requests_since(from, ns, false)
}

/// Like [`writes_since`], dry runs included: every request of mldeploy's besides reads.
fn non_reads_since(from: u64, ns: &str) -> Vec<String> {
    requests_since(from, ns, true)
}

fn requests_since(from: u64, ns: &str, dry_runs: bool) -> Vec<String> {
    let dir = std::env::var("KUBE_TEST_DIR").expect("KUBE_TEST_DIR (exported by up.sh)");
    let text = std::fs::read(Path::new(&dir).join("audit.log")).expect("audit log");
    let text = String::from_utf8_lossy(&text[from as usize..]).into_owned();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|u| u.starts_with("mldeploy/"))
        })
        .filter(|e| {
            matches!(
                e["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete")
            )
        })
        .filter(|e| {
            dry_runs
                || !e["requestURI"]
                    .as_str()
                    .unwrap_or("")
                    .contains("dryRun=All")
        })
        .filter(|e| {
            let uri = e["requestURI"].as_str().unwrap_or("");
            uri.contains(&format!("/namespaces/{ns}/"))
                || uri.contains(&format!("/namespaces/{ns}?"))
        })
        .map(|e| {
            format!(
                "{} {}",
                e["verb"].as_str().unwrap_or(""),
                e["requestURI"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn audit_offset() -> u64 {
    let dir = std::env::var("KUBE_TEST_DIR").expect("KUBE_TEST_DIR (exported by up.sh)");
    std::fs::metadata(Path::new(&dir).join("audit.log"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// A project of `deployment` models in `namespace`.
fn config(project: &str, env: &str, namespace: &str, models: &[&str]) -> String {
    let mut s = format!("version: 1\nproject: {project}\nmodels:\n");
    for m in models {
        s.push_str(&format!(
            "  - {{name: {m}, runtime: deployment, image: nginxinc/nginx-unprivileged:1.27-alpine, port: 8080, resources: {{cpu: 50m, memory: 64Mi}}}}\n"
        ));
    }
    s.push_str("clusters:\n  test: {cloud: onprem, distribution: other}\nenvironments:\n");
    s.push_str(&format!(
        "  {env}: {{cluster: test, namespace: {namespace}}}\n"
    ));
    s
}

struct Project {
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl Project {
    fn new(text: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("mldeploy.yaml");
        std::fs::write(&file, text).expect("write");
        Project { dir, file }
    }

    fn set(&self, text: &str) {
        std::fs::write(&self.file, text).expect("write");
    }

    fn run(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = mldeploy();
        cmd.timeout(Duration::from_secs(300))
            .current_dir(self.dir.path())
            .arg("-f")
            .arg(&self.file)
            .arg("--kubeconfig")
            .arg(kubeconfig())
            .args(args);
        cmd
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", std::process::id())
}

#[test]
#[ignore = "needs a real API server: eval \"$(../shared/kube/up.sh)\" (.ci/run does), then cargo test -- --ignored"]
fn full_cycle_no_op_drift_prune_delete() {
    let ns = unique("e2e");
    let p = Project::new(&config("cycle", "e2e", &ns, &["alpha", "beta"]));
    p.run(&["apply", "--no-wait"]).assert().success();

    // A no-op apply writes nothing: counted by the API server itself.
    let from = audit_offset();
    p.run(&["apply", "--no-wait"])
        .assert()
        .success()
        .stderr(predicate::str::contains("0 created, 0 updated"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(writes_since(from, &ns), Vec::<String>::new());
    p.run(&["diff"]).assert().code(0);

    // A change to a field that is not ours (`kubectl rollout restart`) moves the generation but
    // is not drift: the no-op stays at discovery + LISTs, not even a dry run, and the field is
    // left alone.
    edit_as(
        "kubectl-rollout",
        "deployments",
        "apps/v1",
        &ns,
        "beta",
        json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2026-12-02T19:00:00Z"}}}}}),
    );
    let from = audit_offset();
    p.run(&["diff"]).assert().code(0);
    p.run(&["apply", "--no-wait"])
        .assert()
        .success()
        .stderr(predicate::str::contains("0 created, 0 updated"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(non_reads_since(from, &ns), Vec::<String>::new());
    let beta = get("deployments", "apps/v1", &ns, "beta").expect("beta");
    assert_eq!(beta["metadata"]["generation"], 2);
    assert!(
        beta["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );

    // Drift: `kubectl scale`/`edit` by another field manager shows in diff; apply restores it
    // once the user takes the field back.
    edit_as(
        "kubectl-edit",
        "deployments",
        "apps/v1",
        &ns,
        "alpha",
        json!({"spec": {"replicas": 5}}),
    );
    p.run(&["diff"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("~ update Deployment"))
        .stdout(predicate::str::contains("replicas: 5"));
    p.run(&["apply", "--no-wait"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("kubectl-edit"));
    p.run(&["apply", "--no-wait", "--force-conflicts"])
        .assert()
        .success();
    let alpha = get("deployments", "apps/v1", &ns, "alpha").expect("alpha");
    assert_eq!(alpha["spec"]["replicas"], 1);
    p.run(&["diff"]).assert().code(0);

    // Prune exactly the dropped model.
    p.set(&config("cycle", "e2e", &ns, &["alpha"]));
    p.run(&["diff"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("- prune  Deployment"));
    p.run(&["apply", "--no-wait", "--prune"]).assert().success();
    assert!(get("deployments", "apps/v1", &ns, "beta").is_none());
    assert!(get("deployments", "apps/v1", &ns, "alpha").is_some());
    p.run(&["diff"]).assert().code(0);
    p.run(&["status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("alpha"));
    p.run(&["delete", "--yes"]).assert().success();
    assert!(get("deployments", "apps/v1", &ns, "alpha").is_none());
}

#[test]
#[ignore = "needs a real API server: eval \"$(../shared/kube/up.sh)\" (.ci/run does), then cargo test -- --ignored"]
fn projects_whose_names_once_collided_keep_their_objects() {
    let ns = unique("shared");
    // (a-b, c) and (a, b-c) shared the ApplySet `mldeploy-a-b-c` before.
    let first = Project::new(&config("a-b", "c", &ns, &["one"]));
    let second = Project::new(&config("a", "b-c", &ns, &["two"]));
    first.run(&["apply", "--no-wait"]).assert().success();
    second
        .run(&["apply", "--no-wait", "--prune"])
        .assert()
        .success();
    first
        .run(&["apply", "--no-wait", "--prune"])
        .assert()
        .success();
    for (plural, v) in [("deployments", "apps/v1"), ("services", "v1")] {
        assert!(get(plural, v, &ns, "one").is_some(), "{plural} one is gone");
        assert!(get(plural, v, &ns, "two").is_some(), "{plural} two is gone");
    }
    // Each project's ServiceAccount is named after the project.
    assert!(get("serviceaccounts", "v1", &ns, "a-b").is_some());
    assert!(get("serviceaccounts", "v1", &ns, "a").is_some());
    // Deleting one keeps the other and the namespace (which holds the other's objects).
    second.run(&["delete", "--yes"]).assert().success();
    assert!(get("deployments", "apps/v1", &ns, "one").is_some());
    assert!(get("namespaces", "v1", "", &ns).is_some());
    first.run(&["delete", "--yes"]).assert().success();
}

#[test]
#[ignore = "needs a real API server: eval \"$(../shared/kube/up.sh)\" (.ci/run does), then cargo test -- --ignored"]
fn an_unlabelled_object_with_our_name_is_not_ours() {
    let ns = unique("foreign");
    let p = Project::new(&config("own", "e", &ns, &["mine", "theirs"]));
    apply_as(
        "default-tool",
        "namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    );
    apply_as(
        "other-tool",
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "theirs", "namespace": ns},
               // The selector mldeploy renders (it is immutable: adoption keeps it).
               "spec": {"replicas": 3, "selector": {"matchLabels": {"app.kubernetes.io/name": "theirs", "app.kubernetes.io/instance": "theirs-e"}},
                        "template": {"metadata": {"labels": {"app.kubernetes.io/name": "theirs", "app.kubernetes.io/instance": "theirs-e"}},
                                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    );
    p.run(&["diff"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("! not ours Deployment"));
    p.run(&["apply", "--no-wait"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--adopt"));
    let theirs = get("deployments", "apps/v1", &ns, "theirs").expect("theirs");
    assert_eq!(
        theirs["spec"]["replicas"], 3,
        "apply changed a foreign object"
    );
    assert!(
        get("deployments", "apps/v1", &ns, "mine").is_none(),
        "nothing is written on refusal"
    );

    // Delete leaves it, says so, and keeps the namespace that holds it.
    let without = Project::new(&config("own", "e", &ns, &["mine"]));
    without.run(&["apply", "--no-wait"]).assert().success();
    p.run(&["delete", "--yes"])
        .assert()
        .success()
        .stderr(predicate::str::contains("not this environment's"));
    assert!(get("deployments", "apps/v1", &ns, "theirs").is_some());
    assert!(get("deployments", "apps/v1", &ns, "mine").is_none());
    assert!(get("namespaces", "v1", "", &ns).is_some());

    // --adopt makes it ours.
    p.run(&["apply", "--no-wait", "--adopt"]).assert().success();
    let theirs = get("deployments", "apps/v1", &ns, "theirs").expect("theirs");
    assert!(theirs["metadata"]["labels"]["applyset.kubernetes.io/part-of"].is_string());
    p.run(&["delete", "--yes"]).assert().success();
}

#[test]
#[ignore = "needs a real API server: eval \"$(../shared/kube/up.sh)\" (.ci/run does), then cargo test -- --ignored"]
fn a_namespace_holding_a_foreign_custom_resource_is_kept() {
    install_crds();
    let ns = unique("crns");
    let p = Project::new(&config("crs", "e", &ns, &["m"]));
    p.run(&["apply", "--no-wait"]).assert().success();
    apply_as(
        "someone-else",
        "inferenceservices",
        json!({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
               "metadata": {"name": "not-ours", "namespace": ns},
               "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://b/m"}}}}),
    );
    p.run(&["delete", "--yes"]).assert().success();
    assert!(
        get("namespaces", "v1", "", &ns).is_some(),
        "the namespace with a foreign InferenceService was deleted"
    );
    assert!(
        get(
            "inferenceservices",
            "serving.kserve.io/v1beta1",
            &ns,
            "not-ours"
        )
        .is_some()
    );
    assert!(get("deployments", "apps/v1", &ns, "m").is_none());
}

#[test]
#[ignore = "needs a real API server: eval \"$(../shared/kube/up.sh)\" (.ci/run does), then cargo test -- --ignored"]
fn seldon_and_kserve_resources_apply_against_the_real_crds() {
    install_crds();
    // The aws example: KServe, Seldon v2, a Deployment, ServiceMonitors, in its own namespace.
    let text = std::fs::read_to_string(root().join("examples/aws.yaml")).expect("example");
    let p = Project::new(&text);
    p.run(&["apply", "--env", "dev", "--no-wait"])
        .assert()
        .success();
    let from = audit_offset();
    p.run(&["apply", "--env", "dev", "--no-wait"])
        .assert()
        .success()
        .stderr(predicate::str::contains("0 created, 0 updated"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(writes_since(from, "doc-ai-dev"), Vec::<String>::new());
    p.run(&["diff", "--env", "dev"]).assert().code(0);
    p.run(&["delete", "--env", "dev", "--yes"])
        .assert()
        .success();
}

#[test]
#[ignore = "needs a real API server: eval \"$(../shared/kube/up.sh)\" (.ci/run does), then cargo test -- --ignored"]
fn tls_failures_name_their_cause() {
    let text = std::fs::read_to_string(kubeconfig()).expect("kubeconfig");
    // The same server without its CA: an unknown authority.
    let without_ca: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("certificate-authority"))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, without_ca).expect("write");
    let p = Project::new(&config("tls", "e", "tls", &["m"]));
    let mut cmd = mldeploy();
    cmd.arg("-f")
        .arg(&p.file)
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("diff")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "authority this kubeconfig does not trust",
        ));
}

/// Creates `pod` with a server-side dry run (admission runs, nothing is stored).
fn dry_run_pod(ns: &str, pod: &Value) -> Result<(), String> {
    runtime().block_on(async {
        let client = client().await;
        let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(
            client,
            ns,
            &ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "Pod".into(),
                plural: "pods".into(),
            },
        );
        let obj: DynamicObject = serde_json::from_value(pod.clone()).expect("pod");
        api.create(
            &kube::api::PostParams {
                dry_run: true,
                field_manager: None,
            },
            &obj,
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    })
}

#[test]
#[ignore = "needs a real API server: eval \"$(../shared/kube/up.sh)\" (.ci/run does), then cargo test -- --ignored"]
fn a_namespace_gets_its_network_policies_and_enforces_restricted_pod_security() {
    let ns = unique("psa");
    let p = Project::new(&config("psa", "e2e", &ns, &["alpha"]));
    p.run(&["apply", "--no-wait"]).assert().success();

    // Only plain Deployments here: the namespace enforces `restricted`.
    let namespace = get("namespaces", "v1", "", &ns).expect("namespace");
    let labels = &namespace["metadata"]["labels"];
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
    for policy in ["psa.e2e.default-deny-ingress", "alpha-serving"] {
        let np = get("networkpolicies", "networking.k8s.io/v1", &ns, policy)
            .unwrap_or_else(|| panic!("NetworkPolicy {policy}"));
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]), "{policy}");
    }

    // The rendered pod passes admission; a root pod with a writable root filesystem does not.
    let deployment = get("deployments", "apps/v1", &ns, "alpha").expect("alpha");
    let template = &deployment["spec"]["template"];
    let ours = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "alpha-check", "namespace": ns, "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    });
    dry_run_pod(&ns, &ours).unwrap_or_else(|e| panic!("the rendered pod is refused: {e}"));
    let root = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                 "securityContext": {"runAsUser": 0, "privileged": true}}]},
    });
    let refused = dry_run_pod(&ns, &root).expect_err("a privileged root pod is refused");
    assert!(refused.contains("PodSecurity"), "{refused}");

    p.run(&["delete", "--yes"]).assert().success();
}

#[test]
#[ignore = "needs a real API server: eval \"$(../shared/kube/up.sh)\" (.ci/run does), then cargo test -- --ignored"]
fn infra_on_a_fresh_machine_finds_state_kept_under_the_old_secret_name() {
    let ns = unique("tfstate");
    let project = unique("oldstate");
    let p = Project::new(&format!(
        "version: 1\nproject: {project}\nmodels:\n  - {{name: m, image: r.example.com/m:1}}\n\
         clusters:\n  test:\n    cloud: onprem\n    distribution: other\n    \
         state: {{kubernetes: {{namespace: {ns}}}}}\nenvironments:\n  e: {{cluster: test}}\n"
    ));
    // A stand-in for Terraform that says so if it is ever run.
    let fake = p.dir.path().join("fake-terraform");
    std::fs::write(&fake, "#!/bin/sh\necho 'fake terraform ran' >&2\nexit 1\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    apply_as(
        "test",
        "namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    );
    let secret = |name: String| {
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": name, "namespace": ns}, "data": {"tfstate": ""}})
    };
    // State under the name earlier versions used, none under the new one: stop before Terraform.
    apply_as(
        "terraform",
        "secrets",
        secret(format!("tfstate-default-{project}-test")),
    );
    let fake_arg = fake.display().to_string();
    p.run(&[
        "infra",
        "plan",
        "--cluster",
        "test",
        "--terraform",
        &fake_arg,
    ])
    .assert()
    .code(1)
    .stderr(
        predicate::str::contains(format!("tfstate-default-{project}-test"))
            .and(predicate::str::contains(format!(
                "secretSuffix: {project}-test"
            )))
            .and(predicate::str::contains("fake terraform ran").not()),
    );
    // Both names present: the new one is in use; Terraform runs.
    apply_as(
        "terraform",
        "secrets",
        secret(format!("tfstate-default-{project}.test.state")),
    );
    p.run(&[
        "infra",
        "plan",
        "--cluster",
        "test",
        "--terraform",
        &fake_arg,
    ])
    .assert()
    .code(1)
    .stderr(predicate::str::contains("fake terraform ran"));
}

/// A project whose models read their weights with a workload identity, on cluster `test` of
/// `cluster` (the real API server stands in for GKE and AKS alike: it stores what the cloud's
/// webhook and agent read).
fn identity_config(ns: &str, cluster: &str, uri: &str, client_id: &str) -> String {
    format!(
        r#"version: 1
project: ident
models:
  - name: ranker
    runtime: kserve
    server: xgboost
    modelUri: {uri}/ranker/v1
    storage: {{identity: workload{client_id}}}
  - name: embedder
    runtime: deployment
    image: nginxinc/nginx-unprivileged:1.27-alpine
    port: 8080
    resources: {{cpu: 50m, memory: 64Mi}}
    storage: {{identity: workload, name: embedder-reader, buckets: ["{uri}/embeddings"]{client_id}}}
clusters:
  test: {cluster}
environments:
  e2e: {{cluster: test, namespace: {ns}}}
"#
    )
}

#[test]
#[ignore = "needs a real API server: eval \"$(../shared/kube/up.sh)\" (.ci/run does), then cargo test -- --ignored"]
fn workload_identity_service_accounts_follow_the_cloud_on_a_real_server() {
    install_crds();
    let ns = unique("ident");
    let gke = identity_config(
        &ns,
        "{cloud: gcp, region: europe-west4, gcp: {project: acme-ml}}",
        "gs://ident-models",
        "",
    );
    let p = Project::new(&gke);
    p.run(&["apply", "--no-wait"]).assert().success();

    // Every workload runs as a ServiceAccount bound to a Google service account.
    let gsa = |sa: &str| {
        let sa = get("serviceaccounts", "v1", &ns, sa).unwrap_or_else(|| panic!("SA {sa}"));
        sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].clone()
    };
    let embedder = get("deployments", "apps/v1", &ns, "embedder").expect("embedder");
    let pod = &embedder["spec"]["template"];
    assert_eq!(pod["spec"]["serviceAccountName"], "embedder-reader");
    let email = gsa("embedder-reader");
    assert!(
        email
            .as_str()
            .is_some_and(|e| e.ends_with("@acme-ml.iam.gserviceaccount.com")),
        "{email}"
    );
    let ranker = get(
        "inferenceservices",
        "serving.kserve.io/v1beta1",
        &ns,
        "ranker",
    )
    .expect("ranker");
    let ranker_sa = ranker["spec"]["predictor"]["serviceAccountName"]
        .as_str()
        .expect("the predictor runs as the identity's ServiceAccount")
        .to_string();
    assert!(gsa(&ranker_sa).is_string());

    // The same project moved to AKS: the Google annotation goes (server-side apply removes
    // the field we no longer apply), the Azure client id and the pod label come.
    p.set(&identity_config(
        &ns,
        "{cloud: azure, region: westeurope, azure: {resourceGroup: ident-rg}}",
        "https://identmodels.blob.core.windows.net/models",
        ", clientId: 0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
    ));
    p.run(&["apply", "--no-wait"]).assert().success();
    let sa = get("serviceaccounts", "v1", &ns, "embedder-reader").expect("SA");
    let annotations = &sa["metadata"]["annotations"];
    assert!(
        annotations["iam.gke.io/gcp-service-account"].is_null(),
        "{sa}"
    );
    assert_eq!(
        annotations["azure.workload.identity/client-id"],
        "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
    );
    let embedder = get("deployments", "apps/v1", &ns, "embedder").expect("embedder");
    assert_eq!(
        embedder["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"],
        "true"
    );
    p.run(&["diff"]).assert().code(0);
    p.run(&["delete", "--yes"]).assert().success();
    assert!(get("serviceaccounts", "v1", &ns, "embedder-reader").is_none());
}
