//! The inference protocols `mldeploy test` speaks: which one a model speaks by default, the
//! paths of each, request bodies (from a file, synthesised from OIP v2 metadata, or a short
//! prompt), response checks, and the server-sent events of a streaming chat completion.

use serde_json::{Value, json};

use crate::config::{Protocol, Runtime, Server};
use crate::model::{Model, Source};

fn server_of(m: &Model) -> Option<Server> {
    match &m.source {
        Source::Prepackaged { server, .. } => Some(*server),
        Source::Image { .. } => None,
    }
}

/// The protocol a model speaks when its config does not say: what its runtime and server serve
/// (the runtime's row, [`crate::runtime::Reach`]).
pub fn default_for(m: &Model) -> Protocol {
    crate::runtime::spec(m.runtime)
        .reach
        .protocol_of(server_of(m))
}

/// The path prefix under which a model's runtime serves `protocol` (KServe's Hugging Face
/// runtime puts the OpenAI routes under `/openai`).
pub fn prefix_for(m: &Model, protocol: Protocol) -> &'static str {
    // KServe's LLMInferenceService serves vLLM's routes without KServe's /openai prefix.
    if let (Some(object), Protocol::Openai) = (llm_object(m), protocol) {
        return object.openai_prefix;
    }
    crate::runtime::spec(m.runtime)
        .reach
        .prefix_of(server_of(m), protocol)
}

/// The object that serves a language model (its runtime row's LLM object), if `m` is one.
fn llm_object(m: &Model) -> Option<&'static crate::runtime::LlmObject> {
    let llm = m.llm.as_ref()?;
    crate::runtime::llm_object(m.runtime, llm.kind).ok()
}

/// One HTTP request of a smoke test or a load test, relative to the endpoint's base.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// GET or POST.
    pub method: http::Method,
    /// Path below the endpoint's base (starting with `/`).
    pub path: String,
    /// JSON body (POST).
    pub body: Option<Vec<u8>>,
    /// Whether the response is a stream of server-sent events.
    pub streaming: bool,
}

impl Call {
    fn get(path: String) -> Call {
        Call {
            method: http::Method::GET,
            path,
            body: None,
            streaming: false,
        }
    }
}

/// The readiness and metadata requests a smoke test makes before inferring, in order.
pub fn probes(protocol: Protocol, model: &str) -> Vec<(&'static str, Call)> {
    match protocol {
        Protocol::OipV2 => vec![
            ("server ready", Call::get("/v2/health/ready".into())),
            (
                "model ready",
                Call::get(format!("/v2/models/{model}/ready")),
            ),
            ("metadata", Call::get(format!("/v2/models/{model}"))),
        ],
        Protocol::KserveV1 => vec![("model ready", Call::get(format!("/v1/models/{model}")))],
        // Seldon Core v1's executor answers the prediction path only; the smoke test infers.
        Protocol::SeldonV1 => vec![],
        Protocol::Openai => vec![("models", Call::get("/v1/models".into()))],
    }
}

/// The inference request.
pub fn infer(protocol: Protocol, model: &str, body: Vec<u8>) -> Call {
    let path = match protocol {
        Protocol::OipV2 => format!("/v2/models/{model}/infer"),
        Protocol::KserveV1 => format!("/v1/models/{model}:predict"),
        Protocol::SeldonV1 => "/api/v1.0/predictions".into(),
        Protocol::Openai => "/v1/chat/completions".into(),
    };
    let streaming = protocol == Protocol::Openai
        && serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["stream"].as_bool())
            .unwrap_or(false);
    Call {
        method: http::Method::POST,
        path,
        body: Some(body),
        streaming,
    }
}

/// A short streaming chat request for `model` (the id `/v1/models` lists).
pub fn chat_prompt(model: &str) -> Vec<u8> {
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "Reply with one short sentence: what is 2 + 2?"}],
        "max_tokens": 32,
        "temperature": 0,
        "stream": true,
    });
    body.to_string().into_bytes()
}

