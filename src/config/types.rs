//! The typed config contract (`mldeploy.yaml`, version 1). Doc comments here become the JSON
//! Schema's descriptions, so they are written for the person editing the file.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};

use super::de::SCALAR_MARKER;

/// A scalar kept as the text the user wrote: `2`, `500m`, `1.30`, `yes` and `"0755"` all stay
/// exactly as written (YAML would otherwise turn `1.30` into `1.3`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Scalar(pub String);

impl Scalar {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or number")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_newtype_struct(SCALAR_MARKER, V)
    }
}

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A string; numbers and booleans are taken as the text written.",
            "type": ["string", "number", "boolean"]
        })
    }
}

/// The whole project config.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Config format version. Only `1` exists.
    pub version: u32,
    /// Project name (DNS-1123 label): the default namespace and a name prefix.
    pub project: String,
    /// Labels added to every rendered object.
    #[serde(default)]
    pub labels: BTreeMap<String, Scalar>,
    /// Settings every model inherits; a model overrides them.
    #[serde(default)]
    pub defaults: Option<ModelSpec>,
    /// The models to serve.
    #[serde(default)]
    pub models: Vec<ModelSpec>,
    /// Kubernetes clusters, by name.
    #[serde(default)]
    pub clusters: BTreeMap<String, Cluster>,
    /// Environments: a cluster, a namespace and overrides, by name.
    #[serde(default)]
    pub environments: BTreeMap<String, Environment>,
    /// Prometheus scraping and Grafana dashboards.
    #[serde(default)]
    pub monitoring: Monitoring,
    /// GitOps repository settings for `mldeploy gitops`.
    #[serde(default)]
    pub gitops: Option<Gitops>,
    /// Cluster-wide security policies mldeploy renders (image signatures).
    #[serde(default)]
    pub security: Option<SecurityPolicies>,
}

/// Cluster-wide security policies.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecurityPolicies {
    /// Admit only signed images of the models: a Kyverno `ClusterPolicy` with `verifyImages`
    /// (Kyverno must be installed; `installKyverno: true` has `mldeploy infra` install it).
    pub image_signatures: Option<ImageSignatures>,
}

/// Cosign signature verification of the images mldeploy deploys.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageSignatures {
    /// The cosign public key: the PEM text (`-----BEGIN PUBLIC KEY-----…`) or a file relative to
    /// this config (`cosign.pub`).
    pub cosign_key: Option<String>,
    /// Install Kyverno (a pinned chart version) with the cluster's platform add-ons. Default
    /// false: Kyverno is often run by the platform team already.
    #[serde(default)]
    pub install_kyverno: bool,
    /// Refuse pods with unsigned images (`Enforce`, the default) or only report them (`Audit`).
    pub action: Option<SignatureAction>,
}

/// What Kyverno does with an image whose signature does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum SignatureAction {
    /// Refuse the pod.
    Enforce,
    /// Admit it and report a policy violation.
    Audit,
}

/// The serving runtime of a model.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// Seldon Core v1 SeldonDeployment.
    Seldon,
    /// Seldon Core v2 Model (prepackaged servers only).
    SeldonV2,
    /// KServe InferenceService.
    Kserve,
    /// A plain Deployment + Service.
    Deployment,
}

impl Runtime {
    /// All runtimes, in the order they are documented.
    pub const ALL: [Runtime; 4] = [
        Runtime::Seldon,
        Runtime::SeldonV2,
        Runtime::Kserve,
        Runtime::Deployment,
    ];

    /// The name used in the config.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Seldon => "seldon",
            Runtime::SeldonV2 => "seldon-v2",
            Runtime::Kserve => "kserve",
            Runtime::Deployment => "deployment",
        }
    }
}

/// A prepackaged model server.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Server {
    /// scikit-learn.
    Sklearn,
    /// XGBoost.
    Xgboost,
    /// MLflow model.
    Mlflow,
    /// TensorFlow SavedModel.
    Tensorflow,
    /// NVIDIA Triton.
    Triton,
    /// Hugging Face transformers.
    Huggingface,
    /// vLLM: a language model from Hugging Face (`hf://org/name`) behind an OpenAI-compatible
    /// API, set up by the `llm` block.
    Vllm,
}

