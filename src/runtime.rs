//! Serving runtimes as data: one [`RuntimeSpec`] row per runtime says what it serves, which object
//! carries a model, when that object is ready, where its metrics and endpoint are, and which
//! operator provides it. Validation, rendering, the cluster layer and the docs read these rows, so
//! a new runtime is a row here plus a template folder `templates/runtimes/<name>/`.

use serde::Serialize;
use serde_json::Value;

use crate::config::{LlmKind, Protocol, Runtime, Server};
use crate::security::{IdentityWiring, PodSecurity, RcloneConfig, SecretDelivery, Security};

/// A Kubernetes kind by apiVersion and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kind {
    /// `group/version` (or `v1`).
    pub api_version: &'static str,
    /// Kind.
    pub kind: &'static str,
}

/// When a live object of a kind is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Readiness {
    /// A workload rollout: the generation observed, every replica updated and available.
    Rollout,
    /// A `status.state` string equals `ready`; `status.description` says why not.
    State {
        /// The state that means ready (`Available`).
        ready: &'static str,
    },
    /// A `Ready` condition with status `True`.
    ReadyCondition,
    /// Ready once applied (nothing to wait for).
    Applied,
}

impl Readiness {
    /// Whether objects with this rule are waited on.
    pub fn waits(self) -> bool {
        self != Readiness::Applied
    }

    /// Whether `obj` (a live object) is ready; Err says why not.
    pub fn check(self, obj: &Value) -> Result<(), String> {
        let status = &obj["status"];
        match self {
            Readiness::Applied => Ok(()),
            Readiness::Rollout => {
                let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
                let observed = status["observedGeneration"].as_i64().unwrap_or(-1);
                if observed < generation {
                    return Err(format!(
                        "rollout not observed yet (generation {generation}, observed {observed})"
                    ));
                }
                let want = obj["spec"]["replicas"].as_i64().unwrap_or(1);
                let updated = status["updatedReplicas"].as_i64().unwrap_or(0);
                let available = status["availableReplicas"].as_i64().unwrap_or(0);
                if updated < want {
                    return Err(format!("{updated} of {want} replicas updated"));
                }
                if available < want {
                    return Err(format!("{available} of {want} replicas available"));
                }
                Ok(())
            }
            Readiness::State { ready } => match status["state"].as_str() {
                Some(s) if s == ready => Ok(()),
                Some(state) => Err(format!(
                    "state is {state}{}",
                    status["description"]
                        .as_str()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                )),
                None => Err("no state yet".into()),
            },
            Readiness::ReadyCondition => {
                let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
                match conditions.iter().find(|c| c["type"] == "Ready") {
                    Some(c) if c["status"] == "True" => Ok(()),
                    Some(c) => Err(format!(
                        "Ready is {}{}",
                        c["status"].as_str().unwrap_or("Unknown"),
                        c["message"]
                            .as_str()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    )),
                    None => Err("no Ready condition yet".into()),
                }
            }
        }
    }
}

/// A kind a runtime renders and how its readiness is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Watched {
    /// The kind.
    pub kind: Kind,
    /// Its readiness rule.
    pub readiness: Readiness,
}

/// Where `mldeploy status` reads replica counts of the serving object: JSON pointers, where a
/// `*` segment sums over every element (array) or value (object) at that point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusFields {
    /// Desired replicas: the first pointer that is present wins.
    pub desired: &'static [&'static str],
    /// Ready replicas.
    pub ready: Option<&'static str>,
    /// A missing ready count reads as 0 (the field is left out while nothing is ready).
    pub ready_defaults_to_zero: bool,
}

impl StatusFields {
    /// (desired, ready) replicas of a live object.
    pub fn read(&self, obj: &Value) -> (Option<i64>, Option<i64>) {
        let desired = self.desired.iter().find_map(|p| pointer_sum(obj, p));
        let ready = self
            .ready
            .and_then(|p| pointer_sum(obj, p))
            .or_else(|| (self.ready.is_some() && self.ready_defaults_to_zero).then_some(0));
        (desired, ready)
    }
}

/// The integer at `pointer`, summing over `*` segments; None when nothing is there.
fn pointer_sum(v: &Value, pointer: &str) -> Option<i64> {
    let Some((head, rest)) = pointer.split_once("/*") else {
        return v.pointer(pointer).and_then(Value::as_i64);
    };
    let items: Vec<&Value> = match v.pointer(head)? {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) => o.values().collect(),
        _ => return None,
    };
    Some(
        items
            .into_iter()
            .map(|i| pointer_sum(i, rest).unwrap_or(0))
            .sum(),
    )
}

/// Where requests for a model go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Endpoint {
    /// A URL built from the model: `{name}`, `{namespace}` and `{port}` are filled in.
    Url(&'static str),
    /// The first of these status fields (JSON pointers) the live object has.
    Status(&'static [&'static str]),
}

impl Endpoint {
    /// The endpoint of model `name` (custom image `port`, if any) from its live object.
    pub fn resolve(
        &self,
        name: &str,
        namespace: &str,
        port: Option<u16>,
        obj: &Value,
    ) -> Option<String> {
        match self {
            Endpoint::Url(t) => {
                if t.contains("{port}") && port.is_none() {
                    return None;
                }
                Some(
                    t.replace("{name}", name)
                        .replace("{namespace}", namespace)
                        .replace("{port}", &port.map(|p| p.to_string()).unwrap_or_default()),
                )
            }
            Endpoint::Status(pointers) => pointers
                .iter()
                .find_map(|p| obj.pointer(p).and_then(Value::as_str))
                .map(str::to_string),
        }
    }
}

