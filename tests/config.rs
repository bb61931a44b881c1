//! The config stage end to end: every fixture's report (snapshots), resolution of the valid
//! ones (snapshots), the JSON Schema against every valid config, and hostile input.

use std::path::Path;

use mldeploy::config::yaml::{Node, Value};
use mldeploy::config::{self, load_bytes};
use mldeploy::diag::Report;
use mldeploy::model;
use predicates::prelude::*;

use crate::{json, mldeploy, root, yaml_files};

/// Loads and resolves a file; the report rendered without colour on failure.
fn check(path: &Path) -> Result<model::Project, Report> {
    let loaded = config::load_file(&root().join(path)).map_err(|r| relative(r, path))?;
    model::resolve(&loaded).map_err(|r| relative(r, path))
}

/// Reports name the file as given; tests give absolute paths, snapshots want relative ones.
fn relative(mut r: Report, path: &Path) -> Report {
    r.source.path = path.to_path_buf();
    r
}

#[test]
fn invalid_fixtures_report_every_problem() {
    for file in yaml_files("tests/fixtures/invalid") {
        let report = match check(&file) {
            Ok(_) => panic!("{} should be invalid", file.display()),
            Err(r) => r,
        };
        assert!(!report.problems.is_empty());
        let name = file
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        insta::assert_snapshot!(format!("invalid-{name}"), report.render(false));
    }
}

#[test]
fn valid_configs_resolve() {
    for file in yaml_files("examples")
        .into_iter()
        .chain(yaml_files("tests/fixtures/valid"))
    {
        let project = check(&file).unwrap_or_else(|r| panic!("{}", r.render(false)));
        let name = file
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let dir = file
            .parent()
            .and_then(Path::file_name)
            .expect("dir")
            .to_string_lossy()
            .into_owned();
        insta::assert_json_snapshot!(format!("resolved-{dir}-{name}"), project);
    }
}

#[test]
fn overrides_merge_and_null_removes() {
    let project = check(Path::new("examples/gcp.yaml")).expect("valid");
    let prod = &project.environments["prod"].models[0];
    let staging = &project.environments["staging"].models[0];
    assert_eq!(prod.name, "scratch-detector");
    assert!(prod.autoscale.is_some() && prod.canary.is_some());
    assert!(
        staging.autoscale.is_none() && staging.canary.is_none(),
        "null removes"
    );
    assert_eq!(staging.replicas, 1);
    // Fields not overridden are inherited, and defaults fill the rest.
    assert_eq!(staging.cpu, "2");
    assert_eq!(staging.env["BATCH_SIZE"], "16");
    assert_eq!(project.environments["prod"].models[1].memory, "1Gi");
}

fn to_json(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Str(s) => s.clone().into(),
        Value::Seq(items) => items.iter().map(to_json).collect(),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| (k.as_key().unwrap_or_default(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

#[test]
fn schema_accepts_every_valid_config() {
    let schema = json(&mldeploy().arg("schema").assert().success());
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("mldeploy.schema.json", schema)
        .expect("schema loads");
    let index = compiler
        .compile("mldeploy.schema.json", &mut schemas)
        .expect("schema compiles");
    let mut files = yaml_files("examples");
    files.extend(yaml_files("tests/fixtures/valid"));
    for file in &files {
        let text = std::fs::read_to_string(root().join(file)).expect("read");
        let node = config::yaml::parse(&text).expect("parses");
        let doc = to_json(&node);
        if let Err(e) = schemas.validate(&doc, index) {
            panic!("{} does not match the schema: {e:#}", file.display());
        }
    }
    // And it rejects what the parser rejects for structure.
    let bad = serde_json::json!({"version": 1, "project": "p", "modles": []});
    assert!(schemas.validate(&bad, index).is_err());
}

#[test]
fn init_output_matches_the_schema_too() {
    for cloud in ["gcp", "aws", "azure", "onprem"] {
        let dir = tempfile::tempdir().expect("tempdir");
        mldeploy()
            .current_dir(dir.path())
            .args(["init", "--project", "p", "--cloud", cloud])
            .assert()
            .success();
        let loaded = config::load_file(&dir.path().join("mldeploy.yaml")).expect("parses");
        model::resolve(&loaded).unwrap_or_else(|r| panic!("{}", r.render(false)));
    }
}

/// Hostile input: each exits 1 with a message, never a panic or a hang.
fn rejects(bytes: &[u8], expect: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mldeploy.yaml");
    std::fs::write(&path, bytes).expect("write");
    mldeploy()
        .arg("validate")
        .arg("-f")
        .arg(&path)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(expect))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn hostile_inputs_fail_cleanly() {
    rejects(b"", "the config is empty");
    rejects(b"   \n# nothing\n", "the config is empty");
    rejects(
        b"version: 1\nproject: x\nmodels:\n\t- name: m\n",
        "invalid YAML",
    );
    rejects(b"version: 1\n\xff\xfe\x00garbage", "not UTF-8");
    rejects(b"\x00\x01\x02\x03binary", "NUL byte");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    rejects(&garbage, "error:");
    rejects("[".repeat(10_000).as_bytes(), "invalid YAML");
    rejects(
        format!("a: {}1{}", "{b: ".repeat(10_000), "}".repeat(10_000)).as_bytes(),
        "invalid YAML",
    );
    let mut deep = String::new();
    for i in 0..2_500 {
        deep.push_str(&" ".repeat(i));
        deep.push_str("a:\n");
    }
    rejects(deep.as_bytes(), "invalid YAML");
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        bomb.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        ));
    }
    rejects(bomb.as_bytes(), "exceeds the parser's limits");
    let many = "version: 1\nproject: x\nmodels:\n".to_string() + &"  - {name: m}\n".repeat(200_000);
    rejects(many.as_bytes(), "exceeds the parser's limits");
    // Multi-megabyte: over the limit, and under it but wrong.
    rejects(&vec![b'#'; 9 * 1024 * 1024], "larger than 8 MiB");
    let mut big = String::from("version: 1\nproject: big\nmodels:\n");
    while big.len() < 3 * 1024 * 1024 {
        big.push_str(&format!(
            "  - {{name: m, image: a:1, env: {{NOTE: \"{}\"}}}}\n",
            "x".repeat(1000)
        ));
    }
    rejects(big.as_bytes(), "used twice");
    rejects(b"version: 1\nproject: x\nversion: 1\n", "duplicate key");
    rejects(
        b"version: \"1\"\nproject: x\n",
        "unsupported config version",
    );
}

#[test]
fn non_utf8_is_located() {
    let err =
        load_bytes(Path::new("x.yaml"), b"version: 1\nproject: \xc3\x28\n").expect_err("not utf-8");
    let p = &err.problems[0];
    let loc = p.loc.expect("located");
    assert_eq!((loc.line, loc.column), (2, 10));
}
