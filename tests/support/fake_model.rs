//! A fake model server on 127.0.0.1 that speaks every protocol `mldeploy test` does — OIP v2,
//! KServe v1, Seldon v1, OpenAI (with streaming) — and a Pushgateway's PUT, with behaviours for
//! the failures a test must survive: slow, failing, failing some of the time, never answering.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response, StatusCode};
use serde_json::{Value, json};

/// How inference requests are answered (readiness and metadata always answer).
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// Answer at once.
    Fast,
    /// Answer after a delay.
    Slow(Duration),
    /// Answer every request with this status.
    Fail(u16),
    /// Answer one request in `n` with HTTP 500, the rest normally.
    FailOneIn(u64),
    /// Never answer.
    Hang,
    /// Answer the first `n` inferences at once, then never answer.
    HangAfter(u64),
}

struct State {
    behaviour: Mutex<Behaviour>,
    /// Model names the server knows (others get 404).
    models: Mutex<Vec<String>>,
    inferences: AtomicU64,
    pushes: Mutex<Vec<(String, String)>>,
    seen_headers: Mutex<Vec<(String, String)>>,
}

/// The fake server. Dropping it stops it.
pub struct FakeModel {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The server's TLS setup: the test certificate for 127.0.0.1 and localhost, signed by the
/// test CA in tests/fixtures/tls.
fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = crate::root().join("tests/fixtures/tls");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .expect("server.pem")
        .collect::<Result<_, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// The test CA that signed the HTTPS server's certificate (for `SSL_CERT_FILE`).
pub fn test_ca() -> std::path::PathBuf {
    crate::root().join("tests/fixtures/tls/ca.pem")
}

impl FakeModel {
    /// Starts a server that knows `models`.
    pub fn start(models: &[&str]) -> FakeModel {
        Self::serve(models, None)
    }

    /// Starts an HTTPS server that knows `models`, its certificate signed by [`test_ca`].
    pub fn start_tls(models: &[&str]) -> FakeModel {
        Self::serve(models, Some(tls_acceptor()))
    }

