//! The fully resolved context templates receive. All logic lives here (names, labels, selectors,
//! GPU scheduling per platform, machine types, runtime specifics); templates only lay it out.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::catalog;
use crate::catalog::Vendor;
use crate::config::{Cloud, Distribution, MetricPreset, Runtime, Server};
use crate::model::{ClusterModel, Env, GpuUse, Model, Project, Source, StateBackend};
use crate::platform::{self, MigSupport, SharingSupport};
use crate::runtime::{self, GpuPlacement, MetricsService};
use crate::security;

/// Label values are limited to 63 characters.
const MAX_LABEL: usize = 63;

/// What every template of an environment sees.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvContext<'a> {
    /// Project name and labels.
    pub project: ProjectCtx<'a>,
    /// Environment.
    pub env: EnvCtx<'a>,
    /// The environment's cluster.
    pub cluster: &'a ClusterModel,
    /// Labels for environment-level objects.
    pub labels: BTreeMap<String, String>,
    /// Monitoring switches.
    pub monitoring: crate::model::Monitoring,
    /// Every model of the environment. Not serialized with the rest: [`super::render_env`]
    /// converts each model into a template value once and gives that value to both the model's
    /// own templates and the environment's.
    #[serde(skip)]
    pub models: Vec<ModelCtx>,
    /// Seldon Core v2 Servers with GPUs, one per distinct (server config, GPU request) of the
    /// environment's models; CPU-only models use the shared default Servers.
    pub seldon_v2_servers: Vec<SeldonServerCtx>,
    /// Pod Security level and NetworkPolicies of the namespace.
    pub security: EnvSecurityCtx,
    /// ServiceAccounts of the workload identities the environment's models use.
    pub identities: Vec<IdentityAccountCtx>,
    /// The image signature policy, with the images it covers.
    pub image_policy: Option<ImagePolicyCtx>,
    /// The Grafana dashboards of the models: one, or one per [`DASHBOARD_MODELS`] models.
    pub dashboards: Vec<DashboardCtx>,
}

/// Models per Grafana dashboard. A ConfigMap holds at most 1 MiB and each model's panels take
/// about 2 KiB (4.5 KiB with the vLLM row): 100 models stay well below the limit, so a large
/// environment gets several dashboards instead of one the API server refuses.
pub const DASHBOARD_MODELS: usize = 100;

/// One Grafana dashboard: a ConfigMap holding the panels of `models[start:end]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardCtx {
    /// ConfigMap name.
    pub name: String,
    /// File name in the ConfigMap's data.
    pub key: String,
    /// Dashboard title.
    pub title: String,
    /// Dashboard uid (at most 40 characters, as Grafana wants).
    pub uid: String,
    /// First model (index into `models`).
    pub start: usize,
    /// One past the last model.
    pub end: usize,
}

/// The dashboards of `models` models: the first keeps the names a single dashboard always had.
fn dashboards(project: &str, env: &str, models: usize) -> Vec<DashboardCtx> {
    let parts = models.div_ceil(DASHBOARD_MODELS).max(1);
    let base = format!("{project}-{env}");
    let uid_base = format!("mldeploy-{base}");
    (0..parts)
        .map(|i| {
            // Later parts are `-2`, `-3`, …; the uid keeps its 40-character limit with the tail.
            let tail = if i == 0 {
                String::new()
            } else {
                format!("-{}", i + 1)
            };
            let uid: String = uid_base.chars().take(40 - tail.len()).collect();
            let of = if parts == 1 {
                String::new()
            } else {
                format!(" ({}/{parts})", i + 1)
            };
            DashboardCtx {
                name: format!("{base}-dashboard{tail}"),
                key: format!("{base}{tail}.json"),
                title: format!("mldeploy · {project} · {env}{of}"),
                uid: format!("{uid}{tail}"),
                start: i * DASHBOARD_MODELS,
                end: ((i + 1) * DASHBOARD_MODELS).min(models),
            }
        })
        .collect()
}

/// A workload identity's ServiceAccount.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityAccountCtx {
    /// Name (the cloud identity's too).
    pub name: String,
    /// The cloud's binding annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A Kyverno ClusterPolicy that admits only images signed with the project's cosign key.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicyCtx {
    /// Object name.
    pub name: String,
    /// The public key, PEM.
    pub public_key: String,
    /// `Enforce` or `Audit`.
    pub action: &'static str,
    /// Image references (repositories of the custom images, with `*` for tags and digests).
    pub images: Vec<String>,
}

/// How a model's pods take on its workload identity.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelIdentityCtx {
    /// The identity's ServiceAccount.
    pub service_account: String,
    /// Labels the cloud's webhook needs on the pods.
    pub pod_labels: BTreeMap<String, String>,
    /// rclone remote configured to take credentials from the pod's identity (Seldon).
    pub rclone: Option<RcloneCtx>,
}

/// An rclone remote that reads the bucket with the pod's identity (no keys in it).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RcloneCtx {
    /// Secret holding the configuration (it holds no credential).
    pub secret: String,
    /// Remote name: the modelUri's scheme (`gs`, `s3`).
    pub remote: &'static str,
    /// rclone backend type.
    pub kind: &'static str,
    /// Options of the remote, sorted.
    pub options: Vec<EnvVar>,
    /// Seldon Core v1: options as `RCLONE_CONFIG_<REMOTE>_<OPTION>` variables; else as the JSON
    /// document Seldon Core v2's agent reads (`json`).
    pub as_env: bool,
    /// The remote as Seldon Core v2's agent reads it: `{"name", "type", "parameters"}`.
    pub json: String,
}

/// A Secret key mounted as a file, its path given to the container in a variable.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretFileCtx {
    /// Variable set to the file's path.
    pub name: String,
    /// Secret.
    pub secret: String,
    /// Key.
    pub key: String,
    /// Volume name.
    pub volume: String,
    /// Folder the file is mounted in.
    pub mount_path: String,
    /// The file.
    pub path: String,
}

/// Where Secret files are mounted (`<dir>/<variable>/<key>`).
const SECRET_FILES_DIR: &str = "/var/run/secrets/mldeploy";

/// Namespace-wide security settings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvSecurityCtx {
    /// Pod Security level enforced on the namespace (`restricted` or `baseline`).
    pub pod_security: &'static str,
    /// Whether NetworkPolicies are rendered.
    pub network_policies: bool,
    /// Namespaces (by name) whose pods may call the models.
    pub allow_from: Vec<String>,
    /// Every namespace may call the models (`allowFrom: ["*"]`).
    pub allow_from_all: bool,
    /// Namespace of Prometheus, when scraping is on.
    pub prometheus_namespace: Option<&'static str>,
    /// Namespaces whose pods reach every pod of the namespace (Seldon Core v2's operator), when
    /// the runtime's own pods talk to each other on any port.
    pub intra_namespace: Option<Vec<&'static str>>,
    /// The cloud's workload identity endpoints that pods fetching artifacts may reach.
    pub identity_endpoints: &'static [IdentityEndpoint],
}

/// An address and port a pod calls to get cloud credentials.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityEndpoint {
    /// CIDR.
    pub cidr: &'static str,
    /// TCP port.
    pub port: u16,
}

