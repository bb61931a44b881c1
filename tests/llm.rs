//! Language models (`server: vllm`): every runtime × cloud case rendered, snapshotted and checked
//! against the real CRDs and `kubernetes-validate --strict`, and each validation error with its
//! location, field and hint.

use std::path::Path;

use mldeploy::bundle::Bundle;
use mldeploy::model::{self, Project};
use mldeploy::render::{self, Templates};
use predicates::prelude::*;
use serde_json::Value;

use crate::{crd_schemas, mldeploy, root};

const MATRIX: &str = "tests/fixtures/llm/matrix.yaml";

fn project(file: &str) -> Project {
    let loaded = mldeploy::config::load_file(&root().join(file)).expect("fixture parses");
    model::resolve(&loaded).unwrap_or_else(|r| panic!("{}", r.render(false)))
}

/// Every environment of the matrix and of examples/llm.yaml: (label, Kubernetes version, bundle).
fn bundles() -> Vec<(String, String, Bundle)> {
    let templates = Templates::builtin().expect("built-ins compile");
    let mut out = Vec::new();
    for file in [MATRIX, "examples/llm.yaml"] {
        let p = project(file);
        for (name, env) in &p.environments {
            let version = p.clusters[&env.cluster]
                .kubernetes_version
                .clone()
                .unwrap_or_else(|| "1.30".into());
            let bundle = render::render_env(&p, env, &templates).expect("renders");
            out.push((name.clone(), version, bundle));
        }
    }
    out
}