impl Server {
    /// The name used in the config.
    pub fn name(self) -> &'static str {
        match self {
            Server::Sklearn => "sklearn",
            Server::Xgboost => "xgboost",
            Server::Mlflow => "mlflow",
            Server::Tensorflow => "tensorflow",
            Server::Triton => "triton",
            Server::Huggingface => "huggingface",
            Server::Vllm => "vllm",
        }
    }
}

/// A model, or (under `defaults` and `overrides`) the settings a model inherits.
///
/// No field is required at this level, not even inside nested settings, because overrides are
/// partial (`autoscale: {min: 0}` changes one bound); required fields are checked after merging.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelSpec {
    /// Model name (DNS-1123 label, at most 40 characters so suffixes fit).
    pub name: Option<String>,
    /// Serving runtime. Default: `deployment` for a custom image, `kserve` for a server.
    pub runtime: Option<Runtime>,
    /// Custom container image (exclusive with `server` + `modelUri`).
    pub image: Option<String>,
    /// Container port of a custom image. Default 8080.
    pub port: Option<u16>,
    /// Prepackaged model server (needs `modelUri`).
    pub server: Option<Server>,
    /// Where the model artifact lives (gs://, s3://, https://, pvc://…; for `server: vllm`
    /// also `hf://org/name[:revision]`, a Hugging Face model id).
    pub model_uri: Option<String>,
    /// Secret with credentials for `modelUri` (on-prem object stores such as MinIO; on a cloud
    /// prefer `storage.identity: workload`).
    pub storage_secret: Option<String>,
    /// The Secret (by name and key) that holds a Hugging Face token, set as `HF_TOKEN` for gated
    /// models. Only the reference is written; the token never passes through mldeploy.
    pub hf_token_secret: Option<SecretKeyRef>,
    /// Language-model settings of `server: vllm`.
    pub llm: Option<Llm>,
    /// A PersistentVolumeClaim that keeps downloaded weights, so a restart or a new replica does
    /// not download them again (set it under `defaults` or an environment's
    /// `overrides.defaults` for every model there).
    pub cache: Option<Cache>,
    /// How the model's pods reach its artifact: `{identity: workload}` reads the bucket of
    /// `modelUri` with the cloud's workload identity instead of keys.
    pub storage: Option<Storage>,
    /// Desired replicas (when not autoscaled). Default 1.
    pub replicas: Option<i64>,
    /// CPU and memory requested (and limited) per replica.
    pub resources: Option<Resources>,
    /// GPUs per replica.
    pub gpu: Option<GpuRequest>,
    /// Environment variables.
    pub env: Option<BTreeMap<String, Scalar>>,
    /// Environment variables read from Secrets (values never pass through mldeploy).
    pub secret_env: Option<Vec<SecretEnv>>,
    /// Horizontal autoscaling.
    pub autoscale: Option<Autoscale>,
    /// A canary version that receives part of the traffic.
    pub canary: Option<Canary>,
    /// Service-level objective that `mldeploy test` and `mldeploy promote` gate on.
    pub slo: Option<Slo>,
    /// How `mldeploy test` talks to the model.
    pub test: Option<TestSpec>,
}

/// A service-level objective: limits a load test must stay within. Latencies are durations
/// (`250ms`, `1.5s`), the error rate a percentage (`0.5%`).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Slo {
    /// Highest median latency.
    pub p50: Option<Scalar>,
    /// Highest 90th-percentile latency.
    pub p90: Option<Scalar>,
    /// Highest 95th-percentile latency.
    pub p95: Option<Scalar>,
    /// Highest 99th-percentile latency.
    pub p99: Option<Scalar>,
    /// Highest share of failed requests (`0.5%`).
    pub error_rate: Option<Scalar>,
    /// Highest 95th-percentile time to first token (streaming LLM endpoints).
    pub ttft_p95: Option<Scalar>,
}

