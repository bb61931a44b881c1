//! The whole cycle against a real cluster — apply, a second apply that writes nothing, diff exit 0,
//! drop a model → diff exit 2 → apply --prune, delete — run only when MLDEPLOY_TEST_KUBECONFIG
//! points at a cluster (see docs/testing.md). Skipped with a printed reason otherwise.

use predicates::prelude::*;

use crate::mldeploy;

fn config(namespace: &str, models: &[&str]) -> String {
    let mut s = format!("version: 1\nproject: {namespace}\nmodels:\n");
    for m in models {
        // nginx-unprivileged listens on 8080 as a non-root user: it passes the rendered probes
        // and security context without any operator installed.
        s.push_str(&format!(
            "  - {{name: {m}, runtime: deployment, image: nginxinc/nginx-unprivileged:1.27-alpine, port: 8080, resources: {{cpu: 50m, memory: 64Mi}}}}\n"
        ));
    }
    s.push_str("clusters:\n  test: {cloud: onprem, distribution: other}\nenvironments:\n");
    s.push_str(&format!(
        "  e2e: {{cluster: test, namespace: {namespace}}}\n"
    ));
    s
}

#[test]
fn full_cycle_on_a_real_cluster() {
    let Some(kubeconfig) = std::env::var_os("MLDEPLOY_TEST_KUBECONFIG") else {
        eprintln!("skipped: MLDEPLOY_TEST_KUBECONFIG is not set (see docs/testing.md)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let namespace = format!("mldeploy-e2e-{}", std::process::id());
    let file = dir.path().join("mldeploy.yaml");
    let run = |args: &[&str]| {
        let mut cmd = mldeploy();
        cmd.timeout(std::time::Duration::from_secs(400))
            .arg("-f")
            .arg(&file)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args);
        cmd
    };
    std::fs::write(&file, config(&namespace, &["alpha", "beta"])).expect("write");
    run(&["apply", "--timeout", "5m"]).assert().success();
    run(&["apply", "--no-wait"])
        .assert()
        .success()
        .stderr(predicate::str::contains("0 created, 0 updated"));
    run(&["diff"]).assert().code(0);
    std::fs::write(&file, config(&namespace, &["alpha"])).expect("write");
    run(&["diff"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("prune Deployment"));
    run(&["apply", "--prune", "--timeout", "5m"])
        .assert()
        .success()
        .stderr(predicate::str::contains("pruned"));
    run(&["diff"]).assert().code(0);
    run(&["status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("alpha"));
    run(&["delete", "--yes"]).assert().success();
}