/// Security settings of a model's pods.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSecurityCtx {
    /// UID/GID of the model container, when the runtime sets one.
    pub run_as_user: Option<u32>,
    /// emptyDir volumes for the paths the server writes.
    pub writable: Vec<WritablePath>,
    /// Labels that select every pod of the model, for its NetworkPolicies (empty: the runtime
    /// has no per-model pods).
    pub pod_selector: BTreeMap<String, String>,
    /// Ports clients reach (empty: any).
    pub ports: Vec<u16>,
    /// Namespaces of the runtime's gateways and operators that call the pods.
    pub control_namespaces: &'static [&'static str],
    /// Whether egress is limited (pods that fetch the artifact from cloud storage).
    pub restrict_egress: bool,
}

/// A path written under a read-only root filesystem.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WritablePath {
    /// Volume name.
    pub name: String,
    /// Mount path.
    pub path: &'static str,
}

/// A Seldon Core v2 Server of mldeploy's (GPUs, or a workload identity), and the models pinned
/// to it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeldonServerCtx {
    /// Object name (`mlserver-a100-80gb-1`).
    pub name: String,
    /// ServerConfig (`mlserver` or `triton`), also the name of its server container.
    pub server_config: &'static str,
    /// Extended resource and count of the server container's GPU limit (None with a claim).
    pub gpu_resource: Option<String>,
    /// GPUs (or slices) per replica.
    pub gpu: u32,
    /// Where its pods go.
    pub scheduling: SchedulingCtx,
    /// Replicas: the most that any model on it needs at least.
    pub min_replicas: u32,
    /// The most that any model on it may scale to.
    pub max_replicas: u32,
    /// Models placed on it.
    pub models: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The workload identity's ServiceAccount its pods run as (they fetch the artifacts).
    pub service_account: Option<String>,
}

/// The Server a model is pinned to, for runtimes that place models on Servers: one of its own
/// when it has GPUs or (rows with `identity.own_server`) a workload identity, named by the server
/// config, the GPU request and the identity.
fn gpu_server_name(m: &Model) -> Option<(String, &'static str, Option<&GpuUse>)> {
    let row = runtime::spec(m.runtime);
    if row.gpus != GpuPlacement::Server {
        return None;
    }
    let Source::Prepackaged { server, .. } = &m.source else {
        return None;
    };
    let identity = m
        .identity
        .as_ref()
        .filter(|_| row.security.identity.own_server);
    if m.gpu.is_none() && identity.is_none() {
        return None;
    }
    let config = runtime::server(*server).seldon_v2_server_config;
    let mut name = config.to_string();
    if let Some(gpu) = &m.gpu {
        let cut = match (gpu.mig, gpu.shared) {
            (Some(profile), _) => format!("-mig-{}", profile.replace('.', "-")),
            (None, true) => "-shared".to_string(),
            (None, false) => String::new(),
        };
        name.push_str(&format!("-{}{cut}-{}", gpu.kind, gpu.count));
    }
    if let Some(id) = identity {
        name.push('-');
        name.push_str(&id.name);
    }
    Some((name, config, m.gpu.as_ref()))
}

/// The Servers of an environment's models that need their own (sorted by name, so the output
/// is stable).
fn seldon_v2_servers(
    cluster: &ClusterModel,
    env: &Env,
    labels: &BTreeMap<String, String>,
) -> Vec<SeldonServerCtx> {
    let mut out: BTreeMap<String, SeldonServerCtx> = BTreeMap::new();
    for m in &env.models {
        let Some((name, config, gpu)) = gpu_server_name(m) else {
            continue;
        };
        let (low, high) = m
            .autoscale
            .as_ref()
            .map_or((m.replicas, m.replicas), |a| (a.min, a.max));
        let s = out.entry(name.clone()).or_insert_with(|| {
            let mut l = labels.clone();
            l.insert("app.kubernetes.io/name".into(), name.clone());
            l.insert("mldeploy.io/runtime".into(), m.runtime.name().into());
            SeldonServerCtx {
                name: name.clone(),
                server_config: config,
                gpu_resource: gpu.and_then(|g| gpu_resource(cluster, g)),
                gpu: gpu.map_or(0, |g| g.count),
                scheduling: scheduling(cluster, gpu),
                min_replicas: 0,
                max_replicas: 0,
                models: Vec::new(),
                labels: l,
                service_account: m.identity.as_ref().map(|i| i.name.clone()),
            }
        });
        s.min_replicas = s.min_replicas.max(low.max(1));
        // Server replicas each hold a replica of every model on it (a canary is a second Model
        // on the same Server), so the Server scales as its busiest model does.
        s.max_replicas = s.max_replicas.max(high.max(1));
        s.models.push(m.name.clone());
    }
    out.into_values()
        .map(|mut s| {
            s.max_replicas = s.max_replicas.max(s.min_replicas);
            s
        })
        .collect()
}

/// Project data.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectCtx<'a> {
    /// Name.
    pub name: &'a str,
    /// User labels.
    pub labels: &'a BTreeMap<String, String>,
}

/// Environment data.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvCtx<'a> {
    /// Name.
    pub name: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// ServiceAccount the model pods run as.
    pub service_account: &'a str,
}

/// One model, ready to lay out.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelCtx {
    /// Object name.
    pub name: String,
    /// Runtime name (`seldon`, `seldon-v2`, `kserve`, `deployment`).
    pub runtime: &'static str,
    /// Custom image, if any.
    pub image: Option<String>,
    /// Container port of a custom image.
    pub port: Option<u16>,
    /// Prepackaged server, if any.
    pub server: Option<ServerCtx>,
    /// Model artifact URI.
    pub model_uri: Option<String>,
    /// Secret with storage credentials.
    pub storage_secret: Option<String>,
    /// ServiceAccount that carries the storage Secret (KServe reads credentials through it).
    pub storage_service_account: Option<String>,
    /// The ServiceAccount the model's pods run as: its workload identity's, else the storage
    /// Secret's (KServe), else the environment's.
    pub service_account: String,
    /// Its workload identity, if any.
    pub identity: Option<ModelIdentityCtx>,
    /// `secretEnv` entries mounted as files (`file: true`).
    pub secret_files: Vec<SecretFileCtx>,
    /// Desired (or minimum) replicas.
    pub replicas: u32,
    /// Requests (and limits) as Kubernetes quantities.
    pub resources: ResourcesCtx,
    /// Labels of every object of the model.
    pub labels: BTreeMap<String, String>,
    /// The subset that selects the model's pods.
    pub selector: BTreeMap<String, String>,
    /// Where GPU pods go.
    pub scheduling: SchedulingCtx,
    /// Plain environment variables, sorted by name.
    pub env: Vec<EnvVar>,
    /// Variables from Secrets, in config order (those with `file: true` are in `secretFiles`).
    pub secret_env: Vec<crate::config::SecretEnv>,
    /// Autoscaling.
    pub autoscale: Option<AutoscaleCtx>,
    /// PromQL label matchers that select the model's vLLM pods (`namespace="…", pod=~"…"`), when
    /// vLLM serves it: the dashboard's LLM panels and the autoscaling presets use them.
    pub vllm_selector: Option<String>,
    /// Canary.
    pub canary: Option<CanaryCtx>,
    /// The main version and, with a canary, the canary: for runtimes that list them side by side.
    pub versions: Vec<VersionCtx>,
    /// Whether a PodDisruptionBudget is worth having (more than one replica at all times).
    pub disruption_budget: bool,
    /// How Prometheus finds the model's metrics endpoint.
    pub metrics: MetricsCtx,
    /// The GPU Server the model is pinned to (Seldon Core v2 models with GPUs).
    pub gpu_server: Option<String>,
    /// Pod hardening and NetworkPolicy inputs.
    pub security: ModelSecurityCtx,
    /// Language-model settings (`server: vllm`).
    pub llm: Option<super::llm::LlmCtx>,
    /// Secrets the storage ServiceAccount carries (`storageSecret`, and the Hugging Face token
    /// that KServe's storage initializer reads from there).
    pub storage_secrets: Vec<String>,
}