/// The protocol a model endpoint speaks.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Open Inference Protocol (KServe v2): `/v2/models/{m}/infer`.
    OipV2,
    /// KServe v1 (TF Serving style): `/v1/models/{m}:predict`.
    KserveV1,
    /// Seldon Core v1: `/api/v1.0/predictions`.
    SeldonV1,
    /// OpenAI-compatible: `/v1/chat/completions`.
    Openai,
}

impl Protocol {
    /// All protocols, in the order they are documented.
    pub const ALL: [Protocol; 4] = [
        Protocol::OipV2,
        Protocol::KserveV1,
        Protocol::SeldonV1,
        Protocol::Openai,
    ];

    /// The name used in the config and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::OipV2 => "oip-v2",
            Protocol::KserveV1 => "kserve-v1",
            Protocol::SeldonV1 => "seldon-v1",
            Protocol::Openai => "openai",
        }
    }
}

/// Settings of `mldeploy test` for a model.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestSpec {
    /// A JSON file (relative to this config) with the request body to send. Default: for
    /// oip-v2 a body built from the model's metadata, for openai a short prompt.
    pub payload: Option<String>,
    /// The protocol the model speaks. Default: what its runtime and server speak.
    pub protocol: Option<Protocol>,
}

/// Compute resources of one replica.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Resources {
    /// CPU as a Kubernetes quantity (`500m`, `2`).
    pub cpu: Option<Scalar>,
    /// Memory as a Kubernetes quantity (`1Gi`, `512Mi`).
    pub memory: Option<Scalar>,
}

/// A cloud-agnostic GPU request (on a model), or the GPUs of a node pool's nodes.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GpuRequest {
    /// GPU type from the catalog (`mldeploy gpus`): t4, l4, a10g, a100-40gb, a100-80gb,
    /// h100-80gb, mi300x (AMD), jetson-orin (edge).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// GPUs per replica (or per node, for a node pool), or MIG slices with `mig`. Default 1.
    #[serde(default = "one")]
    pub count: i64,
    /// Node pools (and `gpus` of an onprem cluster): time-slice each GPU into this many shares
    /// (2 to 48). Shares have no memory or fault isolation: they split one GPU's time.
    pub share: Option<i64>,
    /// Models: run on a time-sliced share of a GPU (a pool with `share`); `count` must be 1.
    pub shared: Option<bool>,
    /// MIG profile (`1g.10gb`): on a model, the slice it requests; on a node pool, the slices
    /// each GPU is cut into. Only A100 and H100 GPUs have MIG (`mldeploy gpus` lists profiles).
    pub mig: Option<String>,
    /// Models: request the GPUs through a Dynamic Resource Allocation ResourceClaim
    /// (`resource.k8s.io/v1`, Kubernetes 1.34 or later) instead of an extended resource.
    pub claim: Option<bool>,
}

fn one() -> i64 {
    1
}

/// An environment variable taken from a Secret.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretEnv {
    /// Variable name.
    pub name: String,
    /// Secret name.
    pub secret: String,
    /// Key in the Secret.
    pub key: String,
    /// Mount the key as a read-only file and set the variable to its path (for variables that
    /// name a file: `HF_TOKEN_PATH`, `GOOGLE_APPLICATION_CREDENTIALS`,
    /// `AWS_SHARED_CREDENTIALS_FILE`). Default false: the variable holds the value.
    #[serde(default)]
    pub file: bool,
}

/// How a model's pods reach artifact storage.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Storage {
    /// `workload`: a cloud identity that may read the bucket of `modelUri` (and `buckets`),
    /// bound to a Kubernetes ServiceAccount the model's pods run as (GKE Workload Identity,
    /// EKS Pod Identity, AKS Workload Identity); `mldeploy infra` creates and binds it.
    /// `none`: no identity (a public bucket, or `storageSecret`).
    pub identity: Option<IdentityMode>,
    /// Name of the cloud identity (GCP service account id, AWS IAM role, Azure managed identity)
    /// and of its Kubernetes ServiceAccount. Default `<project>-<environment>-storage`
    /// (shortened to 30 characters on GCP). Models with the same name share the identity.
    pub name: Option<String>,
    /// More buckets the identity may read (`gs://bucket`, `s3://bucket`,
    /// `https://<account>.blob.core.windows.net/<container>`); the bucket of `modelUri` (and
    /// of a canary's) is always included. Custom images that read a bucket list it here.
    pub buckets: Option<Vec<String>>,
    /// AKS: client id of the managed identity, known once `mldeploy infra apply` has created
    /// it (it prints it; `terraform output storage_identities`).
    pub client_id: Option<String>,
}