fn find(bundle: &Bundle, kind: &str) -> Value {
    bundle
        .manifests
        .iter()
        .find(|m| m.kind == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
        .object()
}

fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn snapshots_of_every_llm_runtime_and_cloud() {
    for (label, _, bundle) in bundles() {
        let models: String = bundle
            .manifests
            .iter()
            .filter(|m| m.kind != "Namespace" && m.kind != "NetworkPolicy")
            .map(|m| format!("---\n{}", m.text))
            .collect();
        insta::assert_snapshot!(format!("llm-{label}"), models);
    }
}

#[test]
fn each_runtime_gets_its_dialect() {
    let all = bundles();
    let by = |label: &str| &all.iter().find(|(l, ..)| l == label).expect(label).2;

    // KServe with a cache: the Hugging Face server downloads into HF_HOME on the claim.
    let cloud = find(by("cloud"), "InferenceService");
    let predictor = &cloud["spec"]["predictor"];
    assert_eq!(
        cloud["metadata"]["annotations"]["serving.kserve.io/deploymentMode"],
        "Standard"
    );
    assert_eq!(predictor["model"]["modelFormat"]["name"], "huggingface");
    assert!(predictor["model"].get("storageUri").is_none());
    let a = args(&predictor["model"]);
    assert!(a.contains(&"--backend=vllm".to_string()), "{a:?}");
    assert!(a.contains(&"--model_id=Qwen/Qwen2.5-7B-Instruct".to_string()));
    assert!(a.contains(&"--model_name=qwen-chat".to_string()));
    let env = predictor["model"]["env"].to_string();
    assert!(
        env.contains(
            r#""name":"HF_TOKEN","valueFrom":{"secretKeyRef":{"key":"HF_TOKEN","name":"hf-token"}}"#
        ),
        "{env}"
    );
    assert!(env.contains("/cache/huggingface"));
    let pvc = find(by("cloud"), "PersistentVolumeClaim");
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "40Gi");
    assert_eq!(pvc["spec"]["storageClassName"], "standard-rwo");

    // KServe without a cache: storageUri, and the token on the storage ServiceAccount.
    let hf = by("eks-kserve-hf");
    let isvc = find(hf, "InferenceService");
    assert_eq!(
        isvc["spec"]["predictor"]["model"]["storageUri"],
        "hf://Qwen/Qwen2.5-7B-Instruct"
    );
    assert_eq!(
        isvc["spec"]["predictor"]["serviceAccountName"],
        "chat-storage"
    );
    let sa = hf
        .manifests
        .iter()
        .find(|m| m.kind == "ServiceAccount" && m.name == "chat-storage")
        .expect("storage ServiceAccount")
        .object();
    assert_eq!(sa["secrets"][0]["name"], "hf-token");

    // The vLLM Deployment: OpenAI port, /health probes, shared memory, hardened.
    let edge = by("edge");
    let dep = find(edge, "Deployment");
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "vllm/vllm-openai:v0.11.0");
    assert_eq!(c["command"], serde_json::json!(["vllm", "serve"]));
    assert_eq!(args(c)[0], "Qwen/Qwen2.5-7B-Instruct");
    assert_eq!(c["ports"][0]["containerPort"], 8000);
    assert_eq!(c["startupProbe"]["httpGet"]["path"], "/health");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["runtimeClassName"], "nvidia");
    let volumes = pod["volumes"].to_string();
    assert!(
        volumes.contains(r#"{"emptyDir":{"medium":"Memory","sizeLimit":"2Gi"},"name":"dshm"}"#),
        "{volumes}"
    );
    assert!(volumes.contains(r#""claimName":"qwen-chat-cache""#));
    assert_eq!(find(edge, "Service")["spec"]["ports"][0]["port"], 8000);

    // Tensor parallelism over two GPUs, and a read-only model claim.
    let aks = find(by("aks-deployment"), "Deployment");
    let a = args(&aks["spec"]["template"]["spec"]["containers"][0]);
    assert!(a.contains(&"--tensor-parallel-size=2".to_string()), "{a:?}");
    assert!(a.contains(&"--max-num-seqs=64".to_string()));
    let pvc = find(by("aks-deployment"), "PersistentVolumeClaim");
    assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteMany");
    let k3s = find(by("k3s-deployment-pvc"), "Deployment");
    let spec = &k3s["spec"]["template"]["spec"];
    assert_eq!(
        args(&spec["containers"][0])[0],
        "/models/qwen2.5-1.5b-instruct"
    );
    assert!(
        spec["volumes"]
            .to_string()
            .contains(r#""claimName":"model-store","readOnly":true"#)
    );

    // The LLMInferenceService.
    let llmisvc = find(by("gke-llmisvc"), "LLMInferenceService");
    assert_eq!(llmisvc["apiVersion"], "serving.kserve.io/v1alpha2");
    assert_eq!(
        llmisvc["spec"]["model"]["uri"],
        "hf://meta-llama/Llama-3.1-8B-Instruct:main"
    );
    assert_eq!(llmisvc["spec"]["parallelism"]["tensor"], 2);
    assert!(
        by("gke-llmisvc")
            .manifests
            .iter()
            .all(|m| m.kind != "InferenceService")
    );
}

#[test]
#[ignore = "needs the real CRDs in ../shared/crds: cargo test -- --ignored (.ci/run runs it)"]
fn llm_custom_resources_match_the_real_crds() {
    let schemas = crd_schemas();
    let mut kinds = std::collections::BTreeSet::new();
    for (label, _, bundle) in bundles() {
        for m in bundle
            .manifests
            .iter()
            .filter(|m| !crate::render::is_builtin(&m.api_version))
        {
            if let Err(e) = crate::crd_valid(&schemas, &m.object()) {
                panic!(
                    "{label}: {} {} does not match its CRD:\n{e:#}\n{}",
                    m.kind, m.name, m.text
                );
            }
            kinds.insert(m.kind.clone());
        }
    }
    for kind in ["InferenceService", "LLMInferenceService", "ServiceMonitor"] {
        assert!(kinds.contains(kind), "no {kind} was checked: {kinds:?}");
    }
}

#[test]
#[ignore = "needs kubernetes-validate (pip install kubernetes-validate==1.37.0): cargo test -- --ignored (.ci/run installs and runs it)"]
fn llm_builtin_kinds_pass_kubernetes_validate_strict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut by_version: std::collections::BTreeMap<String, Vec<std::path::PathBuf>> =
        Default::default();
    for (label, version, bundle) in bundles() {
        for m in bundle
            .manifests
            .iter()
            .filter(|m| crate::render::is_builtin(&m.api_version))
        {
            let path = dir
                .path()
                .join(format!("{label}-{}", Bundle::manifest_file(m)));
            std::fs::write(&path, &m.text).expect("write");
            by_version.entry(version.clone()).or_default().push(path);
        }
    }
    crate::kubernetes_validate_strict(&by_version);
}

/// A config with one model (`model`, indented as a list item under `models:`) on a GKE cluster
/// with an L4 pool (4 per node), an A100 pool cut into 3g.40gb slices and a T4 pool.
fn config(runtime: &str, model: &str) -> String {
    format!(
        "version: 1
project: llm
models:
  - name: chat
    runtime: {runtime}
{model}
clusters:
  gke:
    cloud: gcp
    region: europe-west4
    gcp: {{project: p}}
    nodePools:
      - {{name: l4, gpu: {{type: l4, count: 4}}, min: 0, max: 1}}
      - {{name: mig, gpu: {{type: a100-80gb, count: 1, mig: 3g.40gb}}, min: 0, max: 1}}
      - {{name: t4, gpu: {{type: t4, count: 1}}, min: 0, max: 1}}
environments:
  cloud: {{cluster: gke}}
"
    )
}

/// `line:column` of the text right after `needle` in `text` (where the value starts).
fn loc(text: &str, needle: &str) -> String {
    for (i, line) in text.lines().enumerate() {
        if let Some(col) = line.find(needle) {
            return format!("{}:{}", i + 1, col + needle.len() + 1);
        }
    }
    panic!("{needle} not in config");
}

/// Validates `text`, expects exit 1 and each of `wanted` in the problems, each written as
/// `file:line:column: path: message` and `help: hint` (from `--output json`, unwrapped).
fn refused(text: &str, wanted: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mldeploy.yaml");
    std::fs::write(&path, text).expect("write");
    let out = mldeploy()
        .args(["validate", "--output", "json", "-f"])
        .arg(&path)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).expect("json");
    let err: String = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            format!(
                "{}:{}:{}: {}: {}\nhelp: {}\n",
                e["file"].as_str().unwrap_or_default(),
                e["line"],
                e["column"],
                e["path"].as_str().unwrap_or_default(),
                e["message"].as_str().unwrap_or_default(),
                e["hint"].as_str().unwrap_or_default()
            )
        })
        .collect();
    for w in wanted {
        assert!(err.contains(w), "missing {w:?} in:\n{err}");
    }
}

