//! What templates need to serve a language model with vLLM: the object (a vLLM Deployment, a
//! KServe InferenceService with the Hugging Face runtime, or an LLMInferenceService), its
//! arguments in the dialect of each, the Hugging Face cache and token, and the volumes vLLM
//! writes to under a read-only root filesystem.

use serde::Serialize;

use super::context::{EnvVar, WritablePath};
use crate::config::LlmKind;
use crate::model::llm::Llm;
use crate::model::{Model, Source};
use crate::runtime::VLLM_PORT;

/// Where the cache claim (or, without one, an emptyDir) is mounted.
pub const CACHE_PATH: &str = "/cache";

/// Where a `pvc://` model's claim is mounted (read-only) on a vLLM Deployment.
pub const MODELS_PATH: &str = "/models";

/// How long a vLLM pod may take to answer `/health` the first time: downloading and loading
/// weights, then compiling CUDA graphs. 10 s × 180 = 30 minutes.
const STARTUP_FAILURES: u32 = 180;

/// A language model, laid out for the templates.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LlmCtx {
    /// `deployment`, `inferenceservice` or `llmisvc`.
    pub kind: &'static str,
    /// The vLLM image (runtime `deployment`).
    pub image: String,
    /// vLLM's OpenAI port.
    pub port: u16,
    /// `storageUri` (KServe InferenceService) or `spec.model.uri` (LLMInferenceService); None
    /// when the runtime downloads into the cache itself.
    pub storage_uri: Option<String>,
    /// The name clients put in the `model` field of requests.
    pub served_name: String,
    /// Container arguments, in the runtime's dialect (`vllm serve` or KServe's Hugging Face
    /// server).
    pub args: Vec<String>,
    /// Plain environment variables the runtime needs (caches under a read-only root).
    pub env: Vec<EnvVar>,
    /// The cache claim, when there is one.
    pub cache: Option<CacheCtx>,
    /// A `pvc://` model's claim, mounted read-only at [`MODELS_PATH`].
    pub model_claim: Option<String>,
    /// emptyDirs vLLM writes to (besides the runtime's own writable paths).
    pub scratch: Vec<WritablePath>,
    /// Size limit of the memory-backed `/dev/shm` (NCCL and PyTorch share tensors through it).
    pub shm_size: &'static str,
    /// Tensor parallelism (LLMInferenceService `parallelism.tensor`).
    pub tensor_parallel: u32,
    /// Failures of the startup probe (10 s apart) before the pod is restarted.
    pub startup_failures: u32,
    /// The Hugging Face token as a file (runtime `deployment`): mounted from its Secret at
    /// [`TOKEN_DIR`] and named by `HF_TOKEN_PATH`, so it is not in the process environment.
    pub token_file: Option<TokenFileCtx>,
}

/// A Secret key mounted as the Hugging Face token file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenFileCtx {
    /// Secret name.
    pub secret: String,
    /// Key in the Secret.
    pub key: String,
    /// Mount path of the folder.
    pub dir: &'static str,
}

/// Where the Hugging Face token file is mounted on a vLLM Deployment.
pub const TOKEN_DIR: &str = "/var/run/secrets/huggingface";

/// The weight cache claim.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheCtx {
    /// PersistentVolumeClaim name (`<model>-cache`).
    pub claim: String,
    /// Requested size.
    pub size: String,
    /// StorageClass (None: the cluster's default).
    pub storage_class: Option<String>,
    /// Access mode.
    pub access_mode: &'static str,
    /// Mount path.
    pub path: &'static str,
}