/// Which Service exposes a model's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MetricsService {
    /// The model's own Service, selected by the model's pod selector.
    ModelSelector,
    /// A Service labelled `key` = the model's name (the operator creates it).
    LabelIsModelName(&'static str),
    /// A Service labelled `key` = `value` (shared by every model of the runtime).
    Label(&'static str, &'static str),
}

/// How Prometheus scrapes a runtime's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// The Service.
    pub service: MetricsService,
    /// Its port name when the model runs its own image.
    pub port: &'static str,
    /// Its port name when the runtime's own server runs a model file (`{name}` is the model's
    /// name): KServe names the predictor Service's port after the first container port, or after
    /// the component (`<name>-predictor`) when the serving runtime declares none, as its Hugging
    /// Face and scikit-learn runtimes do.
    pub prepackaged_port: &'static str,
    /// Path.
    pub path: &'static str,
}

/// The operator a runtime needs in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Addon {
    /// Key of the add-on in the Terraform templates (`addons.<key>`).
    pub key: &'static str,
    /// Product name (`KServe`).
    pub title: &'static str,
    /// API group of its custom resources: a missing group means the operator is missing.
    pub api_group: &'static str,
    /// How to install it.
    pub install_hint: &'static str,
}

/// How KEDA scales a runtime's models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Keda {
    /// The Deployment whose pods serve the model (`{name}` is filled in): the presets' PromQL
    /// selects its pods by name.
    pub workload: &'static str,
}

/// Where a model's GPUs are requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GpuPlacement {
    /// In the model's own pods.
    Pod,
    /// In a Server the model is scheduled onto (Seldon Core v2): mldeploy renders one Server
    /// per distinct GPU request and pins the model to it.
    Server,
}

/// The port of the Service `mldeploy test` reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ServicePort {
    /// A fixed port, as the operator creates it.
    Fixed(u16),
    /// The model's own `port` (custom images); prepackaged servers without a port of their
    /// own in [`Reach::servers`] use 80.
    Model,
}

/// How a prepackaged server differs from its runtime's usual [`Reach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerReach {
    /// The server.
    pub server: Server,
    /// The protocol it speaks under this runtime.
    pub protocol: Protocol,
    /// Path prefix of that protocol's routes (KServe's Hugging Face runtime: `/openai`).
    pub prefix: &'static str,
    /// Its Service port, when not the runtime's.
    pub port: Option<u16>,
}

/// Where `mldeploy test` and `promote` reach a model, and in which protocol: the Service the
/// runtime creates (names as the templates give them, `{name}` the model's name) and the
/// protocol of what it serves. docs/test.md's table is these rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reach {
    /// The model's Service.
    pub service: &'static str,
    /// The canary's Service (the same as `service` when one Service serves the split).
    pub canary_service: &'static str,
    /// Its port.
    pub port: ServicePort,
    /// A header the runtime routes by, set to the model's name in protocol paths.
    pub model_header: Option<&'static str>,
    /// The canary's name in protocol paths (and in `model_header`).
    pub canary_model: &'static str,
    /// Protocol of custom images and of servers not in `servers`.
    pub protocol: Protocol,
    /// Servers that speak another protocol, or answer at another prefix or port.
    pub servers: &'static [ServerReach],
}

/// A resolved [`Reach`] for one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// Service name.
    pub service: String,
    /// Service port.
    pub port: u16,
    /// Headers to send (`Seldon-Model: <model>`).
    pub headers: Vec<(String, String)>,
    /// The model's name in protocol paths.
    pub model: String,
}

/// The port of a Service for a prepackaged server without one of its own.
const HTTP_PORT: u16 = 80;

impl Reach {
    fn server(&self, server: Option<Server>) -> Option<&'static ServerReach> {
        server.and_then(|s| self.servers.iter().find(|r| r.server == s))
    }

    /// The protocol a model of `server` (None: a custom image) speaks when its config is silent.
    pub fn protocol_of(&self, server: Option<Server>) -> Protocol {
        self.server(server).map_or(self.protocol, |r| r.protocol)
    }

    /// The path prefix of `protocol`'s routes for `server`.
    pub fn prefix_of(&self, server: Option<Server>, protocol: Protocol) -> &'static str {
        match self.server(server) {
            Some(r) if r.protocol == protocol => r.prefix,
            _ => "",
        }
    }

    /// The Service, port, headers and path name of model `name` (or its canary), served by
    /// `server` (None: a custom image listening on `image_port`).
    pub fn resolve(
        &self,
        name: &str,
        server: Option<Server>,
        image_port: Option<u16>,
        canary: bool,
    ) -> Reached {
        let fill = |t: &str| t.replace("{name}", name);
        let port = match (self.server(server).and_then(|r| r.port), self.port) {
            (Some(p), _) | (None, ServicePort::Fixed(p)) => p,
            (None, ServicePort::Model) => image_port.unwrap_or(HTTP_PORT),
        };
        let model = if canary {
            fill(self.canary_model)
        } else {
            name.to_string()
        };
        Reached {
            service: fill(if canary {
                self.canary_service
            } else {
                self.service
            }),
            port,
            headers: self
                .model_header
                .map(|h| vec![(h.to_string(), model.clone())])
                .unwrap_or_default(),
            model,
        }
    }
}

