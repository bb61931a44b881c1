//! `mldeploy test` against a fake model server on 127.0.0.1 — every protocol, streaming, slow,
//! failing and never-answering models, SLO gates and exit codes, JUnit and Pushgateway output —
//! and through the fake API server's service proxy.

use std::path::PathBuf;

use predicates::prelude::*;
use serde_json::Value;

use crate::mldeploy;
use crate::support::fake_api::FakeApi;
use crate::support::fake_model::{Behaviour, FakeModel};

const CONFIG: &str = "\
version: 1
project: shop
clusters:
  local: {cloud: onprem, context: fake}
environments:
  prod: {cluster: local, namespace: shop}
models:
  # Seldon Core v2: OIP v2 through seldon-mesh
  - name: iris
    runtime: seldon-v2
    server: sklearn
    modelUri: gs://bucket/iris
    slo: {p95: 10s, errorRate: 1%}
  # KServe sklearn: KServe v1
  - name: fraud
    server: sklearn
    modelUri: gs://bucket/fraud
    test: {payload: payloads/fraud.json}
  # Seldon Core v1: Seldon protocol
  - name: churn
    runtime: seldon
    server: sklearn
    modelUri: gs://bucket/churn
    test: {payload: payloads/churn.json}
  # KServe Hugging Face: OpenAI under /openai
  - name: chat
    server: huggingface
    modelUri: hf://org/chat
    slo: {ttftP95: 10s}
  # Our own Deployment: OIP v2
  - name: ocr
    image: registry.example.com/ocr:1
    port: 9000
";

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn setup(config: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("payloads")).expect("mkdir");
    std::fs::write(
        dir.path().join("payloads/fraud.json"),
        r#"{"instances": [[1.0, 2.0]]}"#,
    )
    .expect("payload");
    std::fs::write(
        dir.path().join("payloads/churn.json"),
        r#"{"data": {"ndarray": [[1.0, 2.0]]}}"#,
    )
    .expect("payload");
    let path = dir.path().join("mldeploy.yaml");
    std::fs::write(&path, config).expect("config");
    Setup { dir, config: path }
}

/// `mldeploy test -f CONFIG ARGS` with a short, bounded load.
fn test_cmd(s: &Setup, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = mldeploy();
    cmd.env_remove("KUBECONFIG")
        .arg("-f")
        .arg(&s.config)
        .arg("test")
        .args(["--warmup", "0s"])
        .args(args);
    cmd
}

fn json_out(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(out)
        )
    })
}

#[test]
fn each_protocol_passes_smoke_and_load_at_a_url() {
    let s = setup(CONFIG);
    let server = FakeModel::start(&["iris", "fraud", "churn", "chat", "ocr"]);
    for (model, protocol) in [
        ("iris", "oip-v2"),
        ("fraud", "kserve-v1"),
        ("churn", "seldon-v1"),
        ("ocr", "oip-v2"),
    ] {
        let out = test_cmd(
            &s,
            &[
                "--model",
                model,
                "--url",
                &server.url(),
                "--requests",
                "50",
                "--output",
                "json",
            ],
        )
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
        let doc = json_out(&out);
        let run = &doc["models"][0];
        assert_eq!(run["protocol"], protocol, "{model}");
        assert_eq!(run["load"]["requests"], 50, "{model}: {run}");
        assert_eq!(run["load"]["ok"], 50, "{model}");
        assert!(run["load"]["latencyMs"]["p99"].as_f64().is_some());
        assert_eq!(doc["exitCode"], 0);
    }
    // Seldon v2 routes by header.
    assert!(server.seldon_models().iter().all(|m| m == "iris"));
    assert!(!server.seldon_models().is_empty());
}

#[test]
fn v2_request_is_built_from_metadata() {
    let s = setup(CONFIG);
    let server = FakeModel::start(&["ocr"]);
    let out = test_cmd(
        &s,
        &["--model", "ocr", "--url", &server.url(), "--smoke-only"],
    )
    .assert()
    .code(0)
    .get_output()
    .stdout
    .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("/v2/health/ready"), "{text}");
    assert!(text.contains("/v2/models/ocr/ready"), "{text}");
    assert!(text.contains("/v2/models/ocr/infer"), "{text}");
    assert!(text.contains("PASS"), "{text}");
    assert_eq!(server.inferences(), 1, "smoke only: one inference");
}