/// Whether a model uses a workload identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IdentityMode {
    /// The cloud's workload identity.
    Workload,
    /// None.
    None,
}

/// A key of a Secret.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: Option<String>,
    /// Key in the Secret. Default `HF_TOKEN`.
    pub key: Option<String>,
}

/// What vLLM is told about a language model. Everything is optional: vLLM reads the rest from
/// the model's own config.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Llm {
    /// Which KServe object serves it (runtime `kserve`): `inferenceservice` (default; KServe's
    /// Hugging Face runtime with the vLLM backend) or `llmisvc` (an LLMInferenceService,
    /// `serving.kserve.io/v1alpha2`, which needs KServe's LLM controller and a Gateway).
    pub kind: Option<LlmKind>,
    /// Parameter count (`7b`, `0.5b`, `70b`, `1.5B`, `500m`): with the dtype or quantization,
    /// validation checks that the weights fit the GPUs.
    pub params: Option<Scalar>,
    /// Longest context in tokens (`--max-model-len`). Default: the model's own.
    pub max_model_len: Option<i64>,
    /// Weight and activation type (`--dtype`). Default `auto` (the checkpoint's, usually
    /// bfloat16).
    pub dtype: Option<Dtype>,
    /// Quantization method of the checkpoint (`--quantization`).
    pub quantization: Option<Quantization>,
    /// Share of each GPU's memory vLLM may use, above 0 and at most 1
    /// (`--gpu-memory-utilization`). Default 0.9.
    pub gpu_memory_utilization: Option<f64>,
    /// GPUs one model replica is split across (`--tensor-parallel-size`). Default: the GPU
    /// count; it must divide it.
    pub tensor_parallel: Option<i64>,
    /// More `vllm serve` arguments, passed as written (`--enable-prefix-caching`).
    pub extra_args: Option<Vec<String>>,
    /// vLLM image of runtime `deployment`. Default: `vllm/vllm-openai` at the tag mldeploy pins
    /// (`mldeploy schema` and docs/llm.md name it); pin your own tag or mirror here.
    pub image: Option<String>,
}

/// The KServe object of a language model.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LlmKind {
    /// An InferenceService with KServe's Hugging Face runtime (vLLM backend).
    Inferenceservice,
    /// An LLMInferenceService (`serving.kserve.io/v1alpha2`).
    Llmisvc,
}

/// Weight type of a language model (vLLM `--dtype`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// The checkpoint's own (bfloat16 or float16 for current models).
    Auto,
    /// 16-bit float (`half`).
    #[serde(alias = "half")]
    Float16,
    /// 16-bit brain float.
    Bfloat16,
    /// 32-bit float (`float`).
    #[serde(alias = "float")]
    Float32,
}

impl Dtype {
    /// The `--dtype` value.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Auto => "auto",
            Dtype::Float16 => "float16",
            Dtype::Bfloat16 => "bfloat16",
            Dtype::Float32 => "float32",
        }
    }
}

/// Quantization method of a checkpoint (vLLM `--quantization`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// AWQ, 4-bit weights.
    Awq,
    /// GPTQ, 4-bit weights.
    Gptq,
    /// FP8 weights (Ada, Hopper and newer GPUs).
    Fp8,
    /// bitsandbytes, 4-bit weights quantized at load.
    Bitsandbytes,
}

impl Quantization {
    /// The `--quantization` value.
    pub fn name(self) -> &'static str {
        match self {
            Quantization::Awq => "awq",
            Quantization::Gptq => "gptq",
            Quantization::Fp8 => "fp8",
            Quantization::Bitsandbytes => "bitsandbytes",
        }
    }
}

