//! Language models (`server: vllm`): the `llm` block, the model URI (`hf://org/name[:revision]`,
//! `s3://`, `gs://`, `pvc://`) against what the runtime's LLM object fetches, the Hugging Face
//! token reference, the weight cache, tensor parallelism, and whether the weights fit the GPUs.

use serde::Serialize;

use super::quantity::{QUANTITY_HINT, Quantity};
use super::{ClusterModel, GpuUse, ModelCheck, join, key, names};
use crate::catalog;
use crate::config::yaml::Seg;
use crate::config::{
    self, AccessMode, Dtype, LlmKind, ModelSpec, Quantization, Runtime, SecretKeyRef, Server,
};
use crate::runtime::{self, LlmObject, LlmServing, RuntimeSpec};

/// Default vLLM image of runtime `deployment` (docs/llm.md names it; `llm.image` overrides it).
pub const DEFAULT_VLLM_IMAGE: &str = "vllm/vllm-openai:v0.11.0";

/// Key of the Hugging Face token in its Secret when `hfTokenSecret.key` is not set; also the key
/// KServe's storage initializer looks for in the Secrets of the predictor's ServiceAccount.
pub const HF_TOKEN_KEY: &str = "HF_TOKEN";

/// vLLM's default share of GPU memory (`--gpu-memory-utilization`).
const DEFAULT_GPU_MEMORY_UTILIZATION: f64 = 0.9;

/// Weights above this share of the memory vLLM may use leave little room for the KV cache.
const TIGHT: f64 = 0.8;

/// `vllm serve` flags mldeploy sets from the config; `extraArgs` must not set them again.
const MANAGED_FLAGS: &[(&str, &str)] = &[
    ("--tensor-parallel-size", "llm.tensorParallel"),
    ("--max-model-len", "llm.maxModelLen"),
    ("--dtype", "llm.dtype"),
    ("--quantization", "llm.quantization"),
    ("--gpu-memory-utilization", "llm.gpuMemoryUtilization"),
    ("--port", "the runtime"),
    ("--host", "the runtime"),
    ("--model", "modelUri"),
    ("--served-model-name", "the model name"),
    ("--download-dir", "cache"),
];

/// A language model resolved for one environment.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Llm {
    /// The KServe object (`inferenceservice` or `llmisvc`); None on runtime `deployment`.
    pub kind: Option<LlmKind>,
    /// The URI scheme of `modelUri` (`hf`, `s3`, `gs`, `pvc`).
    pub scheme: &'static str,
    /// Hugging Face model id (`Qwen/Qwen2.5-7B-Instruct`) of an `hf://` URI.
    pub model_id: Option<String>,
    /// Its revision (branch, tag or commit), when given.
    pub revision: Option<String>,
    /// A `pvc://claim/path` URI: the claim and the path in it.
    pub pvc: Option<(String, String)>,
    /// Parameters in billions, from `llm.params`.
    pub params_billions: Option<f64>,
    /// `--max-model-len`.
    pub max_model_len: Option<u32>,
    /// `--dtype`.
    pub dtype: Option<Dtype>,
    /// `--quantization`.
    pub quantization: Option<Quantization>,
    /// `--gpu-memory-utilization`.
    pub gpu_memory_utilization: Option<f64>,
    /// `--tensor-parallel-size` (the GPU count unless set).
    pub tensor_parallel: u32,
    /// More `vllm serve` arguments.
    pub extra_args: Vec<String>,
    /// vLLM image (runtime `deployment`).
    pub image: String,
    /// The Hugging Face token's Secret and key.
    pub hf_token: Option<config::SecretEnv>,
    /// The weight cache.
    pub cache: Option<Cache>,
}

/// A weight cache with defaults filled in.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cache {
    /// Size (a quantity as written).
    pub size: String,
    /// StorageClass (None: the cluster's default).
    pub storage_class: Option<String>,
    /// Access mode.
    pub access_mode: AccessMode,
}

