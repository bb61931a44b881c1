//! Resolution and semantic validation: merge defaults and environment overrides into one fully
//! resolved model per environment, check every rule of the contract, and report every problem
//! at once with the location of the value that caused it.

pub mod llm;
pub mod names;
pub mod quantity;
pub mod signing;
pub mod slo;
pub mod storage;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::catalog::{self, Vendor};
use crate::config::de::{all_errors, from_node};
use crate::config::yaml::{Loc, Node, Seg, Value, path_string};
use crate::config::{
    self, Arch, Cloud, Cluster, Distribution, GitopsEngine, Loaded, ModelSpec, Runtime, Server,
};
use crate::diag::{Problem, Report};
use crate::platform;
use crate::runtime::{self, RuntimeSpec};
use crate::suggest::closest;
use quantity::{QUANTITY_HINT, Quantity};

/// Default CPU and memory of a replica when neither defaults nor the model set them.
const DEFAULT_CPU: &str = "500m";
const DEFAULT_MEMORY: &str = "1Gi";
/// Defaults on an edge box (arm64), which has a few cores and little memory to share.
const EDGE_CPU: &str = "250m";
const EDGE_MEMORY: &str = "512Mi";
/// Default container port of a custom image.
const DEFAULT_PORT: u16 = 8080;
/// Default HPA CPU target.
const DEFAULT_CPU_UTILIZATION: u32 = 80;

/// A fully resolved project: what every later stage works from.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// Project name.
    pub name: String,
    /// Labels for every object.
    pub labels: BTreeMap<String, String>,
    /// Clusters, by name.
    pub clusters: BTreeMap<String, ClusterModel>,
    /// Environments, by name.
    pub environments: BTreeMap<String, Env>,
    /// Monitoring switches.
    pub monitoring: Monitoring,
    /// GitOps settings.
    pub gitops: Option<Gitops>,
    /// The image signature policy (`security.imageSignatures`).
    pub image_signatures: Option<signing::SignaturePolicy>,
    /// What works but weakens security (static keys on a cloud, mutable tags in production, an
    /// API server open to the internet): `validate` prints these; they never fail a command.
    #[serde(skip)]
    pub warnings: Vec<Problem>,
}

/// Monitoring switches.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Monitoring {
    /// ServiceMonitors and kube-prometheus-stack.
    pub prometheus: bool,
    /// Grafana dashboard ConfigMap.
    pub grafana_dashboard: bool,
}

/// GitOps settings with defaults filled in.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gitops {
    /// argocd or flux.
    pub engine: GitopsEngine,
    /// Repository URL.
    pub repo_url: String,
    /// Revision.
    pub revision: String,
    /// Folder in the repository.
    pub path: String,
}

/// A cluster with machine types and GPU data resolved.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterModel {
    /// Cluster name.
    pub name: String,
    /// Platform.
    pub cloud: Cloud,
    /// Region (managed clouds).
    pub region: Option<String>,
    /// GCP project.
    pub gcp_project: Option<String>,
    /// GCP zone.
    pub gcp_zone: Option<String>,
    /// AWS VPC.
    pub aws_vpc_id: Option<String>,
    /// AWS subnets.
    pub aws_subnet_ids: Vec<String>,
    /// Azure resource group.
    pub azure_resource_group: Option<String>,
    /// Kubernetes version.
    pub kubernetes_version: Option<String>,
    /// Node pools.
    pub node_pools: Vec<Pool>,
    /// kubeconfig context.
    pub context: Option<String>,
    /// On-prem distribution.
    pub distribution: Option<Distribution>,
    /// Node architecture when stated (or implied by a Jetson): pods then select it.
    pub arch: Option<Arch>,
    /// GPUs of an onprem cluster's nodes, as declared (time-slicing and MIG set up for them).
    pub gpus: Vec<GpuUse>,
    /// Where Terraform keeps the cluster's state (always set on onprem, where it defaults to a
    /// Secret in the cluster).
    pub state: Option<StateBackend>,
    /// API server access; `authorizedNetworks` is never empty (`0.0.0.0/0` when not set).
    pub control_plane: config::ControlPlane,
    /// Hardening switches.
    pub hardening: config::Hardening,
}

/// Where Terraform keeps a cluster's state, with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    rename_all = "lowercase",
    rename_all_fields = "camelCase",
    tag = "backend"
)]
pub enum StateBackend {
    /// A GCS bucket.
    Gcs {
        /// Bucket.
        bucket: String,
        /// Folder in the bucket.
        prefix: String,
    },
    /// An S3 bucket with a DynamoDB lock table.
    S3 {
        /// Bucket.
        bucket: String,
        /// Region of the bucket.
        region: String,
        /// Lock table.
        dynamodb_table: String,
        /// Object key.
        key: String,
    },
    /// An Azure Storage blob container.
    Azurerm {
        /// Resource group of the storage account.
        resource_group: String,
        /// Storage account.
        storage_account: String,
        /// Container.
        container: String,
        /// Blob name.
        key: String,
    },
    /// A local file.
    Local {
        /// File, relative to the config's folder (None: in the working directory).
        path: Option<String>,
    },
    /// A Secret in the cluster.
    Kubernetes {
        /// Suffix of the Secret's name.
        secret_suffix: String,
        /// Namespace of the Secret.
        namespace: String,
    },
}

impl StateBackend {
    /// The backend's name in the config and in Terraform.
    pub fn name(&self) -> &'static str {
        match self {
            StateBackend::Gcs { .. } => "gcs",
            StateBackend::S3 { .. } => "s3",
            StateBackend::Azurerm { .. } => "azurerm",
            StateBackend::Local { .. } => "local",
            StateBackend::Kubernetes { .. } => "kubernetes",
        }
    }
}

/// A node pool with its machine type chosen.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    /// Pool name.
    pub name: String,
    /// Cloud machine type.
    pub machine_type: String,
    /// GPUs per node.
    pub gpu: Option<GpuUse>,
    /// Minimum nodes.
    pub min: u32,
    /// Maximum nodes.
    pub max: u32,
    /// Spot capacity.
    pub spot: bool,
    /// Boot disk GB.
    pub disk_size_gb: u32,
}

/// A GPU type and count, with the platform's accelerator name and how the GPU is cut up.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuUse {
    /// Catalog name.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// GPUs (or MIG slices).
    pub count: u32,
    /// Platform accelerator name (node label value), when the platform is known.
    pub accelerator: Option<&'static str>,
    /// Who makes it.
    pub vendor: Vendor,
    /// Node pools: time-slices per GPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<u32>,
    /// Models: a time-slice of a shared GPU.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// MIG profile (a model's slice, or the slices a pool's GPUs are cut into).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mig: Option<&'static str>,
    /// Models: requested through a DRA ResourceClaim.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub claim: bool,
}

/// Where a GPU request stands, which decides the fields it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GpuRole {
    /// A model's request.
    Model,
    /// A node pool's GPUs (or an onprem cluster's `gpus`).
    Nodes,
}

/// First Kubernetes minor with `resource.k8s.io/v1` (DRA GA).
const DRA_MINOR: u32 = 34;

/// Most shares per GPU (GKE's limit, and plenty elsewhere).
const MAX_SHARE: i64 = 48;

/// An environment: a cluster, a namespace, and its models after overrides.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Env {
    /// Environment name.
    pub name: String,
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Models, in config order.
    pub models: Vec<Model>,
    /// NetworkPolicies of the namespace.
    pub network_policy: config::NetworkPolicy,
    /// A production environment.
    pub production: bool,
    /// The Prometheus server KEDA reads metrics from, when not kube-prometheus-stack's
    /// ([`DEFAULT_PROMETHEUS_ADDRESS`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_address: Option<String>,
}

/// Where a model's code comes from.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Source {
    /// A custom container image.
    Image {
        /// Image reference.
        image: String,
        /// Container port.
        port: u16,
    },
    /// A prepackaged server with an artifact.
    Prepackaged {
        /// Server.
        server: Server,
        /// Artifact URI.
        model_uri: String,
        /// Credentials Secret.
        storage_secret: Option<String>,
    },
}

/// A model resolved for one environment.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    /// Name.
    pub name: String,
    /// Runtime.
    pub runtime: Runtime,
    /// Image or prepackaged server.
    pub source: Source,
    /// Replicas (the minimum when autoscaled).
    pub replicas: u32,
    /// CPU quantity.
    pub cpu: String,
    /// Memory quantity.
    pub memory: String,
    /// GPUs per replica.
    pub gpu: Option<GpuUse>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Variables from Secrets.
    pub secret_env: Vec<config::SecretEnv>,
    /// Autoscaling.
    pub autoscale: Option<Autoscale>,
    /// Canary.
    pub canary: Option<Canary>,
    /// Service-level objective of `mldeploy test` / `promote`.
    #[serde(skip_serializing_if = "slo::Slo::is_empty")]
    pub slo: slo::Slo,
    /// How `mldeploy test` talks to it.
    #[serde(skip_serializing_if = "slo::TestSettings::is_empty")]
    pub test: slo::TestSettings,
    /// Language-model settings (`server: vllm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<llm::Llm>,
    /// The workload identity its pods read storage with (`storage.identity: workload`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<storage::Identity>,
}

/// Autoscaling bounds and signals.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Autoscale {
    /// Minimum replicas.
    pub min: u32,
    /// Maximum replicas.
    pub max: u32,
    /// CPU target percent: always without a metric, only when set with one.
    pub cpu_utilization: Option<u32>,
    /// A Prometheus metric KEDA scales on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<ScaleMetric>,
}

impl Autoscale {
    /// Whether KEDA does the scaling (a metric is set).
    pub fn keda(&self) -> bool {
        self.metric.is_some()
    }
}

/// A metric KEDA scales on: a vLLM preset or a user's PromQL query, and its target per replica.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleMetric {
    /// The preset, or None for a user's query.
    pub preset: Option<config::MetricPreset>,
    /// The user's query (None for a preset, whose query is built per runtime at render time).
    pub query: Option<String>,
    /// Value per replica.
    pub target: f64,
    /// Seconds the metric stays idle before KEDA scales to zero.
    pub cooldown_seconds: u32,
    /// Seconds between KEDA's reads of the metric.
    pub polling_seconds: u32,
}

/// A canary version.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Canary {
    /// New image or artifact (the same kind as the model's).
    pub source: Source,
    /// Percent of traffic.
    pub traffic: u32,
}

/// Collects problems while walking the config.
struct Checker<'a> {
    root: &'a Node,
    problems: Vec<Problem>,
    /// What works but is risky (a tight GPU fit): printed by `validate`, never fatal.
    warnings: Vec<Problem>,
}

impl Checker<'_> {
    /// A problem at `path` in the document (or at the deepest part of it that exists).
    fn at(&mut self, path: &[Seg], message: impl Into<String>, hint: Option<String>) {
        let node = self.root.lookup(path);
        self.problems
            .push(Problem::new(Some(node.loc), path_string(path), message).maybe_hint(hint));
    }

    fn label(&mut self, path: &[Seg], what: &str, name: &str) -> bool {
        match names::dns_label(name) {
            Ok(()) => true,
            Err(e) => {
                let hint = format!(
                    "{what} names are DNS-1123 labels, e.g. `{}`",
                    match names::suggest_label(name) {
                        s if s.is_empty() => "my-name".to_string(),
                        s => s,
                    }
                );
                self.at(path, format!("{what} name `{name}` {e}"), Some(hint));
                false
            }
        }
    }
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