#[test]
fn streaming_chat_reports_time_to_first_token() {
    let s = setup(CONFIG);
    let server = FakeModel::start(&["chat"]);
    let url = format!("{}/", server.url());
    let out = test_cmd(
        &s,
        &[
            "--model",
            "chat",
            "--url",
            &url,
            "--requests",
            "20",
            "--concurrency",
            "4",
            "--output",
            "json",
        ],
    )
    .assert()
    .code(0)
    .get_output()
    .stdout
    .clone();
    let run = &json_out(&out)["models"][0];
    assert_eq!(run["protocol"], "openai");
    let load = &run["load"];
    assert!(load["ttftMs"]["p95"].as_f64().is_some(), "{load}");
    assert!(load["itlMs"]["p50"].as_f64().is_some(), "{load}");
    assert!(
        load["tokensPerSecond"].as_f64().is_some_and(|t| t > 0.0),
        "{load}"
    );
    assert!(run["smoke"]["ttftMs"].as_f64().is_some());
    assert!(
        run["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "ttftP95" && c["pass"] == true)
    );
}

#[test]
fn a_slow_model_breaches_its_slo_with_exit_3_and_junit_says_so() {
    let s = setup(CONFIG);
    let server = FakeModel::start(&["iris"]);
    server.set(Behaviour::Slow(std::time::Duration::from_millis(30)));
    let junit = s.dir.path().join("report.xml");
    let out = test_cmd(
        &s,
        &[
            "--model",
            "iris",
            "--url",
            &server.url(),
            "--requests",
            "10",
            "--p95",
            "1ms",
            "--junit",
            junit.to_str().unwrap(),
        ],
    )
    .assert()
    .code(3)
    .get_output()
    .stdout
    .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("p95") && text.contains("BREACHED"), "{text}");
    assert!(text.contains("FAIL"), "{text}");
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains("failures=\"1\""), "{xml}");
    assert!(xml.contains("name=\"slo p95\""), "{xml}");
    assert!(xml.contains("<failure message=\"p95 "), "{xml}");
}

#[test]
fn failures_above_the_error_rate_breach_below_it_pass() {
    let s = setup(CONFIG);
    let server = FakeModel::start(&["iris"]);
    server.set(Behaviour::FailOneIn(4));
    let run = |rate: &str| {
        let out = test_cmd(
            &s,
            &[
                "--model",
                "iris",
                "--url",
                &server.url(),
                "--requests",
                "40",
                "--concurrency",
                "1",
                "--error-rate",
                rate,
                "--output",
                "json",
            ],
        )
        .output()
        .expect("runs");
        (out.status.code(), json_out(&out.stdout))
    };
    let (code, doc) = run("5%");
    assert_eq!(code, Some(3), "{doc}");
    assert!(
        doc["models"][0]["load"]["errors"]["HTTP 500"]
            .as_u64()
            .is_some_and(|n| n >= 9)
    );
    let (code, _) = run("50%");
    assert_eq!(code, Some(0));
}

#[test]
fn a_model_that_fails_every_request_is_an_error_naming_the_cause() {
    let s = setup(CONFIG);
    let server = FakeModel::start(&["iris"]);
    server.set(Behaviour::Fail(503));
    test_cmd(
        &s,
        &["--model", "iris", "--url", &server.url(), "--requests", "5"],
    )
    .assert()
    .code(1)
    .stdout(predicate::str::contains("not loaded or not ready"));
}

#[test]
fn an_unknown_model_is_a_404_explained() {
    let s = setup(CONFIG);
    let server = FakeModel::start(&["other"]);
    test_cmd(
        &s,
        &["--model", "iris", "--url", &server.url(), "--smoke-only"],
    )
    .assert()
    .code(1)
    .stdout(predicate::str::contains("404 on /v2/models/iris/ready"))
    .stdout(predicate::str::contains("not loaded"));
}

#[test]
fn a_wrong_protocol_is_named() {
    let s = setup(CONFIG);
    let server = FakeModel::start(&["churn"]);
    // A v2 base path where Seldon's executor is expected.
    let url = format!("{}/v2", server.url());
    test_cmd(&s, &["--model", "churn", "--url", &url, "--smoke-only"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "404 on /v2/api/v1.0/predictions: the endpoint does not speak seldon-v1 (set test.protocol",
        ));
}

#[test]
fn a_model_that_never_answers_ends_by_itself() {
    let s = setup(CONFIG);
    let server = FakeModel::start(&["iris"]);
    // Readiness answers; inference never does.
    server.set(Behaviour::Hang);
    test_cmd(
        &s,
        &[
            "--model",
            "iris",
            "--url",
            &server.url(),
            "--timeout",
            "300ms",
            "--duration",
            "1s",
        ],
    )
    .assert()
    .code(1)
    .stdout(
        predicate::str::contains("did not answer in time")
            .or(predicate::str::contains("no complete answer")),
    );
}