/// A model's autoscaling.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscaleCtx {
    /// Minimum replicas (0: scale to zero).
    pub min: u32,
    /// Maximum replicas.
    pub max: u32,
    /// CPU target percent, when CPU is a signal.
    pub cpu_utilization: Option<u32>,
    /// KEDA's settings, when it scales on a metric.
    pub keda: Option<KedaCtx>,
}

/// A KEDA Prometheus trigger and its timing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KedaCtx {
    /// Prometheus server URL.
    pub server_address: String,
    /// PromQL whose value is the total over the model's replicas.
    pub query: String,
    /// The value per replica (KEDA's `threshold`, KServe's `target.value`), as text.
    pub threshold: String,
    /// With a preset and `min: 0`: PromQL that is 1 while the model serves any request. A
    /// second trigger on it keeps one replica up while requests run without queueing (KEDA scales
    /// to zero only when every trigger is idle, and the queue alone is often empty under load).
    pub activity_query: Option<String>,
    /// Seconds idle before scaling to zero.
    pub cooldown_period: u32,
    /// Seconds between reads.
    pub polling_interval: u32,
}

/// The PromQL of a vLLM preset over the pods `selector` matches: a total over the replicas, so
/// that KEDA's `ceil(total / target)` is the replica count.
pub fn preset_query(preset: MetricPreset, selector: &str) -> String {
    let metric = match preset {
        MetricPreset::RequestsWaiting => "vllm:num_requests_waiting",
        MetricPreset::KvCacheUsage => "vllm:kv_cache_usage_perc",
    };
    format!("sum({metric}{{{selector}}})")
}

/// PromQL that is 1 while vLLM runs any request on the pods `selector` matches, else 0 (or
/// nothing, at zero replicas).
pub fn activity_query(selector: &str) -> String {
    format!("clamp_max(sum(vllm:num_requests_running{{{selector}}}), 1)")
}

/// PromQL label matchers for the pods of the Deployment `workload` in `namespace`: Deployment
/// pods are `<workload>-<replicaset hash>-<pod suffix>`, so another model whose name starts with
/// this one's (`qwen`, `qwen-big`) is not matched (PromQL regexes are anchored).
pub fn pod_selector(namespace: &str, workload: &str) -> String {
    format!("namespace=\"{namespace}\", pod=~\"{workload}-[a-z0-9]+-[a-z0-9]+\"")
}

/// Text of a number as KEDA and Kubernetes quantities take it: `5`, `0.8`.
fn number_text(v: f64) -> String {
    format!("{v}")
}

fn autoscale_context(env: &Env, m: &Model, vllm_selector: Option<&str>) -> Option<AutoscaleCtx> {
    let a = m.autoscale.as_ref()?;
    let keda = a.metric.as_ref().map(|metric| {
        let query = match (&metric.query, metric.preset) {
            (Some(q), _) => q.clone(),
            (None, Some(p)) => preset_query(p, vllm_selector.unwrap_or_default()),
            (None, None) => String::new(),
        };
        let activity_query = metric
            .preset
            .filter(|_| a.min == 0)
            .map(|_| activity_query(vllm_selector.unwrap_or_default()));
        KedaCtx {
            server_address: env
                .prometheus_address
                .clone()
                .unwrap_or_else(|| crate::model::DEFAULT_PROMETHEUS_ADDRESS.to_string()),
            query,
            activity_query,
            threshold: number_text(metric.target),
            cooldown_period: metric.cooldown_seconds,
            polling_interval: metric.polling_seconds,
        }
    });
    Some(AutoscaleCtx {
        min: a.min,
        max: a.max,
        cpu_utilization: a.cpu_utilization,
        keda,
    })
}

/// Runtime-specific names of a prepackaged server (its [`crate::runtime::ServerSpec`] row).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerCtx {
    /// Config name (`xgboost`).
    pub name: &'static str,
    /// The row: `seldonImplementation`, `kserveFormat`, `seldonV2Requirements`, ….
    #[serde(flatten)]
    pub spec: &'static crate::runtime::ServerSpec,
}

/// CPU, memory and GPUs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesCtx {
    /// CPU quantity.
    pub cpu: String,
    /// Memory quantity.
    pub memory: String,
    /// GPUs per replica (as a quantity string), if any.
    pub gpu: Option<String>,
    /// GPU catalog type, if any.
    pub gpu_type: Option<&'static str>,
    /// Extended resource the GPUs are limited by (`nvidia.com/gpu`, `nvidia.com/mig-1g.10gb`,
    /// `amd.com/gpu`); None without GPUs or with a DRA claim.
    pub gpu_resource: Option<String>,
    /// A DRA ResourceClaim instead of the extended resource.
    pub claim: Option<ClaimCtx>,
}

/// A DRA claim of a model's pods (`resource.k8s.io/v1`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimCtx {
    /// Name of the claim in the pod spec (and of the request in the template).
    pub name: &'static str,
    /// The ResourceClaimTemplate each pod's claim is made from.
    pub template: String,
    /// DRA device class.
    pub device_class: &'static str,
    /// Devices per pod.
    pub count: u32,
}

/// The DRA device class of NVIDIA's DRA driver for whole GPUs.
const NVIDIA_DEVICE_CLASS: &str = "gpu.nvidia.com";

/// GPU feature discovery appends this to the product label of time-sliced GPUs.
const SHARED_SUFFIX: &str = "-SHARED";

/// The extended resource of a model's (or Server's) GPUs on `cluster`, None with a DRA claim.
pub fn gpu_resource(cluster: &ClusterModel, gpu: &GpuUse) -> Option<String> {
    if gpu.claim {
        return None;
    }
    let vendor = gpu.vendor.spec();
    Some(match (gpu.mig, platform::of(cluster.cloud).mig) {
        (Some(profile), MigSupport::GpuOperator) => format!("nvidia.com/mig-{profile}"),
        _ => vendor.resource.to_string(),
    })
}

/// Node selection for a pod.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingCtx {
    /// nodeSelector.
    pub node_selector: BTreeMap<String, String>,
    /// tolerations.
    pub tolerations: Vec<Toleration>,
    /// runtimeClassName (`nvidia` on k3s).
    pub runtime_class: Option<&'static str>,
    /// Node labels the pod's node must not carry (a required node affinity with `DoesNotExist`):
    /// on GKE a partitioned or time-shared pool carries the same accelerator label as a whole-GPU
    /// pool, so a model that wants whole GPUs must rule those pools out by their own labels.
    pub avoid_labels: Vec<&'static str>,
}

/// A toleration.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    /// Taint key.
    pub key: &'static str,
    /// `Exists` or `Equal`.
    pub operator: &'static str,
    /// Taint effect.
    pub effect: &'static str,
}

/// An environment variable.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// The canary version.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryCtx {
    /// Object name of the canary (`<model>-canary`).
    pub name: String,
    /// New image (image models).
    pub image: Option<String>,
    /// New artifact (server models).
    pub model_uri: Option<String>,
    /// Percent of traffic.
    pub traffic: u32,
    /// Percent left for the main version.
    pub main_traffic: u32,
}

