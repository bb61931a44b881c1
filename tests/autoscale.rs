//! Autoscaling on a metric (KEDA): every misuse is an error at its location, with a hint; the
//! rendered ScaledObject, KServe KEDA class and GitOps files are what the scalers expect.

use mldeploy::model;
use mldeploy::render::{self, Templates};
use predicates::prelude::*;
use serde_json::Value;

use crate::{crd_schemas, mldeploy, root};

/// A config with one model (`model` is its YAML body, indented by four spaces) on an on-prem
/// cluster, with Prometheus unless `extra` says otherwise.
fn config(model: &str, extra: &str) -> String {
    format!(
        "version: 1
project: demo
models:
  - name: chat
{model}
clusters:
  edge: {{cloud: onprem, context: edge}}
environments:
  dev: {{cluster: edge, namespace: llm}}
{extra}"
    )
}

/// Validates `text`: exit 1, and stderr has every one of `expect` (locations, fields, hints).
fn rejects(text: &str, expect: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mldeploy.yaml");
    std::fs::write(&path, text).expect("write");
    let out = mldeploy()
        .current_dir(dir.path())
        .args(["validate", "-f", "mldeploy.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("panicked").not());
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    for e in expect {
        assert!(stderr.contains(e), "`{e}` not in:\n{stderr}");
    }
}

const PROMETHEUS: &str = "monitoring: {prometheus: true}\n";

#[test]
fn scale_to_zero_needs_a_keda_capable_runtime_and_a_metric() {
    // Seldon has no path to zero at all.
    rejects(
        &config(
            "    runtime: seldon\n    image: r.example.com/chat:1\n    autoscale: {min: 0, max: 2}",
            PROMETHEUS,
        ),
        &[
            "mldeploy.yaml:7:22",
            "models[0].autoscale.min: runtime `seldon` cannot scale to zero",
            "use runtime `kserve` or `deployment`",
        ],
    );
    // A Deployment scales to zero through KEDA, never on CPU alone.
    rejects(
        &config(
            "    runtime: deployment\n    image: r.example.com/chat:1\n    autoscale: {min: 0, max: 2}",
            PROMETHEUS,
        ),
        &[
            "mldeploy.yaml:7:22",
            "runtime `deployment` cannot scale to zero without a metric",
            "add `autoscale.metric`",
        ],
    );
}

#[test]
fn a_metric_needs_a_runtime_with_a_keda_path() {
    for runtime in ["seldon", "seldon-v2"] {
        let source = if runtime == "seldon" {
            "    image: r.example.com/chat:1"
        } else {
            "    server: sklearn\n    modelUri: gs://b/m"
        };
        let line = if runtime == "seldon" { 7 } else { 8 };
        rejects(
            &config(
                &format!(
                    "    runtime: {runtime}\n{source}\n    autoscale: {{min: 1, max: 2, metric: {{query: 'sum(up)', target: 3}}}}"
                ),
                PROMETHEUS,
            ),
            &[
                &format!("mldeploy.yaml:{line}:41"),
                &format!(
                    "models[0].autoscale.metric: runtime `{runtime}` cannot scale on a metric"
                ),
                "use runtime `kserve` or `deployment`",
            ],
        );
    }
}

#[test]
fn presets_read_vllm_metrics_only() {
    rejects(
        &config(
            "    runtime: kserve\n    server: sklearn\n    modelUri: gs://b/m\n    autoscale: {min: 1, max: 2, metric: kvCacheUsage}",
            PROMETHEUS,
        ),
        &[
            "mldeploy.yaml:8:41",
            "preset `kvCacheUsage` reads vLLM's metrics, and this model is",
            "served by `sklearn`",
            "give your server's own PromQL",
        ],
    );
    // A misspelt preset gets the closest name.
    rejects(
        &config(
            "    image: r.example.com/chat:1\n    autoscale: {min: 1, max: 2, metric: requestWaiting}",
            PROMETHEUS,
        ),
        &[
            "mldeploy.yaml:6:41",
            "unknown value `requestWaiting`",
            "did you mean `requestsWaiting`?",
        ],
    );
}

#[test]
fn queries_need_a_target_and_a_prometheus() {
    rejects(
        &config(
            "    image: r.example.com/chat:1\n    autoscale: {min: 1, max: 2, metric: {query: 'sum(up)'}}",
            PROMETHEUS,
        ),
        &["a metric `query` needs a `target`"],
    );
    rejects(
        &config(
            "    image: r.example.com/chat:1\n    autoscale: {min: 1, max: 2, metric: {query: 'sum(up)', target: -1}}",
            PROMETHEUS,
        ),
        &["metric target must be a number above 0, not `-1`"],
    );
    rejects(
        &config(
            "    image: r.example.com/chat:1\n    autoscale: {min: 1, max: 2, metric: {preset: kvCacheUsage, query: 'sum(up)'}}",
            PROMETHEUS,
        ),
        &["set either `preset` or `query`, not both"],
    );
    rejects(
        &config(
            "    image: r.example.com/chat:1\n    autoscale: {min: 1, max: 2, metric: {query: 'sum(up)', target: 3, treshold: 2}}",
            PROMETHEUS,
        ),
        &[
            "mldeploy.yaml:6:71",
            "models[0].autoscale.metric.treshold: unknown field `treshold`",
            "valid fields: preset, query, target",
        ],
    );
    // No kube-prometheus-stack and no address of another Prometheus.
    rejects(
        &config(
            "    image: r.example.com/chat:1\n    autoscale: {min: 1, max: 2, metric: {query: 'sum(up)', target: 3}}",
            "",
        ),
        &[
            "mldeploy.yaml:6:41",
            "model `chat` scales on a Prometheus metric, and environment `dev`",
            "environments.dev.prometheusAddress",
        ],
    );
    rejects(
        &config("    image: r.example.com/chat:1", "").replace(
            "dev: {cluster: edge, namespace: llm}",
            "dev: {cluster: edge, namespace: llm, prometheusAddress: prometheus:9090}",
        ),
        &["environments.dev.prometheusAddress: `prometheus:9090` is not an http(s) URL"],
    );
}

#[test]
fn an_llm_inference_service_is_not_autoscaled_by_mldeploy() {
    rejects(
        &config(
            "    runtime: kserve\n    server: vllm\n    modelUri: hf://Qwen/Qwen2.5-0.5B-Instruct\n    gpu: {type: l4}\n    llm: {kind: llmisvc}\n    autoscale: {min: 1, max: 2, metric: requestsWaiting}",
            PROMETHEUS,
        ),
        &[
            "mldeploy.yaml:10:16",
            "models[0].autoscale: an LLMInferenceService (`llm.kind: llmisvc`) runs `replicas`",
        ],
    );
}

#[test]
fn keda_timing_is_checked_where_it_applies() {
    rejects(
        &config(
            "    image: r.example.com/chat:1\n    autoscale: {min: 1, max: 2, cooldown: 5m}",
            PROMETHEUS,
        ),
        &[
            "`cooldown` applies to KEDA scaling",
            "add `autoscale.metric`",
        ],
    );
    rejects(
        &config(
            "    image: r.example.com/chat:1\n    autoscale: {min: 0, max: 2, metric: requestsWaiting, pollingInterval: 15}",
            PROMETHEUS,
        ),
        &["models[0].autoscale.pollingInterval: `15` has no unit"],
    );
    rejects(
        &config(
            "    runtime: kserve\n    image: r.example.com/chat:1\n    autoscale: {min: 0, max: 2, metric: requestsWaiting, cooldown: 10m}",
            PROMETHEUS,
        ),
        &["KServe builds the ScaledObject itself and cannot set `cooldown`"],
    );
    rejects(
        &config(
            "    runtime: kserve\n    image: r.example.com/chat:1\n    canary: {image: r.example.com/chat:2, traffic: 10}\n    autoscale: {min: 1, max: 2, metric: requestsWaiting}",
            PROMETHEUS,
        ),
        &[
            "mldeploy.yaml:8:41",
            "KServe scales on a KEDA metric only in Standard (raw) mode",
        ],
    );
}

#[test]
fn scaling_to_zero_on_a_vllm_preset_warns_that_traffic_alone_does_not_wake_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mldeploy.yaml");
    std::fs::write(
        &path,
        config(
            "    runtime: deployment\n    image: vllm/vllm-openai:v0.11.0\n    autoscale: {min: 0, max: 2, metric: requestsWaiting}",
            PROMETHEUS,
        ),
    )
    .expect("write");
    mldeploy()
        .current_dir(dir.path())
        .args(["validate", "-f", "mldeploy.yaml"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "mldeploy.yaml:7:22: models[0].autoscale.min: model `chat` scales to zero on `requestsWaiting`",
        ));
}

fn bundle(text: &str, env: &str) -> mldeploy::bundle::Bundle {
    let loaded = mldeploy::config::load_bytes("mldeploy.yaml".as_ref(), text.as_bytes())
        .unwrap_or_else(|r| panic!("{}", r.render(false)));
    let p = model::resolve(&loaded).unwrap_or_else(|r| panic!("{}", r.render(false)));
    let templates = Templates::builtin().expect("built-ins compile");
    render::render_env(&p, &p.environments[env], &templates).expect("renders")
}

fn object(b: &mldeploy::bundle::Bundle, kind: &str, name: &str) -> Option<Value> {
    b.manifests
        .iter()
        .find(|m| m.kind == kind && m.name == name)
        .map(|m| m.object())
}

/// A vLLM Deployment that KEDA scales on the KV-cache preset, a cooldown and CPU.
fn keda_config() -> String {
    config(
        "    runtime: deployment\n    image: vllm/vllm-openai:v0.11.0\n    autoscale: {min: 0, max: 3, metric: {preset: kvCacheUsage, target: 0.7}, cooldown: 2m, pollingInterval: 10s, cpuUtilization: 90}",
        PROMETHEUS,
    )
}

/// [`keda_config`] on KServe (which makes its own ScaledObject and has no KEDA timing).
fn keda_on_kserve(text: &str) -> String {
    text.replace("runtime: deployment", "runtime: kserve")
        .replace(", cooldown: 2m, pollingInterval: 10s", "")
}

#[test]
fn keda_owns_the_replicas_of_what_it_scales() {
    let text = keda_config();
    let b = bundle(&text, "dev");
    let deployment = object(&b, "Deployment", "chat").expect("deployment");
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "KEDA owns spec.replicas"
    );
    assert!(object(&b, "HorizontalPodAutoscaler", "chat").is_none());
    let so = object(&b, "ScaledObject", "chat").expect("scaledobject");
    assert_eq!(so["spec"]["minReplicaCount"], 0);
    assert_eq!(so["spec"]["maxReplicaCount"], 3);
    assert_eq!(so["spec"]["cooldownPeriod"], 120);
    assert_eq!(so["spec"]["pollingInterval"], 10);
    let triggers = so["spec"]["triggers"].as_array().expect("triggers");
    assert_eq!(triggers.len(), 3, "preset, activity and cpu: {triggers:#?}");
    assert_eq!(
        triggers[0]["metadata"]["query"],
        "sum(vllm:kv_cache_usage_perc{namespace=\"llm\", pod=~\"chat-[a-z0-9]+-[a-z0-9]+\"})"
    );
    assert_eq!(triggers[0]["metadata"]["threshold"], "0.7");
    assert_eq!(
        triggers[0]["metadata"]["serverAddress"],
        model::DEFAULT_PROMETHEUS_ADDRESS
    );
    assert_eq!(triggers[2]["type"], "cpu");
    assert_eq!(triggers[2]["metadata"]["value"], "90");
    // Applied after the Deployment it scales.
    let pos = |kind: &str| b.manifests.iter().position(|m| m.kind == kind).expect(kind);
    assert!(pos("ScaledObject") > pos("Deployment"));

    // KServe: its KEDA class in Standard mode, the metric in spec.predictor.autoScaling.
    let b = bundle(&keda_on_kserve(&text), "dev");
    let isvc = object(&b, "InferenceService", "chat").expect("isvc");
    assert_eq!(
        isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"],
        "keda"
    );
    assert_eq!(
        isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"],
        "Standard"
    );
    let metrics = isvc["spec"]["predictor"]["autoScaling"]["metrics"]
        .as_array()
        .expect("metrics");
    assert_eq!(metrics[0]["external"]["metric"]["backend"], "prometheus");
    assert_eq!(
        metrics[0]["external"]["metric"]["query"],
        "sum(vllm:kv_cache_usage_perc{namespace=\"llm\", pod=~\"chat-predictor-[a-z0-9]+-[a-z0-9]+\"})"
    );
    assert_eq!(metrics[2]["resource"]["target"]["averageUtilization"], 90);
    assert_eq!(isvc["spec"]["predictor"]["minReplicas"], 0);
    assert!(
        object(&b, "ScaledObject", "chat").is_none(),
        "KServe makes its own"
    );
}