const VLLM: &str = "    server: vllm
    modelUri: hf://Qwen/Qwen2.5-7B-Instruct
    gpu: {type: l4, count: 1}";

#[test]
fn seldon_runtimes_say_why_they_cannot_serve_vllm() {
    for (runtime, why) in [
        ("seldon", "Seldon Core v1 has no vLLM server"),
        (
            "seldon-v2",
            "Seldon Core v2 places models on shared MLServer and Triton Servers",
        ),
    ] {
        let text = config(runtime, VLLM);
        refused(
            &text,
            &[
                &format!("mldeploy.yaml:{}", loc(&text, "runtime: ")),
                "models[0].runtime",
                &format!("runtime `{runtime}` cannot serve `server: vllm`"),
                why,
                "help: serve language models with runtime `kserve` or `deployment`",
            ],
        );
    }
}

#[test]
fn hf_uris_on_runtimes_that_cannot_fetch_them() {
    let text = config(
        "seldon",
        "    server: huggingface\n    modelUri: hf://distilbert/distilbert-base-uncased",
    );
    refused(
        &text,
        &[
            &format!("mldeploy.yaml:{}", loc(&text, "modelUri: ")),
            "models[0].modelUri",
            "runtime `seldon` cannot fetch `hf://` URIs",
            "help: use runtime `kserve`",
        ],
    );
    let text = config(
        "deployment",
        "    server: vllm\n    modelUri: s3://bucket/qwen\n    gpu: {type: l4, count: 1}",
    );
    refused(
        &text,
        &[
            &format!("mldeploy.yaml:{}", loc(&text, "modelUri: ")),
            "vLLM on a Kubernetes Deployment cannot fetch `s3://` URIs",
            "help: use `runtime: kserve`",
        ],
    );
    let text = config(
        "kserve",
        "    server: vllm\n    modelUri: hf://just-a-name\n    gpu: {type: l4}",
    );
    refused(
        &text,
        &[
            "`just-a-name` is not a Hugging Face model id",
            "hf://org/name:revision",
        ],
    );
}

#[test]
fn tensor_parallelism_must_divide_the_gpu_count() {
    let text = config(
        "deployment",
        "    server: vllm
    modelUri: hf://Qwen/Qwen2.5-32B-Instruct
    gpu: {type: l4, count: 4}
    llm: {tensorParallel: 3}",
    );
    refused(
        &text,
        &[
            &format!("mldeploy.yaml:{}", loc(&text, "tensorParallel: ")),
            "models[0].llm.tensorParallel",
            "tensor parallelism 3 does not divide the 4 GPUs of a replica",
            "help: use one of 1, 2, 4",
        ],
    );
    let text = config(
        "kserve",
        "    server: vllm
    modelUri: hf://Qwen/Qwen2.5-32B-Instruct
    gpu: {type: a100-80gb, count: 2, mig: 3g.40gb}",
    );
    refused(&text, &["CUDA shows a process one MIG device"]);
}

