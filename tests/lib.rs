//! Integration tests, in one binary so they link once (as `just` does).

mod autoscale;
mod cli;
mod cluster;
mod config;
mod files;
mod fuzz;
mod gitops;
mod identity;
mod infra;
mod llm;
mod names;
mod network;
mod policy;
mod real_cluster;
mod render;
mod support;
mod terminal;
mod terraform;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The built `mldeploy` binary, with colour and CI detection neutralised.
pub fn mldeploy() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("mldeploy").expect("binary builds");
    cmd.env_remove("MLDEPLOY_CONFIG")
        .env_remove("MLDEPLOY_ENV")
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(60));
    cmd
}

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `*.yaml` directly in `dir` (relative to the root), sorted.
pub fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .expect("fixture folder exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.strip_prefix(root()).expect("under root").to_path_buf())
        .collect();
    files.sort();
    files
}

/// Panics unless `tool` is on PATH. Tests that need a tool are `#[ignore]`d with the reason (a
/// plain `cargo test` reports them as ignored, never as passed); `cargo test -- --ignored` and
/// `.ci/run` run them, and there a missing tool is a failure, not a skip.
pub fn require_tool(tool: &str, install: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()));
    assert!(
        found,
        "{tool} is not on PATH ({install}): this test needs it and is #[ignore]d in a plain `cargo test` for that reason"
    );
}

/// The real CRDs from ../shared/crds, as JSON Schemas keyed by (apiVersion, kind). Objects are
/// closed (unknown fields rejected) unless the CRD preserves unknown fields, as kubectl's strict
/// field validation would do. Tests that call it are `#[ignore]`d (the folder is outside this
/// repository); run without the folder, they fail.
pub fn crd_schemas() -> BTreeMap<(String, String), Value> {
    let dir = root().join("../shared/crds");
    assert!(
        dir.is_dir(),
        "{} is missing: the CRD checks need the real CRDs beside this repository",
        dir.display()
    );
    fn close(v: &mut Value) {
        match v {
            Value::Object(map) => {
                let preserve =
                    map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
                if map.contains_key("properties")
                    && !map.contains_key("additionalProperties")
                    && !preserve
                {
                    map.insert("additionalProperties".into(), Value::Bool(false));
                }
                map.values_mut().for_each(close);
            }
            Value::Array(items) => items.iter_mut().for_each(close),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for sub in std::fs::read_dir(&dir).expect("../shared/crds is readable") {
        let sub = sub.expect("dir entry").path();
        if sub.is_dir() {
            for f in std::fs::read_dir(&sub).expect("CRD folder is readable") {
                files.push(f.expect("dir entry").path());
            }
        }
    }
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(f).expect("CRD file is readable");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("CRD parses");
        for crd in docs
            .into_iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
        {
            let group = crd["spec"]["group"].as_str().expect("group").to_string();
            let kind = crd["spec"]["names"]["kind"]
                .as_str()
                .expect("kind")
                .to_string();
            for v in crd["spec"]["versions"].as_array().expect("versions") {
                let mut schema = v["schema"]["openAPIV3Schema"].clone();
                close(&mut schema);
                let version = v["name"].as_str().expect("name");
                out.insert((format!("{group}/{version}"), kind.clone()), schema);
            }
        }
    }
    out
}

/// Validates `object` against the CRD schema of its apiVersion and kind (from [`crd_schemas`]).
pub fn crd_valid(
    schemas: &BTreeMap<(String, String), Value>,
    object: &Value,
) -> Result<(), String> {
    let key = (
        object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        object["kind"].as_str().unwrap_or_default().to_string(),
    );
    let schema = schemas
        .get(&key)
        .ok_or_else(|| format!("no CRD for {} {}", key.0, key.1))?;
    let mut set = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("crd.json", schema.clone())
        .expect("schema loads");
    let index = compiler
        .compile("crd.json", &mut set)
        .expect("schema compiles");
    set.validate(object, index).map_err(|e| format!("{e:#}"))
}

/// Runs `kubernetes-validate --strict` over the files, per Kubernetes version (`1.30`).
pub fn kubernetes_validate_strict(by_version: &BTreeMap<String, Vec<PathBuf>>) {
    require_tool(
        "kubernetes-validate",
        "pip install kubernetes-validate==1.37.0",
    );
    for (version, files) in by_version {
        let out = std::process::Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", &format!("{version}.0")])
            .args(files)
            .output()
            .expect("kubernetes-validate runs");
        assert!(
            out.status.success(),
            "kubernetes-validate --strict -k {version}.0 failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `config` with model `name` removed: its item under `models:` and its overrides.
pub fn without_model(config: &str, name: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in config.lines() {
        if line == format!("  - name: {name}") {
            skipping = true;
            continue;
        }
        if skipping && line.starts_with("    ") {
            continue;
        }
        skipping = false;
        if line.trim_start().starts_with(&format!("{name}:")) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(!out.contains(name), "{name} is still in:\n{out}");
    out
}

/// Parses stdout as exactly one JSON document (serde_json rejects trailing content).
pub fn json(a: &assert_cmd::assert::Assert) -> Value {
    serde_json::from_slice(&a.get_output().stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&a.get_output().stdout)
        )
    })
}