/// One version of a model (the main one or the canary) with its share of traffic.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionCtx {
    /// `default` or `canary`.
    pub predictor: &'static str,
    /// Object name for runtimes that deploy each version separately.
    pub name: String,
    /// Image (image models).
    pub image: Option<String>,
    /// Artifact (server models).
    pub model_uri: Option<String>,
    /// Percent of traffic.
    pub traffic: u32,
}

/// Where metrics are scraped.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsCtx {
    /// Labels of the Service that exposes metrics.
    pub service_selector: BTreeMap<String, String>,
    /// Port name on that Service.
    pub port: String,
    /// Path.
    pub path: &'static str,
}

/// What Terraform templates of a cluster see.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterContext<'a> {
    /// Project name and labels.
    pub project: ProjectCtx<'a>,
    /// The cluster.
    pub cluster: &'a ClusterModel,
    /// How GPU pods are scheduled on this platform.
    pub scheduling: &'static catalog::Scheduling,
    /// Platform add-ons to install.
    pub addons: Addons,
    /// Node pools that carry GPUs, with their node label value and taint.
    pub gpu_pools: Vec<&'a crate::model::Pool>,
    /// Per GPU pool (by name): its node labels and taint as aligned HCL lines, and GKE's MIG
    /// partition size and time-sharing clients.
    pub pool_gpu: BTreeMap<&'a str, PoolGpuCtx>,
    /// The NVIDIA GPU operator, when GPUs are time-sliced or cut into MIG slices outside GKE.
    pub gpu_operator: Option<GpuOperatorCtx>,
    /// Namespaces of the environments on this cluster.
    pub namespaces: Vec<&'a str>,
    /// Namespaces with Seldon Core v2 models: each needs its own SeldonRuntime and Servers.
    pub seldon_v2_namespaces: Vec<&'a str>,
    /// Whether this is a k3s cluster (GPU pods need the nvidia RuntimeClass).
    pub k3s: bool,
    /// The Terraform backend, when the cluster says where its state lives (else the templates
    /// render a partial backend completed at `terraform init`).
    pub backend: Option<Backend>,
    /// Node pools that get an ephemeral OS disk (AKS, `hardening.ephemeralOsDisk`): those whose
    /// VM size has a local disk.
    pub local_disk: Vec<&'a str>,
    /// Workload identities of the models on the cluster, as the lines of an HCL map
    /// `"<name>" = { namespaces = [...], buckets = [...] }` (`=` aligned); empty: none.
    pub storage_identities: Vec<String>,
    /// The image signature policy's Kyverno, when `mldeploy infra` installs it.
    pub kyverno: bool,
}

/// The workload identities of every environment on a cluster: per identity, the namespaces
/// whose ServiceAccount of that name it is bound to and the buckets it reads.
fn storage_identities(envs: &[&Env]) -> Vec<String> {
    let mut ids: BTreeMap<&str, (Vec<&str>, Vec<String>)> = BTreeMap::new();
    for env in envs {
        for id in env.models.iter().filter_map(|m| m.identity.as_ref()) {
            let (namespaces, buckets) = ids.entry(id.name.as_str()).or_default();
            namespaces.push(env.namespace.as_str());
            buckets.extend(id.buckets.iter().map(|b| b.id()));
        }
    }
    let list = |items: Vec<String>| {
        let quoted: Vec<String> = items
            .iter()
            .map(|i| {
                let mut out = Vec::new();
                let _ = crate::render::quote::hcl(i, &mut out);
                String::from_utf8(out).unwrap_or_default()
            })
            .collect();
        format!("[{}]", quoted.join(", "))
    };
    let pairs: BTreeMap<String, String> = ids
        .into_iter()
        .map(|(name, (mut namespaces, mut buckets))| {
            namespaces.sort_unstable();
            namespaces.dedup();
            buckets.sort();
            buckets.dedup();
            let value = format!(
                "{{ namespaces = {}, buckets = {} }}",
                list(namespaces.into_iter().map(str::to_string).collect()),
                list(buckets)
            );
            (name.to_string(), value)
        })
        .collect();
    let width = pairs.keys().map(|k| k.len() + 2).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{:<width$} = {v}", format!("\"{k}\"")))
        .collect()
}

/// Whether an Azure VM size has a local (temp) disk that can hold an ephemeral OS disk: a `d`
/// among the feature letters after the vCPU count (`Standard_D4ds_v5`, `Standard_NC24ads_A100_v4`).
pub fn azure_local_disk(machine_type: &str) -> bool {
    let Some(size) = machine_type.split('_').nth(1) else {
        return false;
    };
    let features = size.trim_start_matches(|c: char| c.is_ascii_uppercase());
    let features = features.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
    features.contains('d')
}

/// How a GPU pool's nodes are marked and cut up, for the Terraform templates.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolGpuCtx {
    /// `"key" = "value"` lines of the node labels, `=` aligned as `terraform fmt` wants.
    pub labels: Vec<String>,
    /// Taint key (the vendor's GPU resource).
    pub taint_key: &'static str,
    /// GKE: `gpu_partition_size` (a MIG profile).
    pub partition: Option<&'static str>,
    /// GKE: time-sharing clients per GPU.
    pub sharing: Option<u32>,
}

/// The GPU operator's settings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuOperatorCtx {
    /// Time-slicing configs of the device plugin.
    pub sharing: Vec<SharingCtx>,
    /// The config every node gets when its pool does not label it (onprem), if any.
    pub default_sharing: Option<String>,
    /// The MIG manager's default config (onprem: the declared profile), else `all-disabled`.
    pub default_mig: String,
    /// Whether any GPU is cut into MIG slices (the mixed strategy is then set).
    pub mig: bool,
}

/// One time-slicing config of the GPU operator's device plugin.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharingCtx {
    /// Config name (`share-4`), the value of the node label that picks it.
    pub name: String,
    /// Time-slices per GPU.
    pub replicas: u32,
}

/// `"key" = "value"` lines with the `=` aligned.
fn hcl_map_lines(pairs: &BTreeMap<String, String>) -> Vec<String> {
    let width = pairs.keys().map(|k| k.len() + 2).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{:<width$} = \"{v}\"", format!("\"{k}\"")))
        .collect()
}

/// A Terraform backend block: its type and its settings in the order they are written.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// Backend type: `gcs`, `s3`, `azurerm`, `local` or `kubernetes`.
    pub kind: &'static str,
    /// Attributes of the block.
    pub settings: Vec<BackendSetting>,
}

/// One attribute of a backend block.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendSetting {
    /// Attribute name (`bucket`).
    pub name: &'static str,
    /// A string, or `true`.
    pub value: serde_json::Value,
}