/// The parts of `hf://org/name[:revision]`; Err says what is wrong.
pub fn parse_hf(rest: &str) -> Result<(String, Option<String>), String> {
    let (id, revision) = match rest.split_once(':') {
        Some((id, rev)) => (id, Some(rev)),
        None => (rest, None),
    };
    let parts: Vec<&str> = id.split('/').collect();
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 96
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !p.starts_with(['.', '-'])
    };
    if parts.len() != 2 || !parts.iter().all(|p| ok_part(p)) {
        return Err(format!(
            "`{id}` is not a Hugging Face model id (`org/name`: letters, digits, `-`, `_`, `.`)"
        ));
    }
    if let Some(rev) = revision
        && (rev.is_empty()
            || !rev
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/')))
    {
        return Err(format!(
            "`{rev}` is not a revision (a branch, tag or commit)"
        ));
    }
    Ok((id.to_string(), revision.map(str::to_string)))
}

/// `7b`, `0.5B`, `70b`, `500m` → billions of parameters.
pub fn parse_params(text: &str) -> Option<f64> {
    let t = text.trim();
    let (number, scale) = match t.char_indices().last()? {
        (i, 'b' | 'B') => (&t[..i], 1.0),
        (i, 'm' | 'M') => (&t[..i], 1e-3),
        (i, 't' | 'T') => (&t[..i], 1e3),
        _ => return None,
    };
    let n: f64 = number.trim().parse().ok()?;
    (n.is_finite() && n > 0.0).then_some(n * scale)
}

/// Bytes per parameter of the weights in GPU memory.
pub fn bytes_per_param(dtype: Option<Dtype>, quantization: Option<Quantization>) -> f64 {
    match (quantization, dtype) {
        (Some(Quantization::Awq | Quantization::Gptq | Quantization::Bitsandbytes), _) => 0.5,
        (Some(Quantization::Fp8), _) => 1.0,
        (None, Some(Dtype::Float32)) => 4.0,
        (None, _) => 2.0,
    }
}

/// GB of memory one replica's GPUs have: whole GPUs, a MIG slice, or a time-slice (the GPU's
/// memory divided by the slices its node pool cuts it into, when the cluster says).
fn replica_memory_gb(g: &GpuUse, cluster: Option<&ClusterModel>) -> Option<f64> {
    let gpu = catalog::gpu(g.kind)?;
    if let Some(profile) = g.mig {
        let gb: f64 = profile
            .rsplit_once('.')?
            .1
            .trim_end_matches("gb")
            .parse()
            .ok()?;
        return Some(gb * f64::from(g.count));
    }
    let per_gpu = f64::from(gpu.memory_gb);
    if g.shared {
        let slices = cluster
            .into_iter()
            .flat_map(|c| {
                c.node_pools
                    .iter()
                    .filter_map(|p| p.gpu.as_ref())
                    .chain(&c.gpus)
            })
            .filter(|n| n.kind == g.kind)
            .find_map(|n| n.share)
            .unwrap_or(1);
        return Some(per_gpu / f64::from(slices));
    }
    Some(per_gpu * f64::from(g.count))
}