#[test]
fn nothing_listening_is_a_clear_error() {
    let s = setup(CONFIG);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    test_cmd(
        &s,
        &[
            "--model",
            "iris",
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--smoke-only",
        ],
    )
    .assert()
    .code(1)
    .stdout(predicate::str::contains("nothing answers at"));
}

#[test]
fn open_loop_rate_and_push_to_a_pushgateway() {
    let s = setup(CONFIG);
    let server = FakeModel::start(&["iris"]);
    let gateway = FakeModel::start(&[]);
    test_cmd(
        &s,
        &[
            "--model",
            "iris",
            "--url",
            &server.url(),
            "--rate",
            "200",
            "--requests",
            "40",
            "--push",
            &gateway.url(),
        ],
    )
    .assert()
    .code(0);
    let pushes = gateway.pushes();
    assert_eq!(pushes.len(), 1);
    assert_eq!(
        pushes[0].0,
        "/metrics/job/mldeploy_test/project/shop/env/prod/model/iris"
    );
    assert!(
        pushes[0].1.contains("mldeploy_test_passed 1"),
        "{}",
        pushes[0].1
    );
    assert!(
        pushes[0]
            .1
            .contains("mldeploy_test_latency_seconds{quantile=\"0.99\"}")
    );
}

#[test]
fn bad_slo_values_are_reported_at_their_location() {
    let bad = CONFIG.replace(
        "slo: {p95: 10s, errorRate: 1%}",
        "slo: {p95: 10, errorRate: 150%}",
    );
    let s = setup(&bad);
    mldeploy()
        .arg("-f")
        .arg(&s.config)
        .arg("validate")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "models[0].slo.p95: `10` has no unit",
        ))
        .stderr(predicate::str::contains("mldeploy.yaml:13:16"))
        .stderr(predicate::str::contains("slo.errorRate"));
}

#[test]
fn a_missing_payload_file_is_named() {
    let s = setup(&CONFIG.replace("payloads/fraud.json", "payloads/nope.json"));
    let server = FakeModel::start(&["fraud"]);
    test_cmd(
        &s,
        &["--model", "fraud", "--url", &server.url(), "--smoke-only"],
    )
    .assert()
    .code(1)
    .stderr(predicate::str::contains(
        "models.fraud.test.payload: cannot read",
    ));
}

#[test]
fn junit_is_not_written_through_a_symlink() {
    let s = setup(CONFIG);
    let server = FakeModel::start(&["iris"]);
    let target = s.dir.path().join("elsewhere.xml");
    std::fs::write(&target, "keep").unwrap();
    let link = s.dir.path().join("report.xml");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &link).unwrap();
    #[cfg(unix)]
    {
        test_cmd(
            &s,
            &[
                "--model",
                "iris",
                "--url",
                &server.url(),
                "--smoke-only",
                "--junit",
                link.to_str().unwrap(),
            ],
        )
        .assert()
        .code(1)
        .stderr(predicate::str::contains("symbolic link"));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}

/// The fake API server with a kubeconfig whose context `fake` the config names.
fn with_api(s: &Setup) -> (FakeApi, PathBuf) {
    let api = FakeApi::start();
    let kubeconfig = api.write_kubeconfig(s.dir.path());
    (api, kubeconfig)
}

#[test]
fn through_the_service_proxy_each_runtime_reaches_its_service() {
    let s = setup(CONFIG);
    let (api, kubeconfig) = with_api(&s);
    let server = FakeModel::start(&["iris", "fraud", "churn", "chat", "ocr"]);
    // The Services the runtimes create, as the templates name them.
    api.proxy_service("shop", "seldon-mesh", 80, Some(server.addr()));
    api.proxy_service("shop", "fraud-predictor", 80, Some(server.addr()));
    api.proxy_service("shop", "churn-default", 8000, Some(server.addr()));
    api.proxy_service("shop", "ocr", 9000, Some(server.addr()));
    let out = test_cmd(
        &s,
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--model",
            "iris",
            "--model",
            "fraud",
            "--model",
            "churn",
            "--model",
            "ocr",
            "--requests",
            "20",
            "--output",
            "json",
        ],
    )
    .assert()
    .code(0)
    .get_output()
    .stdout
    .clone();
    let doc = json_out(&out);
    let endpoints: Vec<&str> = doc["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        endpoints,
        [
            "service shop/seldon-mesh:80 (through the API server)",
            "service shop/fraud-predictor:80 (through the API server)",
            "service shop/churn-default:8000 (through the API server)",
            "service shop/ocr:9000 (through the API server)",
        ]
    );
    assert!(server.seldon_models().contains(&"iris".to_string()));
}