/// One serving runtime.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeSpec {
    /// The runtime.
    pub runtime: Runtime,
    /// Product name for messages.
    pub title: &'static str,
    /// The object that carries one model (status and endpoint are read from it).
    pub serving: Watched,
    /// Other kinds it renders whose readiness counts (a canary's Experiment).
    pub also_watched: &'static [Watched],
    /// Serves custom images.
    pub images: bool,
    /// Serves prepackaged servers (`server` + `modelUri`).
    pub prepackaged: bool,
    /// Where GPUs are requested.
    pub gpus: GpuPlacement,
    /// Splits traffic between a model and its canary.
    pub splits_traffic: bool,
    /// Scales to zero replicas by itself (Knative), whatever it scales on.
    pub scales_to_zero: bool,
    /// Scales on a Prometheus metric through KEDA (`autoscale.metric`), down to zero: with a
    /// ScaledObject of its own (`deployment`) or the operator's KEDA autoscaler class (`kserve`).
    pub keda: Option<Keda>,
    /// Can request GPUs through a DRA ResourceClaim (its pod spec has `resourceClaims`).
    pub dra: bool,
    /// Has arm64 images and runs without a service mesh, so it fits an edge box.
    pub edge: bool,
    /// The operator it needs (None: built-in kinds only).
    pub addon: Option<Addon>,
    /// Metrics endpoint.
    pub metrics: Metrics,
    /// Replica counts for `status`.
    pub status: StatusFields,
    /// Where to send requests (as `status` shows it).
    pub endpoint: Endpoint,
    /// Where `test` reaches a model, and its protocol.
    pub reach: Reach,
    /// Pod Security level, pod hardening and NetworkPolicy inputs (docs/security.md).
    pub security: Security,
    /// Its prepackaged servers fetch `hf://` URIs (a Hugging Face model id).
    pub hf_uris: bool,
    /// How it serves language models (`server: vllm`).
    pub llm: LlmServing,
}

/// How a runtime serves language models (`server: vllm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LlmServing {
    /// It does not, and why (validation says so).
    Unsupported(&'static str),
    /// It does, with these objects: the first is the default, others are chosen by `llm.kind`.
    Serves(&'static [LlmObject]),
}

/// An object that serves a language model with vLLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LlmObject {
    /// The `llm.kind` that selects it (None: the runtime's only way).
    pub kind: Option<LlmKind>,
    /// The object and its readiness.
    pub watched: Watched,
    /// `modelUri` schemes it fetches (`hf`, `s3`, `gs`, `pvc`).
    pub schemes: &'static [&'static str],
    /// Path prefix of the OpenAI-compatible routes on its endpoint.
    pub openai_prefix: &'static str,
    /// The Service `mldeploy test` reaches the model through when it is not the runtime's own
    /// (`Reach::service`); `{name}` is the model's name.
    pub service: Option<&'static str>,
    /// Port of the Service `mldeploy test` reaches the model on.
    pub service_port: u16,
    /// Whether that Service speaks HTTPS.
    pub https: bool,
    /// Where requests go (docs/llm.md shows the same URLs).
    pub endpoint: Endpoint,
    /// Keeps downloaded `hf://` weights on a cache PVC (`cache`).
    pub cache: bool,
    /// What the cluster needs besides the runtime's operator (validation hints and docs).
    pub prerequisites: Option<&'static str>,
}

/// Port of vLLM's OpenAI-compatible server (`vllm serve --port`).
pub const VLLM_PORT: u16 = 8000;

/// The LLM object of a runtime for `kind` (the default when None); Err says why there is none.
pub fn llm_object(runtime: Runtime, kind: Option<LlmKind>) -> Result<&'static LlmObject, String> {
    let rt = spec(runtime);
    match rt.llm {
        LlmServing::Unsupported(why) => Err(why.to_string()),
        LlmServing::Serves(objects) => match kind {
            None => objects.first().ok_or_else(|| "no LLM object".into()),
            Some(k) => objects
                .iter()
                .find(|o| o.kind == Some(k))
                .ok_or_else(|| format!("runtime `{}` has no `llm.kind` choice", runtime.name())),
        },
    }
}

/// Readiness of kinds that are not a runtime's serving object but are still waited on.
const EXPERIMENT: Watched = Watched {
    kind: Kind {
        api_version: "mlops.seldon.io/v1alpha1",
        kind: "Experiment",
    },
    readiness: Readiness::ReadyCondition,
};

