//! Verifying what was deployed (`mldeploy test`, and the gate of `mldeploy promote`): find a
//! model's endpoint, smoke-test it in its protocol, load-test it within hard bounds, and judge
//! the figures against its SLO. Like the cluster layer, this is code that talks to the network.

pub mod endpoint;
pub mod forward;
pub mod load;
pub mod protocol;
pub mod report;
pub mod slo;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::config::{Protocol, Runtime};
use crate::model::slo::Slo;
use endpoint::{Endpoint, Failure};
use protocol::Call;

/// One smoke-test request and its answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// `server ready`, `model ready`, `metadata`, `infer`, …
    pub name: String,
    /// The path requested.
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// Latency in milliseconds.
    pub latency_ms: f64,
}

/// The smoke test's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Smoke {
    /// Each request.
    pub steps: Vec<Step>,
    /// The start of the inference answer.
    pub response: String,
    /// Time to first token of the inference (streaming).
    pub ttft_ms: Option<f64>,
}

/// Why a model's test could not run to a verdict (exit 1).
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// What failed.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

/// How one model fared.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelRun {
    /// Model name (with `-canary` when its canary was tested).
    pub model: String,
    /// Runtime.
    pub runtime: &'static str,
    /// Protocol spoken.
    pub protocol: &'static str,
    /// Where.
    pub endpoint: String,
    /// The smoke test, when it ran to the end.
    pub smoke: Option<Smoke>,
    /// The load test's figures.
    pub load: Option<report::LoadSummary>,
    /// SLO checks.
    pub checks: Vec<slo::Check>,
    /// Why there is no verdict.
    pub error: Option<Problem>,
}

impl ModelRun {
    /// Whether the test ended with a verdict and every check passed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.checks.iter().all(|c| c.pass)
    }

    /// Whether an SLO check failed (as opposed to an error before any verdict).
    pub fn breached(&self) -> bool {
        self.error.is_none() && self.checks.iter().any(|c| !c.pass)
    }
}

/// What to test for one model.
#[derive(Debug, Clone)]
pub struct Target {
    /// Model name (for reports).
    pub name: String,
    /// Runtime (for explanations).
    pub runtime: Runtime,
    /// Protocol.
    pub protocol: Protocol,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Request body from `test.payload`.
    pub payload: Option<Vec<u8>>,
    /// Limits.
    pub slo: Slo,
    /// Deadline of each request (smoke and load).
    pub timeout: Duration,
}

fn problem(t: &Target, what: &str, call: &Call, f: &Failure) -> Problem {
    let path = t.endpoint.path_of(call);
    let message = match f.status {
        Some(status) => format!(
            "{what} of `{}` failed: {}",
            t.name,
            protocol::explain(t.protocol, t.runtime, &path, status, &f.body)
        ),
        None => format!("{what} of `{}` failed ({path}): {}", t.name, f.detail),
    };
    if let Some(why) = t.endpoint.forward_error() {
        return Problem {
            message: format!("{message} ({why})"),
            hint: Some(
                "is the model listening on the pod's port? (`mldeploy status`, the pod's logs; leave out --port-forward to go through the service proxy)"
                    .into(),
            ),
        };
    }
    let hint = match f.kind.as_str() {
        "timeout" => Some(
            "the endpoint did not answer in time: is the model overloaded or stuck? (--timeout raises the deadline)"
                .to_string(),
        ),
        "connection refused" | "connect" => Some(format!(
            "nothing answers at {}: {}",
            t.endpoint.label,
            endpoint::protocol_hint(t.protocol)
        )),
        _ => None,
    };
    Problem { message, hint }
}

fn step(name: &str, path: String, a: &endpoint::Answer) -> Step {
    Step {
        name: name.into(),
        path,
        status: a.status,
        latency_ms: a.latency.as_secs_f64() * 1000.0,
    }
}