#[test]
fn through_the_proxy_a_service_without_pods_is_explained() {
    let s = setup(CONFIG);
    let (api, kubeconfig) = with_api(&s);
    api.proxy_service("shop", "ocr", 9000, None);
    test_cmd(
        &s,
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--model",
            "ocr",
            "--smoke-only",
        ],
    )
    .assert()
    .code(1)
    .stdout(predicate::str::contains("has no ready pods"));
    // And a Service that does not exist.
    test_cmd(
        &s,
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--model",
            "iris",
            "--smoke-only",
        ],
    )
    .assert()
    .code(1)
    .stdout(predicate::str::contains("the Service does not exist"));
}

const PROMOTE: &str = "\
version: 1
project: shop
clusters:
  local: {cloud: onprem, context: fake}
environments:
  prod: {cluster: local, namespace: shop}
models:
  # Detects scratches on the line.
  - name: det
    runtime: seldon
    image: \"registry.example.com/det:1.4\"   # in production since May
    port: 9000
    canary:
      # the retrained model
      image: registry.example.com/det:1.5
      traffic: 0
    slo: {p95: 5s, errorRate: 1%}   # agreed with the line
    test: {payload: payloads/churn.json}
";

/// A fake cluster that makes objects ready at once, the canary's Service proxied to `server`.
fn promote_cluster(s: &Setup, server: &FakeModel) -> (FakeApi, PathBuf) {
    let (api, kubeconfig) = with_api(s);
    api.register_ml_crds();
    api.auto_ready(true);
    api.proxy_service("shop", "det-canary", 8000, Some(server.addr()));
    (api, kubeconfig)
}

fn promote_cmd(s: &Setup, kubeconfig: &std::path::Path, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = mldeploy();
    cmd.env_remove("KUBECONFIG")
        .env("MLDEPLOY_POLL_MS", "20")
        .env("MLDEPLOY_RETRY_BASE_MS", "5")
        .arg("-f")
        .arg(&s.config)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("promote")
        .args(["--warmup", "0s", "--requests", "10"])
        .args(args);
    cmd
}

fn predictors(api: &FakeApi) -> Vec<(String, i64)> {
    let sdep = api
        .get(
            "machinelearning.seldon.io/v1",
            "SeldonDeployment",
            Some("shop"),
            "det",
        )
        .expect("SeldonDeployment applied");
    sdep["spec"]["predictors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["traffic"].as_i64().unwrap_or(100),
            )
        })
        .collect()
}