#[test]
#[ignore = "needs the real CRDs in ../shared/crds: cargo test -- --ignored (.ci/run runs it)"]
fn keda_scaled_objects_and_kserve_autoscaling_match_the_real_crds() {
    // Both validate against the real CRDs (KEDA v2.20, KServe v0.20).
    let text = keda_config();
    let so = object(&bundle(&text, "dev"), "ScaledObject", "chat").expect("scaledobject");
    let isvc = object(
        &bundle(&keda_on_kserve(&text), "dev"),
        "InferenceService",
        "chat",
    )
    .expect("isvc");
    let schemas = crd_schemas();
    let valid = |o: &Value| crate::crd_valid(&schemas, o);
    valid(&so).expect("ScaledObject matches KEDA's CRD");
    valid(&isvc).expect("InferenceService matches KServe's CRD");
    let mut bad = so.clone();
    bad["spec"]["cooldownPeriods"] = Value::from(1);
    assert!(valid(&bad).is_err(), "the check has teeth");
}

/// The Argo CD and Flux engine files of examples/llm-autoscaling.yaml: (engine, text).
fn gitops_engine_files() -> Vec<(String, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let example =
        std::fs::read_to_string(root().join("examples/llm-autoscaling.yaml")).expect("example");
    let mut out = Vec::new();
    for engine in ["argocd", "flux"] {
        let config = dir.path().join(format!("{engine}.yaml"));
        std::fs::write(
            &config,
            example.replace("engine: argocd", &format!("engine: {engine}")),
        )
        .expect("write");
        mldeploy()
            .args(["gitops", "-f"])
            .arg(&config)
            .arg("--out")
            .arg(dir.path().join(engine))
            .assert()
            .success();
        let text = std::fs::read_to_string(dir.path().join(engine).join(engine).join("gcp.yaml"))
            .expect("engine file");
        out.push((engine.to_string(), text));
    }
    out
}