/// KServe objects that serve language models.
const KSERVE_LLM: &[LlmObject] = &[
    LlmObject {
        kind: Some(LlmKind::Inferenceservice),
        watched: Watched {
            kind: Kind {
                api_version: "serving.kserve.io/v1beta1",
                kind: "InferenceService",
            },
            readiness: Readiness::ReadyCondition,
        },
        schemes: &["hf", "s3", "gs", "pvc"],
        // KServe's Hugging Face runtime serves the OpenAI routes under /openai.
        openai_prefix: "/openai",
        service: None,
        service_port: 80,
        https: false,
        endpoint: Endpoint::Status(&["/status/url", "/status/address/url"]),
        cache: true,
        prerequisites: None,
    },
    LlmObject {
        kind: Some(LlmKind::Llmisvc),
        watched: LLM_INFERENCE_SERVICE,
        schemes: &["hf", "s3", "pvc"],
        openai_prefix: "",
        // KServe creates `<name>-kserve-workload-svc` in front of the vLLM pods, serving HTTPS
        // on vLLM's port with a certificate of KServe's own CA.
        service: Some("{name}-kserve-workload-svc"),
        service_port: VLLM_PORT,
        https: true,
        endpoint: Endpoint::Status(&["/status/url", "/status/addresses/0/url"]),
        cache: false,
        prerequisites: Some(
            "KServe's LLMInferenceService controller (the kserve-llmisvc Helm chart, with its \
             CRDs and LLMInferenceServiceConfig presets), the Gateway API CRDs and a Gateway \
             (the Inference Extension's InferencePool CRDs for the scheduler); `mldeploy infra` \
             installs KServe but not these",
        ),
    },
];

/// KServe's LLMInferenceService: waited on through its `Ready` condition.
pub const LLM_INFERENCE_SERVICE: Watched = Watched {
    kind: Kind {
        api_version: "serving.kserve.io/v1alpha2",
        kind: "LLMInferenceService",
    },
    readiness: Readiness::ReadyCondition,
};

/// KEDA ScaledObjects (runtime `deployment` with `autoscale.metric`): `Ready` once KEDA has
/// set up scaling (its HPA, the trigger's metric source).
pub const SCALED_OBJECT: Watched = Watched {
    kind: Kind {
        api_version: "keda.sh/v1alpha1",
        kind: "ScaledObject",
    },
    readiness: Readiness::ReadyCondition,
};

/// Seldon Core v2 Servers: mldeploy renders them for models with GPUs.
pub const SELDON_V2_SERVER: Watched = Watched {
    kind: Kind {
        api_version: "mlops.seldon.io/v1alpha1",
        kind: "Server",
    },
    readiness: Readiness::ReadyCondition,
};