/// A PersistentVolumeClaim for a model's weights.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cache {
    /// Size as a Kubernetes quantity (`200Gi`): room for the weights, with some to spare.
    pub size: Option<Scalar>,
    /// StorageClass. Default: the cluster's default class.
    pub storage_class: Option<String>,
    /// `ReadWriteOnce` (default: replicas share it only on one node) or `ReadWriteMany` (a
    /// class that supports it, such as Filestore, EFS or Azure Files, for replicas on many nodes).
    pub access_mode: Option<AccessMode>,
}

/// Access mode of a PersistentVolumeClaim.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
pub enum AccessMode {
    /// Mounted read-write by one node.
    ReadWriteOnce,
    /// Mounted read-write by many nodes.
    ReadWriteMany,
}

impl AccessMode {
    /// The Kubernetes name.
    pub fn name(self) -> &'static str {
        match self {
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
            AccessMode::ReadWriteMany => "ReadWriteMany",
        }
    }
}

/// Horizontal autoscaling bounds, and what to scale on.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Autoscale {
    /// Minimum replicas (required). 0 scales to zero: on runtime `kserve` (Knative, or KEDA
    /// with a `metric`) and on runtime `deployment` with a `metric` (KEDA).
    pub min: Option<i64>,
    /// Maximum replicas (required).
    pub max: Option<i64>,
    /// Target average CPU utilisation, percent. Default 80 without a `metric`; with one, CPU is
    /// a second signal only when this is set.
    pub cpu_utilization: Option<i64>,
    /// Scale on a Prometheus metric through KEDA (runtimes `deployment` and `kserve`): a vLLM
    /// preset (`requestsWaiting`, `kvCacheUsage`) or `{query: '<PromQL>', target: N}`.
    pub metric: Option<Metric>,
    /// How long the metric must stay at zero before KEDA scales a `min: 0` model to zero
    /// (`10m`, `300s`). Default 5m. Runtime `deployment` only (KServe uses KEDA's default).
    pub cooldown: Option<Scalar>,
    /// How often KEDA reads the metric (`15s`). Default 15s. Runtime `deployment` only.
    pub polling_interval: Option<Scalar>,
}

/// What KEDA scales a model on: a named vLLM preset, or a PromQL query and its target.
///
/// Written as a preset name (`metric: requestsWaiting`) or as a map (`metric: {query: ...,
/// target: 5}`, `metric: {preset: kvCacheUsage, target: 0.7}`).
#[derive(Clone, Debug, Default)]
pub struct Metric {
    /// A vLLM preset.
    pub preset: Option<MetricPreset>,
    /// A PromQL query whose value is the total over all replicas.
    pub query: Option<String>,
    /// The query's value per replica at which another replica is added.
    pub target: Option<Scalar>,
}

/// The map form of [`Metric`].
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricFields {
    /// A vLLM preset (exclusive with `query`).
    pub preset: Option<MetricPreset>,
    /// A PromQL query whose value is the total over all replicas, e.g.
    /// `sum(vllm:num_requests_running{namespace="llm"})`. KEDA runs
    /// `ceil(value / target)` replicas.
    pub query: Option<String>,
    /// The query's value per replica (`5`, `0.8`). Required with `query`; presets have a
    /// default.
    pub target: Option<Scalar>,
}

/// The written forms of [`Metric`], for the JSON Schema.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum MetricForms {
    /// A preset by name.
    Preset(MetricPreset),
    /// A preset with its own target, or a query and target.
    Fields(MetricFields),
}