fn join(base: &[Seg], rest: &[Seg]) -> Vec<Seg> {
    let mut v = base.to_vec();
    v.extend_from_slice(rest);
    v
}

/// Resolves and validates a loaded config. Every problem is reported, not just the first.
pub fn resolve(loaded: &Loaded) -> Result<Project, Report> {
    let cfg = &loaded.config;
    let mut ck = Checker {
        root: &loaded.root,
        problems: loaded.problems.clone(),
        warnings: Vec::new(),
    };

    ck.label(&[key("project")], "project", &cfg.project);
    let mut labels = BTreeMap::new();
    for (k, v) in &cfg.labels {
        let path = [key("labels"), key(k)];
        if let Err(e) = names::label_key(k) {
            ck.at(&path, format!("label key `{k}` {e}"), None);
        }
        if let Err(e) = names::label_value(v.as_str()) {
            ck.at(&path, format!("label value `{v}` {e}"), None);
        }
        labels.insert(k.clone(), v.0.clone());
    }

    let clusters: BTreeMap<String, ClusterModel> = cfg
        .clusters
        .iter()
        .map(|(name, c)| (name.clone(), check_cluster(&mut ck, &cfg.project, name, c)))
        .collect();

    // Base model names: present, valid, unique.
    let mut model_names: Vec<&str> = Vec::new();
    let mut first_seen: BTreeMap<&str, Loc> = BTreeMap::new();
    for (i, m) in cfg.models.iter().enumerate() {
        let path = [key("models"), Seg::Index(i)];
        match &m.name {
            None => ck.at(
                &path,
                "a model needs a `name`",
                Some("e.g. `name: fraud-xgb`".into()),
            ),
            Some(n) => {
                let npath = join(&path, &[key("name")]);
                if ck.label(&npath, "model", n) && n.len() > names::MAX_MODEL_NAME {
                    ck.at(
                        &npath,
                        format!(
                            "model name `{n}` is {} characters; at most {} are allowed",
                            n.len(),
                            names::MAX_MODEL_NAME
                        ),
                        Some("rendered objects add suffixes such as `-predictor`".into()),
                    );
                }
                let loc = ck.root.lookup(&npath).loc;
                if let Some(first) = first_seen.get(n.as_str()) {
                    ck.at(
                        &npath,
                        format!("model name `{n}` is used twice"),
                        Some(format!(
                            "first used at line {}; model names must be unique",
                            first.line
                        )),
                    );
                } else {
                    first_seen.insert(n, loc);
                    model_names.push(n);
                }
            }
        }
    }
    if cfg.models.is_empty() {
        ck.at(
            &[key("models")],
            "no models are defined",
            Some("add a model under `models:`".into()),
        );
    }

    if let Some(d) = &cfg.defaults {
        check_layer_fields(&mut ck, &[key("defaults")], d);
    }

    let mut environments = BTreeMap::new();
    for (env_name, env) in &cfg.environments {
        let epath = [key("environments"), key(env_name)];
        ck.label(&epath, "environment", env_name);
        let namespace = env.namespace.clone().unwrap_or_else(|| cfg.project.clone());
        if env.namespace.is_some() {
            ck.label(&join(&epath, &[key("namespace")]), "namespace", &namespace);
        }
        if let Some(d) = &env.overrides.defaults {
            check_layer_fields(
                &mut ck,
                &join(&epath, &[key("overrides"), key("defaults")]),
                d,
            );
        }
        for (name, spec) in &env.overrides.models {
            let opath = join(&epath, &[key("overrides"), key("models"), key(name)]);
            if !model_names.contains(&name.as_str()) {
                let hint = closest(name, model_names.iter().copied())
                    .map(|c| format!("did you mean `{c}`?"))
                    .or_else(|| Some(format!("models: {}", model_names.join(", "))));
                ck.at(&opath, format!("override for unknown model `{name}`"), hint);
            }
            if spec.name.is_some() {
                ck.at(
                    &join(&opath, &[key("name")]),
                    "an override cannot rename a model",
                    None,
                );
            }
        }
        for (i, ns) in env.network_policy.allow_from.iter().enumerate() {
            if ns != "*" {
                let path = join(
                    &epath,
                    &[key("networkPolicy"), key("allowFrom"), Seg::Index(i)],
                );
                ck.label(&path, "namespace", ns);
            }
        }
        let cluster = match clusters.get(&env.cluster) {
            Some(c) => Some(c),
            None => {
                if !cfg.clusters.contains_key(&env.cluster) {
                    let hint = closest(&env.cluster, cfg.clusters.keys().map(String::as_str))
                        .map(|c| format!("did you mean `{c}`?"))
                        .unwrap_or_else(|| {
                            format!(
                                "clusters: {}",
                                cfg.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
                            )
                        });
                    ck.at(
                        &join(&epath, &[key("cluster")]),
                        format!("unknown cluster `{}`", env.cluster),
                        Some(hint),
                    );
                }
                None
            }
        };
        let layers = EnvLayers {
            root: &loaded.root,
            env: Some(env_name),
        };
        let env_cache = env.cache.as_ref().filter(|c| match llm::cache_problems(c) {
            Ok(_) => true,
            Err(problems) => {
                for (field, message, hint) in problems {
                    ck.at(&join(&epath, &[key("cache"), key(field)]), message, hint);
                }
                false
            }
        });
        let models = resolve_models(
            &mut ck,
            &layers,
            cluster,
            (&cfg.project, env_name),
            env_cache,
        );
        check_metric_source(&mut ck, cfg, env_name, env, &models);
        environments.insert(
            env_name.clone(),
            Env {
                name: env_name.clone(),
                cluster: env.cluster.clone(),
                namespace,
                models,
                network_policy: env.network_policy.clone(),
                production: env.production,
                prometheus_address: check_prometheus_address(&mut ck, &epath, env),
            },
        );
    }
    if cfg.environments.is_empty() {
        // Still check the models themselves.
        let layers = EnvLayers {
            root: &loaded.root,
            env: None,
        };
        resolve_models(&mut ck, &layers, None, (&cfg.project, ""), None);
    }

    let gitops = cfg.gitops.as_ref().map(|g| Gitops {
        engine: g.engine,
        repo_url: g.repo_url.clone(),
        revision: g.revision.clone().unwrap_or_else(|| "main".into()),
        path: g.path.clone().unwrap_or_else(|| "deploy".into()),
    });
    if let Some(g) = &cfg.gitops
        && g.repo_url.trim().is_empty()
    {
        ck.at(&[key("gitops"), key("repoURL")], "repoURL is empty", None);
    }
    if let Some(path) = cfg.gitops.as_ref().and_then(|g| g.path.as_deref())
        && let Err(message) = check_gitops_path(path)
    {
        ck.at(
            &[key("gitops"), key("path")],
            message,
            Some(
                "a folder of the repository, relative to its root and to this config's folder, \
                 e.g. `deploy`"
                    .into(),
            ),
        );
    }

    let image_signatures = cfg
        .security
        .as_ref()
        .and_then(|s| s.image_signatures.as_ref())
        .and_then(|sig| {
            let dir = loaded
                .source
                .path
                .parent()
                .unwrap_or(std::path::Path::new(""));
            signing::resolve(sig, dir)
                .map_err(|(message, hint)| {
                    ck.at(
                        &[key("security"), key("imageSignatures"), key("cosignKey")],
                        message,
                        Some(hint),
                    );
                })
                .ok()
        });

    // A value with a type error was left out of the checks above; what those checks then say
    // about the same field or the item holding it ("needs `image`") only repeats the type error.
    let typed: Vec<&str> = loaded.problems.iter().map(|p| p.path.as_str()).collect();
    let first_semantic = loaded.problems.len();
    let mut index = 0;
    ck.problems.retain(|p| {
        index += 1;
        index <= first_semantic
            || !typed.iter().any(|t| {
                *t == p.path
                    || t.strip_prefix(p.path.as_str())
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
    });

    if ck.problems.is_empty() {
        let mut warnings = security_warnings(&ck, cfg, &clusters, &environments);
        for w in std::mem::take(&mut ck.warnings) {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        warnings.extend(scale_from_zero_warnings(&ck, cfg, &environments));
        Ok(Project {
            name: cfg.project.clone(),
            labels,
            clusters,
            environments,
            monitoring: Monitoring {
                prometheus: cfg.monitoring.prometheus,
                grafana_dashboard: cfg.monitoring.grafana_dashboard,
            },
            gitops,
            image_signatures,
            warnings,
        })
    } else {
        Err(Report::new(loaded.source.clone(), ck.problems))
    }
}

/// Fields that identify a model and so cannot be inherited from defaults.
fn check_layer_fields(ck: &mut Checker<'_>, path: &[Seg], spec: &ModelSpec) {
    let identity = [
        ("name", spec.name.is_some()),
        ("image", spec.image.is_some()),
        ("modelUri", spec.model_uri.is_some()),
        ("canary", spec.canary.is_some()),
    ];
    for (field, set) in identity {
        if set {
            ck.at(
                &join(path, &[key(field)]),
                format!("`{field}` identifies one model and cannot be a default"),
                Some("set it on the model (or in `overrides.models.<name>`)".into()),
            );
        }
    }
}

/// Checks a cluster; the result holds what could be resolved even when there were problems,
/// so that environments on it are still checked (the project is only built without problems).
fn check_cluster(ck: &mut Checker<'_>, project: &str, name: &str, c: &Cluster) -> ClusterModel {
    let path = [key("clusters"), key(name)];
    ck.label(&path, "cluster", name);
    let plat = platform::of(c.cloud);
    let managed = plat.managed;
    if managed && c.region.is_none() {
        let examples: Vec<&str> = platform::PLATFORMS
            .iter()
            .filter(|p| p.managed)
            .map(|p| p.region_example)
            .collect();
        ck.at(
            &path,
            format!("a {} cluster needs a `region`", c.cloud.name()),
            Some(format!("e.g. region: {}", examples.join(" / "))),
        );
    }
    for (i, cidr) in c.control_plane.authorized_networks.iter().enumerate() {
        if !is_cidr(cidr) {
            ck.at(
                &join(
                    &path,
                    &[
                        key("controlPlane"),
                        key("authorizedNetworks"),
                        Seg::Index(i),
                    ],
                ),
                format!("`{cidr}` is not an IPv4 CIDR range"),
                Some("e.g. `203.0.113.0/24`, or `198.51.100.7/32` for one address".into()),
            );
        }
    }
    if !managed && c.region.is_some() {
        ck.at(
            &join(&path, &[key("region")]),
            "an onprem cluster has no region",
            None,
        );
    }
    for (field, set) in [
        ("gcp", c.gcp.is_some()),
        ("aws", c.aws.is_some()),
        ("azure", c.azure.is_some()),
    ] {
        if set && plat.settings != Some(field) {
            ck.at(
                &join(&path, &[key(field)]),
                format!("`{field}` settings on a {} cluster", c.cloud.name()),
                Some(format!("remove it, or set `cloud: {field}`")),
            );
        }
    }
    let has_settings = match plat.settings {
        Some("gcp") => c.gcp.is_some(),
        Some("aws") => c.aws.is_some(),
        Some("azure") => c.azure.is_some(),
        _ => true,
    };
    if let Some((message, hint)) = plat.settings_required
        && !has_settings
    {
        ck.at(&path, message, Some(hint.into()));
    }
    if c.distribution.is_some() && managed {
        ck.at(
            &join(&path, &[key("distribution")]),
            "`distribution` applies to onprem clusters",
            None,
        );
    }
    if let Some(v) = &c.kubernetes_version {
        let ok = v.as_str().split_once('.').is_some_and(|(a, b)| {
            a == "1" && !b.is_empty() && b.bytes().all(|x| x.is_ascii_digit())
        });
        if !ok {
            ck.at(
                &join(&path, &[key("kubernetesVersion")]),
                format!("`{v}` is not a Kubernetes minor version"),
                Some("e.g. \"1.30\" (quote it)".into()),
            );
        }
    }
    if !managed && !c.node_pools.is_empty() {
        ck.at(
            &join(&path, &[key("nodePools")]),
            "an onprem cluster already exists; mldeploy does not manage its nodes",
            Some("remove `nodePools`; label GPU nodes with NVIDIA GPU feature discovery".into()),
        );
    }
    let mut pools = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, p) in c.node_pools.iter().enumerate() {
        let ppath = join(&path, &[key("nodePools"), Seg::Index(i)]);
        if ck.label(&join(&ppath, &[key("name")]), "node pool", &p.name) {
            pool_name_rules(ck, &join(&ppath, &[key("name")]), c.cloud, &p.name);
        }
        if seen.contains(&p.name.as_str()) {
            ck.at(
                &join(&ppath, &[key("name")]),
                format!("node pool `{}` is defined twice", p.name),
                None,
            );
        }
        seen.push(&p.name);
        pools.push(check_pool(ck, &ppath, c.cloud, p));
    }
    let mut gpus = Vec::new();
    if managed && !c.gpus.is_empty() {
        ck.at(
            &join(&path, &[key("gpus")]),
            format!("`gpus` describes an onprem cluster's nodes; a {} cluster's GPUs are in `nodePools[].gpu`", c.cloud.name()),
            None,
        );
    }
    for (i, g) in c.gpus.iter().enumerate() {
        let gpath = join(&path, &[key("gpus"), Seg::Index(i)]);
        if let Some(u) = check_gpu(ck, &gpath, Some(c.cloud), g, "", GpuRole::Nodes) {
            gpus.push(u);
        }
    }
    let edge_gpu = gpus
        .iter()
        .find(|u| catalog::gpu(u.kind).is_some_and(|g| g.edge));
    if managed && c.arch.is_some() {
        ck.at(
            &join(&path, &[key("arch")]),
            "`arch` applies to onprem clusters",
            Some("a managed pool's architecture follows its machine type".into()),
        );
    }
    if let (Some(Arch::Amd64), Some(g)) = (c.arch, edge_gpu) {
        ck.at(
            &join(&path, &[key("arch")]),
            format!(
                "`{}` is an arm64 module; the cluster says `arch: amd64`",
                g.kind
            ),
            Some("set `arch: arm64` (or leave it out)".into()),
        );
    }
    let arch = c.arch.or(edge_gpu.map(|_| Arch::Arm64));
    let state = check_state(ck, &path, project, name, c);
    ClusterModel {
        name: name.to_string(),
        cloud: c.cloud,
        region: c.region.clone(),
        gcp_project: c.gcp.as_ref().map(|g| g.project.clone()),
        gcp_zone: c.gcp.as_ref().and_then(|g| g.zone.clone()),
        aws_vpc_id: c.aws.as_ref().and_then(|a| a.vpc_id.clone()),
        aws_subnet_ids: c
            .aws
            .as_ref()
            .map(|a| a.subnet_ids.clone())
            .unwrap_or_default(),
        azure_resource_group: c.azure.as_ref().map(|a| a.resource_group.clone()),
        kubernetes_version: c.kubernetes_version.as_ref().map(|v| v.0.clone()),
        node_pools: pools,
        context: c.context.clone(),
        distribution: c.distribution,
        arch,
        gpus,
        state,
        control_plane: config::ControlPlane {
            authorized_networks: if c.control_plane.authorized_networks.is_empty() {
                vec!["0.0.0.0/0".into()]
            } else {
                c.control_plane.authorized_networks.clone()
            },
            private_endpoint: c.control_plane.private_endpoint,
        },
        hardening: c.hardening.clone(),
    }
}

/// Whether an image reference is pinned by digest (`repo@sha256:…`).
pub fn pinned_by_digest(image: &str) -> bool {
    image
        .split_once('@')
        .is_some_and(|(_, digest)| digest.starts_with("sha256:") && digest.len() == 71)
}

/// Security warnings of a valid config (docs/security.md): static storage keys on a cloud,
/// images by mutable tag in a production environment, an API server open to the internet.
fn security_warnings(
    ck: &Checker<'_>,
    cfg: &config::Config,
    clusters: &BTreeMap<String, ClusterModel>,
    environments: &BTreeMap<String, Env>,
) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    let mut warn = |path: Vec<Seg>, message: String, hint: &str| {
        let loc = ck.root.lookup(&path).loc;
        let p = Problem::new(Some(loc), path_string(&path), message).hint(hint);
        if !out.contains(&p) {
            out.push(p);
        }
    };
    let model_path = |name: &str, field: &[&str]| -> Vec<Seg> {
        let mut path = match cfg
            .models
            .iter()
            .position(|m| m.name.as_deref() == Some(name))
        {
            Some(i) => vec![key("models"), Seg::Index(i)],
            None => vec![key("models")],
        };
        path.extend(field.iter().map(|f| key(f)));
        path
    };
    for (name, c) in clusters {
        if c.cloud != Cloud::Onprem && c.control_plane.authorized_networks == ["0.0.0.0/0"] {
            warn(
                vec![key("clusters"), key(name)],
                format!("the API server of cluster `{name}` accepts connections from anywhere"),
                "set controlPlane.authorizedNetworks to the ranges Terraform and mldeploy run from",
            );
        }
    }
    if let Some(sig) = cfg
        .security
        .as_ref()
        .and_then(|s| s.image_signatures.as_ref())
        && !sig.install_kyverno
    {
        warn(
            vec![key("security"), key("imageSignatures")],
            "the image signature policy is a Kyverno ClusterPolicy: Kyverno must run in the cluster".into(),
            "install Kyverno (or set `installKyverno: true` for `mldeploy infra` to), else `apply` finds no ClusterPolicy kind",
        );
    }
    for env in environments.values() {
        let cloud = clusters.get(&env.cluster).map(|c| c.cloud);
        for m in &env.models {
            if let Source::Prepackaged {
                storage_secret: Some(secret),
                ..
            } = &m.source
                && cloud.is_some_and(|c| c != Cloud::Onprem)
            {
                warn(
                    model_path(&m.name, &["storageSecret"]),
                    format!(
                        "model `{}` reads its artifact with static keys (Secret `{secret}`) on a cloud",
                        m.name
                    ),
                    "set `storage: {identity: workload}` (mldeploy infra grants the cloud's workload identity read on the bucket) and remove `storageSecret` (docs/security.md)",
                );
            }
            if let (Some(c), Some(id)) = (cloud, &m.identity)
                && c == Cloud::Azure
                && id.client_id.is_none()
            {
                warn(
                    model_path(&m.name, &["storage"]),
                    format!(
                        "the ServiceAccount `{}` of model `{}` has no AKS client id yet, so its pods get no Azure token",
                        id.name, m.name
                    ),
                    "after `mldeploy infra apply`, set `storage.clientId` to the client id it prints (terraform output storage_identities)",
                );
            }
            let uris = std::iter::once(&m.source)
                .chain(m.canary.as_ref().map(|c| &c.source))
                .filter_map(|s| match s {
                    Source::Prepackaged {
                        model_uri,
                        storage_secret: None,
                        ..
                    } => Some(model_uri),
                    _ => None,
                });
            for uri in uris {
                if let (Some(c), Some(b), None) = (cloud, storage::Bucket::of(uri), &m.identity)
                    && c != Cloud::Onprem
                    && b.cloud() != c
                {
                    warn(
                        model_path(&m.name, &["modelUri"]),
                        format!(
                            "`{uri}` of model `{}` is {} but environment `{}` runs on {}: without `storageSecret` only a public bucket can be read",
                            m.name,
                            b.store(),
                            env.name,
                            c.name()
                        ),
                        "copy the artifact to the environment's cloud and use `storage: {identity: workload}`, or set `storageSecret`",
                    );
                }
            }
            if !env.production {
                continue;
            }
            let mut images = Vec::new();
            if let Source::Image { image, .. } = &m.source {
                images.push((image, model_path(&m.name, &["image"])));
            }
            if let Some(Canary {
                source: Source::Image { image, .. },
                ..
            }) = &m.canary
            {
                images.push((image, model_path(&m.name, &["canary", "image"])));
            }
            // A vLLM Deployment's image (`llm.image`, or the default by tag).
            if let Some(l) = m.llm.as_ref().filter(|l| l.kind.is_none()) {
                images.push((&l.image, model_path(&m.name, &["llm", "image"])));
            }
            for (image, path) in images {
                if !pinned_by_digest(image) {
                    warn(
                        path,
                        format!(
                            "image `{image}` of model `{}` is a mutable tag in production environment `{}`",
                            m.name, env.name
                        ),
                        "pin it by digest: `repo@sha256:<64 hex digits>` (docker buildx imagetools inspect prints it)",
                    );
                }
            }
        }
    }
    out
}

/// Whether `s` is an IPv4 CIDR (`10.0.0.0/8`).
fn is_cidr(s: &str) -> bool {
    let Some((addr, bits)) = s.split_once('/') else {
        return false;
    };
    addr.parse::<std::net::Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32)
}