#[test]
fn weights_that_do_not_fit_are_an_error_and_a_tight_fit_a_warning() {
    let text = config(
        "kserve",
        "    server: vllm
    modelUri: hf://meta-llama/Llama-3.1-70B-Instruct
    gpu: {type: l4, count: 1}
    llm: {params: 70b}",
    );
    refused(
        &text,
        &[
            &format!("mldeploy.yaml:{}", loc(&text, "params: ")),
            "models[0].llm.params",
            "the weights do not fit: 70B parameters × 2 bytes (auto) = 140.0 GB of weights, but vLLM may use 21.6 GB of 1 × l4",
            "llm.quantization: awq or fp8",
        ],
    );
    // A MIG slice counts its own memory.
    let text = config(
        "kserve",
        "    server: vllm
    modelUri: hf://Qwen/Qwen2.5-32B-Instruct
    gpu: {type: a100-80gb, count: 1, mig: 3g.40gb}
    llm: {params: 32b}",
    );
    refused(&text, &["64.0 GB of weights", "1 × 3g.40gb (40 GB)"]);
    // bfloat16 on a T4.
    let text = config(
        "kserve",
        "    server: vllm
    modelUri: hf://Qwen/Qwen2.5-0.5B-Instruct
    gpu: {type: t4, count: 1}
    llm: {dtype: bfloat16}",
    );
    refused(
        &text,
        &[
            "models[0].llm.dtype",
            "a T4 (compute capability 7.5) has no bfloat16",
        ],
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mldeploy.yaml");
    let text = config(
        "kserve",
        "    server: vllm
    modelUri: hf://google/gemma-2-9b-it
    gpu: {type: l4, count: 1}
    llm: {params: 9b}",
    );
    std::fs::write(&path, &text).expect("write");
    mldeploy()
        .args(["validate", "-f"])
        .arg(&path)
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "mldeploy.yaml:{}: models[0].llm.params: the weights fit tightly: 9B parameters × 2 bytes (auto) = 18.0 GB",
            loc(&text, "params: ")
        )));
}

#[test]
fn llm_settings_that_do_not_apply_are_refused() {
    // A cache on an LLMInferenceService, `kind` on a Deployment.
    refused(
        &config(
            "kserve",
            &format!("{VLLM}\n    llm: {{kind: llmisvc}}\n    cache: {{size: 40Gi}}"),
        ),
        &[
            "models[0].cache",
            "KServe's LLMInferenceService keeps weights in its own storage",
        ],
    );
    refused(
        &config("deployment", &format!("{VLLM}\n    llm: {{kind: llmisvc}}")),
        &["models[0].llm.kind", "`llm.kind` chooses the KServe object"],
    );
    // Flags mldeploy sets.
    let text = config(
        "deployment",
        &format!("{VLLM}\n    llm: {{extraArgs: [--trust-remote-code, --max-model-len=4096]}}"),
    );
    refused(
        &text,
        &[
            "models[0].llm.extraArgs[1]",
            "`--max-model-len` is set by mldeploy from llm.maxModelLen",
        ],
    );
    // KServe's storage initializer only reads the key HF_TOKEN.
    refused(
        &config(
            "kserve",
            &format!("{VLLM}\n    hfTokenSecret: {{name: hf, key: token}}"),
        ),
        &[
            "models[0].hfTokenSecret.key",
            "reads the Hugging Face token from the key `HF_TOKEN`",
        ],
    );
    // `llm` on a model that is not a language model; vLLM without a GPU.
    refused(
        &config(
            "kserve",
            "    server: sklearn\n    modelUri: gs://b/m\n    llm: {maxModelLen: 4096}",
        ),
        &[
            "models[0].llm",
            "`llm` applies to language models (`server: vllm`)",
        ],
    );
    refused(
        &config(
            "kserve",
            "    server: vllm\n    modelUri: hf://Qwen/Qwen2.5-7B-Instruct",
        ),
        &["models[0].server", "`server: vllm` needs a `gpu`"],
    );
    // A bad cache size at the environment.
    let text = config("kserve", VLLM).replace(
        "cloud: {cluster: gke}",
        "cloud: {cluster: gke, cache: {size: 10Mi}}",
    );
    refused(
        &text,
        &[
            "environments.cloud.cache.size",
            "a cache of `10Mi` cannot hold model weights",
        ],
    );
}

#[test]
fn the_example_is_valid_and_renders_both_runtimes() {
    assert!(Path::new(&root().join("examples/llm.yaml")).is_file());
    let p = project("examples/llm.yaml");
    let runtimes: Vec<&str> = p
        .environments
        .values()
        .flat_map(|e| e.models.iter().map(|m| m.runtime.name()))
        .collect();
    assert_eq!(runtimes, ["kserve", "deployment"]);
}