/// The template inputs of model `m`, when it is a language model.
pub fn llm_context(m: &Model) -> Option<LlmCtx> {
    let l = m.llm.as_ref()?;
    let uri = match &m.source {
        Source::Prepackaged { model_uri, .. } => model_uri.clone(),
        Source::Image { .. } => return None,
    };
    let cache = l.cache.as_ref().map(|c| CacheCtx {
        claim: format!("{}-cache", m.name),
        size: c.size.clone(),
        storage_class: c.storage_class.clone(),
        access_mode: c.access_mode.name(),
        path: CACHE_PATH,
    });
    let kind = match l.kind {
        None => "deployment",
        Some(LlmKind::Inferenceservice) => "inferenceservice",
        Some(LlmKind::Llmisvc) => "llmisvc",
    };
    let engine = engine_args(l);

    // With a cache, KServe's Hugging Face server downloads the model itself into HF_HOME on the
    // claim (the storage initializer would copy it into an emptyDir at every start).
    let kserve_downloads = kind == "inferenceservice" && cache.is_some() && l.scheme == "hf";
    let (storage_uri, args) = match kind {
        "deployment" => {
            let model = match &l.pvc {
                Some((_, path)) if path.is_empty() => MODELS_PATH.to_string(),
                Some((_, path)) => format!("{MODELS_PATH}/{path}"),
                None => l.model_id.clone().unwrap_or_default(),
            };
            let mut args = vec![
                model,
                format!("--served-model-name={}", m.name),
                format!("--port={VLLM_PORT}"),
            ];
            if let Some(rev) = &l.revision {
                args.push(format!("--revision={rev}"));
            }
            args.extend(engine);
            (None, args)
        }
        "inferenceservice" => {
            let mut args = vec![format!("--model_name={}", m.name), "--backend=vllm".into()];
            if kserve_downloads {
                args.push(format!(
                    "--model_id={}",
                    l.model_id.clone().unwrap_or_default()
                ));
                if let Some(rev) = &l.revision {
                    args.push(format!("--model_revision={rev}"));
                }
            }
            args.extend(engine);
            ((!kserve_downloads).then_some(uri), args)
        }
        // The LLMInferenceService's presets start vLLM themselves (model, port, parallelism);
        // more flags go in VLLM_ADDITIONAL_ARGS (below).
        _ => (Some(uri), Vec::new()),
    };
    let mut env: Vec<EnvVar> = Vec::new();
    let mut var = |name: &str, value: String| {
        env.push(EnvVar {
            name: name.into(),
            value,
        })
    };
    // The LLMInferenceService's presets set up their own container; ours run vLLM under a
    // read-only root: the Hugging Face and vLLM compile caches go to the cache volume, the rest
    // to /tmp; torch asks for a user name, which an arbitrary UID has not got.
    // huggingface_hub reads the token from HF_TOKEN, or from the file HF_TOKEN_PATH names: on
    // our own Deployment it is a file, out of the environment (and of `/proc/*/environ`).
    let token_file = l
        .hf_token
        .as_ref()
        .filter(|_| kind == "deployment")
        .map(|t| TokenFileCtx {
            secret: t.secret.clone(),
            key: t.key.clone(),
            dir: TOKEN_DIR,
        });
    if token_file.is_some() {
        var("HF_TOKEN_PATH", format!("{TOKEN_DIR}/token"));
    }
    if kind != "llmisvc" {
        var("HF_HOME", format!("{CACHE_PATH}/huggingface"));
        var("HOME", "/tmp".into());
        var("USER", "vllm".into());
        var("XDG_CACHE_HOME", CACHE_PATH.into());
        var("VLLM_NO_USAGE_STATS", "1".into());
    }
    if kind == "llmisvc" {
        let more: Vec<String> = engine_args(l)
            .into_iter()
            .filter(|a| !a.starts_with("--tensor-parallel-size"))
            .collect();
        if !more.is_empty() {
            var("VLLM_ADDITIONAL_ARGS", more.join(" "));
        }
    }
    env.sort_by(|a, b| a.name.cmp(&b.name));
    let scratch = if cache.is_none() && kind != "llmisvc" {
        vec![WritablePath {
            name: "cache".into(),
            path: CACHE_PATH,
        }]
    } else {
        Vec::new()
    };
    Some(LlmCtx {
        kind,
        image: l.image.clone(),
        port: VLLM_PORT,
        storage_uri,
        served_name: m.name.clone(),
        args,
        env,
        cache,
        model_claim: l.pvc.as_ref().map(|(claim, _)| claim.clone()),
        scratch,
        shm_size: if l.tensor_parallel > 1 { "8Gi" } else { "2Gi" },
        tensor_parallel: l.tensor_parallel,
        startup_failures: STARTUP_FAILURES,
        token_file,
    })
}

/// vLLM engine flags from the `llm` block (the same spelling in `vllm serve` and KServe's
/// Hugging Face server, which passes them to vLLM).
fn engine_args(l: &Llm) -> Vec<String> {
    let mut args = vec![format!("--tensor-parallel-size={}", l.tensor_parallel)];
    if let Some(n) = l.max_model_len {
        args.push(format!("--max-model-len={n}"));
    }
    if let Some(d) = l.dtype {
        args.push(format!("--dtype={}", d.name()));
    }
    if let Some(q) = l.quantization {
        args.push(format!("--quantization={}", q.name()));
    }
    if let Some(u) = l.gpu_memory_utilization {
        args.push(format!("--gpu-memory-utilization={u}"));
    }
    args.extend(l.extra_args.iter().cloned());
    args
}