/// Checks a cluster's `state` and fills in its defaults. Each cloud keeps state in its own
/// storage (or a local file): Terraform for a cluster runs with that cloud's credentials, and
/// state in another cloud would need a second set; state in a Secret of a cluster Terraform
/// creates would be gone with the cluster.
fn check_state(
    ck: &mut Checker<'_>,
    cpath: &[Seg],
    project: &str,
    name: &str,
    c: &Cluster,
) -> Option<StateBackend> {
    let spath = join(cpath, &[key("state")]);
    let own = platform::of(c.cloud).state_backend;
    let defaults = names::StateDefaults::new(project, name);
    let Some(s) = &c.state else {
        // Bad project or cluster names are reported as such; this is about the length.
        if c.cloud == Cloud::Onprem
            && names::dns_label(project).is_ok()
            && names::dns_label(name).is_ok()
            && let Err(why) = names::secret_suffix(&defaults.secret_suffix)
        {
            ck.at(
                cpath,
                format!(
                    "the default state Secret suffix `{}` {why}",
                    defaults.secret_suffix
                ),
                Some("set `state: {kubernetes: {secretSuffix: SHORT-NAME}}`".into()),
            );
        }
        return (c.cloud == Cloud::Onprem).then(|| StateBackend::Kubernetes {
            secret_suffix: defaults.secret_suffix.clone(),
            namespace: "kube-system".into(),
        });
    };
    let set: Vec<&str> = [
        ("gcs", s.gcs.is_some()),
        ("s3", s.s3.is_some()),
        ("azurerm", s.azurerm.is_some()),
        ("local", s.local.is_some()),
        ("kubernetes", s.kubernetes.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
    .collect();
    match set.as_slice() {
        [] => {
            ck.at(
                &spath,
                "`state` names no backend",
                Some(format!(
                    "clusters on {} keep state in `{own}` (or `local: {{}}`), e.g. {}",
                    c.cloud.name(),
                    state_example(c.cloud)
                )),
            );
            return None;
        }
        [_] => {}
        many => {
            ck.at(
                &spath,
                format!(
                    "`state` names {} backends ({})",
                    many.len(),
                    many.join(", ")
                ),
                Some("keep one: Terraform keeps a cluster's state in one place".into()),
            );
            return None;
        }
    }
    let kind = set[0];
    if kind != own && kind != "local" {
        let why = match kind {
            "kubernetes" => {
                "state in a Secret of a cluster Terraform creates would be lost with the cluster"
                    .to_string()
            }
            _ => format!(
                "Terraform for a cluster on {} runs with {} credentials; state in {} would need a second set",
                c.cloud.name(),
                platform::of(c.cloud).title,
                platform::PLATFORMS
                    .iter()
                    .find(|p| p.state_backend == kind)
                    .map_or("another cloud", |p| p.state_storage)
            ),
        };
        ck.at(
            &join(&spath, &[key(kind)]),
            format!(
                "the `{kind}` backend does not fit a cluster on {}: {why}",
                c.cloud.name()
            ),
            Some(format!("use {} or `local: {{}}`", state_example(c.cloud))),
        );
        return None;
    }
    let mut required = |field: &str, value: &str, what: &str| {
        let path = join(&spath, &[key(kind), key(field)]);
        if value.trim().is_empty() {
            ck.at(&path, format!("`{field}` is empty"), Some(what.to_string()));
        } else if let Some((scheme, rest)) = value.split_once("://") {
            ck.at(
                &path,
                format!("`{field}` is a name, not a URL"),
                Some(format!("drop `{scheme}://`: `{rest}`")),
            );
        }
    };
    let or_default = |v: &Option<String>, default: String| v.clone().unwrap_or(default);
    let backend = if let Some(g) = &s.gcs {
        required("bucket", &g.bucket, "the name of an existing GCS bucket");
        StateBackend::Gcs {
            bucket: g.bucket.clone(),
            prefix: or_default(&g.prefix, defaults.gcs_prefix.clone()),
        }
    } else if let Some(a) = &s.s3 {
        required("bucket", &a.bucket, "the name of an existing S3 bucket");
        required(
            "dynamodbTable",
            &a.dynamodb_table,
            "a DynamoDB table with the partition key `LockID` (string)",
        );
        StateBackend::S3 {
            bucket: a.bucket.clone(),
            region: a
                .region
                .clone()
                .or_else(|| c.region.clone())
                .unwrap_or_default(),
            dynamodb_table: a.dynamodb_table.clone(),
            key: or_default(&a.key, defaults.s3_key.clone()),
        }
    } else if let Some(z) = &s.azurerm {
        required(
            "storageAccount",
            &z.storage_account,
            "the name of an existing storage account",
        );
        required(
            "container",
            &z.container,
            "the name of a blob container in the storage account",
        );
        StateBackend::Azurerm {
            resource_group: z
                .resource_group
                .clone()
                .or_else(|| c.azure.as_ref().map(|a| a.resource_group.clone()))
                .unwrap_or_default(),
            storage_account: z.storage_account.clone(),
            container: z.container.clone(),
            key: or_default(&z.key, defaults.azurerm_key.clone()),
        }
    } else if let Some(l) = &s.local {
        if let Some(p) = &l.path
            && p.trim().is_empty()
        {
            ck.at(
                &join(&spath, &[key("local"), key("path")]),
                "`path` is empty",
                Some("leave it out to keep the state in the working directory".into()),
            );
        }
        StateBackend::Local {
            path: l.path.clone(),
        }
    } else {
        let k = s.kubernetes.clone().unwrap_or_default();
        let secret_suffix = or_default(&k.secret_suffix, defaults.secret_suffix.clone());
        // The backend names the Secret `tfstate-default-<suffix>` and labels it with the suffix.
        if let Err(why) = names::secret_suffix(&secret_suffix) {
            let field = if k.secret_suffix.is_some() {
                key("secretSuffix")
            } else {
                key("kubernetes")
            };
            ck.at(
                &join(&spath, &[key("kubernetes"), field]),
                format!("the state Secret's suffix `{secret_suffix}` {why}"),
                Some("set `secretSuffix` to a short name, e.g. `<project>.<cluster>.state` shortened".into()),
            );
        }
        let namespace = or_default(&k.namespace, "kube-system".into());
        if k.namespace.is_some() {
            ck.label(
                &join(&spath, &[key("kubernetes"), key("namespace")]),
                "namespace",
                &namespace,
            );
        }
        StateBackend::Kubernetes {
            secret_suffix,
            namespace,
        }
    };
    Some(backend)
}

/// `gitops.path` names a folder inside the repository (and `gitops` writes there, relative to
/// the config's folder): relative, without `..`, nothing a shell or Git would read differently.
fn check_gitops_path(path: &str) -> Result<(), String> {
    let trimmed = path.trim();
    if trimmed.starts_with('/') || trimmed.starts_with('\\') || trimmed.contains(':') {
        return Err(format!(
            "`{path}` is absolute; it must be relative to the repository root"
        ));
    }
    let base = trimmed.trim_start_matches("./").trim_matches('/');
    if base.is_empty() || base == "." {
        return Ok(());
    }
    if base.split('/').any(|seg| seg == "..") {
        return Err(format!("`{path}` climbs out of the repository with `..`"));
    }
    if !crate::fsx::is_plain_relative(base) {
        return Err(format!(
            "`{path}` is not a plain relative path (empty, `.` or `\\` segments, or control characters)"
        ));
    }
    Ok(())
}

/// A `state` block for a cloud, for hints.
pub fn state_example(cloud: Cloud) -> &'static str {
    platform::of(cloud).state_example
}

/// Node pool names the cloud accepts beyond DNS labels (its platform row's rule).
fn pool_name_rules(ck: &mut Checker<'_>, path: &[Seg], cloud: Cloud, name: &str) {
    let p = platform::of(cloud);
    if let Some(rule) = p.pool_names
        && !rule.accepts(name)
    {
        ck.at(
            path,
            format!(
                "{} node pool name `{name}` must be {}",
                p.product, rule.rule
            ),
            Some(format!("e.g. `{}`", rule.fix(name))),
        );
    }
}

/// Checks a GPU request against the catalog and the platform: its type, count, sharing, MIG
/// slice and DRA claim, each against what the GPU and the role allow.
fn check_gpu(
    ck: &mut Checker<'_>,
    path: &[Seg],
    cloud: Option<Cloud>,
    req: &config::GpuRequest,
    where_: &str,
    role: GpuRole,
) -> Option<GpuUse> {
    let tpath = join(path, &[key("type")]);
    let at = |field: &str| join(path, &[key(field)]);
    let all: Vec<&str> = catalog::gpu_names().collect();
    let Some(kind) = &req.kind else {
        ck.at(
            path,
            "`gpu` needs a `type`",
            Some(format!("GPU types: {}", all.join(", "))),
        );
        return None;
    };
    let Some(gpu) = catalog::gpu(kind) else {
        let hint = match closest(kind, all.iter().copied()) {
            Some(c) => format!("did you mean `{c}`? GPU types: {}", all.join(", ")),
            None => format!("GPU types: {} (see `mldeploy gpus`)", all.join(", ")),
        };
        ck.at(&tpath, format!("unknown GPU type `{kind}`"), Some(hint));
        return None;
    };
    let count = match u32::try_from(req.count) {
        Ok(n) if n >= 1 => n,
        _ => {
            ck.at(
                &at("count"),
                format!("GPU count must be at least 1, not {}", req.count),
                None,
            );
            return None;
        }
    };
    let before = ck.problems.len();
    if let Some(cloud) = cloud
        && gpu.offer(cloud).is_none()
    {
        let offered: Vec<&str> = catalog::GPUS
            .iter()
            .filter(|g| g.offer(cloud).is_some())
            .map(|g| g.name)
            .collect();
        let message = if gpu.edge {
            format!(
                "GPU type `{}` is an edge module: it runs on onprem clusters only, not on {}{where_}",
                gpu.name,
                cloud.name()
            )
        } else {
            format!(
                "GPU type `{}` is not offered on {}{where_}",
                gpu.name,
                cloud.name()
            )
        };
        ck.at(
            &tpath,
            message,
            Some(format!(
                "{} is offered on: {}; {} offers: {}",
                gpu.name,
                gpu.clouds().join(", "),
                cloud.name(),
                offered.join(", ")
            )),
        );
        return None;
    }
    let vendor = gpu.vendor.spec();
    let isolation = "time-slices share the GPU's memory and faults: there is no memory or fault isolation between them";

    // Sharing: a pool's GPUs are cut into `share` time-slices; a model takes one with `shared`.
    let share = match (req.share, role) {
        (None, _) => None,
        (Some(_), GpuRole::Model) => {
            ck.at(
                &at("share"),
                "`share` sets how many time-slices a node pool's GPUs have",
                Some("a model asks for one time-slice with `shared: true`".into()),
            );
            None
        }
        (Some(n), GpuRole::Nodes) if !(2..=MAX_SHARE).contains(&n) => {
            ck.at(
                &at("share"),
                format!("`share` must be 2 to {MAX_SHARE} time-slices per GPU, not {n}"),
                Some(isolation.into()),
            );
            None
        }
        (Some(n), GpuRole::Nodes) => u32::try_from(n).ok(),
    };
    let shared = req.shared == Some(true);
    if req.shared.is_some() && role == GpuRole::Nodes {
        ck.at(
            &at("shared"),
            "`shared` is for models; a node pool sets `share: N` (time-slices per GPU)",
            None,
        );
    }
    if shared && count > 1 {
        ck.at(
            &at("count"),
            format!("a shared GPU is one time-slice of one GPU; `count` must be 1, not {count}"),
            Some(format!(
                "more slices do not add memory or compute that the model could rely on ({isolation}); ask for whole GPUs without `shared`"
            )),
        );
    }
    if (share.is_some() || shared) && !vendor.sharing {
        ck.at(
            &at(if shared { "shared" } else { "share" }),
            format!(
                "{} GPUs (`{}`) cannot be time-sliced: the {} device plugin hands out whole GPUs",
                vendor.name, gpu.name, vendor.name
            ),
            Some("ask for whole GPUs".into()),
        );
    }
    if (share.is_some() || shared) && gpu.edge {
        ck.at(
            &at(if shared { "shared" } else { "share" }),
            format!(
                "`{}` is an edge module with one integrated GPU; the standalone device plugin there is not set up for time-slicing",
                gpu.name
            ),
            None,
        );
    }

    // MIG: the profile must be one of the GPU's.
    let mig = match &req.mig {
        None => None,
        Some(_) if gpu.mig.is_empty() => {
            let with: Vec<&str> = catalog::GPUS
                .iter()
                .filter(|g| !g.mig.is_empty())
                .map(|g| g.name)
                .collect();
            ck.at(
                &at("mig"),
                format!("GPU type `{}` has no MIG (Multi-Instance GPU)", gpu.name),
                Some(format!("GPU types with MIG: {}", with.join(", "))),
            );
            None
        }
        Some(p) => match gpu.mig_profile(p) {
            Some(profile) => Some(profile.name),
            None => {
                let hint = match closest(p, gpu.mig.iter().map(|m| m.name)) {
                    Some(c) => format!(
                        "did you mean `{c}`? {} profiles: {}",
                        gpu.name,
                        gpu.mig_names().join(", ")
                    ),
                    None => format!("{} profiles: {}", gpu.name, gpu.mig_names().join(", ")),
                };
                ck.at(
                    &at("mig"),
                    format!("`{p}` is not a MIG profile of `{}`", gpu.name),
                    Some(hint),
                );
                None
            }
        },
    };
    if req.mig.is_some() && (share.is_some() || shared) {
        ck.at(
            &at("mig"),
            "a GPU is either cut into MIG slices or time-sliced, not both",
            Some("MIG slices are isolated (memory and faults); time-slices are not".into()),
        );
    }
    if let (Some(profile), GpuRole::Model) = (mig.and_then(|m| gpu.mig_profile(m)), role)
        && count > profile.per_gpu
    {
        ck.at(
            &at("count"),
            format!(
                "one {} holds at most {} × {}; a replica asks for {count}",
                gpu.name, profile.per_gpu, profile.name
            ),
            Some("ask for a larger profile, or for whole GPUs".into()),
        );
    }

    // DRA: NVIDIA's DRA driver publishes whole GPUs under the device class gpu.nvidia.com.
    let claim = req.claim == Some(true);
    if req.claim.is_some() && role == GpuRole::Nodes {
        ck.at(
            &at("claim"),
            "`claim` is for models: it requests their GPUs through a ResourceClaim",
            None,
        );
    }
    if claim && (gpu.vendor != Vendor::Nvidia || mig.is_some() || shared || gpu.edge) {
        ck.at(
            &at("claim"),
            "a DRA claim (`claim: true`) asks for whole NVIDIA GPUs of the device class `gpu.nvidia.com`",
            Some("drop `claim` for MIG slices, shared GPUs, Jetson and AMD GPUs".into()),
        );
    }
    if ck.problems.len() > before {
        return None;
    }
    Some(GpuUse {
        kind: gpu.name,
        count,
        accelerator: cloud.and_then(|c| gpu.offer(c)).map(|o| o.accelerator),
        vendor: gpu.vendor,
        share,
        shared,
        mig,
        claim,
    })
}

fn check_pool(ck: &mut Checker<'_>, path: &[Seg], cloud: Cloud, p: &config::NodePool) -> Pool {
    let gpu = p.gpu.as_ref().and_then(|g| {
        check_gpu(
            ck,
            &join(path, &[key("gpu")]),
            Some(cloud),
            g,
            "",
            GpuRole::Nodes,
        )
    });
    if p.machine.is_some() && p.machine_type.is_some() {
        ck.at(
            &join(path, &[key("machineType")]),
            "set either `machine` or `machineType`, not both",
            Some("`machineType` is a raw cloud type; `machine` a size mldeploy maps".into()),
        );
    }
    let mut machine_type = p.machine_type.clone();
    if machine_type.is_none()
        && let Some(g) = catalog::gpu(gpu.as_ref().map_or("", |u| u.kind))
        && let Some(count) = gpu.as_ref().map(|u| u.count)
        && let Some(offer) = g.offer(cloud)
    {
        match offer.machine_for(count) {
            Some(t) if offer.counts().contains(&count) => machine_type = Some(t.to_string()),
            _ => ck.at(
                &join(path, &[key("gpu"), key("count")]),
                format!(
                    "{} does not offer nodes with {count} × {}",
                    cloud.name(),
                    g.name
                ),
                Some(format!(
                    "GPUs per node on {}: {}",
                    cloud.name(),
                    offer
                        .counts()
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ),
        }
    }
    if machine_type.is_none() && gpu.is_none() && p.gpu.is_none() {
        let (cpu, mem) = match &p.machine {
            Some(m) => {
                let cpu = Quantity::parse(m.cpu.as_str());
                let mem = Quantity::parse(m.memory.as_str());
                if cpu.as_ref().is_none_or(|q| q.value <= 0.0) {
                    ck.at(
                        &join(path, &[key("machine"), key("cpu")]),
                        format!("`{}` is not a CPU count", m.cpu),
                        Some(QUANTITY_HINT.into()),
                    );
                }
                if mem.as_ref().is_none_or(|q| q.value <= 0.0) {
                    ck.at(
                        &join(path, &[key("machine"), key("memory")]),
                        format!("`{}` is not a memory size", m.memory),
                        Some(QUANTITY_HINT.into()),
                    );
                }
                (
                    cpu.map_or(0.0, |q| q.value),
                    mem.map_or(0.0, |q| q.value / 1024f64.powi(3)),
                )
            }
            None => (4.0, 16.0),
        };
        match catalog::machine_for(cloud, cpu, mem) {
            Some(t) => machine_type = Some(t.name.to_string()),
            None if cloud != Cloud::Onprem => ck.at(
                &join(path, &[key("machine")]),
                format!(
                    "no general-purpose {} machine has {cpu} vCPUs and {mem} GiB",
                    cloud.name()
                ),
                Some("set `machineType` to a raw cloud type".into()),
            ),
            None => {}
        }
    }
    let min = p.min.unwrap_or(if p.gpu.is_some() { 0 } else { 1 });
    let max = p.max.unwrap_or(min.max(1));
    if min < 0 {
        ck.at(
            &join(path, &[key("min")]),
            format!("min must be 0 or more, not {min}"),
            None,
        );
    }
    if max < 1 {
        ck.at(
            &join(path, &[key("max")]),
            format!("max must be at least 1, not {max}"),
            None,
        );
    }
    if min > max {
        ck.at(
            &join(path, &[key("min")]),
            format!("min ({min}) is larger than max ({max})"),
            Some("min ≤ max".into()),
        );
    }
    let disk = p.disk_size_gb.unwrap_or(100);
    if !(10..=65_536).contains(&disk) {
        ck.at(
            &join(path, &[key("diskSizeGb")]),
            format!("disk size {disk} GB is out of range"),
            Some("10 to 65536".into()),
        );
    }
    Pool {
        name: p.name.clone(),
        machine_type: machine_type.unwrap_or_default(),
        gpu,
        min: u32::try_from(min).unwrap_or(0),
        max: u32::try_from(max).unwrap_or(0),
        spot: p.spot,
        disk_size_gb: u32::try_from(disk).unwrap_or(100),
    }
}

/// The layers a model is built from, lowest first: defaults, the environment's defaults, the
/// model, the environment's override for the model.
struct EnvLayers<'a> {
    root: &'a Node,
    env: Option<&'a str>,
}

impl<'a> EnvLayers<'a> {
    fn layers(&self, index: usize, name: Option<&str>) -> Vec<Vec<Seg>> {
        let mut out = vec![vec![key("defaults")]];
        if let Some(env) = self.env {
            out.push(vec![
                key("environments"),
                key(env),
                key("overrides"),
                key("defaults"),
            ]);
        }
        out.push(vec![key("models"), Seg::Index(index)]);
        if let (Some(env), Some(name)) = (self.env, name) {
            out.push(vec![
                key("environments"),
                key(env),
                key("overrides"),
                key("models"),
                key(name),
            ]);
        }
        out
    }

    /// The merged node of model `index`.
    fn merged(&self, index: usize, name: Option<&str>) -> Node {
        let mut node = Node::synthetic(Value::Map(Vec::new()));
        for path in self.layers(index, name) {
            if self.root.exists(&path) {
                let layer = self.root.lookup(&path);
                if let Value::Map(_) = layer.value {
                    node.merge(layer);
                }
            }
        }
        node.loc = self.root.lookup(&[key("models"), Seg::Index(index)]).loc;
        node
    }

    /// The document path of the layer that set `rel` in model `index` (topmost layer first).
    fn origin(&self, index: usize, name: Option<&str>, rel: &[Seg], loc: Loc) -> Vec<Seg> {
        for base in self.layers(index, name).into_iter().rev() {
            let full = join(&base, rel);
            if self.root.exists(&full) && self.root.lookup(&full).loc == loc {
                return full;
            }
        }
        join(&[key("models"), Seg::Index(index)], rel)
    }
}

/// Problems of one merged model, in paths relative to the model.
struct ModelCheck<'a> {
    node: &'a Node,
    found: Vec<(Vec<Seg>, Loc, String, Option<String>)>,
    /// Warnings, in the same form.
    warned: Vec<(Vec<Seg>, Loc, String, Option<String>)>,
}

impl ModelCheck<'_> {
    fn at(&mut self, rel: &[Seg], message: impl Into<String>, hint: Option<String>) {
        let loc = self.node.lookup(rel).loc;
        let rel = if self.node.exists(rel) {
            rel.to_vec()
        } else {
            Vec::new()
        };
        self.found.push((rel, loc, message.into(), hint));
    }

    fn warn(&mut self, rel: &[Seg], message: &str, hint: &str) {
        self.at(rel, message, Some(hint.to_string()));
        if let Some(w) = self.found.pop() {
            self.warned.push(w);
        }
    }
}