/// The backend block for a cluster's `state`, or None when it has none. `mldeploy infra` passes
/// the same settings at `terraform init`, so the two cannot disagree.
pub fn backend(cluster: &ClusterModel) -> Option<Backend> {
    let text = |name: &'static str, value: &str| BackendSetting {
        name,
        value: value.into(),
    };
    let (kind, settings) = match cluster.state.as_ref()? {
        StateBackend::Gcs { bucket, prefix } => {
            ("gcs", vec![text("bucket", bucket), text("prefix", prefix)])
        }
        StateBackend::S3 {
            bucket,
            region,
            dynamodb_table,
            key,
        } => (
            "s3",
            vec![
                text("bucket", bucket),
                text("key", key),
                text("region", region),
                text("dynamodb_table", dynamodb_table),
                BackendSetting {
                    name: "encrypt",
                    value: true.into(),
                },
            ],
        ),
        StateBackend::Azurerm {
            resource_group,
            storage_account,
            container,
            key,
        } => (
            "azurerm",
            vec![
                text("resource_group_name", resource_group),
                text("storage_account_name", storage_account),
                text("container_name", container),
                text("key", key),
            ],
        ),
        StateBackend::Local { path } => (
            "local",
            vec![text("path", path.as_deref().unwrap_or("terraform.tfstate"))],
        ),
        StateBackend::Kubernetes {
            secret_suffix,
            namespace,
        } => {
            let mut settings = vec![
                text("secret_suffix", secret_suffix),
                text("namespace", namespace),
            ];
            if let Some(context) = &cluster.context {
                settings.push(text("config_context", context));
            }
            ("kubernetes", settings)
        }
    };
    Some(Backend { kind, settings })
}

/// Platform add-ons a cluster needs, from every environment that runs on it.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Addons {
    /// Runtime operators by their row's `addon.key` (`kserve`, `seldon`, `seldonV2`): whether a
    /// model on the cluster uses the runtime.
    #[serde(flatten)]
    pub runtimes: BTreeMap<&'static str, bool>,
    /// KEDA, when a model on the cluster scales on a metric.
    pub keda: bool,
    /// kube-prometheus-stack.
    pub prometheus: bool,
    /// NVIDIA device plugin (platforms without a managed one, when GPUs are used, and no GPU
    /// operator is installed).
    pub device_plugin: bool,
    /// AMD GPU device plugin with its node labeller (when AMD GPUs are used).
    pub amd_device_plugin: bool,
}

/// Runtime-specific names of each prepackaged server.
pub fn server(s: Server) -> ServerCtx {
    ServerCtx {
        name: s.name(),
        spec: runtime::server(s),
    }
}

/// A label value of at most 63 characters: `value` itself, or a prefix plus a stable hash.
pub fn label_value(value: &str) -> String {
    if value.len() <= MAX_LABEL {
        return value.to_string();
    }
    // FNV-1a: stable across runs and platforms (std's hasher is not).
    let hash = value.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let prefix: String = value.chars().take(MAX_LABEL - 9).collect();
    format!("{}-{:08x}", prefix.trim_end_matches('-'), hash as u32)
}

/// Labels on every object of an environment: the user's, then ours (ours win).
fn common_labels(p: &Project, env: &Env) -> BTreeMap<String, String> {
    let mut labels = p.labels.clone();
    labels.insert("app.kubernetes.io/part-of".into(), p.name.clone());
    labels.insert("app.kubernetes.io/managed-by".into(), "mldeploy".into());
    labels.insert("mldeploy.io/environment".into(), env.name.clone());
    labels
}

/// Builds the context of one environment.
pub fn env_context<'a>(p: &'a Project, env: &'a Env) -> EnvContext<'a> {
    let cluster = &p.clusters[&env.cluster];
    let mut labels = common_labels(p, env);
    labels.insert("app.kubernetes.io/name".into(), p.name.clone());
    labels.insert(
        "app.kubernetes.io/instance".into(),
        label_value(&format!("{}-{}", p.name, env.name)),
    );
    let models: Vec<ModelCtx> = env
        .models
        .iter()
        .map(|m| model_context(p, env, cluster, m))
        .collect();
    let seldon_v2_servers = seldon_v2_servers(cluster, env, &labels);
    let identities = identity_accounts(cluster, env);
    let image_policy = p
        .image_signatures
        .as_ref()
        .and_then(|sig| image_policy(p, env, sig));
    EnvContext {
        identities,
        image_policy,
        dashboards: dashboards(&p.name, &env.name, models.len()),
        project: ProjectCtx {
            name: &p.name,
            labels: &p.labels,
        },
        env: EnvCtx {
            name: &env.name,
            namespace: &env.namespace,
            service_account: &p.name,
        },
        cluster,
        labels,
        monitoring: p.monitoring,
        security: env_security(p, env, cluster),
        seldon_v2_servers,
        models,
    }
}

/// The ServiceAccounts of the workload identities an environment's models use, annotated as the
/// cloud's row says (an AKS client id only once it is known).
fn identity_accounts(cluster: &ClusterModel, env: &Env) -> Vec<IdentityAccountCtx> {
    let Some(wi) = platform::of(cluster.cloud).workload_identity else {
        return Vec::new();
    };
    let mut out: BTreeMap<&str, IdentityAccountCtx> = BTreeMap::new();
    for id in env.models.iter().filter_map(|m| m.identity.as_ref()) {
        let entry = out
            .entry(id.name.as_str())
            .or_insert_with(|| IdentityAccountCtx {
                name: id.name.clone(),
                annotations: BTreeMap::new(),
            });
        let Some((key, template)) = wi.annotation else {
            continue;
        };
        let value = match (template.contains("{clientId}"), &id.client_id) {
            (true, None) => continue,
            (_, client_id) => template
                .replace("{name}", &id.name)
                .replace(
                    "{project}",
                    cluster.gcp_project.as_deref().unwrap_or_default(),
                )
                .replace("{clientId}", client_id.as_deref().unwrap_or_default()),
        };
        entry.annotations.insert(key.to_string(), value);
    }
    out.into_values().collect()
}

/// The Kyverno policy of an environment: the repositories of its custom images (and canaries).
/// Prepackaged servers' images are the operators' choice and signed (or not) by their vendors,
/// so they are not listed; without custom images there is nothing to verify.
fn image_policy(
    p: &Project,
    env: &Env,
    sig: &crate::model::signing::SignaturePolicy,
) -> Option<ImagePolicyCtx> {
    let mut images: Vec<String> = env
        .models
        .iter()
        .flat_map(|m| std::iter::once(&m.source).chain(m.canary.as_ref().map(|c| &c.source)))
        .filter_map(|s| match s {
            Source::Image { image, .. } => Some(image_repository(image)),
            Source::Prepackaged { .. } => None,
        })
        .flat_map(|repo| [format!("{repo}:*"), format!("{repo}@*")])
        .collect();
    images.sort();
    images.dedup();
    (!images.is_empty()).then(|| ImagePolicyCtx {
        name: format!("{}.{}.verify-images", p.name, env.name),
        public_key: format!("{}\n", sig.public_key),
        action: sig.action,
        images,
    })
}

/// The repository of an image reference: without its tag and digest.
pub fn image_repository(image: &str) -> String {
    let no_digest = image.split_once('@').map_or(image, |(r, _)| r);
    // A `:` after the last `/` starts the tag (one before it is a registry's port).
    match no_digest.rsplit_once('/') {
        Some((head, last)) => format!("{head}/{}", last.split(':').next().unwrap_or(last)),
        None => no_digest.split(':').next().unwrap_or(no_digest).to_string(),
    }
}

