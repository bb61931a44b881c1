//! The binary: exit codes, help, init, validate, gpus, schema, completions.

use predicates::prelude::*;

use crate::{json, mldeploy, root, yaml_files};

#[test]
fn help_lists_every_command() {
    let out = mldeploy()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).expect("utf-8");
    for cmd in [
        "init",
        "validate",
        "render",
        "diff",
        "apply",
        "status",
        "delete",
        "gitops",
        "infra",
        "templates",
        "gpus",
        "schema",
        "completions",
    ] {
        assert!(
            text.contains(&format!("  {cmd} ")),
            "help lacks {cmd}:\n{text}"
        );
    }
    for flag in [
        "--config",
        "--env",
        "--context",
        "--kubeconfig",
        "--output",
        "--verbose",
        "--no-color",
    ] {
        assert!(text.contains(flag), "help lacks {flag}");
    }
}

#[test]
fn usage_errors_exit_1_not_2() {
    // 2 is reserved for "changes found".
    mldeploy().arg("no-such-command").assert().code(1);
    mldeploy()
        .args(["validate", "--output", "yaml"])
        .assert()
        .code(1);
}

#[test]
fn validate_accepts_every_example() {
    for file in yaml_files("examples")
        .into_iter()
        .chain(yaml_files("tests/fixtures/valid"))
    {
        mldeploy()
            .current_dir(root())
            .arg("validate")
            .arg("-f")
            .arg(&file)
            .assert()
            .success()
            .stdout(predicate::str::contains("is valid"));
    }
}

#[test]
fn validate_reports_every_problem_with_location_and_exit_1() {
    let assert = mldeploy()
        .current_dir(root())
        .args([
            "validate",
            "-f",
            "tests/fixtures/invalid/many-problems.yaml",
        ])
        .assert()
        .code(1);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).expect("utf-8");
    assert!(
        stderr.contains("tests/fixtures/invalid/many-problems.yaml:4:12"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `seldon-v2`?"), "{stderr}");
    assert!(stderr.contains("17 problems found"), "{stderr}");
}

#[test]
fn validate_json_has_a_stable_shape() {
    let doc = json(
        &mldeploy()
            .current_dir(root())
            .args([
                "validate",
                "--output",
                "json",
                "-f",
                "tests/fixtures/invalid/unknown-field.yaml",
            ])
            .assert()
            .code(1),
    );
    assert_eq!(doc["ok"], false);
    let first = &doc["errors"][0];
    for key in ["file", "line", "column", "path", "message", "hint"] {
        assert!(first.get(key).is_some(), "error lacks {key}: {first}");
    }
    assert_eq!(first["path"], "models[0].replica");
    assert_eq!(first["line"], 6);

    let doc = json(
        &mldeploy()
            .current_dir(root())
            .args(["validate", "--output", "json", "-f", "examples/gcp.yaml"])
            .assert()
            .success(),
    );
    assert_eq!(doc["ok"], true);
    assert_eq!(
        doc["project"]["environments"]["prod"]["models"][0]["name"],
        "scratch-detector"
    );
}

#[test]
fn validate_checks_the_env_flag() {
    mldeploy()
        .current_dir(root())
        .args(["validate", "-f", "examples/gcp.yaml", "--env", "prd"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown environment `prd`"));
}

#[test]
fn missing_config_says_how_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    mldeploy()
        .current_dir(dir.path())
        .arg("validate")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("mldeploy init"));
}

#[test]
fn init_writes_a_valid_config_for_every_cloud_and_refuses_to_overwrite() {
    for cloud in ["gcp", "aws", "azure", "onprem"] {
        let dir = tempfile::tempdir().expect("tempdir");
        mldeploy()
            .current_dir(dir.path())
            .args(["init", "--project", "shop", "--cloud", cloud])
            .assert()
            .success();
        let text = std::fs::read_to_string(dir.path().join("mldeploy.yaml")).expect("written");
        assert!(text.starts_with("# yaml-language-server: $schema=./mldeploy.schema.json"));
        assert!(dir.path().join("mldeploy.schema.json").exists());
        mldeploy()
            .current_dir(dir.path())
            .arg("validate")
            .assert()
            .success();
        mldeploy()
            .current_dir(dir.path())
            .args(["init", "--project", "other"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("--force"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("mldeploy.yaml")).expect("kept"),
            text,
            "a refused init must not touch the file"
        );
        mldeploy()
            .current_dir(dir.path())
            .args(["init", "--project", "other", "--force"])
            .assert()
            .success();
    }
}

#[test]
fn init_rejects_a_bad_project_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    mldeploy()
        .current_dir(dir.path())
        .args(["init", "--project", "My Project"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--project my-project"));
    assert!(!dir.path().join("mldeploy.yaml").exists());
}

#[test]
fn gpus_prints_the_catalog() {
    mldeploy()
        .arg("gpus")
        .assert()
        .success()
        .stdout(predicate::str::contains("g4dn.xlarge"))
        .stdout(predicate::str::contains("nvidia-tesla-t4"))
        .stdout(predicate::str::contains("Standard_NC40ads_H100_v5"))
        .stdout(predicate::str::contains("Standard_ND96isr_MI300X_v5"))
        .stdout(predicate::str::contains("1g.10gb"))
        .stdout(predicate::str::contains("-SHARED"))
        .stdout(predicate::str::contains("resource.k8s.io/v1"));
    let doc = json(
        &mldeploy()
            .args(["gpus", "--output", "json"])
            .assert()
            .success(),
    );
    let names: Vec<&str> = doc["gpus"]
        .as_array()
        .expect("list")
        .iter()
        .map(|g| g["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "t4",
            "l4",
            "a10g",
            "a100-40gb",
            "a100-80gb",
            "h100-80gb",
            "mi300x",
            "jetson-orin"
        ]
    );
    let mi300x = &doc["gpus"][6];
    assert_eq!(mi300x["vendor"], "amd");
    assert_eq!(doc["gpus"][7]["arch"], "arm64");
    assert_eq!(doc["gpus"][4]["mig"][0]["name"], "1g.10gb");
}

#[test]
fn schema_is_json_schema() {
    let doc = json(&mldeploy().arg("schema").assert().success());
    assert_eq!(doc["type"], "object");
    assert!(doc["properties"]["models"].is_object());
}

#[test]
fn completions_for_bash() {
    mldeploy()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("mldeploy"));
}

#[test]
fn config_can_come_from_the_environment() {
    mldeploy()
        .current_dir(root())
        .env("MLDEPLOY_CONFIG", "examples/aws.yaml")
        .arg("validate")
        .assert()
        .success()
        .stdout(predicate::str::contains("doc-ai"));
}