/// Checks what a model says about language models; Some for a `server: vllm` model whose LLM
/// settings have no problem.
pub(super) fn check_llm(
    mc: &mut ModelCheck<'_>,
    spec: &ModelSpec,
    rt: &RuntimeSpec,
    gpu: Option<&GpuUse>,
    cluster: Option<&ClusterModel>,
    env_cache: Option<&config::Cache>,
) -> Option<Llm> {
    check_hf_uri_elsewhere(mc, spec, rt);
    if spec.server != Some(Server::Vllm) || spec.image.is_some() {
        for (field, set) in [
            ("llm", spec.llm.is_some()),
            ("cache", spec.cache.is_some()),
            (
                "hfTokenSecret",
                spec.hf_token_secret.is_some() && spec.server != Some(Server::Huggingface),
            ),
        ] {
            if set {
                mc.at(
                    &[key(field)],
                    format!("`{field}` applies to language models (`server: vllm`)"),
                    Some(
                        "serve the model with `server: vllm` and `modelUri: hf://org/name`, or \
                         remove it (set it on the LLM models only, or in \
                         `overrides.models.<name>`)"
                            .into(),
                    ),
                );
            }
        }
        if let Some(r) = &spec.hf_token_secret
            && spec.server == Some(Server::Huggingface)
        {
            secret_ref(mc, r);
        }
        return None;
    }
    let before = mc.found.len();
    let l = spec.llm.clone().unwrap_or_default();
    let object = match rt.llm {
        LlmServing::Unsupported(why) => {
            let runtime_set = mc.node.exists(&[key("runtime")]);
            mc.at(
                &[key(if runtime_set { "runtime" } else { "server" })],
                format!(
                    "runtime `{}` cannot serve `server: vllm`: {why}",
                    rt.runtime.name()
                ),
                Some(format!(
                    "serve language models with runtime {}",
                    runtime::names_where(|r| matches!(r.llm, LlmServing::Serves(_)))
                )),
            );
            return None;
        }
        LlmServing::Serves(_) => {
            if l.kind.is_some() && rt.runtime != Runtime::Kserve {
                mc.at(
                    &[key("llm"), key("kind")],
                    format!(
                        "`llm.kind` chooses the KServe object; runtime `{}` has one way to serve",
                        rt.runtime.name()
                    ),
                    Some("remove it, or set `runtime: kserve`".into()),
                );
                return None;
            }
            match runtime::llm_object(rt.runtime, l.kind) {
                Ok(o) => o,
                Err(why) => {
                    mc.at(&[key("llm"), key("kind")], why, None);
                    return None;
                }
            }
        }
    };
    let kind = (rt.runtime == Runtime::Kserve).then(|| l.kind.unwrap_or(LlmKind::Inferenceservice));
    if spec.canary.is_some() {
        mc.at(
            &[key("canary")],
            "mldeploy does not split traffic between two versions of a language model: each holds a full set of GPUs",
            Some("serve the new version as a second model and move clients to it, or roll it out in place".into()),
        );
    }

    // The URI.
    let uri = spec.model_uri.clone().unwrap_or_default();
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", ""));
    let scheme: &'static str = match scheme {
        "hf" => "hf",
        "s3" => "s3",
        "gs" => "gs",
        "pvc" => "pvc",
        other => {
            mc.at(
                &[key("modelUri")],
                format!("`{other}://` is not a source of language models"),
                Some(
                    "hf://org/name[:revision] (a Hugging Face model id), s3://bucket/path, \
                     gs://bucket/path or pvc://claim/path"
                        .into(),
                ),
            );
            ""
        }
    };
    let (mut model_id, mut revision, mut pvc) = (None, None, None);
    match scheme {
        "hf" => match parse_hf(rest) {
            Ok((id, rev)) => {
                model_id = Some(id);
                revision = rev;
            }
            Err(e) => mc.at(
                &[key("modelUri")],
                e,
                Some("e.g. hf://Qwen/Qwen2.5-7B-Instruct, or hf://org/name:revision".into()),
            ),
        },
        "pvc" => match rest.split_once('/') {
            Some((claim, path)) if names::dns_subdomain(claim).is_ok() => {
                pvc = Some((claim.to_string(), path.trim_matches('/').to_string()));
            }
            _ => mc.at(
                &[key("modelUri")],
                format!("`{uri}` does not name a claim and a path"),
                Some("pvc://claim-name/path/in/claim".into()),
            ),
        },
        "s3" | "gs" if rest.trim_matches('/').is_empty() => mc.at(
            &[key("modelUri")],
            format!("`{uri}` names no bucket"),
            Some(format!("{scheme}://bucket/path")),
        ),
        _ => {}
    }
    if !scheme.is_empty() && !object.schemes.contains(&scheme) {
        let fetchers = fetchers_of(scheme);
        mc.at(
            &[key("modelUri")],
            format!(
                "{} cannot fetch `{scheme}://` URIs (it fetches {})",
                object_title(rt, object),
                object
                    .schemes
                    .iter()
                    .map(|s| format!("`{s}://`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(if fetchers.is_empty() {
                "copy the weights to a PersistentVolumeClaim and use pvc://claim/path".into()
            } else {
                format!(
                    "use {fetchers}, or copy the weights to a PersistentVolumeClaim and use pvc://claim/path"
                )
            }),
        );
    }

    // The token.
    let hf_token = spec
        .hf_token_secret
        .as_ref()
        .and_then(|r| secret_ref(mc, r));
    if let Some(t) = &hf_token
        && kind == Some(LlmKind::Inferenceservice)
        && scheme == "hf"
        && t.key != HF_TOKEN_KEY
        && spec.cache.is_none()
        && env_cache.is_none()
    {
        mc.at(
            &[key("hfTokenSecret"), key("key")],
            format!(
                "KServe's storage initializer reads the Hugging Face token from the key `{HF_TOKEN_KEY}` of the predictor ServiceAccount's Secrets, not `{}`",
                t.key
            ),
            Some(format!(
                "store the token under the key `{HF_TOKEN_KEY}` (kubectl create secret generic {} --from-literal={HF_TOKEN_KEY}=…)",
                t.secret
            )),
        );
    }
    if spec
        .secret_env
        .iter()
        .flatten()
        .any(|s| s.name == "HF_TOKEN")
        && hf_token.is_some()
    {
        mc.at(
            &[key("hfTokenSecret")],
            "`HF_TOKEN` is set twice: by `hfTokenSecret` and in `secretEnv`",
            Some("keep `hfTokenSecret`".into()),
        );
    }

    // GPUs and parallelism.
    let Some(g) = gpu else {
        if spec.gpu.is_none() {
            mc.at(
                &[key("server")],
                "`server: vllm` needs a `gpu`: the vLLM images are built for GPUs",
                Some("e.g. gpu: {type: l4, count: 1}".into()),
            );
        }
        return None;
    };
    let entry = catalog::gpu(g.kind);
    if g.mig.is_some() && g.count > 1 {
        mc.at(
            &[key("gpu"), key("count")],
            format!(
                "vLLM cannot use {} MIG slices in one replica: CUDA shows a process one MIG device",
                g.count
            ),
            Some("ask for one larger slice, or for whole GPUs".into()),
        );
    }
    let tensor_parallel = match l.tensor_parallel {
        None => {
            if g.mig.is_some() || g.shared {
                1
            } else {
                g.count
            }
        }
        Some(tp) => match u32::try_from(tp) {
            Ok(tp) if tp >= 1 && g.count % tp == 0 && !(g.mig.is_some() && tp > 1) => tp,
            _ => {
                let divisors: Vec<String> = (1..=g.count)
                    .filter(|d| g.count % d == 0)
                    .map(|d| d.to_string())
                    .collect();
                mc.at(
                    &[key("llm"), key("tensorParallel")],
                    format!(
                        "tensor parallelism {tp} does not divide the {} GPUs of a replica",
                        g.count
                    ),
                    Some(format!(
                        "use one of {} (each shard gets the same number of GPUs), or change gpu.count",
                        divisors.join(", ")
                    )),
                );
                1
            }
        },
    };
    if entry.is_some_and(|e| e.edge) && l.image.is_none() && rt.runtime == Runtime::Deployment {
        mc.at(
            &[key("gpu"), key("type")],
            format!(
                "`{DEFAULT_VLLM_IMAGE}` has no build for `{}` (Jetson, L4T)",
                g.kind
            ),
            Some("set `llm.image` to a vLLM build for Jetson (JetPack 6)".into()),
        );
    }
    if l.dtype == Some(Dtype::Bfloat16) && g.kind == "t4" {
        mc.at(
            &[key("llm"), key("dtype")],
            "a T4 (compute capability 7.5) has no bfloat16; vLLM needs 8.0 or later for it",
            Some("use `dtype: float16` (or `auto`, which picks it)".into()),
        );
    }

    // The other settings.
    let max_model_len = l.max_model_len.and_then(|n| match u32::try_from(n) {
        Ok(v) if v >= 1 => Some(v),
        _ => {
            mc.at(
                &[key("llm"), key("maxModelLen")],
                format!("maxModelLen must be a positive number of tokens, not {n}"),
                Some("e.g. 8192".into()),
            );
            None
        }
    });
    if let Some(u) = l.gpu_memory_utilization
        && !(u > 0.0 && u <= 1.0)
    {
        mc.at(
            &[key("llm"), key("gpuMemoryUtilization")],
            format!("gpuMemoryUtilization is a share of GPU memory above 0 and at most 1, not {u}"),
            Some("e.g. 0.9 (vLLM's default)".into()),
        );
    }
    let params_billions = l.params.as_ref().and_then(|p| {
        let v = parse_params(p.as_str());
        if v.is_none() {
            mc.at(
                &[key("llm"), key("params")],
                format!("`{p}` is not a parameter count"),
                Some("a number with `b` (billions) or `m` (millions): 7b, 0.5b, 70b, 500m".into()),
            );
        }
        v
    });
    let extra_args = l.extra_args.clone().unwrap_or_default();
    for (i, arg) in extra_args.iter().enumerate() {
        let flag = arg.split('=').next().unwrap_or_default().replace('_', "-");
        if let Some((f, field)) = MANAGED_FLAGS.iter().find(|(f, _)| *f == flag) {
            mc.at(
                &[key("llm"), key("extraArgs"), Seg::Index(i)],
                format!("`{f}` is set by mldeploy from {field}"),
                Some(format!("set {field} instead")),
            );
        }
    }
    // The LLMInferenceService's presets expand VLLM_ADDITIONAL_ARGS in a shell, split at blanks.
    if kind == Some(LlmKind::Llmisvc) {
        for (i, arg) in extra_args.iter().enumerate() {
            if !arg.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'-' | b'_' | b'=' | b'.' | b',' | b':' | b'/' | b'@' | b'+'
                    )
            }) {
                mc.at(
                    &[key("llm"), key("extraArgs"), Seg::Index(i)],
                    format!("`{arg}` cannot pass through VLLM_ADDITIONAL_ARGS, which the LLMInferenceService's presets split at blanks in a shell"),
                    Some("write each flag as `--name=value` without blanks, quotes or shell characters, or use `llm.kind: inferenceservice`".into()),
                );
            }
        }
    }
    if let Some(image) = &l.image {
        if rt.runtime != Runtime::Deployment {
            mc.at(
                &[key("llm"), key("image")],
                format!(
                    "`llm.image` applies to runtime `deployment`; {} brings its own image",
                    object_title(rt, object)
                ),
                Some("remove it (the cluster's serving runtime sets the image)".into()),
            );
        } else if image.trim().is_empty() || image.contains(char::is_whitespace) {
            mc.at(
                &[key("llm"), key("image")],
                format!("`{image}` is not an image reference"),
                Some(format!("e.g. {DEFAULT_VLLM_IMAGE}")),
            );
        }
    }

    // The cache.
    let cache = match (&spec.cache, env_cache) {
        (Some(c), _) => check_cache(mc, c, &[key("cache")]),
        (None, Some(c)) => Some(cache_of(c)),
        (None, None) => None,
    };
    if cache.is_some() {
        let field = if spec.cache.is_some() {
            vec![key("cache")]
        } else {
            vec![key("server")]
        };
        if !object.cache {
            mc.at(
                &field,
                format!(
                    "{} keeps weights in its own storage; a `cache` claim is not used",
                    object_title(rt, object)
                ),
                Some("remove `cache`, or serve with `llm.kind: inferenceservice`".into()),
            );
        } else if scheme == "pvc" {
            mc.at(
                &field,
                "a `pvc://` model is read from its claim already; a cache would copy it",
                Some("remove `cache`".into()),
            );
        } else if scheme != "hf" && !scheme.is_empty() {
            mc.at(
                &field,
                format!(
                    "the cache keeps `hf://` downloads; {} copies `{scheme}://` into the pod at every start",
                    object_title(rt, object)
                ),
                Some("copy the weights to a PersistentVolumeClaim once and use pvc://claim/path".into()),
            );
        }
    }
    if let (Some(c), Some(a)) = (&cache, spec.autoscale.as_ref())
        && c.access_mode == AccessMode::ReadWriteOnce
        && a.max.is_some_and(|m| m > 1)
    {
        mc.warn(
            &[key("cache")],
            "the cache claim is ReadWriteOnce: replicas scheduled on another node cannot mount it and stay Pending",
            "set `cache.accessMode: ReadWriteMany` with a StorageClass that supports it (Filestore, EFS, Azure Files, NFS), or keep one replica",
        );
    }

    // Do the weights fit?
    if let Some(b) = params_billions {
        check_fit(mc, &l, b, g, cluster, tensor_parallel);
    }

    if mc.found.len() > before {
        return None;
    }
    Some(Llm {
        kind,
        scheme,
        model_id,
        revision,
        pvc,
        params_billions,
        max_model_len,
        dtype: l.dtype,
        quantization: l.quantization,
        gpu_memory_utilization: l.gpu_memory_utilization,
        tensor_parallel,
        extra_args,
        image: l.image.unwrap_or_else(|| DEFAULT_VLLM_IMAGE.to_string()),
        hf_token,
        cache,
    })
}