fn resolve_models(
    ck: &mut Checker<'_>,
    layers: &EnvLayers<'_>,
    cluster: Option<&ClusterModel>,
    (project, env_name): (&str, &str),
    env_cache: Option<&config::Cache>,
) -> Vec<Model> {
    let count = match &layers.root.get("models").map(|n| &n.value) {
        Some(Value::Seq(items)) => items.len(),
        _ => 0,
    };
    let mut out = Vec::new();
    for index in 0..count {
        let name = layers
            .root
            .lookup(&[key("models"), Seg::Index(index), key("name")])
            .as_key();
        let merged = layers.merged(index, name.as_deref());
        let spec: ModelSpec = match from_node(&merged) {
            Ok(s) => s,
            Err(_) => {
                let mut merged = merged;
                for e in all_errors::<ModelSpec>(&mut merged) {
                    let loc = e.loc.unwrap_or(merged.loc);
                    let path = layers.origin(index, name.as_deref(), &e.path, loc);
                    ck.problems.push(
                        Problem::new(Some(loc), path_string(&path), e.message).maybe_hint(e.hint),
                    );
                }
                continue;
            }
        };
        let mut mc = ModelCheck {
            node: &merged,
            found: Vec::new(),
            warned: Vec::new(),
        };
        let model = check_model(&mut mc, &spec, cluster, (project, env_name), env_cache);
        for (rel, loc, message, hint) in mc.found {
            let path = layers.origin(index, name.as_deref(), &rel, loc);
            ck.problems
                .push(Problem::new(Some(loc), path_string(&path), message).maybe_hint(hint));
        }
        for (rel, loc, message, hint) in mc.warned {
            let path = layers.origin(index, name.as_deref(), &rel, loc);
            ck.warnings
                .push(Problem::new(Some(loc), path_string(&path), message).maybe_hint(hint));
        }
        out.extend(model);
    }
    out
}