/// The rclone remote of a model that reads `cloud`'s object store with the pod's identity.
fn rclone(model: &str, cluster: &ClusterModel, as_env: bool) -> Option<RcloneCtx> {
    let opt = |name: &str, value: &str| EnvVar {
        name: name.into(),
        value: value.into(),
    };
    let (remote, kind, mut options) = match cluster.cloud {
        Cloud::Gcp => ("gs", "google cloud storage", vec![opt("env_auth", "true")]),
        Cloud::Aws => (
            "s3",
            "s3",
            vec![
                opt("env_auth", "true"),
                opt("provider", "AWS"),
                opt("region", cluster.region.as_deref().unwrap_or_default()),
            ],
        ),
        // AKS identities are refused for rclone runtimes (model::storage).
        Cloud::Azure | Cloud::Onprem => return None,
    };
    options.sort_by(|a, b| a.name.cmp(&b.name));
    let parameters: serde_json::Map<String, serde_json::Value> = options
        .iter()
        .map(|o| (o.name.clone(), o.value.clone().into()))
        .collect();
    let json =
        serde_json::json!({"name": remote, "type": kind, "parameters": parameters}).to_string();
    Some(RcloneCtx {
        json,
        secret: format!("{model}-rclone"),
        remote,
        kind,
        options,
        as_env,
    })
}

/// Namespace of kube-prometheus-stack (terraform/common/addons.tf).
const PROMETHEUS_NAMESPACE: &str = "monitoring";

/// Where pods get cloud credentials: the GKE metadata server (Dataplane V2 answers on
/// 169.254.169.254:80, the legacy dataplane on 169.254.169.252:988) and the EKS Pod Identity
/// agent. AKS workload identity reads a projected token file and calls Entra ID over HTTPS.
fn identity_endpoints(cloud: Cloud) -> &'static [IdentityEndpoint] {
    match cloud {
        Cloud::Gcp => &[
            IdentityEndpoint {
                cidr: "169.254.169.252/32",
                port: 988,
            },
            IdentityEndpoint {
                cidr: "169.254.169.254/32",
                port: 80,
            },
        ],
        Cloud::Aws => &[IdentityEndpoint {
            cidr: "169.254.170.23/32",
            port: 80,
        }],
        Cloud::Azure | Cloud::Onprem => &[],
    }
}

fn env_security(p: &Project, env: &Env, cluster: &ClusterModel) -> EnvSecurityCtx {
    let rows = || env.models.iter().map(|m| security::runtime(m.runtime));
    let mut control: Vec<&'static str> = rows()
        .filter(|r| r.intra_namespace)
        .flat_map(|r| r.control_namespaces.iter().copied())
        .collect();
    control.sort_unstable();
    control.dedup();
    let np = &env.network_policy;
    EnvSecurityCtx {
        pod_security: security::namespace_level(env.models.iter().map(|m| m.runtime)).name(),
        network_policies: np.enabled,
        allow_from: np
            .allow_from
            .iter()
            .filter(|n| *n != "*")
            .cloned()
            .collect(),
        allow_from_all: np.allow_from.iter().any(|n| n == "*"),
        prometheus_namespace: p.monitoring.prometheus.then_some(PROMETHEUS_NAMESPACE),
        intra_namespace: rows().any(|r| r.intra_namespace).then_some(control),
        identity_endpoints: identity_endpoints(cluster.cloud),
    }
}

fn model_security(
    cluster: &ClusterModel,
    m: &Model,
    selector: &BTreeMap<String, String>,
    port: Option<u16>,
) -> ModelSecurityCtx {
    let row = security::runtime(m.runtime);
    let pod_selector = match (row.pod_label, row.intra_namespace) {
        (_, true) => BTreeMap::new(),
        (Some(label), false) => BTreeMap::from([(label.to_string(), m.name.clone())]),
        (None, false) => selector.clone(),
    };
    let mut ports: Vec<u16> = row.serving_ports.to_vec();
    if let Some(port) = port
        && !row.intra_namespace
    {
        ports.push(port);
    }
    ports.sort_unstable();
    ports.dedup();
    ModelSecurityCtx {
        run_as_user: row.run_as_user,
        writable: row
            .writable_paths
            .iter()
            .map(|path| WritablePath {
                name: format!("writable{}", path.replace('/', "-")),
                path,
            })
            .collect(),
        pod_selector,
        ports,
        control_namespaces: row.control_namespaces,
        restrict_egress: row.fetches_artifact
            && cluster.cloud != Cloud::Onprem
            && matches!(m.source, Source::Prepackaged { .. }),
    }
}

/// Where a pod with `gpu` goes on `cluster`: the accelerator's node label, the marks of a shared
/// or MIG-partitioned GPU, the GPU taint (keyed by the vendor's resource), the nvidia runtime class
/// on k3s, and the cluster's architecture.
pub fn scheduling(cluster: &ClusterModel, gpu: Option<&GpuUse>) -> SchedulingCtx {
    let mut node_selector = BTreeMap::new();
    if let Some(arch) = cluster.arch {
        node_selector.insert("kubernetes.io/arch".to_string(), arch.name().to_string());
    }
    let Some(gpu) = gpu else {
        return SchedulingCtx {
            node_selector,
            ..SchedulingCtx::default()
        };
    };
    let plat = platform::of(cluster.cloud);
    let rules = &plat.scheduling;
    let entry = catalog::gpu(gpu.kind);
    let offer = entry.and_then(|g| g.offer(cluster.cloud));
    let vendor = gpu.vendor.spec();
    if let (Some(accelerator), Some(offer)) = (gpu.accelerator, offer) {
        let label = offer.node_label.unwrap_or(rules.node_label);
        node_selector.insert(label.to_string(), accelerator.to_string());
    }
    if gpu.shared {
        match plat.sharing {
            SharingSupport::GkeTimeSharing => {
                node_selector.insert(GKE_SHARING_LABEL.into(), "time-sharing".into());
            }
            SharingSupport::GpuOperator => {
                // GPU feature discovery names the product of a time-sliced GPU `<product>-SHARED`.
                if let Some(product) = entry.and_then(|g| g.offer(Cloud::Onprem)) {
                    node_selector.insert(
                        vendor.product_label.to_string(),
                        format!("{}{SHARED_SUFFIX}", product.accelerator),
                    );
                }
            }
        }
    }
    let mut avoid_labels = Vec::new();
    if let (MigSupport::GkePartition { node_label }, None) = (&plat.mig, gpu.mig)
        && cut_pool_of(cluster, gpu, |p| p.mig.is_some())
    {
        avoid_labels.push(*node_label);
    }
    if plat.sharing == SharingSupport::GkeTimeSharing
        && !gpu.shared
        && cut_pool_of(cluster, gpu, |p| p.share.is_some())
    {
        avoid_labels.push(GKE_SHARING_LABEL);
    }
    if let Some(profile) = gpu.mig {
        match plat.mig {
            MigSupport::GkePartition { node_label } => {
                node_selector.insert(node_label.to_string(), profile.to_string());
            }
            MigSupport::GpuOperator if plat.managed => {
                node_selector.insert(MIG_CONFIG_LABEL.to_string(), mig_config(profile));
            }
            MigSupport::GpuOperator => {}
        }
    }
    SchedulingCtx {
        node_selector,
        tolerations: rules
            .taint
            .as_ref()
            .map(|t| Toleration {
                key: if t.key == "nvidia.com/gpu" {
                    vendor.resource
                } else {
                    t.key
                },
                operator: "Exists",
                effect: t.effect,
            })
            .into_iter()
            .collect(),
        runtime_class: (cluster.cloud == Cloud::Onprem
            && cluster.distribution == Some(Distribution::K3s)
            && gpu.vendor == Vendor::Nvidia)
            .then_some("nvidia"),
        avoid_labels,
    }
}