/// The documents of [`gitops_engine_files`], each with its engine.
fn gitops_engine_objects(files: &[(String, String)]) -> Vec<(String, Value)> {
    let mut objects = Vec::new();
    for (engine, text) in files {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text).expect("parses");
        objects.extend(
            docs.into_iter()
                .filter(|d| !d.is_null())
                .map(|d| (engine.clone(), d)),
        );
    }
    objects
}

#[test]
fn gitops_engines_leave_autoscaled_replicas_alone() {
    let files = gitops_engine_files();
    for (engine, text) in &files {
        insta::assert_snapshot!(format!("autoscale-gitops-{engine}-gcp"), text);
    }
    let objects = gitops_engine_objects(&files);
    let app = &objects
        .iter()
        .find(|(_, o)| o["kind"] == "Application")
        .expect("application")
        .1;
    let ignored = app["spec"]["ignoreDifferences"]
        .as_array()
        .expect("ignoreDifferences");
    // The assistant (KEDA) and the intent classifier (HPA) are Deployments mldeploy renders; the
    // reranker's Deployment is KServe's.
    let names: Vec<&str> = ignored
        .iter()
        .map(|i| i["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["assistant", "intent"]);
    assert_eq!(ignored[0]["group"], "apps");
    assert_eq!(ignored[0]["kind"], "Deployment");
    assert_eq!(ignored[0]["jsonPointers"][0], "/spec/replicas");
    assert!(
        app["spec"]["syncPolicy"]["syncOptions"]
            .as_array()
            .expect("options")
            .contains(&Value::from("RespectIgnoreDifferences=true"))
    );
}

#[test]
#[ignore = "needs the real CRDs in ../shared/crds: cargo test -- --ignored (.ci/run runs it)"]
fn gitops_engine_files_of_autoscaled_models_match_the_real_crds() {
    let schemas = crd_schemas();
    let objects = gitops_engine_objects(&gitops_engine_files());
    assert!(objects.len() >= 2, "{objects:?}");
    for (engine, o) in &objects {
        if let Err(e) = crate::crd_valid(&schemas, o) {
            panic!("{engine}: {} does not match its CRD: {e:#}", o["kind"]);
        }
    }
}