/// Checks one merged model: each named check below looks at one concern and records its
/// problems; the model is built only when none of them found one.
fn check_model(
    mc: &mut ModelCheck<'_>,
    spec: &ModelSpec,
    cluster: Option<&ClusterModel>,
    (project, env_name): (&str, &str),
    env_cache: Option<&config::Cache>,
) -> Option<Model> {
    let before = mc.found.len();
    let name = spec.name.clone().unwrap_or_default();
    let source = check_source(mc, spec, &name);
    // The default follows what the model asked for, even when its source has a problem.
    let runtime = spec.runtime.unwrap_or(match (&spec.image, spec.server) {
        (None, Some(_)) => Runtime::Kserve,
        _ => Runtime::Deployment,
    });
    let rt = runtime::spec(runtime);
    check_runtime_serves(mc, spec, rt);
    let replicas = check_replicas(mc, spec);
    let edge = cluster.is_some_and(|c| c.arch == Some(Arch::Arm64));
    let (cpu, memory) = check_resources(mc, spec, edge);
    let gpu = check_model_gpu(mc, spec, cluster, env_name);
    if let (Some(g), Some(c)) = (&gpu, cluster) {
        check_gpu_fit(mc, g, c, env_name);
    }
    check_placement(mc, spec, rt, gpu.as_ref(), cluster);
    let llm = llm::check_llm(mc, spec, rt, gpu.as_ref(), cluster, env_cache);
    let (env, secret_env) = check_env(mc, spec, rt);
    let autoscale = check_autoscale(mc, spec, rt);
    let canary = check_canary(mc, spec, rt, source.as_ref());
    let identity = storage::check_storage(
        mc,
        spec,
        rt,
        cluster,
        (project, env_name),
        source.as_ref(),
        canary.as_ref(),
    );
    let slo = slo::check_slo(mc, spec.slo.as_ref());
    let test = slo::check_test(mc, spec.test.as_ref());

    if mc.found.len() > before {
        return None;
    }
    Some(Model {
        name,
        runtime,
        source: source?,
        replicas: u32::try_from(replicas).unwrap_or(0),
        cpu,
        memory,
        gpu,
        env,
        secret_env,
        autoscale,
        canary,
        slo,
        test,
        llm,
        identity,
    })
}