/// The model id to use from a `/v1/models` answer: `name` if listed, else the only one.
pub fn openai_model_id(models: &Value, name: &str) -> Result<String, String> {
    let ids: Vec<&str> = models["data"]
        .as_array()
        .map(|d| d.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    if ids.contains(&name) {
        return Ok(name.to_string());
    }
    match ids.as_slice() {
        [only] => Ok((*only).to_string()),
        [] => Err("/v1/models lists no model: is it still loading?".into()),
        many => Err(format!(
            "/v1/models lists {} but not `{name}`; set test.payload with the model id to use",
            many.join(", ")
        )),
    }
}

/// A request body built from OIP v2 metadata: every input with its datatype and shape, dynamic
/// dimensions (`-1`) taken as 1, filled with a plain value of its type.
pub fn synthesise_v2(metadata: &Value) -> Result<Vec<u8>, String> {
    let inputs = metadata["inputs"]
        .as_array()
        .filter(|i| !i.is_empty())
        .ok_or("the model's metadata lists no inputs; set test.payload to a request body")?;
    let mut out = Vec::new();
    for input in inputs {
        let name = input["name"]
            .as_str()
            .ok_or("a metadata input has no name")?;
        let datatype = input["datatype"]
            .as_str()
            .ok_or_else(|| format!("metadata input `{name}` has no datatype"))?;
        let shape: Vec<i64> = input["shape"]
            .as_array()
            .map(|s| s.iter().map(|d| d.as_i64().unwrap_or(1)).collect())
            .unwrap_or_default();
        let shape: Vec<i64> = shape.iter().map(|&d| if d < 1 { 1 } else { d }).collect();
        let count: i64 = shape.iter().product::<i64>().max(1);
        if count > 1_000_000 {
            return Err(format!(
                "metadata input `{name}` has {count} elements; set test.payload to a smaller request"
            ));
        }
        let value = match datatype {
            "BOOL" => json!(false),
            "BYTES" => json!("a"),
            "FP16" | "FP32" | "FP64" | "BF16" => json!(0.5),
            t if t.starts_with("INT") || t.starts_with("UINT") => json!(1),
            other => {
                return Err(format!(
                    "metadata input `{name}` has datatype `{other}`, which mldeploy cannot fill; set test.payload"
                ));
            }
        };
        out.push(json!({
            "name": name,
            "datatype": datatype,
            "shape": shape,
            "data": vec![value; usize::try_from(count).unwrap_or(1)],
        }));
    }
    Ok(json!({ "inputs": out }).to_string().into_bytes())
}

/// Checks a successful inference answer has the shape its protocol promises.
pub fn check_answer(protocol: Protocol, body: &[u8]) -> Result<(), String> {
    if protocol == Protocol::Openai && body.starts_with(b"data:") {
        return Ok(());
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        format!(
            "the answer is not JSON (starts {:?}); is this endpoint speaking {}?",
            String::from_utf8_lossy(&body[..body.len().min(60)]),
            protocol.name()
        )
    })?;
    let ok = match protocol {
        Protocol::OipV2 => v["outputs"].is_array(),
        Protocol::KserveV1 => v["predictions"].is_array(),
        Protocol::SeldonV1 => ["data", "jsonData", "strData", "binData"]
            .iter()
            .any(|k| !v[k].is_null()),
        Protocol::Openai => v["choices"].is_array(),
    };
    if ok {
        Ok(())
    } else {
        let expected = match protocol {
            Protocol::OipV2 => "`outputs`",
            Protocol::KserveV1 => "`predictions`",
            Protocol::SeldonV1 => "`data`, `jsonData`, `strData` or `binData`",
            Protocol::Openai => "`choices`",
        };
        Err(format!(
            "the answer has no {expected}: the endpoint may speak another protocol than {} (set test.protocol)",
            protocol.name()
        ))
    }
}

