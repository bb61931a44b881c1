//! `status`: each model of an environment as the cluster sees it — runtime, desired and ready
//! replicas, readiness, and where to reach it.

use serde::Serialize;

use super::ClusterError;
use super::api::Api;
use crate::model::{Env, Source};

/// One model's live state.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelStatus {
    /// Model name.
    pub name: String,
    /// Runtime.
    pub runtime: String,
    /// Desired replicas (as the live object says), if known.
    pub desired: Option<i64>,
    /// Ready replicas, if known.
    pub ready_replicas: Option<i64>,
    /// `ready`, `not ready: …` or `missing`.
    pub state: String,
    /// Where to send requests.
    pub endpoint: Option<String>,
}

/// Reads the serving object of every model: which kind carries it, when it is ready, where its
/// replica counts and endpoint are — all from the runtime's row ([`crate::runtime::RuntimeSpec`]).
pub async fn status(api: &Api, env: &Env) -> Result<Vec<ModelStatus>, ClusterError> {
    let mut out = Vec::new();
    for m in &env.models {
        let spec = crate::runtime::spec(m.runtime);
        // A language model is carried by its runtime's LLM object (an LLMInferenceService on
        // KServe with `llm.kind: llmisvc`).
        let llm = m
            .llm
            .as_ref()
            .and_then(|l| crate::runtime::llm_object(m.runtime, l.kind).ok());
        let serving = llm.map_or(spec.serving, |o| o.watched);
        let endpoint = llm.map_or(spec.endpoint, |o| o.endpoint);
        let kind = serving.kind;
        let ns = env.namespace.as_str();
        let live = match api.resource(kind.api_version, kind.kind).await? {
            Some(r) => api.get(&r, Some(ns), &m.name).await?,
            None => None,
        };
        let Some(obj) = live else {
            out.push(ModelStatus {
                name: m.name.clone(),
                runtime: m.runtime.name().into(),
                desired: None,
                ready_replicas: None,
                state: "missing".into(),
                endpoint: None,
            });
            continue;
        };
        let state = match serving.readiness.check(&obj) {
            Err(why) => format!("not ready: {why}"),
            Ok(()) => "ready".into(),
        };
        let (desired, ready) = spec.status.read(&obj);
        let (server, image_port) = match &m.source {
            Source::Image { port, .. } => (None, Some(*port)),
            Source::Prepackaged { server, .. } => (Some(*server), None),
        };
        // The Service port `test` reaches (a custom image's, or vLLM's on a Deployment).
        let port = Some(spec.reach.resolve(&m.name, server, image_port, false).port);
        out.push(ModelStatus {
            name: m.name.clone(),
            runtime: m.runtime.name().into(),
            desired,
            ready_replicas: ready,
            state,
            endpoint: endpoint.resolve(&m.name, ns, port, &obj),
        });
    }
    Ok(out)
}