/// `image`, or `server` + `modelUri` (with its storage Secret).
fn check_source(mc: &mut ModelCheck<'_>, spec: &ModelSpec, name: &str) -> Option<Source> {
    let source = match (&spec.image, spec.server, &spec.model_uri) {
        (Some(image), None, None) => {
            if image.trim().is_empty() || image.contains(char::is_whitespace) {
                mc.at(
                    &[key("image")],
                    format!("`{image}` is not an image reference"),
                    Some("e.g. registry.example.com/team/model:1.0".into()),
                );
            }
            Some(Source::Image {
                image: image.clone(),
                port: spec.port.unwrap_or(DEFAULT_PORT),
            })
        }
        (None, Some(server), Some(uri)) => {
            if uri.trim().is_empty() || !uri.contains("://") {
                mc.at(
                    &[key("modelUri")],
                    format!("`{uri}` is not a model URI"),
                    Some(
                        "e.g. gs://bucket/path, s3://bucket/path, https://…, pvc://claim/path"
                            .into(),
                    ),
                );
            }
            Some(Source::Prepackaged {
                server,
                model_uri: uri.clone(),
                storage_secret: spec.storage_secret.clone(),
            })
        }
        (Some(_), _, _) => {
            mc.at(
                &[key("image")],
                "set either `image` or `server` + `modelUri`, not both",
                Some(
                    "`image` is a custom container; `server` + `modelUri` a prepackaged server"
                        .into(),
                ),
            );
            None
        }
        (None, Some(_), None) => {
            mc.at(
                &[key("server")],
                "`server` needs `modelUri`",
                Some("where the model artifact lives, e.g. gs://bucket/model".into()),
            );
            None
        }
        (None, None, Some(_)) => {
            let servers: Vec<&str> = runtime::SERVERS.iter().map(|s| s.server.name()).collect();
            mc.at(
                &[key("modelUri")],
                "`modelUri` needs `server`",
                Some(format!("servers: {}", servers.join(", "))),
            );
            None
        }
        (None, None, None) => {
            mc.at(
                &[],
                format!("model `{name}` needs `image`, or `server` and `modelUri`"),
                Some("`image: registry/repo:tag` for a custom container".into()),
            );
            None
        }
    };
    if spec.port.is_some() && spec.image.is_none() {
        mc.at(
            &[key("port")],
            "`port` applies to custom images",
            Some("prepackaged servers choose their own port".into()),
        );
    }
    if spec.port == Some(0) {
        mc.at(
            &[key("port")],
            "port 0 is not a valid port",
            Some("1 to 65535".into()),
        );
    }
    if spec.storage_secret.is_some() && spec.model_uri.is_none() {
        mc.at(
            &[key("storageSecret")],
            "`storageSecret` applies to `modelUri`",
            None,
        );
    }
    if let Some(s) = &spec.storage_secret
        && let Err(e) = names::dns_subdomain(s)
    {
        mc.at(
            &[key("storageSecret")],
            format!("Secret name `{s}` {e}"),
            None,
        );
    }
    source
}

/// What the runtime's row says it serves: custom images, prepackaged servers, GPUs.
fn check_runtime_serves(mc: &mut ModelCheck<'_>, spec: &ModelSpec, rt: &RuntimeSpec) {
    let name = rt.runtime.name();
    if spec.image.is_some() && !rt.images {
        mc.at(
            &[key("image")],
            format!("runtime `{name}` serves prepackaged servers only (`server` + `modelUri`)"),
            Some(format!(
                "for a custom image use runtime {}",
                runtime::names_where(|r| r.images)
            )),
        );
    }
    // Language models are served by the runtime's LLM objects (`RuntimeSpec::llm`), which
    // `llm::check_llm` checks.
    let llm = spec.server == Some(Server::Vllm)
        && matches!(rt.llm, crate::runtime::LlmServing::Serves(_));
    if spec.server.is_some() && spec.image.is_none() && !rt.prepackaged && !llm {
        mc.at(
            &[key("server")],
            format!("runtime `{name}` serves custom images only (`image`)"),
            Some(format!(
                "for a prepackaged server use runtime {}",
                runtime::names_where(|r| r.prepackaged)
            )),
        );
    }
}

fn check_replicas(mc: &mut ModelCheck<'_>, spec: &ModelSpec) -> i64 {
    let replicas = spec.replicas.unwrap_or(1);
    if replicas < 0 {
        mc.at(
            &[key("replicas")],
            format!("replicas must be 0 or more, not {replicas}"),
            None,
        );
    }
    replicas
}

/// CPU and memory quantities, with defaults.
fn check_resources(mc: &mut ModelCheck<'_>, spec: &ModelSpec, edge: bool) -> (String, String) {
    let mut quantity = |field: &str, default: &str, what: &str| -> String {
        let value = spec.resources.as_ref().and_then(|r| {
            if field == "cpu" {
                r.cpu.clone()
            } else {
                r.memory.clone()
            }
        });
        match value {
            None => default.to_string(),
            Some(v) => {
                match Quantity::parse(v.as_str()) {
                    Some(q) if q.value > 0.0 => {}
                    Some(_) => mc.at(
                        &[key("resources"), key(field)],
                        format!("{what} must be more than 0"),
                        None,
                    ),
                    None => mc.at(
                        &[key("resources"), key(field)],
                        format!("`{v}` is not a {what} quantity"),
                        Some(QUANTITY_HINT.into()),
                    ),
                }
                v.0
            }
        }
    };
    let (cpu, memory) = if edge {
        (EDGE_CPU, EDGE_MEMORY)
    } else {
        (DEFAULT_CPU, DEFAULT_MEMORY)
    };
    let cpu = quantity("cpu", cpu, "CPU");
    let memory = quantity("memory", memory, "memory");
    (cpu, memory)
}