/// GKE labels the nodes of a time-shared GPU pool with this key.
const GKE_SHARING_LABEL: &str = "cloud.google.com/gke-gpu-sharing-strategy";

/// Whether `cluster` has a pool of the same accelerator as `gpu` whose GPUs are cut (`cut` says how).
fn cut_pool_of(cluster: &ClusterModel, gpu: &GpuUse, cut: impl Fn(&GpuUse) -> bool) -> bool {
    cluster
        .node_pools
        .iter()
        .filter_map(|p| p.gpu.as_ref())
        .any(|p| p.kind == gpu.kind && cut(p))
}

/// The GPU operator's MIG manager cuts a node's GPUs as this label says.
pub const MIG_CONFIG_LABEL: &str = "nvidia.com/mig.config";

/// The device plugin of the GPU operator reads its time-slicing config by this node label.
pub const DEVICE_PLUGIN_CONFIG_LABEL: &str = "nvidia.com/device-plugin.config";

/// The MIG manager's built-in config that cuts every GPU into `profile` slices.
pub fn mig_config(profile: &str) -> String {
    format!("all-{profile}")
}

/// The device-plugin config entry that time-slices every GPU into `share` replicas.
pub fn sharing_config(share: u32) -> String {
    format!("share-{share}")
}

/// Where Prometheus finds a model's metrics, by its runtime's row.
fn metrics(
    runtime: Runtime,
    name: &str,
    selector: &BTreeMap<String, String>,
    prepackaged: bool,
) -> MetricsCtx {
    let one = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
    let m = runtime::spec(runtime).metrics;
    MetricsCtx {
        service_selector: match m.service {
            MetricsService::ModelSelector => selector.clone(),
            MetricsService::LabelIsModelName(k) => one(k, name),
            MetricsService::Label(k, v) => one(k, v),
        },
        port: if prepackaged {
            m.prepackaged_port.replace("{name}", name)
        } else {
            m.port.to_string()
        },
        path: m.path,
    }
}