/// Weights (parameters × bytes per parameter) against the memory vLLM may use on a replica's
/// GPUs: an error when they do not fit, a warning when they leave little for the KV cache.
fn check_fit(
    mc: &mut ModelCheck<'_>,
    l: &config::Llm,
    billions: f64,
    g: &GpuUse,
    cluster: Option<&ClusterModel>,
    _tensor_parallel: u32,
) {
    let Some(memory) = replica_memory_gb(g, cluster) else {
        return;
    };
    let bytes = bytes_per_param(l.dtype, l.quantization);
    let weights = billions * bytes;
    let util = l
        .gpu_memory_utilization
        .filter(|u| *u > 0.0 && *u <= 1.0)
        .unwrap_or(DEFAULT_GPU_MEMORY_UTILIZATION);
    let usable = memory * util;
    let what = match (g.mig, g.shared) {
        (Some(p), _) => format!("{} × {} ({memory:.0} GB)", g.count, p),
        (None, true) => format!("a time-slice of `{}` ({memory:.0} GB)", g.kind),
        (None, false) => format!("{} × {} ({memory:.0} GB)", g.count, g.kind),
    };
    let weights_text = format!(
        "{billions}B parameters × {bytes} bytes ({}) = {weights:.1} GB of weights",
        l.quantization
            .map(|q| q.name().to_string())
            .unwrap_or_else(|| l.dtype.unwrap_or(Dtype::Auto).name().to_string())
    );
    let bigger = "more or larger GPUs (gpu.count with tensor parallelism, a larger gpu.type), or a quantized checkpoint (llm.quantization: awq or fp8)";
    if weights > usable {
        mc.at(
            &[key("llm"), key("params")],
            format!(
                "the weights do not fit: {weights_text}, but vLLM may use {usable:.1} GB of {what} at gpuMemoryUtilization {util}"
            ),
            Some(format!("use {bigger}")),
        );
    } else if weights > usable * TIGHT {
        mc.warn(
            &[key("llm"), key("params")],
            &format!(
                "the weights fit tightly: {weights_text} of the {usable:.1} GB vLLM may use on {what}, leaving {:.1} GB for the KV cache",
                usable - weights
            ),
            &format!("expect short contexts and few concurrent requests (lower llm.maxModelLen), or use {bigger}"),
        );
    }
}