#[test]
fn promote_rolls_back_a_canary_that_breaches_its_slo() {
    let s = setup(PROMOTE);
    let server = FakeModel::start(&["det"]);
    server.set(Behaviour::Slow(std::time::Duration::from_millis(20)));
    let (api, kubeconfig) = promote_cluster(&s, &server);
    promote_cmd(&s, &kubeconfig, &["--model", "det", "--p95", "1ms"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("breached its SLO at 10%"))
        .stdout(predicate::str::contains("BREACHED"));
    assert_eq!(
        predictors(&api),
        [("default".to_string(), 100), ("canary".to_string(), 0)],
        "rolled back to 0%"
    );
    assert_eq!(
        std::fs::read_to_string(&s.config).unwrap(),
        PROMOTE,
        "config untouched"
    );
}

#[test]
fn promote_steps_to_100_and_rewrites_the_config_keeping_comments() {
    let s = setup(PROMOTE);
    let server = FakeModel::start(&["det"]);
    let (api, kubeconfig) = promote_cluster(&s, &server);
    promote_cmd(&s, &kubeconfig, &["--model", "det", "--steps", "25,100"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("canary at 25% of traffic"))
        .stderr(predicate::str::contains("the canary is now the model"));
    // Each step load-tested the canary (smoke + 10 requests).
    assert!(server.inferences() >= 22, "{}", server.inferences());
    let text = std::fs::read_to_string(&s.config).unwrap();
    insta::assert_snapshot!("promoted-config", text);
    // Applied: one predictor, the new image.
    let sdep = api
        .get(
            "machinelearning.seldon.io/v1",
            "SeldonDeployment",
            Some("shop"),
            "det",
        )
        .unwrap();
    let preds = sdep["spec"]["predictors"].as_array().unwrap();
    assert_eq!(preds.len(), 1);
    assert_eq!(
        preds[0]["componentSpecs"][0]["spec"]["containers"][0]["image"],
        "registry.example.com/det:1.5"
    );
}

#[test]
fn promote_refuses_bad_steps_and_models_without_a_canary() {
    let s = setup(PROMOTE);
    let server = FakeModel::start(&["det"]);
    let (_api, kubeconfig) = promote_cluster(&s, &server);
    promote_cmd(&s, &kubeconfig, &["--model", "det", "--steps", "50,25"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a rising list"));
    let s2 = setup(CONFIG);
    promote_cmd(&s2, &kubeconfig, &["--model", "iris"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("has no canary"));
}

#[test]
fn promote_in_gitops_mode_rewrites_config_and_tree_only() {
    let s = setup(PROMOTE);
    let server = FakeModel::start(&["det"]);
    let (api, kubeconfig) = promote_cluster(&s, &server);
    let tree = s.dir.path().join("deploy");
    promote_cmd(
        &s,
        &kubeconfig,
        &["--model", "det", "--gitops", tree.to_str().unwrap()],
    )
    .assert()
    .code(0)
    .stderr(predicate::str::contains("commit both"));
    assert!(
        api.writes().iter().all(|w| w.path.contains("/proxy/")),
        "GitOps mode applies nothing (only inferences through the proxy)"
    );
    let text = std::fs::read_to_string(&s.config).unwrap();
    assert!(text.contains("image: registry.example.com/det:1.5   # in production since May"));
    let sdep = std::fs::read_to_string(tree.join("apps/prod/seldondeployment-det.yaml"))
        .or_else(|_| {
            // The file name is the generator's; find the SeldonDeployment wherever it is.
            let mut found = String::new();
            for e in walk(&tree) {
                let t = std::fs::read_to_string(&e).unwrap_or_default();
                if t.contains("kind: SeldonDeployment") {
                    found = t;
                }
            }
            Ok::<_, ()>(found)
        })
        .unwrap();
    assert!(sdep.contains("registry.example.com/det:1.5"), "{sdep}");
    assert!(!sdep.contains("name: canary"), "{sdep}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn https_urls_verify_the_certificate_against_the_system_roots() {
    let s = setup(CONFIG);
    let server = FakeModel::start_tls(&["ocr"]);
    let url = server.https_url();
    // The test CA is not in the system's store: refused, with what to do.
    test_cmd(&s, &["--model", "ocr", "--url", &url, "--smoke-only"])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("TLS handshake with 127.0.0.1"))
        .stdout(predicate::str::contains("--insecure-skip-tls-verify"));
    assert_eq!(server.inferences(), 0);
    // Trusted through SSL_CERT_FILE (the platform verifier reads it as OpenSSL does).
    let out = test_cmd(
        &s,
        &[
            "--model",
            "ocr",
            "--url",
            &url,
            "--requests",
            "20",
            "--output",
            "json",
        ],
    )
    .env("SSL_CERT_FILE", crate::support::fake_model::test_ca())
    .assert()
    .code(0)
    .get_output()
    .stdout
    .clone();
    let run = &json_out(&out)["models"][0];
    assert_eq!(run["endpoint"], url.as_str());
    assert_eq!(run["load"]["ok"], 20, "{run}");
    // Or not verified at all, when asked by name.
    test_cmd(
        &s,
        &[
            "--model",
            "ocr",
            "--url",
            &url,
            "--smoke-only",
            "--insecure-skip-tls-verify",
        ],
    )
    .env_remove("SSL_CERT_FILE")
    .assert()
    .code(0);
    // The flag is about --url only.
    test_cmd(&s, &["--model", "ocr", "--insecure-skip-tls-verify"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--url"));
}

#[test]
fn port_forward_reaches_a_ready_pod_behind_the_service() {
    let s = setup(CONFIG);
    let (api, kubeconfig) = with_api(&s);
    let server = FakeModel::start(&["ocr"]);
    // Two pods; only `ocr-b` is ready. The Service port 9000 leads to the pods' named port.
    api.service_with_pods(
        "shop",
        "ocr",
        9000,
        9000,
        &[("ocr-a", false), ("ocr-b", true)],
        server.addr(),
    );
    let out = test_cmd(
        &s,
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--model",
            "ocr",
            "--port-forward",
            "--concurrency",
            "4",
            "--requests",
            "40",
            "--output",
            "json",
        ],
    )
    .assert()
    .code(0)
    .get_output()
    .stdout
    .clone();
    let run = &json_out(&out)["models"][0];
    assert_eq!(
        run["endpoint"],
        "pod shop/ocr-b:9000 (port-forward of service ocr:9000)"
    );
    assert_eq!(run["load"]["ok"], 40, "{run}");
    let requests = api.requests();
    let forwards = requests
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces/shop/pods/ocr-b/portforward")
        .count();
    // A stream per connection: the smoke test's requests and the 4 workers, not one per request.
    assert!((1..=10).contains(&forwards), "{forwards} port-forwards");
    assert!(requests.iter().all(|r| !r.path.contains("/proxy")));
    assert!(server.inferences() >= 41);
}

#[test]
fn port_forward_without_a_ready_pod_or_listener_is_explained() {
    let s = setup(CONFIG);
    let (api, kubeconfig) = with_api(&s);
    let server = FakeModel::start(&["ocr"]);
    api.service_with_pods(
        "shop",
        "ocr",
        9000,
        9000,
        &[("ocr-a", false)],
        server.addr(),
    );
    let args = |model: &'static str| {
        vec![
            "--kubeconfig".to_string(),
            kubeconfig.to_str().unwrap().to_string(),
            "--model".into(),
            model.into(),
            "--port-forward".into(),
            "--smoke-only".into(),
        ]
    };
    let run = |model| {
        let a = args(model);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        test_cmd(&s, &a).assert().code(1)
    };
    run("ocr").stderr(predicate::str::contains("has no ready pods"));
    // No Service at all.
    run("iris").stderr(predicate::str::contains("the Service does not exist"));
    // A ready pod whose port nothing listens on: the kubelet's error is in the message.
    api.service_with_pods(
        "shop",
        "fraud-predictor",
        80,
        8080,
        &[("fraud-0", true)],
        server.addr(),
    );
    api.forward_pod(
        "shop",
        "fraud-0",
        8080,
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap(),
    );
    run("fraud").stdout(predicate::str::contains(
        "port-forward to pod fraud-0:8080: error forwarding port 8080",
    ));
}

const PROMOTE_KSERVE: &str = "\
version: 1
project: shop
clusters:
  local: {cloud: onprem, context: fake}
environments:
  prod: {cluster: local, namespace: shop}
models:
  # Scores card payments.
  - name: det
    runtime: kserve
    server: sklearn
    modelUri: gs://models/det/v1   # in production since May
    canary:
      # the retrained model
      modelUri: gs://models/det/v2
      traffic: 0
    slo: {p95: 5s, errorRate: 1%}   # agreed with the risk team
    test: {payload: payloads/fraud.json}
";

const PROMOTE_SELDON_V2: &str = "\
version: 1
project: shop
clusters:
  local: {cloud: onprem, context: fake}
environments:
  prod: {cluster: local, namespace: shop}
models:
  # Classifies irises.
  - name: det
    runtime: seldon-v2
    server: sklearn
    modelUri: gs://models/det/v1   # in production since May
    canary:
      # the retrained model
      modelUri: gs://models/det/v2
      traffic: 0
    slo: {p95: 5s, errorRate: 1%}   # agreed with the lab
";

/// The canary's traffic share in each applied (not dry-run) patch of `plural/name`, in order,
/// read by `share` from the request body (`None` where the object had no canary).
fn shares(api: &FakeApi, object: &str, share: impl Fn(&Value) -> Option<i64>) -> Vec<Option<i64>> {
    api.writes()
        .iter()
        .filter(|w| {
            !w.dry_run && w.method == http::Method::PATCH && w.path.ends_with(&format!("/{object}"))
        })
        .filter_map(|w| w.body.as_ref().map(&share))
        .collect()
}

fn kserve_share(isvc: &Value) -> Option<i64> {
    isvc["spec"]["predictor"]["canaryTrafficPercent"].as_i64()
}

fn experiment_share(exp: &Value) -> Option<i64> {
    exp["spec"]["candidates"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "det-canary")
        .and_then(|c| c["weight"].as_i64())
}

/// A fake cluster for promote on `runtime`: objects ready at once, the Service that serves the
/// canary proxied to `server`.
fn promote_cluster_for(s: &Setup, server: &FakeModel, service: &str) -> (FakeApi, PathBuf) {
    let (api, kubeconfig) = with_api(s);
    api.register_ml_crds();
    api.auto_ready(true);
    api.proxy_service("shop", service, 80, Some(server.addr()));
    (api, kubeconfig)
}

#[test]
fn promote_kserve_steps_canary_traffic_percent_then_rewrites_the_config() {
    let s = setup(PROMOTE_KSERVE);
    let server = FakeModel::start(&["det"]);
    let (api, kubeconfig) = promote_cluster_for(&s, &server, "det-predictor");
    promote_cmd(&s, &kubeconfig, &["--model", "det", "--steps", "10,50,100"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("canary at 50% of traffic"))
        .stderr(predicate::str::contains("the canary is now the model"));
    // Each step applied its split; the promoted model has none.
    assert_eq!(
        shares(&api, "inferenceservices/det", kserve_share),
        [Some(10), Some(50), Some(100), None]
    );
    let isvc = api
        .get(
            "serving.kserve.io/v1beta1",
            "InferenceService",
            Some("shop"),
            "det",
        )
        .unwrap();
    assert_eq!(
        isvc["spec"]["predictor"]["model"]["storageUri"],
        "gs://models/det/v2"
    );
    assert!(isvc["spec"]["predictor"]["canaryTrafficPercent"].is_null());
    // KServe measures the split behind the one predictor Service, in KServe v1.
    assert!(server.inferences() >= 33, "{}", server.inferences());
    insta::assert_snapshot!(
        "promoted-config-kserve",
        std::fs::read_to_string(&s.config).unwrap()
    );
}

#[test]
fn promote_kserve_rolls_back_to_zero_on_a_breach() {
    let s = setup(PROMOTE_KSERVE);
    let server = FakeModel::start(&["det"]);
    server.set(Behaviour::FailOneIn(2));
    let (api, kubeconfig) = promote_cluster_for(&s, &server, "det-predictor");
    promote_cmd(&s, &kubeconfig, &["--model", "det", "--steps", "25,100"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("breached its SLO at 25%"));
    assert_eq!(
        shares(&api, "inferenceservices/det", kserve_share),
        [Some(25), Some(0)]
    );
    assert_eq!(std::fs::read_to_string(&s.config).unwrap(), PROMOTE_KSERVE);
}

#[test]
fn promote_seldon_v2_steps_the_experiment_then_prunes_the_canary() {
    let s = setup(PROMOTE_SELDON_V2);
    let server = FakeModel::start(&["det", "det-canary"]);
    let (api, kubeconfig) = promote_cluster_for(&s, &server, "seldon-mesh");
    promote_cmd(&s, &kubeconfig, &["--model", "det", "--steps", "25,100"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("the canary is now the model"));
    assert_eq!(
        shares(&api, "experiments/det-canary", experiment_share),
        [Some(25), Some(100)]
    );
    // The canary Model was load-tested by name through seldon-mesh, in OIP v2.
    let routed = server.seldon_models();
    assert!(
        !routed.is_empty() && routed.iter().all(|m| m == "det-canary"),
        "{routed:?}"
    );
    // Promoted: one Model with the canary's artifact; the canary Model and Experiment pruned.
    let model = api
        .get("mlops.seldon.io/v1alpha1", "Model", Some("shop"), "det")
        .unwrap();
    assert_eq!(model["spec"]["storageUri"], "gs://models/det/v2");
    assert!(
        api.get(
            "mlops.seldon.io/v1alpha1",
            "Model",
            Some("shop"),
            "det-canary"
        )
        .is_none()
    );
    assert!(
        api.get(
            "mlops.seldon.io/v1alpha1",
            "Experiment",
            Some("shop"),
            "det-canary"
        )
        .is_none()
    );
    insta::assert_snapshot!(
        "promoted-config-seldon-v2",
        std::fs::read_to_string(&s.config).unwrap()
    );
}

#[test]
fn promote_seldon_v2_rolls_back_to_zero_on_a_breach() {
    let s = setup(PROMOTE_SELDON_V2);
    let server = FakeModel::start(&["det", "det-canary"]);
    server.set(Behaviour::Fail(503));
    let (api, kubeconfig) = promote_cluster_for(&s, &server, "seldon-mesh");
    // A canary that fails every inference is an error rather than a measured breach, and is
    // rolled back all the same.
    promote_cmd(&s, &kubeconfig, &["--model", "det"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("failed at 10%; rolled back to 0%"));
    assert_eq!(
        shares(&api, "experiments/det-canary", experiment_share),
        [Some(10), Some(0)]
    );
    assert_eq!(
        std::fs::read_to_string(&s.config).unwrap(),
        PROMOTE_SELDON_V2
    );
}

#[test]
fn promote_in_gitops_mode_regenerates_the_tree_for_kserve_and_seldon_v2() {
    for (config, service, server_models, file_kind, promoted) in [
        (
            PROMOTE_KSERVE,
            "det-predictor",
            &["det"][..],
            "kind: InferenceService",
            "storageUri: \"gs://models/det/v2\"",
        ),
        (
            PROMOTE_SELDON_V2,
            "seldon-mesh",
            &["det", "det-canary"][..],
            "kind: Model",
            "storageUri: \"gs://models/det/v2\"",
        ),
    ] {
        let s = setup(config);
        let server = FakeModel::start(server_models);
        let (api, kubeconfig) = promote_cluster_for(&s, &server, service);
        let tree = s.dir.path().join("deploy");
        promote_cmd(
            &s,
            &kubeconfig,
            &["--model", "det", "--gitops", tree.to_str().unwrap()],
        )
        .assert()
        .code(0)
        .stderr(predicate::str::contains("commit both"));
        assert!(
            api.writes().iter().all(|w| w.path.contains("/proxy/")),
            "GitOps mode applies nothing"
        );
        let text = std::fs::read_to_string(&s.config).unwrap();
        assert!(
            text.contains("modelUri: gs://models/det/v2   # in production since May"),
            "{text}"
        );
        assert!(!text.contains("canary"), "{text}");
        let files: Vec<String> = walk(&tree)
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .filter(|t| t.contains(file_kind))
            .collect();
        assert!(files.iter().any(|t| t.contains(promoted)), "{files:?}");
        assert!(
            files
                .iter()
                .all(|t| !t.contains("det-canary") && !t.contains("canaryTrafficPercent")),
            "{files:?}"
        );
    }
}

#[test]
fn promote_refuses_a_runtime_that_does_not_split_traffic() {
    let config = PROMOTE.replace("runtime: seldon", "runtime: deployment");
    let s = setup(&config);
    let server = FakeModel::start(&["det"]);
    let (_api, kubeconfig) = promote_cluster(&s, &server);
    promote_cmd(&s, &kubeconfig, &["--model", "det"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot split traffic"));
}

/// Ctrl-C in the middle of a step: the canary goes back to the last split that passed, and the
/// command that resumes is printed. Runs the binary as a child to send it SIGINT.
#[cfg(unix)]
#[test]
fn promote_interrupted_mid_step_keeps_the_last_good_split() {
    use std::io::BufRead as _;
    let s = setup(PROMOTE);
    let server = FakeModel::start(&["det"]);
    server.set(Behaviour::HangAfter(11));
    let (api, kubeconfig) = promote_cluster(&s, &server);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mldeploy"))
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .env("MLDEPLOY_POLL_MS", "20")
        .arg("-f")
        .arg(&s.config)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["promote", "--model", "det", "--steps", "10,50,100"])
        .args(["--warmup", "0s", "--requests", "10", "--timeout", "120s"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn mldeploy");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let wait = std::time::Duration::from_secs(60);
    // The step at 10% is the smoke inference and 10 requests; from the step at 50% on the model
    // never answers, so that step is in flight (its requests would wait 120 s) when the
    // interrupt comes.
    let deadline = std::time::Instant::now() + wait;
    while server.inferences() <= 11 {
        seen.extend(rx.try_iter());
        assert!(
            std::time::Instant::now() < deadline,
            "no request at 50%: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    seen.extend(rx.try_iter());
    assert_eq!(
        predictors(&api),
        [("default".to_string(), 50), ("canary".to_string(), 50)],
        "at 50% while interrupted"
    );
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let deadline = std::time::Instant::now() + wait;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("promote did not stop after SIGINT: {seen:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    reader.join().unwrap();
    seen.extend(rx.try_iter());
    let text = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("back at the last good split, 10%"), "{text}");
    assert!(
        text.contains("mldeploy promote --env prod --model det --steps 50,100"),
        "{text}"
    );
    assert_eq!(
        predictors(&api),
        [("default".to_string(), 90), ("canary".to_string(), 10)],
        "the last good split"
    );
    assert_eq!(std::fs::read_to_string(&s.config).unwrap(), PROMOTE);
}

/// Ctrl-C during a load test: it stops at once (not after the requests' deadline), reports
/// what was measured, and exits 130.
#[cfg(unix)]
#[test]
fn test_interrupted_mid_load_exits_130_with_what_was_measured() {
    let s = setup(CONFIG);
    let server = FakeModel::start(&["ocr"]);
    // The smoke inference and 5 load requests answer; then the model never answers.
    server.set(Behaviour::HangAfter(6));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mldeploy"))
        .env("NO_COLOR", "1")
        .arg("-f")
        .arg(&s.config)
        .args(["test", "--model", "ocr", "--url", &server.url()])
        .args(["--warmup", "0s", "--concurrency", "1", "--duration", "10m"])
        .args(["--timeout", "10m", "--output", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn mldeploy");
    let wait = std::time::Duration::from_secs(60);
    let deadline = std::time::Instant::now() + wait;
    while server.inferences() <= 6 {
        assert!(std::time::Instant::now() < deadline, "no hanging request");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let deadline = std::time::Instant::now() + wait;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("test did not stop after SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(status.code(), Some(130));
    let doc = json_out(&out);
    let load = &doc["models"][0]["load"];
    assert_eq!(load["ok"], 5, "{doc}");
    assert_eq!(load["cutShort"], true, "{doc}");
}