/// The model's GPU request against the catalog and the environment's platform.
fn check_model_gpu(
    mc: &mut ModelCheck<'_>,
    spec: &ModelSpec,
    cluster: Option<&ClusterModel>,
    env_name: &str,
) -> Option<GpuUse> {
    let req = spec.gpu.as_ref()?;
    let cloud = cluster.map(|c| c.cloud);
    let where_ = cluster
        .map(|c| format!(" (cluster `{}` of environment `{env_name}`)", c.name))
        .unwrap_or_default();
    let mut gck = Checker {
        root: mc.node,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let found = check_gpu(&mut gck, &[key("gpu")], cloud, req, &where_, GpuRole::Model);
    for p in gck.problems {
        let field = p.path.rsplit('.').next().unwrap_or_default();
        let rel = match field {
            "count" | "type" | "share" | "shared" | "mig" | "claim" => vec![key("gpu"), key(field)],
            _ => vec![key("gpu")],
        };
        mc.at(&rel, p.message, p.hint);
    }
    found
}

/// The cluster must have GPUs that can hold one replica's request: a node pool (managed) or the
/// declared `gpus` (onprem, when declared) of the same type, cut the same way (whole, shared or
/// the same MIG profile), with enough GPUs or slices per node.
fn check_gpu_fit(mc: &mut ModelCheck<'_>, g: &GpuUse, c: &ClusterModel, env_name: &str) {
    let managed = platform::of(c.cloud).managed;
    let nodes: Vec<&GpuUse> = if managed {
        c.node_pools.iter().filter_map(|p| p.gpu.as_ref()).collect()
    } else {
        c.gpus.iter().collect()
    };
    if !managed && nodes.is_empty() {
        return;
    }
    let cut = |u: &GpuUse| match (u.share.is_some() || u.shared, u.mig) {
        (_, Some(m)) => format!("MIG {m} slices"),
        (true, None) => "time-sliced (shared)".to_string(),
        (false, None) => "whole GPUs".to_string(),
    };
    let same_type: Vec<&GpuUse> = nodes.iter().copied().filter(|n| n.kind == g.kind).collect();
    let fits: Vec<&GpuUse> = same_type
        .iter()
        .copied()
        .filter(|n| n.share.is_some() == g.shared && n.mig == g.mig)
        .collect();
    let (field, where_) = if managed {
        ("nodePools", "node pool")
    } else {
        ("gpus", "GPU entry")
    };
    let example = format!(
        "{{type: {}{}{}}}",
        g.kind,
        g.mig.map(|m| format!(", mig: {m}")).unwrap_or_default(),
        if g.shared { ", share: 4" } else { "" }
    );
    if same_type.is_empty() {
        mc.at(
            &[key("gpu"), key("type")],
            format!(
                "cluster `{}` (environment `{env_name}`) has no {where_} with GPU type `{}`",
                c.name, g.kind
            ),
            Some(if managed {
                format!(
                    "add `{{name: gpu-{}, gpu: {example}, min: 0, max: 2}}` to clusters.{}.nodePools",
                    g.kind, c.name
                )
            } else {
                format!("add `{example}` to clusters.{}.gpus", c.name)
            }),
        );
    } else if fits.is_empty() {
        let has: Vec<String> = same_type.iter().map(|n| cut(n)).collect();
        let rel = if g.mig.is_some() {
            "mig"
        } else if g.shared {
            "shared"
        } else {
            "type"
        };
        mc.at(
            &[key("gpu"), key(rel)],
            format!(
                "the model asks for {} of `{}`, but cluster `{}` has `{}` as {} only",
                cut(g),
                g.kind,
                c.name,
                g.kind,
                has.join(", ")
            ),
            Some(format!(
                "add a {where_} `{example}` to clusters.{}.{field}",
                c.name
            )),
        );
    } else {
        let capacity = |n: &GpuUse| match n.mig.and_then(|m| catalog::gpu(n.kind)?.mig_profile(m)) {
            Some(p) => n.count * p.per_gpu,
            None if n.share.is_some() => 1,
            None => n.count,
        };
        if !fits.iter().any(|n| capacity(n) >= g.count) {
            let most = fits.iter().map(|n| capacity(n)).max().unwrap_or(0);
            mc.at(
                &[key("gpu"), key("count")],
                format!(
                    "a replica asks for {} × {} but the nodes of cluster `{}` have at most {most}",
                    g.count,
                    g.mig.unwrap_or(g.kind),
                    c.name
                ),
                Some(format!(
                    "lower the count, or give a {where_} more GPUs per node"
                )),
            );
        }
    }
}

/// Where the model runs: an edge box (arm64, k3s) takes only runtimes with arm64 images and no
/// mesh; DRA claims need Kubernetes 1.34; AMD GPUs need ROCm images.
fn check_placement(
    mc: &mut ModelCheck<'_>,
    spec: &ModelSpec,
    rt: &RuntimeSpec,
    gpu: Option<&GpuUse>,
    cluster: Option<&ClusterModel>,
) {
    let name = rt.runtime.name();
    let edge_gpu = gpu
        .and_then(|g| catalog::gpu(g.kind))
        .is_some_and(|g| g.edge);
    let arm = cluster.is_some_and(|c| c.arch == Some(Arch::Arm64)) || edge_gpu;
    if arm && !rt.edge {
        mc.at(
            &[key("runtime")],
            format!(
                "runtime `{name}` does not fit an edge box (arm64): {} has no arm64 images",
                rt.title
            ),
            Some(format!(
                "on an edge box use runtime {}",
                runtime::names_where(|r| r.edge)
            )),
        );
    }
    if arm && rt.edge && rt.scales_to_zero {
        // KServe on an edge box runs in raw mode: no Knative, so no scale to zero (but through
        // KEDA on a metric) or canary split.
        if spec
            .autoscale
            .as_ref()
            .is_some_and(|a| a.min == Some(0) && a.metric.is_none())
        {
            mc.at(
                &[key("autoscale"), key("min")],
                format!(
                    "{} on an edge box runs without Knative (raw mode) and cannot scale to zero \
                     on CPU",
                    rt.title
                ),
                Some(
                    "scale to zero through KEDA on a metric (`autoscale.metric`), or set \
                     autoscale.min to 1"
                        .into(),
                ),
            );
        }
        if spec.canary.is_some() {
            mc.at(
                &[key("canary")],
                format!("{} on an edge box runs without Knative (raw mode) and cannot split canary traffic", rt.title),
                Some("roll out the new version instead".into()),
            );
        }
    }
    let Some(g) = gpu else { return };
    if g.claim {
        if !rt.dra {
            mc.at(
                &[key("gpu"), key("claim")],
                format!("runtime `{name}` cannot take DRA ResourceClaims"),
                Some(format!(
                    "use runtime {}, or drop `claim`",
                    runtime::names_where(|r| r.dra)
                )),
            );
        }
        if let Some(c) = cluster {
            let minor = c
                .kubernetes_version
                .as_deref()
                .and_then(|v| v.split_once('.'))
                .and_then(|(_, m)| m.parse::<u32>().ok());
            match minor {
                Some(m) if m >= DRA_MINOR => {}
                Some(_) | None => mc.at(
                    &[key("gpu"), key("claim")],
                    format!(
                        "DRA claims (`resource.k8s.io/v1`) need Kubernetes 1.{DRA_MINOR} or later; cluster `{}` is {}",
                        c.name,
                        c.kubernetes_version
                            .as_deref()
                            .map_or("of an unstated version".to_string(), |v| format!("at {v}"))
                    ),
                    Some(format!(
                        "set clusters.{}.kubernetesVersion to \"1.{DRA_MINOR}\" or later, or drop `claim` to request `nvidia.com/gpu`",
                        c.name
                    )),
                ),
            }
        }
    }
    if g.vendor == Vendor::Amd
        && let Some(server) = spec.server
        && spec.image.is_none()
        && !runtime::server(server).rocm
    {
        mc.at(
            &[key("server")],
            format!(
                "server `{}` has no ROCm build, so it cannot use AMD GPUs (`{}`)",
                server.name(),
                g.kind
            ),
            Some("serve a custom `image` built on ROCm (e.g. rocm/vllm) with runtime `kserve` or `deployment`".into()),
        );
    }
}

/// Plain variables and variables from Secrets.
fn check_env(
    mc: &mut ModelCheck<'_>,
    spec: &ModelSpec,
    rt: &RuntimeSpec,
) -> (BTreeMap<String, String>, Vec<config::SecretEnv>) {
    let mut env = BTreeMap::new();
    for (k, v) in spec.env.iter().flatten() {
        if let Err(e) = names::env_name(k) {
            mc.at(
                &[key("env"), key(k)],
                format!("environment variable name `{k}` {e}"),
                None,
            );
        }
        env.insert(k.clone(), v.0.clone());
    }
    let secret_env = spec.secret_env.clone().unwrap_or_default();
    for (i, s) in secret_env.iter().enumerate() {
        let base = [key("secretEnv"), Seg::Index(i)];
        if let Err(e) = names::env_name(&s.name) {
            mc.at(
                &join(&base, &[key("name")]),
                format!("environment variable name `{}` {e}", s.name),
                None,
            );
        }
        if env.contains_key(&s.name) || secret_env[..i].iter().any(|o| o.name == s.name) {
            mc.at(
                &join(&base, &[key("name")]),
                format!("environment variable `{}` is set twice", s.name),
                None,
            );
        }
        if let Err(e) = names::dns_subdomain(&s.secret) {
            mc.at(
                &join(&base, &[key("secret")]),
                format!("Secret name `{}` {e}", s.secret),
                None,
            );
        }
        if let Err(e) = names::secret_key(&s.key) {
            mc.at(
                &join(&base, &[key("key")]),
                format!("Secret key `{}` {e}", s.key),
                None,
            );
        }
        if s.file && !rt.security.secrets.files {
            mc.at(
                &join(&base, &[key("file")]),
                format!(
                    "runtime `{}` cannot mount Secrets as files",
                    rt.runtime.name()
                ),
                Some(rt.security.secrets.reason.to_string()),
            );
        }
    }
    (env, secret_env)
}

/// Autoscaling bounds and signals. `min: 0` needs a runtime that scales to zero by itself
/// (Knative) or a KEDA `metric` on a runtime with a KEDA path; presets read vLLM's metrics.
fn check_autoscale(
    mc: &mut ModelCheck<'_>,
    spec: &ModelSpec,
    rt: &RuntimeSpec,
) -> Option<Autoscale> {
    let a = spec.autoscale.as_ref()?;
    let (Some(min), Some(max)) = (a.min, a.max) else {
        mc.at(
            &[key("autoscale")],
            "`autoscale` needs `min` and `max`",
            Some("autoscale: {min: 1, max: 4, cpuUtilization: 70}".into()),
        );
        return None;
    };
    if spec.llm.as_ref().and_then(|l| l.kind) == Some(config::LlmKind::Llmisvc) {
        // Its controller scales through `spec.scaling` (WVA or KEDA), which is not rendered.
        mc.at(
            &[key("autoscale")],
            "an LLMInferenceService (`llm.kind: llmisvc`) runs `replicas`: mldeploy does not \
             render its own scaling (`spec.scaling`)",
            Some(
                "use `llm.kind: inferenceservice` (KServe's KEDA autoscaler) or runtime \
                 `deployment`, or set `replicas`"
                    .into(),
            ),
        );
        return None;
    }
    let metric = a
        .metric
        .as_ref()
        .and_then(|m| check_scale_metric(mc, spec, rt, m));
    let keda = a.metric.is_some();
    if min < 0 {
        mc.at(
            &[key("autoscale"), key("min")],
            format!("autoscale.min must be at least 0, not {min}"),
            None,
        );
    } else if min == 0 && !rt.scales_to_zero && !(keda && rt.keda.is_some()) {
        let hint = if rt.keda.is_some() {
            format!(
                "runtime `{}` scales to zero through KEDA on a metric (KEDA cannot on CPU alone): \
                 add `autoscale.metric` (`requestsWaiting` for vLLM, or {{query, target}}), or set \
                 autoscale.min to 1",
                rt.runtime.name()
            )
        } else {
            format!(
                "use runtime {} (with `autoscale.metric` for KEDA), or set autoscale.min to 1",
                runtime::names_where(|r| r.scales_to_zero || r.keda.is_some())
            )
        };
        mc.at(
            &[key("autoscale"), key("min")],
            format!(
                "runtime `{}` cannot scale to zero{}",
                rt.runtime.name(),
                if rt.keda.is_some() {
                    " without a metric"
                } else {
                    ""
                }
            ),
            Some(hint),
        );
    }
    if !keda {
        for field in ["cooldown", "pollingInterval"] {
            let set = match field {
                "cooldown" => a.cooldown.is_some(),
                _ => a.polling_interval.is_some(),
            };
            if set {
                mc.at(
                    &[key("autoscale"), key(field)],
                    format!("`{field}` applies to KEDA scaling, and this model scales on CPU"),
                    Some("add `autoscale.metric`, or remove it".into()),
                );
            }
        }
    }
    let cooldown = duration_seconds(mc, "cooldown", a.cooldown.as_ref(), DEFAULT_COOLDOWN);
    let polling = duration_seconds(
        mc,
        "pollingInterval",
        a.polling_interval.as_ref(),
        DEFAULT_POLLING,
    );
    if keda && rt.runtime == Runtime::Kserve {
        // KServe builds the ScaledObject itself and has no field for either.
        for (field, set) in [
            ("cooldown", a.cooldown.is_some()),
            ("pollingInterval", a.polling_interval.is_some()),
        ] {
            if set {
                mc.at(
                    &[key("autoscale"), key(field)],
                    format!(
                        "KServe builds the ScaledObject itself and cannot set `{field}` \
                         (KEDA's default applies: cooldown 300s, polling 30s)"
                    ),
                    Some("remove it, or serve the model with runtime `deployment`".into()),
                );
            }
        }
        if spec.canary.is_some() {
            mc.at(
                &[key("autoscale"), key("metric")],
                "KServe scales on a KEDA metric only in Standard (raw) mode, which cannot split \
                 canary traffic",
                Some("drop the canary while scaling on a metric, or scale on CPU".into()),
            );
        }
    }
    if max < 1 {
        mc.at(
            &[key("autoscale"), key("max")],
            format!("autoscale.max must be at least 1, not {max}"),
            None,
        );
    }
    if min > max {
        mc.at(
            &[key("autoscale"), key("min")],
            format!("autoscale.min ({min}) is larger than autoscale.max ({max})"),
            Some("min ≤ max".into()),
        );
    }
    let target = a
        .cpu_utilization
        .or((!keda).then_some(i64::from(DEFAULT_CPU_UTILIZATION)));
    if let Some(target) = target
        && !(1..=100).contains(&target)
    {
        mc.at(
            &[key("autoscale"), key("cpuUtilization")],
            format!("cpuUtilization must be 1 to 100 (percent), not {target}"),
            None,
        );
    }
    if keda && metric.is_none() {
        return None;
    }
    Some(Autoscale {
        min: u32::try_from(min).unwrap_or(0),
        max: u32::try_from(max).unwrap_or(0),
        cpu_utilization: target.map(|t| u32::try_from(t).unwrap_or(DEFAULT_CPU_UTILIZATION)),
        metric: metric.map(|m| ScaleMetric {
            cooldown_seconds: cooldown,
            polling_seconds: polling,
            ..m
        }),
    })
}

/// Default KEDA cooldown: how long a `min: 0` model stays up after its metric goes idle.
const DEFAULT_COOLDOWN: u32 = 300;
/// Default KEDA polling interval.
const DEFAULT_POLLING: u32 = 15;

/// A duration field of `autoscale` in whole seconds (at least 1), or `default`.
fn duration_seconds(
    mc: &mut ModelCheck<'_>,
    field: &str,
    value: Option<&config::Scalar>,
    default: u32,
) -> u32 {
    let Some(v) = value else { return default };
    match slo::parse_duration(v.as_str()) {
        Ok(d) if d.as_secs_f64() >= 1.0 => d.as_secs_f64().round() as u32,
        Ok(_) => {
            mc.at(
                &[key("autoscale"), key(field)],
                format!("{field} must be at least 1s, not `{v}`"),
                None,
            );
            default
        }
        Err(e) => {
            mc.at(
                &[key("autoscale"), key(field)],
                e,
                Some("a duration with a unit: 30s, 5m".into()),
            );
            default
        }
    }
}

/// Whether the model is served by vLLM, whose metrics the presets read (a custom image may be
/// vLLM too: `vllm/vllm-openai`, `rocm/vllm`; a prepackaged server is vLLM only as `vllm`).
fn serves_vllm(spec: &ModelSpec) -> bool {
    spec.image.is_some() || spec.server == Some(Server::Vllm)
}

/// `autoscale.metric`: a runtime with a KEDA path, a preset on vLLM, a query with a target.
fn check_scale_metric(
    mc: &mut ModelCheck<'_>,
    spec: &ModelSpec,
    rt: &RuntimeSpec,
    m: &config::Metric,
) -> Option<ScaleMetric> {
    let path = [key("autoscale"), key("metric")];
    let before = mc.found.len();
    if rt.keda.is_none() {
        mc.at(
            &path,
            format!(
                "runtime `{}` cannot scale on a metric: {} has no KEDA autoscaler",
                rt.runtime.name(),
                rt.title
            ),
            Some(format!(
                "use runtime {}, or scale on CPU (`cpuUtilization`)",
                runtime::names_where(|r| r.keda.is_some())
            )),
        );
    }
    let target_path = join(&path, &[key("target")]);
    let target = match &m.target {
        None => None,
        Some(t) => match t.as_str().trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Some(v),
            _ => {
                mc.at(
                    &target_path,
                    format!("metric target must be a number above 0, not `{t}`"),
                    Some("the query's value per replica, e.g. 5 or 0.8".into()),
                );
                None
            }
        },
    };
    let out = match (m.preset, &m.query) {
        (Some(_), Some(_)) => {
            mc.at(
                &path,
                "set either `preset` or `query`, not both",
                Some("a preset is a query mldeploy writes for vLLM".into()),
            );
            None
        }
        (None, None) => {
            mc.at(
                &path,
                "`metric` needs a `preset` or a `query`",
                Some("metric: requestsWaiting, or metric: {query: 'sum(...)', target: 5}".into()),
            );
            None
        }
        (Some(preset), None) => {
            if !serves_vllm(spec) {
                mc.at(
                    &path,
                    format!(
                        "preset `{}` reads vLLM's metrics, and this model is served by `{}`",
                        preset.name(),
                        spec.server.map_or("?", |s| s.name())
                    ),
                    Some(
                        "give your server's own PromQL: metric: {query: 'sum(...)', target: N}"
                            .into(),
                    ),
                );
            }
            Some(ScaleMetric {
                preset: Some(preset),
                query: None,
                target: target.unwrap_or(match preset {
                    config::MetricPreset::RequestsWaiting => 5.0,
                    config::MetricPreset::KvCacheUsage => 0.8,
                }),
                cooldown_seconds: DEFAULT_COOLDOWN,
                polling_seconds: DEFAULT_POLLING,
            })
        }
        (None, Some(query)) => {
            if query.trim().is_empty() {
                mc.at(
                    &join(&path, &[key("query")]),
                    "the metric query is empty",
                    Some("a PromQL expression, e.g. sum(vllm:num_requests_running{namespace=\"llm\"})".into()),
                );
            }
            if m.target.is_none() {
                mc.at(
                    &path,
                    "a metric `query` needs a `target` (its value per replica)",
                    Some("metric: {query: 'sum(...)', target: 5}".into()),
                );
            }
            Some(ScaleMetric {
                preset: None,
                query: Some(query.trim().to_string()),
                target: target.unwrap_or(1.0),
                cooldown_seconds: DEFAULT_COOLDOWN,
                polling_seconds: DEFAULT_POLLING,
            })
        }
    };
    if mc.found.len() > before {
        return None;
    }
    out
}

