//! The GitOps generator and CI ergonomics: idempotent regeneration in a git repository,
//! `--check`, removals that touch only mldeploy's own files, hand edits and `--force`, Argo CD /
//! Flux objects against the real CRDs, `kubectl kustomize` against `render`, JSON shapes, colour
//! and the man page.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use predicates::prelude::*;
use serde_json::Value;

use crate::{crd_schemas, json, mldeploy, root, without_model, yaml_files};

/// Runs git in `dir` and returns stdout; panics with stderr on failure.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A temporary git repository with an identity, so commits work on any machine.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["config", "user.email", "ci@example.com"]);
    git(dir.path(), &["config", "user.name", "CI"]);
    git(dir.path(), &["config", "commit.gpgsign", "false"]);
    dir
}

fn commit_all(dir: &Path) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "generated"]);
}

fn status(dir: &Path) -> String {
    git(dir, &["status", "--porcelain", "--untracked-files=all"])
}

/// `mldeploy gitops -f CONFIG ARGS…` run in `dir`.
fn gitops(dir: &Path, config: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    mldeploy()
        .current_dir(dir)
        .arg("gitops")
        .arg("-f")
        .arg(config)
        .args(args)
        .assert()
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(a.get_output().stdout.clone()).expect("utf-8")
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(a.get_output().stderr.clone()).expect("utf-8")
}