/// Every runtime, in documentation order.
pub const RUNTIMES: &[RuntimeSpec] = &[
    RuntimeSpec {
        runtime: Runtime::Seldon,
        title: "Seldon Core v1",
        serving: Watched {
            kind: Kind {
                api_version: "machinelearning.seldon.io/v1",
                kind: "SeldonDeployment",
            },
            readiness: Readiness::State { ready: "Available" },
        },
        also_watched: &[],
        images: true,
        prepackaged: true,
        gpus: GpuPlacement::Pod,
        splits_traffic: true,
        scales_to_zero: false,
        keda: None,
        dra: false,
        edge: false,
        addon: Some(Addon {
            key: "seldon",
            title: "Seldon Core v1",
            api_group: "machinelearning.seldon.io",
            install_hint: "install the seldon-core-operator Helm chart (`mldeploy infra apply` does)",
        }),
        // Seldon Core v1 labels the Services it creates with the deployment id.
        metrics: Metrics {
            service: MetricsService::LabelIsModelName("seldon-deployment-id"),
            port: "http",
            prepackaged_port: "http",
            path: "/prometheus",
        },
        status: StatusFields {
            desired: &["/spec/predictors/*/replicas"],
            ready: Some("/status/deploymentStatus/*/availableReplicas"),
            ready_defaults_to_zero: false,
        },
        endpoint: Endpoint::Url("http://{name}-default.{namespace}.svc:8000/api/v1.0/predictions"),
        // One Service per predictor: `default` and `canary` (templates/runtimes/seldon).
        reach: Reach {
            service: "{name}-default",
            canary_service: "{name}-canary",
            port: ServicePort::Fixed(8000),
            model_header: None,
            canary_model: "{name}",
            protocol: Protocol::SeldonV1,
            // Seldon Core v1 runs these as MLServer / Triton: Open Inference Protocol v2.
            servers: &[
                ServerReach {
                    server: Server::Triton,
                    protocol: Protocol::OipV2,
                    prefix: "",
                    port: None,
                },
                ServerReach {
                    server: Server::Huggingface,
                    protocol: Protocol::OipV2,
                    prefix: "",
                    port: None,
                },
            ],
        },
        security: Security {
            pod_security: PodSecurity::Baseline,
            pod_security_reason: "the operator injects the executor (seldon-container-engine) and \
                                  the rclone model initializer without allowPrivilegeEscalation: \
                                  false or dropped capabilities",
            run_as_user: None,
            writable_paths: &["/tmp"],
            // The executor's REST and gRPC ports; it calls the model container inside the pod.
            serving_ports: &[8000, 5001],
            pod_label: Some("seldon-deployment-id"),
            control_namespaces: &["seldon-system", "istio-system"],
            intra_namespace: false,
            fetches_artifact: true,
            identity: IdentityWiring {
                how: "componentSpecs[].spec.serviceAccountName and componentSpecs[].metadata.labels",
                pod_labels: true,
                rclone: Some(RcloneConfig::EnvSecret),
                own_server: false,
            },
            secrets: SecretDelivery {
                files: true,
                reason: "componentSpecs hold the whole pod spec, so `file: true` entries are \
                         mounted; the storage initializer reads `storageSecret` only as \
                         RCLONE_CONFIG_* variables (envSecretRefName)",
            },
        },
        hf_uris: false,
        llm: LlmServing::Unsupported(
            "Seldon Core v1 has no vLLM server: its HUGGINGFACE_SERVER runs a transformers \
             pipeline in MLServer, without an OpenAI-compatible API, tensor parallelism or a \
             paged KV cache, and its rclone initializer cannot fetch `hf://`",
        ),
    },
    RuntimeSpec {
        runtime: Runtime::SeldonV2,
        title: "Seldon Core v2",
        serving: Watched {
            kind: Kind {
                api_version: "mlops.seldon.io/v1alpha1",
                kind: "Model",
            },
            readiness: Readiness::ReadyCondition,
        },
        also_watched: &[EXPERIMENT, SELDON_V2_SERVER],
        images: false,
        prepackaged: true,
        gpus: GpuPlacement::Server,
        splits_traffic: true,
        scales_to_zero: false,
        keda: None,
        dra: false,
        edge: false,
        addon: Some(Addon {
            key: "seldonV2",
            title: "Seldon Core v2",
            api_group: "mlops.seldon.io",
            install_hint: "install the seldon-core-v2-crds, seldon-core-v2-setup and seldon-core-v2-runtime Helm charts (`mldeploy infra apply` does)",
        }),
        // Models share Servers; metrics are per server.
        metrics: Metrics {
            service: MetricsService::Label("app.kubernetes.io/name", "mlserver"),
            port: "metrics",
            prepackaged_port: "metrics",
            path: "/metrics",
        },
        status: StatusFields {
            desired: &["/spec/replicas", "/spec/minReplicas"],
            ready: Some("/status/availableReplicas"),
            ready_defaults_to_zero: false,
        },
        endpoint: Endpoint::Url("http://seldon-mesh.{namespace}.svc/v2/models/{name}/infer"),
        // Every model answers through seldon-mesh, routed by header; the canary is its own Model.
        reach: Reach {
            service: "seldon-mesh",
            canary_service: "seldon-mesh",
            port: ServicePort::Fixed(80),
            model_header: Some("Seldon-Model"),
            canary_model: "{name}-canary",
            protocol: Protocol::OipV2,
            servers: &[],
        },
        security: Security {
            pod_security: PodSecurity::Baseline,
            pod_security_reason: "the SeldonRuntime's Server pods (agent, rclone, MLServer/Triton) \
                                  come from the Helm chart and do not all set a restricted security \
                                  context",
            run_as_user: None,
            writable_paths: &[],
            serving_ports: &[],
            pod_label: None,
            control_namespaces: &["seldon-mesh"],
            intra_namespace: true,
            fetches_artifact: false,
            identity: IdentityWiring {
                how: "a Server of the model's own whose podSpec.serviceAccountName is the identity's",
                pod_labels: false,
                rclone: Some(RcloneConfig::ModelSecret),
                own_server: true,
            },
            secrets: SecretDelivery {
                files: false,
                reason: "a Model has no container of its own: `secretEnv` does not apply, and the \
                         agent reads `storageSecret` (an rclone config) through the API",
            },
        },
        hf_uris: false,
        llm: LlmServing::Unsupported(
            "Seldon Core v2 places models on shared MLServer and Triton Servers; neither runs \
             vLLM with an OpenAI-compatible API in the open-source runtime, and its rclone agent \
             cannot fetch `hf://`",
        ),
    },
    RuntimeSpec {
        runtime: Runtime::Kserve,
        title: "KServe",
        serving: Watched {
            kind: Kind {
                api_version: "serving.kserve.io/v1beta1",
                kind: "InferenceService",
            },
            readiness: Readiness::ReadyCondition,
        },
        also_watched: &[],
        images: true,
        prepackaged: true,
        gpus: GpuPlacement::Pod,
        splits_traffic: true,
        scales_to_zero: true,
        // KServe renders the ScaledObject itself (Standard mode) for its predictor Deployment.
        keda: Some(Keda {
            workload: "{name}-predictor",
        }),
        dra: false,
        edge: true,
        addon: Some(Addon {
            key: "kserve",
            title: "KServe",
            api_group: "serving.kserve.io",
            install_hint: "install cert-manager and the kserve-crd, kserve-resources and kserve-runtime-configs Helm charts (`mldeploy infra apply` does)",
        }),
        // The predictor Service's port is named after the first container port: ours is `http`
        // (templates/runtimes/kserve); a serving runtime's declares none (see `prepackaged_port`).
        metrics: Metrics {
            service: MetricsService::LabelIsModelName("serving.kserve.io/inferenceservice"),
            port: "http",
            prepackaged_port: "{name}-predictor",
            path: "/metrics",
        },
        status: StatusFields {
            desired: &["/spec/predictor/minReplicas"],
            ready: None,
            ready_defaults_to_zero: false,
        },
        endpoint: Endpoint::Status(&["/status/url", "/status/address/url"]),
        // One predictor Service serves the split: the canary is measured with the previous revision.
        reach: Reach {
            service: "{name}-predictor",
            canary_service: "{name}-predictor",
            port: ServicePort::Fixed(80),
            model_header: None,
            canary_model: "{name}",
            protocol: Protocol::KserveV1,
            servers: &[
                // The Hugging Face runtime serves generative models the OpenAI way.
                ServerReach {
                    server: Server::Huggingface,
                    protocol: Protocol::Openai,
                    prefix: "/openai",
                    port: None,
                },
                // Language models run on the same runtime (vLLM backend); an
                // LLMInferenceService has no prefix (`LlmObject::openai_prefix`).
                ServerReach {
                    server: Server::Vllm,
                    protocol: Protocol::Openai,
                    prefix: "/openai",
                    port: None,
                },
                // The MLflow and Triton runtimes speak only v2.
                ServerReach {
                    server: Server::Triton,
                    protocol: Protocol::OipV2,
                    prefix: "",
                    port: None,
                },
                ServerReach {
                    server: Server::Mlflow,
                    protocol: Protocol::OipV2,
                    prefix: "",
                    port: None,
                },
            ],
        },
        security: Security {
            pod_security: PodSecurity::Baseline,
            pod_security_reason: "the controller injects the storage-initializer (and, in \
                                  Serverless mode, queue-proxy) without a restricted security context",
            run_as_user: None,
            writable_paths: &["/tmp"],
            // kserve-container's HTTP and gRPC ports (RawDeployment), queue-proxy's (Serverless).
            serving_ports: &[8080, 8081, 8012, 8013],
            pod_label: Some("serving.kserve.io/inferenceservice"),
            control_namespaces: &["kserve", "knative-serving", "istio-system"],
            intra_namespace: false,
            fetches_artifact: true,
            identity: IdentityWiring {
                how: "spec.predictor.serviceAccountName and spec.predictor.labels",
                pod_labels: true,
                rclone: None,
                own_server: false,
            },
            secrets: SecretDelivery {
                files: true,
                reason: "the predictor takes volumes, so `file: true` entries are mounted; the \
                         storage initializer reads `storageSecret` only as variables, from the \
                         Secrets of the predictor's ServiceAccount",
            },
        },
        hf_uris: true,
        llm: LlmServing::Serves(KSERVE_LLM),
    },
    RuntimeSpec {
        runtime: Runtime::Deployment,
        title: "Kubernetes Deployment",
        serving: Watched {
            kind: Kind {
                api_version: "apps/v1",
                kind: "Deployment",
            },
            readiness: Readiness::Rollout,
        },
        also_watched: &[SCALED_OBJECT],
        images: true,
        prepackaged: false,
        gpus: GpuPlacement::Pod,
        splits_traffic: false,
        scales_to_zero: false,
        keda: Some(Keda { workload: "{name}" }),
        dra: true,
        edge: true,
        addon: None,
        metrics: Metrics {
            service: MetricsService::ModelSelector,
            port: "http",
            prepackaged_port: "http",
            path: "/metrics",
        },
        status: StatusFields {
            desired: &["/spec/replicas"],
            ready: Some("/status/readyReplicas"),
            ready_defaults_to_zero: true,
        },
        endpoint: Endpoint::Url("http://{name}.{namespace}.svc:{port}"),
        // Our own Service, on the model's port (vLLM's OpenAI port for a language model).
        reach: Reach {
            service: "{name}",
            canary_service: "{name}",
            port: ServicePort::Model,
            model_header: None,
            canary_model: "{name}",
            protocol: Protocol::OipV2,
            servers: &[ServerReach {
                server: Server::Vllm,
                protocol: Protocol::Openai,
                prefix: "",
                port: Some(VLLM_PORT),
            }],
        },
        security: Security {
            pod_security: PodSecurity::Restricted,
            pod_security_reason: "mldeploy renders the whole pod: non-root, no privilege \
                                  escalation, every capability dropped, seccomp RuntimeDefault",
            run_as_user: Some(10001),
            writable_paths: &["/tmp"],
            serving_ports: &[],
            pod_label: None,
            control_namespaces: &[],
            intra_namespace: false,
            fetches_artifact: false,
            identity: IdentityWiring {
                how: "spec.template.spec.serviceAccountName and the pod template's labels",
                pod_labels: true,
                rclone: None,
                own_server: false,
            },
            secrets: SecretDelivery {
                files: true,
                reason: "mldeploy renders the whole pod: `file: true` entries are mounted; the \
                         rest are variables because the image reads them so",
            },
        },
        hf_uris: false,
        llm: LlmServing::Serves(&[LlmObject {
            kind: None,
            watched: Watched {
                kind: Kind {
                    api_version: "apps/v1",
                    kind: "Deployment",
                },
                readiness: Readiness::Rollout,
            },
            // vLLM downloads from the Hub itself and reads a mounted claim; it has no S3 or GCS
            // client of its own.
            schemes: &["hf", "pvc"],
            openai_prefix: "",
            service: None,
            service_port: VLLM_PORT,
            https: false,
            endpoint: Endpoint::Url("http://{name}.{namespace}.svc:8000"),
            cache: true,
            prerequisites: None,
        }]),
    },
];