/// The Secret reference of the Hugging Face token, checked.
fn secret_ref(mc: &mut ModelCheck<'_>, r: &SecretKeyRef) -> Option<config::SecretEnv> {
    let Some(name) = &r.name else {
        mc.at(
            &[key("hfTokenSecret")],
            "`hfTokenSecret` needs the Secret's `name`",
            Some(format!(
                "hfTokenSecret: {{name: hf-token, key: {HF_TOKEN_KEY}}}"
            )),
        );
        return None;
    };
    let mut ok = true;
    if let Err(e) = names::dns_subdomain(name) {
        mc.at(
            &[key("hfTokenSecret"), key("name")],
            format!("Secret name `{name}` {e}"),
            None,
        );
        ok = false;
    }
    let k = r.key.clone().unwrap_or_else(|| HF_TOKEN_KEY.to_string());
    if let Err(e) = names::secret_key(&k) {
        mc.at(
            &[key("hfTokenSecret"), key("key")],
            format!("Secret key `{k}` {e}"),
            None,
        );
        ok = false;
    }
    ok.then(|| config::SecretEnv {
        name: "HF_TOKEN".into(),
        secret: name.clone(),
        key: k,
        file: false,
    })
}

/// A cache block with defaults; problems are recorded at `path`.
fn check_cache(mc: &mut ModelCheck<'_>, c: &config::Cache, path: &[Seg]) -> Option<Cache> {
    match cache_problems(c) {
        Ok(cache) => Some(cache),
        Err(problems) => {
            for (field, message, hint) in problems {
                mc.at(&join(path, &[key(field)]), message, hint);
            }
            None
        }
    }
}