/// Every file under `dir`, relative, sorted, with `/` separators (`.git` left out).
fn files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("readable") {
            let p = e.expect("entry").path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                let rel = p.strip_prefix(base).expect("under base");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

fn mtimes(dir: &Path) -> BTreeMap<String, SystemTime> {
    files(dir)
        .into_iter()
        .map(|f| {
            let t = std::fs::metadata(dir.join(&f))
                .and_then(|m| m.modified())
                .expect("mtime");
            (f, t)
        })
        .collect()
}

/// The examples, as absolute paths.
fn examples() -> Vec<PathBuf> {
    yaml_files("examples")
        .into_iter()
        .map(|f| root().join(f))
        .collect()
}

/// `config` with environment `name` removed (its block under `environments:`).
fn without_env(config: &str, name: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in config.lines() {
        if line == format!("  {name}:") {
            skipping = true;
            continue;
        }
        if skipping && line.starts_with("    ") {
            continue;
        }
        skipping = false;
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn regenerating_changes_no_byte_and_check_passes() {
    for config in examples() {
        let repo = repo();
        let dir = repo.path();
        gitops(dir, &config, &["--out", "deploy"]).success();
        assert!(dir.join("deploy/.mldeploy-manifest.json").is_file());
        commit_all(dir);
        let before = mtimes(dir);
        // Let a rewrite show in mtimes even on coarse file systems.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let again = gitops(dir, &config, &["--out", "deploy"]).success();
        assert!(stderr(&again).contains("up to date"), "{}", stderr(&again));
        assert_eq!(
            status(dir),
            "",
            "{}: regeneration changed files",
            config.display()
        );
        assert_eq!(
            mtimes(dir),
            before,
            "{}: files were rewritten",
            config.display()
        );
        let check = gitops(dir, &config, &["--out", "deploy", "--check"]).code(0);
        assert_eq!(stdout(&check), "", "an up-to-date tree has no diff");
    }
}

#[test]
fn the_tree_has_clusters_apps_and_the_engine_files() {
    let mut listing = String::new();
    for config in examples() {
        let out = tempfile::tempdir().expect("tempdir");
        let run = gitops(out.path(), &config, &["--out", "tree"]).success();
        let tree = files(&out.path().join("tree"));
        let stem = config.file_stem().expect("stem").to_string_lossy();
        listing.push_str(&format!("## {stem}\n"));
        // Terraform files are the render stage's (checked byte for byte against `render --out`
        // below), so they stay out of this snapshot.
        for f in tree.iter().filter(|f| !f.starts_with("clusters/")) {
            listing.push_str(f);
            listing.push('\n');
        }
        let text = std::fs::read_to_string(&config).expect("read");
        let engine = ["argocd", "flux"]
            .into_iter()
            .find(|e| text.contains(&format!("engine: {e}")));
        for f in &tree {
            let top = f.split('/').next().expect("segment");
            assert!(
                matches!(top, "clusters" | "apps" | ".mldeploy-manifest.json")
                    || Some(top) == engine,
                "{stem}: unexpected {f}"
            );
        }
        if engine.is_none() {
            assert!(
                stderr(&run).contains("no `gitops:` block"),
                "{stem}: {}",
                stderr(&run)
            );
        }
        // Every manifest file is listed in its kustomization, and nothing else.
        for env_dir in tree
            .iter()
            .filter(|f| f.ends_with("/kustomization.yaml"))
            .map(|f| f.trim_end_matches("/kustomization.yaml"))
        {
            let k: Value = serde_saphyr::from_str(
                &std::fs::read_to_string(
                    out.path()
                        .join("tree")
                        .join(env_dir)
                        .join("kustomization.yaml"),
                )
                .expect("read"),
            )
            .expect("kustomization parses");
            let listed: BTreeSet<String> = k["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .map(|r| format!("{env_dir}/{}", r.as_str().expect("string")))
                .collect();
            let present: BTreeSet<String> = tree
                .iter()
                .filter(|f| {
                    f.starts_with(&format!("{env_dir}/")) && !f.ends_with("kustomization.yaml")
                })
                .cloned()
                .collect();
            assert_eq!(listed, present);
        }
    }
    insta::assert_snapshot!("gitops-tree-files", listing);

    // apps/<env>/ and clusters/<cluster>/ hold exactly the bytes `render --out` writes.
    let out = tempfile::tempdir().expect("tempdir");
    let gcp = root().join("examples/gcp.yaml");
    gitops(out.path(), &gcp, &["--out", "tree"]).success();
    mldeploy()
        .current_dir(out.path())
        .args(["render", "--env", "staging", "--out", "rendered", "-f"])
        .arg(&gcp)
        .assert()
        .success();
    for (rendered, generated) in [
        ("rendered/manifests", "tree/apps/staging"),
        ("rendered/terraform", "tree/clusters/gke-prod"),
    ] {
        let want = files(&out.path().join(rendered));
        let mut have = files(&out.path().join(generated));
        have.retain(|f| f != "kustomization.yaml");
        assert_eq!(have, want, "{generated}");
        for f in &want {
            assert_eq!(
                std::fs::read(out.path().join(generated).join(f)).expect("read"),
                std::fs::read(out.path().join(rendered).join(f)).expect("read"),
                "{generated}/{f}"
            );
        }
    }

    let out = tempfile::tempdir().expect("tempdir");
    gitops(
        out.path(),
        &root().join("examples/gcp.yaml"),
        &["--out", "gcp"],
    )
    .success();
    gitops(
        out.path(),
        &root().join("examples/aws.yaml"),
        &["--out", "aws"],
    )
    .success();
    let read = |p: &str| std::fs::read_to_string(out.path().join(p)).expect("read");
    insta::assert_snapshot!("gitops-argocd-gcp-prod", read("gcp/argocd/prod.yaml"));
    insta::assert_snapshot!("gitops-flux-aws-prod", read("aws/flux/prod.yaml"));
}

#[test]
fn dropping_a_model_removes_exactly_its_files() {
    let repo = repo();
    let dir = repo.path();
    let original = std::fs::read_to_string(root().join("examples/gcp.yaml")).expect("read");
    // The config lives in the repository (ignored here, so that `git status` shows only the
    // tree), and mldeploy runs from elsewhere.
    std::fs::write(dir.join(".git/info/exclude"), "mldeploy.yaml\n").expect("write");
    let config = write_config(dir, "mldeploy.yaml", &original);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    // No --out: the default is the config's gitops.path (`deploy`), beside the config.
    gitops(elsewhere.path(), &config, &[]).success();
    assert!(dir.join("deploy/argocd/prod.yaml").is_file());
    std::fs::write(dir.join("deploy/README.md"), "hand-written\n").expect("write");
    std::fs::write(dir.join("deploy/apps/prod/NOTES.md"), "hand-written\n").expect("write");
    commit_all(dir);
    let before = files(&dir.join("deploy"));

    let config = write_config(dir, "mldeploy.yaml", &without_model(&original, "fraud-xgb"));
    let check = gitops(dir, &config, &["--check"]).code(2);
    // The model's files, and its workload identity's ServiceAccounts and Terraform: no other
    // model uses them.
    let gone: Vec<&String> = before
        .iter()
        .filter(|f| {
            f.contains("fraud-xgb")
                || f.ends_with("-storage.yaml")
                || f.as_str() == "clusters/gke-prod/identity.tf"
        })
        .collect();
    assert!(gone.len() >= 4, "{gone:?}");
    for f in &gone {
        assert!(
            stdout(&check).contains(&format!("--- a/{f}\n+++ /dev/null")),
            "the diff lacks the removal of {f}:\n{}",
            stdout(&check)
        );
        assert!(
            stderr(&check).contains(&format!("  - {f}\n")),
            "{}",
            stderr(&check)
        );
    }
    let doc = json(&gitops(dir, &config, &["--check", "--output", "json"]).code(2));
    assert_eq!(doc["upToDate"], false);
    let remove: Vec<&str> = doc["remove"]
        .as_array()
        .expect("remove")
        .iter()
        .map(|v| v.as_str().expect("string"))
        .collect();
    assert_eq!(remove, gone, "exactly the dropped model's files go");
    assert_eq!(doc["add"], serde_json::json!([]));
    let change = doc["change"].as_array().expect("change");
    assert!(change.contains(&Value::from("apps/prod/kustomization.yaml")));
    assert!(change.contains(&Value::from(".mldeploy-manifest.json")));
    assert_eq!(status(dir), "", "--check writes nothing");

    gitops(dir, &config, &[]).success();
    for f in &gone {
        assert!(!dir.join("deploy").join(f).exists(), "{f} is still there");
    }
    assert!(dir.join("deploy/README.md").is_file());
    assert!(dir.join("deploy/apps/prod/NOTES.md").is_file());
    let status_now = status(dir);
    for line in status_now.lines() {
        let (code, path) = line.split_at(3);
        let path = path.trim_start_matches("deploy/");
        match code.trim() {
            "D" => assert!(gone.iter().any(|g| *g == path), "{path} was deleted"),
            "M" => assert!(!path.contains("fraud-xgb"), "{path}"),
            _ => panic!("unexpected status {line}"),
        }
    }
    gitops(dir, &config, &["--check"]).code(0);
    commit_all(dir);

    // Dropping an environment removes its folder and its Application, and nothing else.
    let config = write_config(
        dir,
        "mldeploy.yaml",
        &without_env(&without_model(&original, "fraud-xgb"), "staging"),
    );
    gitops(dir, &config, &[]).success();
    assert!(
        !dir.join("deploy/apps/staging").exists(),
        "empty folder kept"
    );
    assert!(!dir.join("deploy/argocd/staging.yaml").exists());
    assert!(dir.join("deploy/argocd/prod.yaml").is_file());
    assert!(dir.join("deploy/README.md").is_file());
    assert!(dir.join("deploy/apps/prod/NOTES.md").is_file());
}

#[test]
fn hand_edits_are_reported_and_kept_without_force() {
    let repo = repo();
    let dir = repo.path();
    let original = std::fs::read_to_string(root().join("examples/gcp.yaml")).expect("read");
    let configs = tempfile::tempdir().expect("tempdir");
    let config = write_config(configs.path(), "mldeploy.yaml", &original);
    gitops(dir, &config, &["--out", "deploy"]).success();
    commit_all(dir);

    let edited = dir.join("deploy/apps/prod/kustomization.yaml");
    let generated = std::fs::read_to_string(&edited).expect("read");
    let hand = format!("{generated}namePrefix: hand-edit-\n");
    std::fs::write(&edited, &hand).expect("write");
    // A pending config change must not be written either while a conflict blocks the run.
    let config = write_config(
        configs.path(),
        "mldeploy.yaml",
        &without_model(&original, "fraud-xgb"),
    );
    let run = gitops(dir, &config, &["--out", "deploy"]).code(1);
    assert!(
        stderr(&run).contains("! apps/prod/kustomization.yaml (edited by hand"),
        "{}",
        stderr(&run)
    );
    assert!(stderr(&run).contains("--force"), "{}", stderr(&run));
    assert_eq!(std::fs::read_to_string(&edited).expect("read"), hand);
    assert_eq!(
        status(dir),
        " M deploy/apps/prod/kustomization.yaml\n",
        "nothing else was written"
    );

    let doc = json(&gitops(dir, &config, &["--out", "deploy", "--output", "json"]).code(1));
    assert_eq!(doc["ok"], false);
    assert_eq!(
        doc["conflicts"],
        serde_json::json!([{"path": "apps/prod/kustomization.yaml", "reason": "edited", "removed": false}])
    );
    assert!(doc["errors"][0]["message"].is_string());

    let doc = json(
        &gitops(
            dir,
            &config,
            &["--out", "deploy", "--check", "--output", "json"],
        )
        .code(2),
    );
    assert_eq!(doc["conflicts"][0]["path"], "apps/prod/kustomization.yaml");
    assert!(
        !doc["change"]
            .as_array()
            .expect("change")
            .contains(&Value::from("apps/prod/kustomization.yaml")),
        "a conflict is not a plain change"
    );

    gitops(dir, &config, &["--out", "deploy", "--force"]).success();
    let now = std::fs::read_to_string(&edited).expect("read");
    assert!(!now.contains("hand-edit"), "--force overwrites:\n{now}");
    assert!(
        !dir.join("deploy/apps/prod/06-inferenceservice-fraud-xgb.yaml")
            .exists()
    );
    gitops(dir, &config, &["--out", "deploy", "--check"]).code(0);
}

#[test]
fn check_json_has_a_stable_shape() {
    let repo = repo();
    let dir = repo.path();
    let config = root().join("examples/aws.yaml");
    // A missing tree is stale: everything is to be added.
    let doc = json(
        &gitops(
            dir,
            &config,
            &["--out", "deploy", "--check", "--output", "json"],
        )
        .code(2),
    );
    let keys: BTreeSet<&str> = doc
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "upToDate",
            "out",
            "add",
            "remove",
            "change",
            "conflicts",
            "diff"
        ])
    );
    assert_eq!(doc["upToDate"], false);
    assert!(
        doc["add"]
            .as_array()
            .expect("add")
            .contains(&Value::from("flux/prod.yaml"))
    );
    assert!(
        doc["add"]
            .as_array()
            .expect("add")
            .contains(&Value::from(".mldeploy-manifest.json"))
    );
    assert!(
        doc["diff"]
            .as_str()
            .expect("diff")
            .contains("+++ b/flux/prod.yaml")
    );
    assert!(!dir.join("deploy").exists(), "--check writes nothing");

    let doc = json(&gitops(dir, &config, &["--out", "deploy", "--output", "json"]).success());
    assert_eq!(doc["ok"], true);
    assert!(doc["unchanged"].is_u64());
    let doc = json(
        &gitops(
            dir,
            &config,
            &["--out", "deploy", "--check", "--output", "json"],
        )
        .code(0),
    );
    assert_eq!(
        doc,
        serde_json::json!({
            "upToDate": true, "out": "deploy", "add": [], "remove": [], "change": [],
            "conflicts": [], "diff": ""
        })
    );
}

/// The Argo CD (gcp) and Flux (aws) engine files of the examples: (file, object).
fn engine_objects() -> Vec<(String, Value)> {
    let out = tempfile::tempdir().expect("tempdir");
    let mut objects: Vec<(String, Value)> = Vec::new();
    for (config, sub) in [("examples/gcp.yaml", "gcp"), ("examples/aws.yaml", "aws")] {
        gitops(out.path(), &root().join(config), &["--out", sub]).success();
        for f in files(&out.path().join(sub)) {
            if f.starts_with("argocd/") || f.starts_with("flux/") {
                let text = std::fs::read_to_string(out.path().join(sub).join(&f)).expect("read");
                let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("parses");
                for d in docs.into_iter().filter(|d| !d.is_null()) {
                    objects.push((format!("{sub}/{f}"), d));
                }
            }
        }
    }
    objects
}

#[test]
fn engine_files_point_at_the_tree_and_prune() {
    let objects = engine_objects();
    // Argo CD (gcp) and Flux (aws), two environments each, Flux with two objects per file.
    assert_eq!(objects.len(), 2 + 4, "{objects:#?}");

    let find = |file: &str, kind: &str| -> &Value {
        &objects
            .iter()
            .find(|(f, o)| f == file && o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {file}"))
            .1
    };
    let app = find("gcp/argocd/prod.yaml", "Application");
    assert_eq!(app["spec"]["source"]["path"], "deploy/apps/prod");
    assert_eq!(
        app["spec"]["source"]["repoURL"],
        "https://git.example.com/ml/deploy.git"
    );
    assert_eq!(app["spec"]["source"]["targetRevision"], "main");
    assert_eq!(app["spec"]["destination"]["namespace"], "visual-qc");
    assert_eq!(app["spec"]["syncPolicy"]["automated"]["prune"], true);
    assert_eq!(app["spec"]["syncPolicy"]["automated"]["selfHeal"], true);
    let options = app["spec"]["syncPolicy"]["syncOptions"]
        .as_array()
        .expect("options");
    assert!(options.contains(&Value::from("ServerSideApply=true")));
    assert!(options.contains(&Value::from("CreateNamespace=false")));
    let ks = find("aws/flux/dev.yaml", "Kustomization");
    assert_eq!(ks["spec"]["path"], "./deploy/apps/dev");
    assert_eq!(ks["spec"]["prune"], true);
    assert_eq!(ks["spec"]["wait"], true);
    assert_eq!(ks["spec"]["timeout"], "5m");
    let source = find("aws/flux/dev.yaml", "GitRepository");
    assert_eq!(ks["spec"]["sourceRef"]["name"], source["metadata"]["name"]);
    assert_eq!(source["spec"]["ref"]["branch"], "main");
}

#[test]
#[ignore = "needs the real CRDs in ../shared/crds: cargo test -- --ignored (.ci/run runs it)"]
fn engine_files_match_the_real_crds() {
    let schemas = crd_schemas();
    let objects = engine_objects();
    assert_eq!(objects.len(), 2 + 4, "{objects:#?}");
    let validate = |object: &Value| crate::crd_valid(&schemas, object);
    for (file, object) in &objects {
        if let Err(e) = validate(object) {
            panic!("{file}: {} does not match its CRD:\n{e}", object["kind"]);
        }
    }
    let app = &objects
        .iter()
        .find(|(f, o)| f == "gcp/argocd/prod.yaml" && o["kind"] == "Application")
        .expect("application")
        .1;
    // The check has teeth: a misspelt field is rejected.
    let mut bad = app.clone();
    bad["spec"]["syncPolicy"]["automated"]["prunee"] = Value::from(true);
    assert!(validate(&bad).is_err());
}

/// Objects keyed by (apiVersion, kind, namespace, name).
fn by_identity(
    objects: impl IntoIterator<Item = Value>,
) -> BTreeMap<(String, String, String, String), Value> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut out = BTreeMap::new();
    for o in objects {
        let key = (
            s(&o["apiVersion"]),
            s(&o["kind"]),
            s(&o["metadata"]["namespace"]),
            s(&o["metadata"]["name"]),
        );
        assert!(out.insert(key.clone(), o).is_none(), "{key:?} twice");
    }
    out
}

#[test]
#[ignore = "needs kubectl on PATH: cargo test -- --ignored (.ci/run runs it)"]
fn kustomize_builds_what_render_renders() {
    crate::require_tool("kubectl", "kubectl kustomize builds apps/<env>");
    let mut compared = 0;
    for config in examples() {
        let out = tempfile::tempdir().expect("tempdir");
        gitops(out.path(), &config, &["--out", "tree"]).success();
        let apps = out.path().join("tree/apps");
        for env in files(&apps)
            .iter()
            .filter_map(|f| f.strip_suffix("/kustomization.yaml"))
        {
            let built = std::process::Command::new("kubectl")
                .arg("kustomize")
                .arg(apps.join(env))
                .output()
                .expect("kubectl runs");
            assert!(
                built.status.success(),
                "kubectl kustomize {env}: {}",
                String::from_utf8_lossy(&built.stderr)
            );
            let docs: Vec<Value> =
                serde_saphyr::from_multiple(&String::from_utf8(built.stdout).expect("utf-8"))
                    .expect("kustomize output parses");
            let rendered = mldeploy()
                .args(["render", "--output", "json", "--env", env, "-f"])
                .arg(&config)
                .assert()
                .success()
                .get_output()
                .stdout
                .clone();
            let rendered: Vec<Value> = serde_json::from_slice(&rendered).expect("render json");
            let (kustomized, rendered) = (
                by_identity(docs.into_iter().filter(|d| !d.is_null())),
                by_identity(rendered),
            );
            assert_eq!(
                kustomized.keys().collect::<Vec<_>>(),
                rendered.keys().collect::<Vec<_>>(),
                "{}: {env}",
                config.display()
            );
            for (key, object) in &rendered {
                assert_eq!(
                    &kustomized[key],
                    object,
                    "{}: {env}: {key:?}",
                    config.display()
                );
            }
            compared += rendered.len();
        }
    }
    assert!(compared > 20, "only {compared} objects compared");
}

#[test]
fn a_manifest_naming_paths_outside_the_tree_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").expect("write");
    std::fs::create_dir(dir.path().join("deploy")).expect("mkdir");
    let hash = "6e1e2d3d66a6a7fc0a3bcd6c4e1c8a67c4c0c1f0b6c16b5a1e0c2c8c7f6e5d4c";
    std::fs::write(
        dir.path().join("deploy/.mldeploy-manifest.json"),
        format!("{{\"version\": 1, \"files\": {{\"../victim.txt\": \"{hash}\"}}}}\n"),
    )
    .expect("write");
    gitops(
        dir.path(),
        &root().join("examples/gcp.yaml"),
        &["--out", "deploy"],
    )
    .code(1)
    .stderr(predicate::str::contains(".mldeploy-manifest.json"))
    .stderr(predicate::str::contains("not a plain relative path"));
    assert!(victim.is_file());
    assert_eq!(
        files(&dir.path().join("deploy")),
        [".mldeploy-manifest.json"]
    );
}