fn model_context(p: &Project, env: &Env, cluster: &ClusterModel, m: &Model) -> ModelCtx {
    let mut labels = common_labels(p, env);
    let instance = label_value(&format!("{}-{}", m.name, env.name));
    let selector = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), m.name.clone()),
        ("app.kubernetes.io/instance".to_string(), instance),
    ]);
    labels.extend(selector.clone());
    labels.insert("mldeploy.io/runtime".into(), m.runtime.name().into());
    let llm = super::llm::llm_context(m);
    let (image, port, server_ctx, model_uri, storage_secret) = match &m.source {
        Source::Image { image, port } => (Some(image.clone()), Some(*port), None, None, None),
        Source::Prepackaged {
            server: s,
            model_uri,
            storage_secret,
        } => (
            None,
            None,
            Some(server(*s)),
            Some(model_uri.clone()),
            storage_secret.clone(),
        ),
    };
    let canary = m.canary.as_ref().map(|c| {
        let (image, model_uri) = match &c.source {
            Source::Image { image, .. } => (Some(image.clone()), None),
            Source::Prepackaged { model_uri, .. } => (None, Some(model_uri.clone())),
        };
        CanaryCtx {
            name: format!("{}-canary", m.name),
            image,
            model_uri,
            traffic: c.traffic,
            main_traffic: 100 - c.traffic.min(100),
        }
    });
    let mut versions = vec![VersionCtx {
        predictor: "default",
        name: m.name.clone(),
        image: image.clone(),
        model_uri: model_uri.clone(),
        traffic: canary.as_ref().map_or(100, |c| c.main_traffic),
    }];
    if let Some(c) = &canary {
        versions.push(VersionCtx {
            predictor: "canary",
            name: c.name.clone(),
            image: c.image.clone(),
            model_uri: c.model_uri.clone(),
            traffic: c.traffic,
        });
    }
    let floor = m.autoscale.as_ref().map_or(m.replicas, |a| a.min);
    let keda_row = runtime::spec(m.runtime).keda;
    let uses_preset = m
        .autoscale
        .as_ref()
        .and_then(|a| a.metric.as_ref())
        .is_some_and(|x| x.preset.is_some());
    let vllm_selector = keda_row
        .filter(|_| {
            uses_preset
                || server_ctx
                    .as_ref()
                    .is_some_and(|s| s.spec.server == Server::Vllm)
        })
        .map(|k| pod_selector(&env.namespace, &k.workload.replace("{name}", &m.name)));
    // vLLM on a Deployment listens on its OpenAI port; our Service and policies follow it.
    let port = port.or(llm
        .as_ref()
        .filter(|l| l.kind == "deployment")
        .map(|l| l.port));
    let mut secret_env: Vec<crate::config::SecretEnv> =
        m.secret_env.iter().filter(|s| !s.file).cloned().collect();
    let hf_token = m.llm.as_ref().and_then(|l| l.hf_token.clone());
    // A vLLM Deployment reads the token from a mounted file (`LlmCtx::token_file`).
    if llm.as_ref().is_some_and(|l| l.token_file.is_none()) {
        secret_env.extend(hf_token.clone());
    }
    // KServe's storage initializer reads HF_TOKEN from the Secrets of the predictor's
    // ServiceAccount (its own container does not see the predictor's env).
    let storage_secrets: Vec<String> = storage_secret
        .iter()
        .cloned()
        .chain(
            hf_token
                .filter(|_| {
                    llm.as_ref().is_some_and(|l| {
                        l.kind == "inferenceservice"
                            && l.storage_uri
                                .as_deref()
                                .is_some_and(|u| u.starts_with("hf://"))
                    })
                })
                .map(|t| t.secret),
        )
        .collect();
    let wiring = security::runtime(m.runtime).identity;
    let identity = m.identity.as_ref().map(|id| ModelIdentityCtx {
        service_account: id.name.clone(),
        pod_labels: platform::of(cluster.cloud)
            .workload_identity
            .and_then(|w| w.pod_label)
            .map(|(k, v)| BTreeMap::from([(k.to_string(), v.to_string())]))
            .unwrap_or_default(),
        rclone: wiring
            .rclone
            .and_then(|r| rclone(&m.name, cluster, r == security::RcloneConfig::EnvSecret)),
    });
    let storage_service_account =
        (!storage_secrets.is_empty()).then(|| format!("{}-storage", m.name));
    let service_account = identity
        .as_ref()
        .map(|i| i.service_account.clone())
        .or_else(|| storage_service_account.clone())
        .unwrap_or_else(|| p.name.clone());
    let secret_files = m
        .secret_env
        .iter()
        .filter(|s| s.file)
        .enumerate()
        .map(|(i, s)| {
            let mount_path = format!("{SECRET_FILES_DIR}/{}", s.name);
            SecretFileCtx {
                name: s.name.clone(),
                secret: s.secret.clone(),
                key: s.key.clone(),
                volume: format!("secret-file-{i}"),
                path: format!("{mount_path}/{}", s.key),
                mount_path,
            }
        })
        .collect();
    ModelCtx {
        storage_service_account,
        service_account,
        identity,
        secret_files,
        name: m.name.clone(),
        runtime: m.runtime.name(),
        image,
        port,
        server: server_ctx,
        model_uri,
        storage_secret,
        replicas: m.replicas,
        resources: ResourcesCtx {
            cpu: m.cpu.clone(),
            memory: m.memory.clone(),
            gpu: m.gpu.as_ref().map(|g| g.count.to_string()),
            gpu_type: m.gpu.as_ref().map(|g| g.kind),
            gpu_resource: m.gpu.as_ref().and_then(|g| gpu_resource(cluster, g)),
            claim: m.gpu.as_ref().filter(|g| g.claim).map(|g| ClaimCtx {
                name: "gpu",
                template: format!("{}-gpu", m.name),
                device_class: NVIDIA_DEVICE_CLASS,
                count: g.count,
            }),
        },
        metrics: metrics(
            m.runtime,
            &m.name,
            &selector,
            matches!(m.source, Source::Prepackaged { .. }),
        ),
        gpu_server: gpu_server_name(m).map(|(name, ..)| name),
        security: model_security(cluster, m, &selector, port),
        selector,
        labels,
        scheduling: scheduling(cluster, m.gpu.as_ref()),
        env: m
            .env
            .iter()
            .map(|(name, value)| EnvVar {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        secret_env,
        llm,
        storage_secrets,
        autoscale: autoscale_context(env, m, vllm_selector.as_deref()),
        vllm_selector,
        canary,
        versions,
        disruption_budget: floor > 1,
    }
}

/// Builds the context of a cluster's Terraform: add-ons come from every environment on it.
pub fn cluster_context<'a>(p: &'a Project, cluster: &'a ClusterModel) -> ClusterContext<'a> {
    let envs: Vec<&Env> = p
        .environments
        .values()
        .filter(|e| e.cluster == cluster.name)
        .collect();
    let uses = |r: Runtime| envs.iter().any(|e| e.models.iter().any(|m| m.runtime == r));
    let any_gpu = envs
        .iter()
        .any(|e| e.models.iter().any(|m| m.gpu.is_some()))
        || cluster.node_pools.iter().any(|pool| pool.gpu.is_some());
    let scheduling = catalog::scheduling(cluster.cloud);
    let plat = platform::of(cluster.cloud);
    let node_gpus: Vec<&GpuUse> = cluster
        .node_pools
        .iter()
        .filter_map(|pool| pool.gpu.as_ref())
        .chain(&cluster.gpus)
        .collect();
    let model_gpus = envs
        .iter()
        .flat_map(|e| e.models.iter().filter_map(|m| m.gpu.as_ref()));
    let vendors: Vec<Vendor> = node_gpus
        .iter()
        .copied()
        .chain(model_gpus)
        .map(|g| g.vendor)
        .collect();
    let any_amd = vendors.contains(&Vendor::Amd);
    let any_nvidia = vendors.contains(&Vendor::Nvidia) || (any_gpu && !any_amd);
    let mut pool_gpu = BTreeMap::new();
    for pool in &cluster.node_pools {
        let Some(g) = &pool.gpu else { continue };
        let mut labels = BTreeMap::new();
        if let Some(a) = g.accelerator {
            labels.insert(scheduling.node_label.to_string(), a.to_string());
        }
        let gke = plat.mig != MigSupport::GpuOperator;
        if let (Some(profile), false) = (g.mig, gke) {
            labels.insert(MIG_CONFIG_LABEL.to_string(), mig_config(profile));
        }
        if let (Some(share), SharingSupport::GpuOperator) = (g.share, plat.sharing) {
            labels.insert(
                DEVICE_PLUGIN_CONFIG_LABEL.to_string(),
                sharing_config(share),
            );
        }
        pool_gpu.insert(
            pool.name.as_str(),
            PoolGpuCtx {
                labels: hcl_map_lines(&labels),
                taint_key: g.vendor.spec().resource,
                partition: g.mig.filter(|_| gke),
                sharing: g
                    .share
                    .filter(|_| plat.sharing == SharingSupport::GkeTimeSharing),
            },
        );
    }
    let operator_needed = node_gpus.iter().any(|g| {
        (g.mig.is_some() && plat.mig == MigSupport::GpuOperator)
            || (g.share.is_some() && plat.sharing == SharingSupport::GpuOperator)
    });
    let gpu_operator = operator_needed.then(|| {
        let mut sharing: Vec<SharingCtx> = node_gpus
            .iter()
            .filter_map(|g| g.share)
            .map(|n| SharingCtx {
                name: sharing_config(n),
                replicas: n,
            })
            .collect();
        sharing.sort_unstable();
        sharing.dedup();
        let declared = |f: fn(&GpuUse) -> Option<String>| {
            (!plat.managed)
                .then(|| cluster.gpus.iter().find_map(f))
                .flatten()
        };
        GpuOperatorCtx {
            default_sharing: declared(|g| g.share.map(sharing_config)),
            default_mig: declared(|g| g.mig.map(mig_config))
                .unwrap_or_else(|| "all-disabled".into()),
            mig: node_gpus.iter().any(|g| g.mig.is_some()),
            sharing,
        }
    });
    let mut namespaces: Vec<&str> = envs.iter().map(|e| e.namespace.as_str()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    // Runtimes that place models on Servers need a SeldonRuntime (and its Servers) per namespace.
    let mut seldon_v2_namespaces: Vec<&str> = envs
        .iter()
        .filter(|e| {
            e.models
                .iter()
                .any(|m| runtime::spec(m.runtime).gpus == GpuPlacement::Server)
        })
        .map(|e| e.namespace.as_str())
        .collect();
    seldon_v2_namespaces.sort_unstable();
    seldon_v2_namespaces.dedup();
    ClusterContext {
        project: ProjectCtx {
            name: &p.name,
            labels: &p.labels,
        },
        cluster,
        scheduling,
        addons: Addons {
            runtimes: runtime::RUNTIMES
                .iter()
                .filter_map(|r| r.addon.map(|a| (a.key, uses(r.runtime))))
                .collect(),
            keda: envs.iter().any(|e| {
                e.models
                    .iter()
                    .any(|m| m.autoscale.as_ref().is_some_and(|a| a.keda()))
            }),
            prometheus: p.monitoring.prometheus,
            device_plugin: any_nvidia && scheduling.needs_device_plugin && gpu_operator.is_none(),
            amd_device_plugin: any_amd,
        },
        gpu_pools: cluster
            .node_pools
            .iter()
            .filter(|pool| pool.gpu.is_some())
            .collect(),
        pool_gpu,
        gpu_operator,
        namespaces,
        seldon_v2_namespaces,
        k3s: cluster.distribution == Some(Distribution::K3s),
        backend: backend(cluster),
        local_disk: cluster
            .node_pools
            .iter()
            .filter(|pool| {
                cluster.hardening.ephemeral_os_disk && azure_local_disk(&pool.machine_type)
            })
            .map(|pool| pool.name.as_str())
            .collect(),
        storage_identities: storage_identities(&envs),
        kyverno: p
            .image_signatures
            .as_ref()
            .is_some_and(|s| s.install_kyverno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_sizes_with_a_local_disk() {
        assert!(azure_local_disk("Standard_D4ds_v5"));
        assert!(azure_local_disk("Standard_NC24ads_A100_v4"));
        assert!(!azure_local_disk("Standard_D4s_v5"));
        assert!(!azure_local_disk("Standard_NC4as_T4_v3"));
        assert!(!azure_local_disk("custom"));
    }

    #[test]
    fn long_label_values_are_shortened_stably() {
        let long = "a".repeat(70);
        let v = label_value(&long);
        assert!(v.len() <= 63);
        assert_eq!(v, label_value(&long));
        assert_ne!(v, label_value(&"a".repeat(71)));
        assert_eq!(label_value("short"), "short");
    }
}