/// A checked cache of an environment (its problems are reported at the environment).
pub(super) fn cache_of(c: &config::Cache) -> Cache {
    Cache {
        size: c.size.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
        storage_class: c.storage_class.clone(),
        access_mode: c.access_mode.unwrap_or(AccessMode::ReadWriteOnce),
    }
}

/// A problem of a cache block: its field, the message and a hint.
pub(super) type CacheProblem = (&'static str, String, Option<String>);

/// Problems of a cache block.
pub(super) fn cache_problems(c: &config::Cache) -> Result<Cache, Vec<CacheProblem>> {
    let mut out = Vec::new();
    match &c.size {
        None => out.push((
            "size",
            "`cache` needs a `size`".to_string(),
            Some("room for the weights and some to spare, e.g. size: 200Gi".into()),
        )),
        Some(s) => match Quantity::parse(s.as_str()) {
            Some(q) if q.value >= 1024.0 * 1024.0 * 1024.0 => {}
            Some(_) => out.push((
                "size",
                format!("a cache of `{s}` cannot hold model weights"),
                Some("give it at least 1Gi; a 7B model needs about 16Gi".into()),
            )),
            None => out.push((
                "size",
                format!("`{s}` is not a size"),
                Some(QUANTITY_HINT.into()),
            )),
        },
    }
    if let Some(sc) = &c.storage_class
        && let Err(e) = names::dns_subdomain(sc)
    {
        out.push((
            "storageClass",
            format!("StorageClass name `{sc}` {e}"),
            None,
        ));
    }
    if out.is_empty() {
        Ok(cache_of(c))
    } else {
        Err(out)
    }
}

/// `hf://` on a model that is not a language model: only runtimes whose prepackaged servers
/// fetch it (KServe's storage initializer) can.
fn check_hf_uri_elsewhere(mc: &mut ModelCheck<'_>, spec: &ModelSpec, rt: &RuntimeSpec) {
    if spec.server == Some(Server::Vllm) || spec.image.is_some() {
        return;
    }
    let hf = |u: &Option<String>| u.as_deref().is_some_and(|u| u.starts_with("hf://"));
    for (path, set) in [
        (vec![key("modelUri")], hf(&spec.model_uri)),
        (
            vec![key("canary"), key("modelUri")],
            spec.canary.as_ref().is_some_and(|c| hf(&c.model_uri)),
        ),
    ] {
        if set && !rt.hf_uris {
            mc.at(
                &path,
                format!(
                    "runtime `{}` cannot fetch `hf://` URIs: {} downloads with rclone, which has no Hugging Face backend",
                    rt.runtime.name(),
                    rt.title
                ),
                Some(format!(
                    "use runtime {} (its storage initializer fetches hf://), or `server: vllm` for a language model",
                    runtime::names_where(|r| r.hf_uris)
                )),
            );
        }
    }
}

/// The runtimes (and LLM kinds) whose LLM objects fetch `scheme`, for hints.
fn fetchers_of(scheme: &str) -> String {
    let mut out = Vec::new();
    for r in runtime::RUNTIMES {
        if let LlmServing::Serves(objects) = r.llm {
            for o in objects.iter().filter(|o| o.schemes.contains(&scheme)) {
                out.push(match o.kind {
                    Some(LlmKind::Llmisvc) => {
                        format!("`runtime: {}` with `llm.kind: llmisvc`", r.runtime.name())
                    }
                    _ => format!("`runtime: {}`", r.runtime.name()),
                });
            }
        }
    }
    out.dedup();
    out.join(" or ")
}

/// A name for the object in messages.
fn object_title(rt: &RuntimeSpec, o: &LlmObject) -> String {
    match o.kind {
        Some(LlmKind::Llmisvc) => "KServe's LLMInferenceService".into(),
        Some(LlmKind::Inferenceservice) => "KServe's Hugging Face runtime".into(),
        None => format!("vLLM on a {}", rt.title),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_uris() {
        assert_eq!(
            parse_hf("Qwen/Qwen2.5-7B-Instruct"),
            Ok(("Qwen/Qwen2.5-7B-Instruct".into(), None))
        );
        assert_eq!(
            parse_hf("org/name:v1.0"),
            Ok(("org/name".into(), Some("v1.0".into())))
        );
        assert!(parse_hf("just-a-name").is_err());
        assert!(parse_hf("a/b/c").is_err());
        assert!(parse_hf("org/na me").is_err());
        assert!(parse_hf("org/name:").is_err());
    }

    #[test]
    fn params_and_bytes() {
        assert_eq!(parse_params("7b"), Some(7.0));
        assert_eq!(parse_params("0.5B"), Some(0.5));
        assert_eq!(parse_params("500m"), Some(0.5));
        assert_eq!(parse_params("7"), None);
        assert_eq!(parse_params("-1b"), None);
        assert_eq!(parse_params("b"), None);
        assert_eq!(bytes_per_param(None, None), 2.0);
        assert_eq!(bytes_per_param(Some(Dtype::Float32), None), 4.0);
        assert_eq!(
            bytes_per_param(Some(Dtype::Float32), Some(Quantization::Awq)),
            0.5
        );
        assert_eq!(bytes_per_param(None, Some(Quantization::Fp8)), 1.0);
    }

    fn gpu(kind: &'static str, count: u32, mig: Option<&'static str>, shared: bool) -> GpuUse {
        GpuUse {
            kind,
            count,
            accelerator: None,
            vendor: catalog::Vendor::Nvidia,
            share: None,
            shared,
            mig,
            claim: false,
        }
    }

    #[test]
    fn replica_memory_counts_slices_and_shares() {
        assert_eq!(
            replica_memory_gb(&gpu("l4", 2, None, false), None),
            Some(48.0)
        );
        assert_eq!(
            replica_memory_gb(&gpu("a100-80gb", 1, Some("3g.40gb"), false), None),
            Some(40.0)
        );
        // A time-slice: the GPU's memory over the slices of the pool it runs on.
        let mut pool = gpu("t4", 1, None, false);
        pool.share = Some(4);
        let cluster = ClusterModel {
            name: "c".into(),
            cloud: config::Cloud::Onprem,
            region: None,
            gcp_project: None,
            gcp_zone: None,
            aws_vpc_id: None,
            aws_subnet_ids: Vec::new(),
            azure_resource_group: None,
            kubernetes_version: None,
            node_pools: Vec::new(),
            context: None,
            distribution: None,
            arch: None,
            gpus: vec![pool],
            state: None,
            control_plane: Default::default(),
            hardening: Default::default(),
        };
        assert_eq!(
            replica_memory_gb(&gpu("t4", 1, None, true), Some(&cluster)),
            Some(4.0)
        );
        assert_eq!(
            replica_memory_gb(&gpu("t4", 1, None, true), None),
            Some(16.0)
        );
    }
}