#[test]
fn json_output_is_one_document_on_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gcp = root().join("examples/gcp.yaml");
    let invalid = root().join("tests/fixtures/invalid/many-problems.yaml");
    let runs: Vec<(Vec<&str>, &Path, i32)> = vec![
        (vec!["validate"], &gcp, 0),
        (vec!["validate"], &invalid, 1),
        (vec!["render", "--env", "prod"], &gcp, 0),
        (vec!["render", "--env", "prod", "--out", "r"], &gcp, 0),
        (vec!["render"], &gcp, 1),
        (vec!["gitops", "--out", "g"], &gcp, 0),
        (vec!["gitops", "--out", "g", "--check"], &gcp, 0),
        (vec!["gitops", "--out", "other", "--check"], &gcp, 2),
        (vec!["gitops"], &invalid, 1),
    ];
    for (args, config, code) in runs {
        let a = mldeploy()
            .current_dir(dir.path())
            .args(&args)
            .args(["--output", "json", "-f"])
            .arg(config)
            .assert()
            .code(code);
        let doc = json(&a);
        if code == 1 {
            assert_eq!(doc["ok"], false, "{args:?}");
            assert!(doc["errors"][0]["message"].is_string(), "{args:?}: {doc}");
        }
    }
    // validate's two shapes.
    let ok = json(
        &mldeploy()
            .args(["validate", "--output", "json", "-f"])
            .arg(&gcp)
            .assert()
            .success(),
    );
    let keys: BTreeSet<&str> = ok
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["ok", "file", "checked", "warnings", "project"])
    );
    let bad = json(
        &mldeploy()
            .args(["validate", "--output", "json", "-f"])
            .arg(&invalid)
            .assert()
            .code(1),
    );
    let keys: BTreeSet<&str> = bad
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["ok", "errors"]));
    for e in bad["errors"].as_array().expect("errors") {
        for key in ["file", "line", "column", "path", "message"] {
            assert!(e.get(key).is_some(), "error lacks {key}: {e}");
        }
    }
}