/// The row of `runtime`.
pub fn spec(runtime: Runtime) -> &'static RuntimeSpec {
    RUNTIMES
        .iter()
        .find(|r| r.runtime == runtime)
        .unwrap_or(&RUNTIMES[RUNTIMES.len() - 1])
}

/// Where `test` reaches each runtime, as a Markdown table: docs/test.md embeds it and a unit
/// test keeps the two in step.
pub fn reach_table() -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "| runtime | Service (port) | canary | routed by | protocol | servers that differ |\n\
         |---|---|---|---|---|---|\n",
    );
    let name = |t: &str| format!("`{}`", t.replace("{name}", "<name>"));
    for r in RUNTIMES {
        let reach = &r.reach;
        let port = match reach.port {
            ServicePort::Fixed(p) => p.to_string(),
            ServicePort::Model => "the model's `port`".into(),
        };
        let canary = if !r.splits_traffic {
            "— (no split)".to_string()
        } else if reach.canary_service != reach.service {
            name(reach.canary_service)
        } else if reach.canary_model != "{name}" {
            format!(
                "{}, as {}",
                name(reach.canary_service),
                name(reach.canary_model)
            )
        } else {
            "the same Service (measures the split)".to_string()
        };
        let routed = reach
            .model_header
            .map_or("—".to_string(), |h| format!("header `{h}: <name>`"));
        let servers: Vec<String> = reach
            .servers
            .iter()
            .map(|s| {
                let mut t = format!("`{}`: `{}`", s.server.name(), s.protocol.name());
                if !s.prefix.is_empty() {
                    let _ = write!(t, " under `{}`", s.prefix);
                }
                if let Some(p) = s.port {
                    let _ = write!(t, ", port {p}");
                }
                t
            })
            .collect();
        let servers = if servers.is_empty() {
            "—".to_string()
        } else {
            servers.join("; ")
        };
        let _ = writeln!(
            out,
            "| `{}` | {} ({port}) | {canary} | {routed} | `{}` | {servers} |",
            r.runtime.name(),
            name(reach.service),
            reach.protocol.name()
        );
    }
    out
}