/// What a failed response most likely means, for the runtime's usual failures.
pub fn explain(
    protocol: Protocol,
    runtime: Runtime,
    path: &str,
    status: u16,
    body: &str,
) -> String {
    let body = body.trim();
    let proxy_no_endpoints = body.contains("no endpoints available");
    match status {
        503 if proxy_no_endpoints => {
            "the Service has no ready pods (the model is still starting or crashing: see `mldeploy status` and the pods' logs)".into()
        }
        404 if path.contains("/proxy") && body.contains("services") => {
            "the Service does not exist: is the model applied to this environment (`mldeploy status`)?".into()
        }
        404 => {
            let model_path = path.contains("/models/");
            match (protocol, model_path) {
                (Protocol::OipV2 | Protocol::KserveV1, true) => format!(
                    "404 on {path}: the server does not know this model — not loaded (yet), or loaded under another name ({} names it after the {}) — or it does not speak {} (set test.protocol)",
                    runtime.name(),
                    crate::runtime::spec(runtime).serving.kind.kind,
                    protocol.name()
                ),
                _ => format!(
                    "404 on {path}: the endpoint does not speak {} (set test.protocol, or --url with the right base path)",
                    protocol.name()
                ),
            }
        }
        400 | 422 => format!(
            "HTTP {status}: the model refused the request body ({}); set test.payload to a request it accepts",
            truncate(body, 200)
        ),
        500..=599 if body.contains("not ready") || body.contains("not loaded") || body.contains("unavailable") => format!(
            "HTTP {status}: the model is not loaded or not ready ({})",
            truncate(body, 200)
        ),
        _ => format!("HTTP {status}: {}", truncate(body, 200)),
    }
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Incremental parser of a server-sent event stream of chat completion chunks: counts the
/// chunks that carry text (one token each, as vLLM and TGI send them).
#[derive(Debug, Default)]
pub struct SseTokens {
    buffer: Vec<u8>,
    /// Whether `data: [DONE]` was seen.
    pub done: bool,
}

impl SseTokens {
    /// Feeds bytes; returns how many token-bearing events they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        self.buffer.extend_from_slice(bytes);
        let mut tokens = 0;
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                self.done = true;
                continue;
            }
            if let Ok(v) = serde_json::from_str::<Value>(data) {
                let choice = &v["choices"][0];
                let text = choice["delta"]["content"]
                    .as_str()
                    .or_else(|| choice["text"].as_str());
                if text.is_some_and(|t| !t.is_empty()) {
                    tokens += 1;
                }
            }
        }
        tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_body_from_metadata() {
        let meta = json!({"name": "iris", "inputs": [
            {"name": "predict", "datatype": "FP32", "shape": [-1, 4]},
            {"name": "flag", "datatype": "BOOL", "shape": [1]},
        ]});
        let body: Value = serde_json::from_slice(&synthesise_v2(&meta).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"inputs": [
                {"name": "predict", "datatype": "FP32", "shape": [1, 4], "data": [0.5, 0.5, 0.5, 0.5]},
                {"name": "flag", "datatype": "BOOL", "shape": [1], "data": [false]},
            ]})
        );
        assert!(synthesise_v2(&json!({"inputs": []})).is_err());
        let odd = json!({"inputs": [{"name": "x", "datatype": "COMPLEX", "shape": [1]}]});
        assert!(synthesise_v2(&odd).unwrap_err().contains("COMPLEX"));
    }

    #[test]
    fn sse_counts_text_chunks_across_reads() {
        let mut p = SseTokens::default();
        let a = b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hel";
        let b = b"lo\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"!\"}}]}\n\ndata: [DONE]\n\n";
        assert_eq!(p.feed(a), 0);
        assert_eq!(p.feed(b), 2);
        assert!(p.done);
    }

    #[test]
    fn answers_are_checked_per_protocol() {
        assert!(check_answer(Protocol::OipV2, br#"{"outputs": []}"#).is_ok());
        assert!(check_answer(Protocol::OipV2, br#"{"predictions": []}"#).is_err());
        assert!(check_answer(Protocol::KserveV1, br#"{"predictions": [1]}"#).is_ok());
        assert!(check_answer(Protocol::SeldonV1, br#"{"data": {"ndarray": [1]}}"#).is_ok());
        assert!(check_answer(Protocol::SeldonV1, b"<html>").is_err());
    }

    #[test]
    fn openai_model_is_the_named_or_the_only_one() {
        let one = json!({"data": [{"id": "llama"}]});
        assert_eq!(openai_model_id(&one, "chat").unwrap(), "llama");
        let two = json!({"data": [{"id": "a"}, {"id": "chat"}]});
        assert_eq!(openai_model_id(&two, "chat").unwrap(), "chat");
        assert!(openai_model_id(&json!({"data": [{"id": "a"}, {"id": "b"}]}), "c").is_err());
    }
}