impl JsonSchema for Metric {
    fn schema_name() -> Cow<'static, str> {
        "Metric".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        MetricForms::json_schema(g)
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IntoDeserializer, MapAccess, Visitor, value::MapAccessDeserializer};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metric;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a preset name (requestsWaiting, kvCacheUsage) or {query, target}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Metric, E> {
                let preset = MetricPreset::deserialize(v.into_deserializer())?;
                Ok(Metric {
                    preset: Some(preset),
                    ..Metric::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Metric, A::Error> {
                let f = MetricFields::deserialize(MapAccessDeserializer::new(map))?;
                Ok(Metric {
                    preset: f.preset,
                    query: f.query,
                    target: f.target,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A named PromQL query over vLLM's metrics (docs/config.md lists the queries).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum MetricPreset {
    /// Requests queued in vLLM's scheduler (`vllm:num_requests_waiting`), summed over the
    /// replicas; default target 5 per replica.
    RequestsWaiting,
    /// KV-cache usage (`vllm:kv_cache_usage_perc`, 0 to 1), summed over the replicas; default
    /// target 0.8 per replica.
    KvCacheUsage,
}

impl MetricPreset {
    /// The name used in the config.
    pub fn name(self) -> &'static str {
        match self {
            MetricPreset::RequestsWaiting => "requestsWaiting",
            MetricPreset::KvCacheUsage => "kvCacheUsage",
        }
    }
}

/// A canary: the new image or artifact and its share of traffic.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Canary {
    /// New image (for image models).
    pub image: Option<String>,
    /// New artifact (for server models).
    pub model_uri: Option<String>,
    /// Percent of traffic sent to the canary, 0–100 (required).
    pub traffic: Option<i64>,
}

/// Where a cluster runs.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// Google Kubernetes Engine.
    Gcp,
    /// Amazon EKS.
    Aws,
    /// Azure Kubernetes Service.
    Azure,
    /// An existing cluster (k3s, kubeadm, …).
    Onprem,
}

impl Cloud {
    /// All clouds, in catalog order.
    pub const ALL: [Cloud; 4] = [Cloud::Gcp, Cloud::Aws, Cloud::Azure, Cloud::Onprem];

    /// The name used in the config.
    pub fn name(self) -> &'static str {
        match self {
            Cloud::Gcp => "gcp",
            Cloud::Aws => "aws",
            Cloud::Azure => "azure",
            Cloud::Onprem => "onprem",
        }
    }
}

/// Kubernetes distribution of an on-prem cluster.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// k3s (GPU pods need `runtimeClassName: nvidia`).
    K3s,
    /// kubeadm.
    Kubeadm,
    /// Anything else.
    Other,
}

/// A Kubernetes cluster.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cluster {
    /// gcp, aws, azure or onprem.
    pub cloud: Cloud,
    /// Cloud region (not for onprem).
    pub region: Option<String>,
    /// GCP settings (cloud: gcp).
    pub gcp: Option<GcpSettings>,
    /// AWS settings (cloud: aws).
    pub aws: Option<AwsSettings>,
    /// Azure settings (cloud: azure).
    pub azure: Option<AzureSettings>,
    /// Kubernetes minor version, e.g. "1.30".
    pub kubernetes_version: Option<Scalar>,
    /// Node pools (managed clusters only).
    #[serde(default)]
    pub node_pools: Vec<NodePool>,
    /// kubeconfig context of the cluster.
    pub context: Option<String>,
    /// Distribution of an on-prem cluster: k3s, kubeadm or other.
    pub distribution: Option<Distribution>,
    /// Where Terraform keeps the cluster's state (`mldeploy infra`): one backend. Default on
    /// onprem: a Secret in the cluster itself; managed clusters need one to run `infra`.
    pub state: Option<State>,
    /// Who may reach the Kubernetes API server (managed clusters).
    #[serde(default)]
    pub control_plane: ControlPlane,
    /// Security settings of a managed cluster, each on by default; `false` opts out
    /// (docs/security.md says what each one does per cloud).
    #[serde(default)]
    pub hardening: Hardening,
    /// CPU architecture of an onprem cluster's nodes: amd64 (default) or arm64 (an edge box).
    /// Every pod then selects `kubernetes.io/arch`; a Jetson GPU implies arm64.
    pub arch: Option<Arch>,
    /// The GPUs of an onprem cluster's nodes (mldeploy does not manage its nodes): with `share`
    /// or `mig`, the GPU operator is set up to time-slice or partition them.
    #[serde(default)]
    pub gpus: Vec<GpuRequest>,
}

/// Access to a managed cluster's API server.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlPlane {
    /// CIDR ranges allowed to reach the API server (`203.0.113.0/24`). Default: anywhere
    /// (`0.0.0.0/0`), which `validate` warns about; Terraform and mldeploy need to be inside.
    #[serde(default)]
    pub authorized_networks: Vec<String>,
    /// Give the API server a private endpoint only (reachable from the VPC / VNet). Default false.
    #[serde(default)]
    pub private_endpoint: bool,
}