    fn serve(models: &[&str], tls: Option<tokio_rustls::TlsAcceptor>) -> FakeModel {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(State {
            behaviour: Mutex::new(Behaviour::Fast),
            models: Mutex::new(models.iter().map(|m| m.to_string()).collect()),
            inferences: AtomicU64::new(0),
            pushes: Mutex::new(Vec::new()),
            seen_headers: Mutex::new(Vec::new()),
        });
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let st = st.clone();
                            let tls = tls.clone();
                            tokio::spawn(async move {
                                let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                                let http = hyper::server::conn::http1::Builder::new();
                                match tls {
                                    None => {
                                        let _ = http
                                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                            .await;
                                    }
                                    Some(tls) => {
                                        // A client that rejects the certificate ends here.
                                        let Ok(stream) = tls.accept(stream).await else { return };
                                        let _ = http
                                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                            .await;
                                    }
                                }
                            });
                        }
                    }
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        FakeModel {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://127.0.0.1:PORT` (for a server from [`start_tls`](Self::start_tls)).
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes how inferences are answered.
    pub fn set(&self, b: Behaviour) {
        *self.state.behaviour.lock().unwrap() = b;
    }

    /// Inference requests received.
    pub fn inferences(&self) -> u64 {
        self.state.inferences.load(Ordering::SeqCst)
    }

    /// Pushgateway PUTs received: (path, body).
    pub fn pushes(&self) -> Vec<(String, String)> {
        self.state.pushes.lock().unwrap().clone()
    }

    /// `Seldon-Model` headers of inference requests.
    pub fn seldon_models(&self) -> Vec<String> {
        self.state
            .seen_headers
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k == "seldon-model")
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn json_reply(status: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

async fn handle(
    st: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(Body::new(body), 16 << 20)
        .await
        .unwrap_or_default();
    // KServe's Hugging Face runtime serves the OpenAI routes under /openai.
    let path = parts.uri.path();
    let path = path.strip_prefix("/openai").unwrap_or(path).to_string();
    let method = parts.method.as_str().to_string();
    let known = |m: &str| st.models.lock().unwrap().iter().any(|k| k == m);
    if method == "PUT" && path.starts_with("/metrics/job/") {
        st.pushes
            .lock()
            .unwrap()
            .push((path, String::from_utf8_lossy(&bytes).into_owned()));
        return Ok(json_reply(200, &json!({})));
    }
    // Readiness and metadata.
    match (method.as_str(), path.as_str()) {
        ("GET", "/v2/health/ready") => return Ok(json_reply(200, &json!({}))),
        ("GET", "/v1/models") => {
            let data: Vec<Value> = st
                .models
                .lock()
                .unwrap()
                .iter()
                .map(|m| json!({"id": m, "object": "model"}))
                .collect();
            return Ok(json_reply(200, &json!({"object": "list", "data": data})));
        }
        _ => {}
    }
    if method == "GET" {
        if let Some(rest) = path.strip_prefix("/v2/models/") {
            let (model, ready) = match rest.strip_suffix("/ready") {
                Some(m) => (m, true),
                None => (rest, false),
            };
            if !known(model) {
                return Ok(json_reply(
                    404,
                    &json!({"error": format!("Model {model} not found")}),
                ));
            }
            return Ok(json_reply(
                200,
                &if ready {
                    json!({"name": model, "ready": true})
                } else {
                    json!({"name": model, "platform": "mlserver", "inputs": [
                        {"name": "predict", "datatype": "FP32", "shape": [-1, 4]}
                    ], "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}]})
                },
            ));
        }
        if let Some(model) = path.strip_prefix("/v1/models/") {
            if !known(model) {
                return Ok(json_reply(
                    404,
                    &json!({"error": format!("Model with name {model} does not exist.")}),
                ));
            }
            return Ok(json_reply(200, &json!({"name": model, "ready": true})));
        }
        return Ok(json_reply(404, &json!({"error": "not found"})));
    }
    // Inference.
    let request: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let (answer, streaming): (Value, bool) = if let Some(rest) = path.strip_prefix("/v2/models/") {
        let Some(model) = rest.strip_suffix("/infer") else {
            return Ok(json_reply(404, &json!({"error": "not found"})));
        };
        if !known(model) {
            return Ok(json_reply(
                404,
                &json!({"error": format!("Model {model} not found")}),
            ));
        }
        if !request["inputs"].is_array() {
            return Ok(json_reply(422, &json!({"error": "inputs missing"})));
        }
        (
            json!({"model_name": model, "outputs": [{"name": "predict", "datatype": "INT64", "shape": [1], "data": [2]}]}),
            false,
        )
    } else if let Some(rest) = path.strip_prefix("/v1/models/") {
        let Some(model) = rest.strip_suffix(":predict") else {
            return Ok(json_reply(404, &json!({"error": "not found"})));
        };
        if !known(model) {
            return Ok(json_reply(
                404,
                &json!({"error": format!("Model with name {model} does not exist.")}),
            ));
        }
        (json!({"predictions": [2]}), false)
    } else if path == "/api/v1.0/predictions" {
        (
            json!({"data": {"names": ["t:0"], "ndarray": [[2]]}, "meta": {}}),
            false,
        )
    } else if path == "/v1/chat/completions" {
        let stream = request["stream"].as_bool().unwrap_or(false);
        (
            json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}}]}),
            stream,
        )
    } else {
        return Ok(json_reply(404, &json!({"error": "not found"})));
    };
    let n = st.inferences.fetch_add(1, Ordering::SeqCst) + 1;
    for (k, v) in &parts.headers {
        if k.as_str() == "seldon-model" {
            st.seen_headers
                .lock()
                .unwrap()
                .push((k.to_string(), v.to_str().unwrap_or("").to_string()));
        }
    }
    let behaviour = st.behaviour.lock().unwrap().clone();
    match behaviour {
        Behaviour::Fast => {}
        Behaviour::Slow(d) => tokio::time::sleep(d).await,
        Behaviour::Fail(code) => {
            return Ok(json_reply(code, &json!({"error": "model is not loaded"})));
        }
        Behaviour::FailOneIn(k) if n.is_multiple_of(k) => {
            return Ok(json_reply(500, &json!({"error": "inference failed"})));
        }
        Behaviour::FailOneIn(_) => {}
        Behaviour::Hang => std::future::pending::<()>().await,
        Behaviour::HangAfter(k) if n > k => std::future::pending::<()>().await,
        Behaviour::HangAfter(_) => {}
    }
    if streaming {
        let chunks: Vec<Result<String, std::io::Error>> = [
            json!({"choices": [{"delta": {"role": "assistant"}}]}),
            json!({"choices": [{"delta": {"content": "2"}}]}),
            json!({"choices": [{"delta": {"content": " + 2"}}]}),
            json!({"choices": [{"delta": {"content": " = 4"}}]}),
        ]
        .iter()
        .map(|c| Ok(format!("data: {c}\n\n")))
        .chain(std::iter::once(Ok("data: [DONE]\n\n".to_string())))
        .collect();
        let stream = futures::stream::iter(chunks).then(|c| async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            c
        });
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap());
    }
    Ok(json_reply(200, &answer))
}

use futures::StreamExt as _;