/// A model that scales on a metric needs a Prometheus to read it from: the one mldeploy
/// installs (`monitoring.prometheus`) or the environment's `prometheusAddress`.
fn check_metric_source(
    ck: &mut Checker<'_>,
    cfg: &config::Config,
    env_name: &str,
    env: &config::Environment,
    models: &[Model],
) {
    if cfg.monitoring.prometheus || env.prometheus_address.is_some() {
        return;
    }
    for m in models {
        if !m.autoscale.as_ref().is_some_and(Autoscale::keda) {
            continue;
        }
        let index = cfg
            .models
            .iter()
            .position(|c| c.name.as_deref() == Some(m.name.as_str()))
            .unwrap_or(0);
        ck.at(
            &[
                key("models"),
                Seg::Index(index),
                key("autoscale"),
                key("metric"),
            ],
            format!(
                "model `{}` scales on a Prometheus metric, and environment `{env_name}` has no \
                 Prometheus",
                m.name
            ),
            Some(format!(
                "set `monitoring: {{prometheus: true}}` (mldeploy installs kube-prometheus-stack \
                 and scrapes the model), or environments.{env_name}.prometheusAddress"
            )),
        );
    }
}

/// A model that scales to zero on a preset reads vLLM's own metrics, which no pod reports at
/// zero replicas: traffic alone does not bring it back (KEDA sees an empty queue). Worth knowing,
/// not an error: the model still comes up when the query sees demand from elsewhere.
fn scale_from_zero_warnings(
    ck: &Checker<'_>,
    cfg: &config::Config,
    environments: &BTreeMap<String, Env>,
) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    for env in environments.values() {
        for m in &env.models {
            let Some(a) = &m.autoscale else { continue };
            let Some(preset) = a.metric.as_ref().and_then(|x| x.preset) else {
                continue;
            };
            if a.min != 0 {
                continue;
            }
            let index = cfg
                .models
                .iter()
                .position(|c| c.name.as_deref() == Some(m.name.as_str()))
                .unwrap_or(0);
            let path = [
                key("models"),
                Seg::Index(index),
                key("autoscale"),
                key("min"),
            ];
            let p = Problem::new(
                Some(ck.root.lookup(&path).loc),
                path_string(&path),
                format!(
                    "model `{}` scales to zero on `{}`, a vLLM metric: at zero replicas no pod \
                     reports it, so requests alone do not wake the model",
                    m.name,
                    preset.name()
                ),
            )
            .hint(
                "wake it with a query that also counts requests where they arrive (the ingress or \
                 gateway), or by scaling the Deployment up; or keep autoscale.min at 1",
            );
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// `prometheusAddress` of an environment, or kube-prometheus-stack's Service.
fn check_prometheus_address(
    ck: &mut Checker<'_>,
    epath: &[Seg],
    env: &config::Environment,
) -> Option<String> {
    let address = env.prometheus_address.as_ref()?;
    let ok = (address.starts_with("http://") || address.starts_with("https://"))
        && address.len() > "https://".len()
        && !address.contains(char::is_whitespace);
    if !ok {
        ck.at(
            &join(epath, &[key("prometheusAddress")]),
            format!("`{address}` is not an http(s) URL"),
            Some(format!("e.g. {DEFAULT_PROMETHEUS_ADDRESS}")),
        );
    }
    Some(address.clone())
}

/// kube-prometheus-stack's Prometheus Service as `mldeploy infra` installs it (release
/// `kube-prometheus-stack` in namespace `monitoring`, templates/terraform/common/addons.tf).
pub const DEFAULT_PROMETHEUS_ADDRESS: &str =
    "http://kube-prometheus-stack-prometheus.monitoring.svc:9090";

/// A canary: its traffic share, a runtime that splits traffic, and a source of the model's kind.
fn check_canary(
    mc: &mut ModelCheck<'_>,
    spec: &ModelSpec,
    rt: &RuntimeSpec,
    source: Option<&Source>,
) -> Option<Canary> {
    let c = spec.canary.as_ref()?;
    let traffic = match c.traffic {
        Some(t) if (0..=100).contains(&t) => t,
        Some(t) => {
            mc.at(
                &[key("canary"), key("traffic")],
                format!("canary traffic must be 0 to 100 (percent), not {t}"),
                None,
            );
            0
        }
        None => {
            mc.at(
                &[key("canary")],
                "`canary` needs `traffic` (percent)",
                Some("canary: {image: registry/repo:new-tag, traffic: 10}".into()),
            );
            0
        }
    };
    if !rt.splits_traffic {
        mc.at(
            &[key("canary")],
            format!(
                "runtime `{}` cannot split traffic for a canary",
                rt.runtime.name()
            ),
            Some(format!(
                "use runtime {} for canaries",
                runtime::names_where(|r| r.splits_traffic)
            )),
        );
    }
    let src = match (source, &c.image, &c.model_uri) {
        (Some(Source::Image { port, .. }), Some(image), None) => Some(Source::Image {
            image: image.clone(),
            port: *port,
        }),
        (
            Some(Source::Prepackaged {
                server,
                storage_secret,
                ..
            }),
            None,
            Some(uri),
        ) => Some(Source::Prepackaged {
            server: *server,
            model_uri: uri.clone(),
            storage_secret: storage_secret.clone(),
        }),
        (Some(Source::Image { .. }), _, _) => {
            mc.at(
                &[key("canary")],
                "the canary of an image model sets `image` (and not `modelUri`)",
                Some("canary: {image: registry/repo:new-tag, traffic: 10}".into()),
            );
            None
        }
        (Some(Source::Prepackaged { .. }), _, _) => {
            mc.at(
                &[key("canary")],
                "the canary of a server model sets `modelUri` (and not `image`)",
                Some("canary: {modelUri: gs://bucket/model/v2, traffic: 10}".into()),
            );
            None
        }
        (None, _, _) => None,
    };
    src.map(|source| Canary {
        source,
        traffic: u32::try_from(traffic).unwrap_or(0),
    })
}