/// Cluster hardening switches, all on by default.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hardening {
    /// Nodes without public IPs (GKE private nodes + Cloud NAT; EKS and AKS nodes are private
    /// already).
    #[serde(default = "yes")]
    pub private_nodes: bool,
    /// Enforce NetworkPolicies (GKE Dataplane V2, AKS Cilium, EKS VPC CNI network policy).
    #[serde(default = "yes")]
    pub network_policy: bool,
    /// Shielded nodes with Secure Boot (GKE; EKS and AKS GPU nodes cannot, see docs).
    #[serde(default = "yes")]
    pub secure_boot: bool,
    /// Control-plane and node logs to the cloud's service (Cloud Logging, CloudWatch, Azure
    /// Monitor).
    #[serde(default = "yes")]
    pub cloud_logging: bool,
    /// AKS: ephemeral OS disks on VM sizes with a local disk.
    #[serde(default = "yes")]
    pub ephemeral_os_disk: bool,
    /// AKS: encryption at host (temp disks and caches; the subscription needs the
    /// `Microsoft.Compute/EncryptionAtHost` feature).
    #[serde(default = "yes")]
    pub encryption_at_host: bool,
}

impl Default for Hardening {
    fn default() -> Self {
        Hardening {
            private_nodes: true,
            network_policy: true,
            secure_boot: true,
            cloud_logging: true,
            ephemeral_os_disk: true,
            encryption_at_host: true,
        }
    }
}

/// CPU architecture of nodes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// x86-64.
    Amd64,
    /// 64-bit ARM (Jetson, Graviton, Ampere).
    Arm64,
}

impl Arch {
    /// The `kubernetes.io/arch` value.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// Where Terraform keeps a cluster's state: exactly one of the backends.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct State {
    /// A Google Cloud Storage bucket (gcp clusters).
    pub gcs: Option<GcsState>,
    /// An S3 bucket, with a DynamoDB table for locking (aws clusters).
    pub s3: Option<S3State>,
    /// A blob container of an Azure Storage account (azure clusters).
    pub azurerm: Option<AzurermState>,
    /// A file on this machine (any cluster; nobody else can use or lock it).
    pub local: Option<LocalState>,
    /// A Secret in the cluster itself (onprem clusters; the default there).
    pub kubernetes: Option<KubernetesState>,
}

/// State in a GCS bucket.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GcsState {
    /// Bucket name (without `gs://`); it must exist, ideally with object versioning on.
    pub bucket: String,
    /// Folder of the state in the bucket. Default `<project>/<cluster>`.
    pub prefix: Option<String>,
}

/// State in an S3 bucket.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct S3State {
    /// Bucket name (without `s3://`); it must exist, ideally with versioning on.
    pub bucket: String,
    /// Region of the bucket. Default: the cluster's region.
    pub region: Option<String>,
    /// DynamoDB table that holds the lock (partition key `LockID`, a string).
    pub dynamodb_table: String,
    /// Object key of the state. Default `<project>/<cluster>/terraform.tfstate`.
    pub key: Option<String>,
}

/// State in an Azure Storage blob container.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AzurermState {
    /// Resource group of the storage account. Default: the cluster's `azure.resourceGroup`.
    pub resource_group: Option<String>,
    /// Storage account name.
    pub storage_account: String,
    /// Blob container name.
    pub container: String,
    /// Blob name of the state. Default `<project>/<cluster>.tfstate`.
    pub key: Option<String>,
}

/// State in a local file.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalState {
    /// State file, relative to this config's folder. Default: `terraform.tfstate` in the
    /// working directory of `mldeploy infra` (`.mldeploy/infra/<project>.<cluster>/`).
    pub path: Option<String>,
}

/// State in a Kubernetes Secret (`tfstate-default-<secretSuffix>`).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesState {
    /// Suffix of the Secret's name. Default `<project>.<cluster>.state`.
    pub secret_suffix: Option<String>,
    /// Namespace of the Secret. Default `kube-system`.
    pub namespace: Option<String>,
}