/// Smoke test: readiness and metadata where the protocol has them, then one inference with the
/// payload (or a body built from the metadata, or a short prompt). Returns the inference
/// request for the load test.
pub async fn smoke(t: &Target) -> Result<(Smoke, Call), Problem> {
    let mut steps = Vec::new();
    let mut metadata = Value::Null;
    for (name, call) in protocol::probes(t.protocol, &t.endpoint.model) {
        let a = t
            .endpoint
            .call(&call, t.timeout)
            .await
            .map_err(|f| problem(t, name, &call, &f))?;
        steps.push(step(name, t.endpoint.path_of(&call), &a));
        if matches!(name, "metadata" | "models") {
            metadata = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        }
        if name == "model ready"
            && t.protocol == Protocol::KserveV1
            && serde_json::from_slice::<Value>(&a.body)
                .is_ok_and(|v| v["ready"] == Value::Bool(false))
        {
            return Err(Problem {
                message: format!(
                    "model `{}` is not ready: {}",
                    t.name,
                    String::from_utf8_lossy(&a.body)
                ),
                hint: Some("still loading? see `mldeploy status` and the predictor's logs".into()),
            });
        }
    }
    let body = match (&t.payload, t.protocol) {
        (Some(p), _) => p.clone(),
        (None, Protocol::OipV2) => protocol::synthesise_v2(&metadata).map_err(|e| Problem {
            message: format!("cannot build a request for `{}`: {e}", t.name),
            hint: Some("set `test: {payload: FILE}` on the model".into()),
        })?,
        (None, Protocol::Openai) => {
            let id =
                protocol::openai_model_id(&metadata, &t.endpoint.model).map_err(|e| Problem {
                    message: format!("`{}`: {e}", t.name),
                    hint: None,
                })?;
            protocol::chat_prompt(&id)
        }
        (None, p) => {
            return Err(Problem {
                message: format!(
                    "`{}` speaks {}, which has no metadata to build a request from",
                    t.name,
                    p.name()
                ),
                hint: Some(
                    "set `test: {payload: FILE}` on the model to a JSON request body".into(),
                ),
            });
        }
    };
    let call = protocol::infer(t.protocol, &t.endpoint.model, body);
    let a = t
        .endpoint
        .call(&call, t.timeout)
        .await
        .map_err(|f| problem(t, "inference", &call, &f))?;
    protocol::check_answer(t.protocol, &a.body).map_err(|e| Problem {
        message: format!("inference of `{}`: {e}", t.name),
        hint: Some(endpoint::protocol_hint(t.protocol).into()),
    })?;
    steps.push(step("infer", t.endpoint.path_of(&call), &a));
    let text = String::from_utf8_lossy(&a.body);
    let response: String = text.chars().take(400).collect();
    Ok((
        Smoke {
            steps,
            response,
            ttft_ms: a.ttft.map(|d| d.as_secs_f64() * 1000.0),
        },
        call,
    ))
}

/// Runs `fut` unless `stop` is set first (Ctrl-C): `None` when it was dropped where it stood.
pub async fn unless_stopped<T>(stop: &AtomicBool, fut: impl Future<Output = T>) -> Option<T> {
    tokio::pin!(fut);
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            v = &mut fut => return Some(v),
            _ = poll.tick() => {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return None;
                }
            }
        }
    }
}

/// Smoke then (unless `plan` is `None`) load, judged against the target's SLO.
pub async fn run_model(
    t: &Target,
    plan: Option<load::Plan>,
    counters: Arc<load::Counters>,
    stop: Arc<AtomicBool>,
) -> ModelRun {
    let mut run = ModelRun {
        model: t.name.clone(),
        runtime: t.runtime.name(),
        protocol: t.protocol.name(),
        endpoint: t.endpoint.label.clone(),
        smoke: None,
        load: None,
        checks: Vec::new(),
        error: None,
    };
    let call = match unless_stopped(&stop, smoke(t)).await {
        Some(Ok((s, call))) => {
            run.smoke = Some(s);
            call
        }
        Some(Err(p)) => {
            run.error = Some(p);
            return run;
        }
        None => {
            run.error = Some(Problem {
                message: format!("the smoke test of `{}` was interrupted", t.name),
                hint: None,
            });
            return run;
        }
    };
    let Some(plan) = plan else {
        return run;
    };
    let req = match t.endpoint.request(&call) {
        Ok(r) => r,
        Err(f) => {
            run.error = Some(Problem {
                message: f.detail,
                hint: None,
            });
            return run;
        }
    };
    let outcome = load::run(&t.endpoint, &req, plan, counters, stop).await;
    if outcome.total() == 0 {
        run.error = Some(Problem {
            message: format!("the load test of `{}` completed no request", t.name),
            hint: Some("raise --duration or --requests, or lower --warmup".into()),
        });
    } else if outcome.ok == 0 {
        let why = outcome
            .first_error
            .as_ref()
            .map(|f| problem(t, "every request", &call, f));
        run.error = Some(why.unwrap_or(Problem {
            message: format!("every request to `{}` failed", t.name),
            hint: None,
        }));
    } else {
        run.checks = slo::judge(&t.slo, &outcome);
    }
    run.load = Some(report::LoadSummary::from(&outcome));
    run
}