#[test]
fn no_colour_when_piped_or_in_ci() {
    let invalid = root().join("tests/fixtures/invalid/many-problems.yaml");
    for ci in [true, false] {
        let mut cmd = mldeploy();
        cmd.env_remove("NO_COLOR").env_remove("CI");
        if ci {
            cmd.env("CI", "true");
        }
        let a = cmd.args(["validate", "-f"]).arg(&invalid).assert().code(1);
        let err = stderr(&a);
        assert!(err.contains("problems found"), "{err}");
        assert!(!err.contains('\u{1b}'), "escape codes with CI={ci}:\n{err}");
    }
}

#[test]
fn man_pages_are_generated() {
    let a = mldeploy().arg("man").assert().success();
    let page = stdout(&a);
    assert!(page.contains(".TH mldeploy 1"), "{page}");
    assert!(page.contains("gitops"), "the page lists the commands");
    let dir = tempfile::tempdir().expect("tempdir");
    mldeploy()
        .args(["man", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    for page in ["mldeploy.1", "mldeploy-gitops.1", "mldeploy-render.1"] {
        let text = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
    let gitops = std::fs::read_to_string(dir.path().join("mldeploy-gitops.1")).expect("read");
    assert!(gitops.contains("check"), "{gitops}");
}

#[test]
fn a_reader_that_goes_away_is_not_a_crash() {
    // `mldeploy gitops --check | head -1` must still exit 2 (stale), not panic on EPIPE.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mldeploy"))
        .current_dir(dir.path())
        .args(["gitops", "--check", "--out", "deploy", "-f"])
        .arg(root().join("examples/gcp.yaml"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
