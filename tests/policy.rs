//! The policy scan of issue 14: checkov over every example environment's rendered output (its
//! Terraform and its manifests). Every failed check must be listed, with its reason, in
//! tests/checkov-baseline.txt, and every listed entry must still fail (the baseline only
//! shrinks). `#[ignore]`d in a plain `cargo test` (it needs checkov); .ci/run installs checkov and runs it.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::root;

/// One baseline line: check id, example-env pattern and resource pattern (`*` matches any run
/// of characters), and why the failure stays.
struct Entry {
    check: String,
    env: String,
    resource: String,
    reason: String,
}

fn baseline() -> Vec<Entry> {
    let text =
        std::fs::read_to_string(root().join("tests/checkov-baseline.txt")).expect("baseline");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let (key, reason) = l
                .split_once(" | ")
                .unwrap_or_else(|| panic!("baseline line {}: no ` | reason`", i + 1));
            let parts: Vec<&str> = key.split_whitespace().collect();
            assert_eq!(
                parts.len(),
                3,
                "baseline line {}: `check env resource`",
                i + 1
            );
            assert!(
                reason.trim().len() > 20,
                "baseline line {}: give a real reason",
                i + 1
            );
            Entry {
                check: parts[0].into(),
                env: parts[1].into(),
                resource: parts[2].into(),
                reason: reason.trim().into(),
            }
        })
        .collect()
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

#[test]
fn globs_match_runs_of_characters() {
    assert!(glob("aws-*", "aws-dev"));
    assert!(glob("Deployment.*.ocr", "Deployment.doc-ai-dev.ocr"));
    assert!(!glob("Deployment.*.ocr", "Deployment.doc-ai-dev.ocr2"));
    assert!(glob("exact", "exact"));
    assert!(!glob("gcp-*", "aws-dev"));
}

/// (check id, example-env, resource) of every failed check in checkov's JSON report.
fn failures(report: &Value) -> BTreeSet<(String, String, String)> {
    let reports: Vec<&Value> = match report {
        Value::Array(list) => list.iter().collect(),
        one => vec![one],
    };
    let mut out = BTreeSet::new();
    for r in reports {
        let failed = r["results"]["failed_checks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for f in failed {
            let path = f["file_path"].as_str().unwrap_or_default();
            let env = path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default();
            out.insert((
                f["check_id"].as_str().unwrap_or_default().to_string(),
                env.to_string(),
                f["resource"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

#[test]
#[ignore = "needs checkov (pip install checkov==3.3.30): cargo test -- --ignored (.ci/run installs and runs it)"]
fn checkov_finds_nothing_outside_the_baseline() {
    crate::require_tool("checkov", "pip install checkov==3.3.30");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut envs = Vec::new();
    for (label, bundle) in crate::render::all_bundles() {
        bundle.write_to(&dir.path().join(&label)).expect("write");
        envs.push(label);
    }
    // One run over every environment (checkov's start-up dominates). No network: no Prisma
    // Cloud mapping, no module downloads.
    let out = std::process::Command::new("checkov")
        .current_dir(dir.path())
        .env("BC_SKIP_MAPPING", "TRUE")
        .args([
            "--skip-download",
            "-d",
            ".",
            "--framework",
            "terraform",
            "kubernetes",
        ])
        .args(["-o", "json", "--quiet", "--compact"])
        .output()
        .expect("checkov runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let found = failures(&report);
    let entries = baseline();
    let listed = |(check, env, resource): &(String, String, String)| {
        entries
            .iter()
            .any(|e| &e.check == check && glob(&e.env, env) && glob(&e.resource, resource))
    };
    let new: Vec<String> = found
        .iter()
        .filter(|f| !listed(f))
        .map(|(c, e, r)| format!("{c} {e} {r}"))
        .collect();
    assert!(
        new.is_empty(),
        "checkov failures not in tests/checkov-baseline.txt (fix them, or list them with a reason):\n  {}",
        new.join("\n  ")
    );
    let stale: Vec<String> = entries
        .iter()
        .filter(|e| {
            !found
                .iter()
                .any(|(c, env, r)| &e.check == c && glob(&e.env, env) && glob(&e.resource, r))
        })
        .map(|e| format!("{} {} {} ({})", e.check, e.env, e.resource, e.reason))
        .collect();
    assert!(
        stale.is_empty(),
        "baseline entries that no longer fail (delete them):\n  {}",
        stale.join("\n  ")
    );
    // Every environment was scanned: each has Terraform or manifests checkov read.
    assert!(envs.len() >= 6, "{envs:?}");
}

#[test]
fn validate_warns_about_tags_in_production_static_keys_and_an_open_api_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mldeploy.yaml");
    std::fs::write(&file, PRODUCTION).expect("write");
    let out = crate::mldeploy()
        .arg("-f")
        .arg(&file)
        .arg("validate")
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    // Digests pass; the canary's and b's tags do not; so do the static keys and the open API
    // server of the second cluster. The first cluster names its authorized networks.
    assert!(
        stderr.contains("mldeploy.yaml:5:") && stderr.contains("models[0].canary.image"),
        "{stderr}"
    );
    assert!(stderr.contains("models[1].image"), "{stderr}");
    assert!(!stderr.contains("models[0].image:"), "{stderr}");
    assert!(stderr.contains("models[2].storageSecret"), "{stderr}");
    assert!(stderr.contains("cluster `open`"), "{stderr}");
    assert!(!stderr.contains("cluster `c`"), "{stderr}");
    assert_eq!(stderr.matches("warning:").count(), 4, "{stderr}");

    let json = crate::mldeploy()
        .arg("-f")
        .arg(&file)
        .args(["--output", "json", "validate"])
        .assert()
        .success();
    let doc: Value = serde_json::from_slice(&json.get_output().stdout).expect("json");
    assert_eq!(doc["warnings"].as_array().map(Vec::len), Some(4), "{doc}");
}

const PRODUCTION: &str = r#"version: 1
project: p
models:
  - {name: a, runtime: seldon, image: "registry.example.com/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
     canary: {image: "registry.example.com/a:2", traffic: 10}}
  - {name: b, image: "registry.example.com/b:1"}
  - {name: c, server: sklearn, modelUri: "gs://bucket/c", storageSecret: gcs-creds}
clusters:
  c: {cloud: gcp, region: europe-west4, gcp: {project: x}, controlPlane: {authorizedNetworks: ["203.0.113.0/24"]}}
  open: {cloud: gcp, region: europe-west4, gcp: {project: x}}
environments:
  prod: {cluster: c, production: true}
  staging: {cluster: open}
"#;