/// Names of the runtimes for which `pred` holds, for hints (`seldon`, `kserve`).
pub fn names_where(pred: impl Fn(&RuntimeSpec) -> bool) -> String {
    let names: Vec<String> = RUNTIMES
        .iter()
        .filter(|r| pred(r))
        .map(|r| format!("`{}`", r.runtime.name()))
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// Readiness rule of a rendered kind, from every runtime's rows; None for kinds that are ready
/// once applied. (`cluster::wait` reads this.)
pub fn readiness_of(kind: &str) -> Option<Readiness> {
    RUNTIMES
        .iter()
        .flat_map(|r| {
            let llm = match r.llm {
                LlmServing::Serves(objects) => objects,
                LlmServing::Unsupported(_) => &[],
            };
            std::iter::once(&r.serving)
                .chain(r.also_watched)
                .chain(llm.iter().map(|o| &o.watched))
        })
        .find(|w| w.kind.kind == kind)
        .map(|w| w.readiness)
        .filter(|r| r.waits())
}

/// The operator behind an API group, for "the CRD is missing" hints. (`cluster::plan` reads this.)
pub fn addon_for_group(api_group: &str) -> Option<&'static Addon> {
    RUNTIMES
        .iter()
        .filter_map(|r| r.addon.as_ref())
        .find(|a| a.api_group == api_group)
}

/// A prepackaged model server and its name in each runtime.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// The server.
    pub server: Server,
    /// Seldon Core v1 `implementation`.
    pub seldon_implementation: &'static str,
    /// KServe `modelFormat.name`.
    pub kserve_format: &'static str,
    /// Seldon Core v2 `requirements` (capabilities a Server must have).
    pub seldon_v2_requirements: &'static [&'static str],
    /// Seldon Core v2 ServerConfig that runs it (`mlserver` or `triton`).
    pub seldon_v2_server_config: &'static str,
    /// Whether its images have a ROCm (AMD GPU) build.
    pub rocm: bool,
}

const fn server_row(
    server: Server,
    seldon_implementation: &'static str,
    kserve_format: &'static str,
    seldon_v2_requirements: &'static [&'static str],
    seldon_v2_server_config: &'static str,
) -> ServerSpec {
    ServerSpec {
        server,
        seldon_implementation,
        kserve_format,
        seldon_v2_requirements,
        seldon_v2_server_config,
        rocm: false,
    }
}

/// Every prepackaged server. None ships ROCm images today: AMD GPUs take a custom image.
pub const SERVERS: &[ServerSpec] = &[
    server_row(
        Server::Sklearn,
        "SKLEARN_SERVER",
        "sklearn",
        &["sklearn"],
        "mlserver",
    ),
    server_row(
        Server::Xgboost,
        "XGBOOST_SERVER",
        "xgboost",
        &["xgboost"],
        "mlserver",
    ),
    server_row(
        Server::Mlflow,
        "MLFLOW_SERVER",
        "mlflow",
        &["mlflow"],
        "mlserver",
    ),
    server_row(
        Server::Tensorflow,
        "TENSORFLOW_SERVER",
        "tensorflow",
        &["tensorflow"],
        "triton",
    ),
    server_row(
        Server::Triton,
        "TRITON_SERVER",
        "triton",
        &["triton"],
        "triton",
    ),
    server_row(
        Server::Huggingface,
        "HUGGINGFACE_SERVER",
        "huggingface",
        &["huggingface"],
        "mlserver",
    ),
    // Served by the runtimes' LLM objects (`RuntimeSpec::llm`): on KServe, the Hugging Face
    // runtime with its vLLM backend. Seldon has no vLLM server (its names stay empty).
    server_row(Server::Vllm, "", "huggingface", &[], ""),
];

