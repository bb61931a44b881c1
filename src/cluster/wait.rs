//! Waiting for readiness, by the rule each runtime's row gives its kinds: Deployments by
//! observedGeneration and updated/available replicas, SeldonDeployments by `status.state ==
//! Available`, Seldon v2 Models, Servers, Experiments and KServe InferenceServices by their `Ready`
//! condition. On timeout, each object that is not ready is named
//! with its conditions and latest warning events.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::ClusterError;
use super::api::{Api, Resource, display};
use super::progress::Progress;

/// An object that did not become ready, and why.
#[derive(Debug, Clone, Serialize)]
pub struct NotReady {
    /// `Kind namespace/name`.
    pub object: String,
    /// What is missing.
    pub reason: String,
    /// Its conditions, as `Type=Status: message`.
    pub conditions: Vec<String>,
    /// Its latest warning events.
    pub events: Vec<String>,
}

/// Whether objects of `kind` are waited on (others are ready once applied): the runtime rows
/// say ([`crate::runtime::readiness_of`]).
pub fn waited_on(kind: &str) -> bool {
    crate::runtime::readiness_of(kind).is_some()
}

/// Readiness of a live object: `None` for kinds that are ready once applied.
pub fn readiness(kind: &str, obj: &Value) -> Option<Result<(), String>> {
    crate::runtime::readiness_of(kind).map(|r| r.check(obj))
}

fn conditions(obj: &Value) -> Vec<String> {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={}{}",
                c["type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?"),
                c["message"]
                    .as_str()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Waits for every object a plan applies or keeps, of a kind that is waited on, polling every
/// 2 s (`MLDEPLOY_POLL_MS` shortens it for tests), with progress in `mode`.
pub async fn wait_for_plan(
    api: &Api,
    plan: &super::plan::Plan,
    timeout: Duration,
    mode: super::progress::Mode,
) -> Result<(), ClusterError> {
    use super::plan::Action;
    let targets: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| {
            matches!(
                c.action,
                Action::Create | Action::Update | Action::Unchanged
            ) && waited_on(&c.resource.kind)
        })
        .map(|c| (c.resource.clone(), c.namespace.clone(), c.name.clone()))
        .collect();
    let waiting = Progress::new(mode, "wait", targets.len() as u64);
    let poll = std::env::var("MLDEPLOY_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_millis);
    let result = wait(api, &targets, timeout, poll, &waiting).await;
    waiting.finish();
    result
}

/// Polls `targets` (objects of [`waited_on`] kinds) until each is ready or `timeout` passes.
pub async fn wait(
    api: &Api,
    targets: &[(Resource, Option<String>, String)],
    timeout: Duration,
    poll: Duration,
    progress: &Progress,
) -> Result<(), ClusterError> {
    let start = Instant::now();
    // Kinds without a readiness rule are ready once read back.
    let mut pending: Vec<&(Resource, Option<String>, String)> = targets.iter().collect();
    let mut last: Vec<(String, String, Value)> = Vec::new();
    loop {
        last.clear();
        let mut still = Vec::new();
        for t in pending {
            let (resource, namespace, name) = t;
            let label = format!("{} {}", resource.kind, display(namespace.as_deref(), name));
            match api.get(resource, namespace.as_deref(), name).await? {
                None => {
                    last.push((label, "not found".into(), Value::Null));
                    still.push(t);
                }
                Some(obj) => match readiness(&resource.kind, &obj) {
                    Some(Err(why)) => {
                        last.push((label, why, obj));
                        still.push(t);
                    }
                    _ => progress.event("ready", &label, "ready"),
                },
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(poll.min(timeout.saturating_sub(start.elapsed()))).await;
    }
    let mut not_ready = Vec::new();
    for ((_, namespace, name), (label, reason, obj)) in pending.into_iter().zip(last) {
        let events = match namespace {
            Some(ns) => api
                .events(ns, name)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e["type"] == "Warning")
                .rev()
                .take(3)
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["reason"].as_str().unwrap_or("?"),
                        e["message"].as_str().unwrap_or("").trim()
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        not_ready.push(NotReady {
            object: label,
            reason,
            conditions: conditions(&obj),
            events,
        });
    }
    Err(ClusterError::NotReady { not_ready, timeout })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readiness_rules() {
        let dep = |observed: i64, avail: i64| {
            json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
                   "status": {"observedGeneration": observed, "updatedReplicas": 2, "availableReplicas": avail}})
        };
        assert!(readiness("Deployment", &dep(2, 2)).expect("waited").is_ok());
        assert!(
            readiness("Deployment", &dep(1, 2))
                .expect("waited")
                .is_err()
        );
        assert!(
            readiness("Deployment", &dep(2, 1))
                .expect("waited")
                .is_err()
        );
        assert!(
            readiness(
                "SeldonDeployment",
                &json!({"status": {"state": "Available"}})
            )
            .expect("w")
            .is_ok()
        );
        assert!(
            readiness(
                "SeldonDeployment",
                &json!({"status": {"state": "Creating"}})
            )
            .expect("w")
            .is_err()
        );
        let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(readiness("InferenceService", &ready).expect("w").is_ok());
        assert!(readiness("Model", &json!({})).expect("w").is_err());
        assert!(readiness("Service", &json!({})).is_none());
    }
}