/// GCP settings.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GcpSettings {
    /// GCP project id.
    pub project: String,
    /// Zone for a zonal cluster (default: regional).
    pub zone: Option<String>,
}

/// AWS settings.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsSettings {
    /// Existing VPC id (default: a new VPC).
    pub vpc_id: Option<String>,
    /// Existing subnet ids.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
}

/// Azure settings.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AzureSettings {
    /// Resource group of the cluster.
    pub resource_group: String,
}

/// A node pool of a managed cluster.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodePool {
    /// Pool name (DNS-1123 label).
    pub name: String,
    /// Cloud-agnostic size; mapped to the smallest fitting general-purpose type.
    pub machine: Option<Machine>,
    /// Raw cloud machine type (overrides `machine` and the GPU default).
    pub machine_type: Option<String>,
    /// GPUs per node.
    pub gpu: Option<GpuRequest>,
    /// Minimum nodes. Default 0 for GPU pools, 1 otherwise.
    pub min: Option<i64>,
    /// Maximum nodes. Default: max(min, 1).
    pub max: Option<i64>,
    /// Use spot / preemptible capacity.
    #[serde(default)]
    pub spot: bool,
    /// Boot disk size in GB. Default 100.
    pub disk_size_gb: Option<i64>,
}

/// A cloud-agnostic machine size.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Machine {
    /// vCPUs.
    pub cpu: Scalar,
    /// Memory as a Kubernetes quantity (`16Gi`).
    pub memory: Scalar,
}

/// An environment: a cluster, a namespace and overrides.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Environment {
    /// Name of a cluster under `clusters`.
    pub cluster: String,
    /// Namespace. Default: the project name.
    pub namespace: Option<String>,
    /// Changes to `defaults` and to models (by name) in this environment; `null` removes a field.
    #[serde(default)]
    pub overrides: Overrides,
    /// NetworkPolicies of the namespace: on by default (deny ingress except serving traffic).
    #[serde(default)]
    pub network_policy: NetworkPolicy,
    /// A production environment: `validate` warns about images by mutable tag (pin them by
    /// digest, `repo@sha256:…`).
    #[serde(default)]
    pub production: bool,
    /// A weight cache for every language model (`server: vllm`) of the environment that does
    /// not set its own `cache`: one claim per model, of this size and class.
    pub cache: Option<Cache>,
    /// The Prometheus server KEDA reads `autoscale.metric` from. Default: the one
    /// kube-prometheus-stack runs when `monitoring.prometheus` is on,
    /// `http://kube-prometheus-stack-prometheus.monitoring.svc:9090`.
    pub prometheus_address: Option<String>,
}

/// NetworkPolicies mldeploy renders in an environment's namespace.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicy {
    /// Render the policies (default-deny ingress, then serving, scraping and operator traffic).
    /// Default true; `false` leaves the namespace open (the cluster's own policies apply).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Namespaces whose pods may call the models (the namespace itself always may); `"*"`:
    /// every namespace.
    #[serde(default)]
    pub allow_from: Vec<String>,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        NetworkPolicy {
            enabled: true,
            allow_from: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// Per-environment overrides.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Overrides {
    /// Changes to `defaults`.
    pub defaults: Option<ModelSpec>,
    /// Changes to models, by model name.
    #[serde(default)]
    pub models: BTreeMap<String, ModelSpec>,
}

/// Monitoring settings.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Monitoring {
    /// Render a ServiceMonitor per model and install kube-prometheus-stack.
    #[serde(default)]
    pub prometheus: bool,
    /// Render a Grafana dashboard ConfigMap.
    #[serde(default)]
    pub grafana_dashboard: bool,
}

/// GitOps engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GitopsEngine {
    /// Argo CD Application.
    Argocd,
    /// Flux GitRepository + Kustomization.
    Flux,
}

/// GitOps repository settings.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Gitops {
    /// argocd or flux.
    pub engine: GitopsEngine,
    /// Git repository URL.
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    /// Branch, tag or commit. Default `main`.
    pub revision: Option<String>,
    /// Folder in the repository. Default `deploy`.
    pub path: Option<String>,
}
