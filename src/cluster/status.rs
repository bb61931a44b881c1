//! `status`: each model of an environment as the cluster sees it — runtime, desired and ready
//! replicas, readiness, and where to reach it.

use serde::Serialize;
use serde_json::Value;

use super::ClusterError;
use super::api::Api;
use super::wait::readiness;
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

/// Reads the serving object of every model.
pub async fn status(api: &Api, env: &Env) -> Result<Vec<ModelStatus>, ClusterError> {
    let mut out = Vec::new();
    for m in &env.models {
        let (api_version, kind) = match m.runtime {
            crate::config::Runtime::Deployment => ("apps/v1", "Deployment"),
            crate::config::Runtime::Seldon => ("machinelearning.seldon.io/v1", "SeldonDeployment"),
            crate::config::Runtime::SeldonV2 => ("mlops.seldon.io/v1alpha1", "Model"),
            crate::config::Runtime::Kserve => ("serving.kserve.io/v1beta1", "InferenceService"),
        };
        let ns = env.namespace.as_str();
        let live = match api.resource(api_version, kind).await? {
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
        let state = match readiness(kind, &obj) {
            Some(Err(why)) => format!("not ready: {why}"),
            _ => "ready".into(),
        };
        let (desired, ready) = replicas(kind, &obj);
        let endpoint = match (kind, &m.source) {
            ("Deployment", Source::Image { port, .. }) => {
                Some(format!("http://{}.{ns}.svc:{port}", m.name))
            }
            ("SeldonDeployment", _) => Some(format!(
                "http://{}-default.{ns}.svc:8000/api/v1.0/predictions",
                m.name
            )),
            ("Model", _) => Some(format!(
                "http://seldon-mesh.{ns}.svc/v2/models/{}/infer",
                m.name
            )),
            ("InferenceService", _) => obj["status"]["url"]
                .as_str()
                .or_else(|| obj["status"]["address"]["url"].as_str())
                .map(str::to_string),
            _ => None,
        };
        out.push(ModelStatus {
            name: m.name.clone(),
            runtime: m.runtime.name().into(),
            desired,
            ready_replicas: ready,
            state,
            endpoint,
        });
    }
    Ok(out)
}

fn replicas(kind: &str, obj: &Value) -> (Option<i64>, Option<i64>) {
    let status = &obj["status"];
    match kind {
        "Deployment" => (
            obj["spec"]["replicas"].as_i64(),
            Some(status["readyReplicas"].as_i64().unwrap_or(0)),
        ),
        "SeldonDeployment" => {
            let desired = obj["spec"]["predictors"]
                .as_array()
                .map(|p| p.iter().map(|x| x["replicas"].as_i64().unwrap_or(1)).sum());
            let ready = status["deploymentStatus"].as_object().map(|d| {
                d.values()
                    .map(|x| x["availableReplicas"].as_i64().unwrap_or(0))
                    .sum()
            });
            (desired, ready)
        }
        "Model" => (
            obj["spec"]["replicas"]
                .as_i64()
                .or(obj["spec"]["minReplicas"].as_i64()),
            status["availableReplicas"].as_i64(),
        ),
        "InferenceService" => (obj["spec"]["predictor"]["minReplicas"].as_i64(), None),
        _ => (None, None),
    }
}