/// The row of `server`.
pub fn server(server: Server) -> &'static ServerSpec {
    SERVERS
        .iter()
        .find(|s| s.server == server)
        .unwrap_or(&SERVERS[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_runtime_and_server_has_a_row() {
        for r in Runtime::ALL {
            assert_eq!(spec(r).runtime, r);
            assert!(RUNTIMES.iter().filter(|s| s.runtime == r).count() == 1);
        }
        for s in [
            Server::Sklearn,
            Server::Xgboost,
            Server::Mlflow,
            Server::Tensorflow,
            Server::Triton,
            Server::Huggingface,
            Server::Vllm,
        ] {
            assert_eq!(server(s).server, s);
        }
    }

    #[test]
    fn every_runtime_has_a_template_folder() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/runtimes");
        for r in RUNTIMES {
            assert!(root.join(r.runtime.name()).is_dir(), "{}", r.runtime.name());
        }
    }

    #[test]
    fn readiness_rules_by_kind() {
        assert_eq!(readiness_of("ConfigMap"), None);
        assert_eq!(readiness_of("Deployment"), Some(Readiness::Rollout));
        let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(Readiness::ReadyCondition.check(&ready).is_ok());
        assert!(Readiness::ReadyCondition.check(&json!({})).is_err());
        let sd = json!({"status": {"state": "Creating", "description": "pulling"}});
        assert_eq!(
            Readiness::State { ready: "Available" }.check(&sd),
            Err("state is Creating: pulling".into())
        );
        let dep = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 1}});
        assert_eq!(
            Readiness::Rollout.check(&dep),
            Err("1 of 2 replicas available".into())
        );
    }

    #[test]
    fn status_fields_sum_over_stars() {
        let sd = json!({"spec": {"predictors": [{"replicas": 2}, {"replicas": 1}]},
            "status": {"deploymentStatus": {"a": {"availableReplicas": 2}, "b": {}}}});
        assert_eq!(spec(Runtime::Seldon).status.read(&sd), (Some(3), Some(2)));
        let dep = json!({"spec": {"replicas": 3}, "status": {}});
        assert_eq!(
            spec(Runtime::Deployment).status.read(&dep),
            (Some(3), Some(0))
        );
        let model = json!({"spec": {"minReplicas": 1}});
        assert_eq!(spec(Runtime::SeldonV2).status.read(&model), (Some(1), None));
    }

    #[test]
    fn reach_says_service_port_and_protocol() {
        let kserve = spec(Runtime::Kserve).reach;
        assert_eq!(kserve.protocol_of(None), Protocol::KserveV1);
        assert_eq!(
            kserve.protocol_of(Some(Server::Huggingface)),
            Protocol::Openai
        );
        assert_eq!(
            kserve.prefix_of(Some(Server::Huggingface), Protocol::Openai),
            "/openai"
        );
        // Another protocol than the server's own has no prefix.
        assert_eq!(
            kserve.prefix_of(Some(Server::Huggingface), Protocol::OipV2),
            ""
        );
        assert_eq!(
            spec(Runtime::Seldon)
                .reach
                .protocol_of(Some(Server::Sklearn)),
            Protocol::SeldonV1
        );
        let v2 = spec(Runtime::SeldonV2)
            .reach
            .resolve("m", Some(Server::Sklearn), None, true);
        assert_eq!(
            v2,
            Reached {
                service: "seldon-mesh".into(),
                port: 80,
                headers: vec![("Seldon-Model".into(), "m-canary".into())],
                model: "m-canary".into(),
            }
        );
        let d = spec(Runtime::Deployment).reach;
        assert_eq!(d.resolve("m", None, Some(9000), false).port, 9000);
        assert_eq!(d.resolve("m", Some(Server::Sklearn), None, false).port, 80);
    }

    #[test]
    fn docs_test_md_has_the_reach_table_of_the_rows() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/test.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let start = doc.find("<!-- reach-table").unwrap();
        let start = start + doc[start..].find('\n').unwrap() + 1;
        let end = doc.find("<!-- /reach-table -->").unwrap();
        assert_eq!(
            &doc[start..end],
            reach_table(),
            "docs/test.md: replace the table between the reach-table markers with runtime::reach_table()"
        );
    }

    #[test]
    fn endpoints() {
        let d = spec(Runtime::Deployment).endpoint;
        assert_eq!(
            d.resolve("m", "ns", Some(8080), &Value::Null).as_deref(),
            Some("http://m.ns.svc:8080")
        );
        assert_eq!(d.resolve("m", "ns", None, &Value::Null), None);
        let k = spec(Runtime::Kserve).endpoint;
        let obj = json!({"status": {"address": {"url": "http://x"}}});
        assert_eq!(
            k.resolve("m", "ns", None, &obj).as_deref(),
            Some("http://x")
        );
        assert_eq!(
            addon_for_group("serving.kserve.io").map(|a| a.title),
            Some("KServe")
        );
    }
}
