//! Where a model answers and how to reach it: the Service each runtime creates (derived from
//! the names the templates give), reached through the API server's service proxy, at a direct
//! `--url` (http or https), or through a local port-forward; one request with a deadline, for
//! the smoke test and the load generator.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

use super::protocol::{Call, SseTokens};
use crate::config::Protocol;
use crate::model::{Model, Source};

/// The Service in front of a model (or of its canary), as the runtime names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    /// Namespace.
    pub namespace: String,
    /// Service name.
    pub name: String,
    /// Service port.
    pub port: u16,
    /// Headers the runtime routes by (Seldon Core v2's `Seldon-Model`).
    pub headers: Vec<(String, String)>,
    /// The model's name in protocol paths (`/v2/models/{model}/…`).
    pub model: String,
    /// The Service port speaks HTTPS (KServe's LLMInferenceService workload Service).
    pub https: bool,
}

/// The Service of a model or of its canary, as its runtime's row says
/// ([`crate::runtime::Reach`]).
pub fn service_for(namespace: &str, m: &Model, canary: bool) -> Result<ServiceRef, String> {
    if canary && m.canary.is_none() {
        return Err(format!("model `{}` has no canary", m.name));
    }
    let (server, port) = match &m.source {
        Source::Image { port, .. } => (None, Some(*port)),
        Source::Prepackaged { server, .. } => (Some(*server), None),
    };
    let r = crate::runtime::spec(m.runtime)
        .reach
        .resolve(&m.name, server, port, canary);
    let mut svc = ServiceRef {
        namespace: namespace.to_string(),
        name: r.service,
        port: r.port,
        headers: r.headers,
        model: r.model,
        https: false,
    };
    // A language model served by an object of its own (KServe's LLMInferenceService) is
    // reached through that object's Service.
    let object = m
        .llm
        .as_ref()
        .and_then(|l| crate::runtime::llm_object(m.runtime, l.kind).ok());
    if let Some(object) = object.filter(|o| o.service.is_some()) {
        svc.name = object
            .service
            .unwrap_or_default()
            .replace("{name}", &m.name);
        svc.port = object.service_port;
        svc.https = object.https;
    }
    Ok(svc)
}

/// The API server's service-proxy path of `svc`. `https:` makes the API server speak TLS to
/// the Service (without verifying its certificate: it reaches the pod on the cluster network).
fn proxy_base(svc: &ServiceRef, prefix: &str) -> String {
    let scheme = if svc.https { "https:" } else { "" };
    format!(
        "/api/v1/namespaces/{}/services/{scheme}{}:{}/proxy{prefix}",
        svc.namespace, svc.name, svc.port
    )
}

/// Why one request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The group it counts under in the error breakdown (`HTTP 503`, `timeout`, `connect`).
    pub kind: String,
    /// What happened.
    pub detail: String,
    /// HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// The start of the answer's body, when there was one.
    pub body: String,
}

impl Failure {
    fn new(kind: &str, detail: impl Into<String>) -> Failure {
        Failure {
            kind: kind.to_string(),
            detail: detail.into(),
            status: None,
            body: String::new(),
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body (empty in load tests, which do not keep it).
    pub body: Bytes,
    /// From the (intended) send time to the last byte.
    pub latency: Duration,
    /// Time to the first token (streaming).
    pub ttft: Option<Duration>,
    /// Gaps between tokens (streaming).
    pub gaps: Vec<Duration>,
    /// Tokens received (streaming).
    pub tokens: u64,
}

/// TLS for a direct `https://` endpoint: the rustls stack kube uses, with the platform's
/// roots as kube trusts them, or (opt-in) no verification at all.
#[derive(Clone)]
pub struct Tls {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    verified: bool,
}

impl Tls {
    /// TLS to `host`, verifying its certificate against the platform's roots unless
    /// `skip_verify`.
    pub fn new(host: &str, skip_verify: bool) -> Result<Tls, String> {
        use rustls_platform_verifier::BuilderVerifierExt as _;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|_| format!("`{host}` is not a host name TLS can verify"))?;
        let builder = rustls::ClientConfig::builder();
        let mut config = if skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification))
                .with_no_client_auth()
        } else {
            builder
                .with_platform_verifier()
                .map_err(|e| format!("cannot load the system's trusted certificates: {e}"))?
                .with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
            verified: !skip_verify,
        })
    }
}

/// `--insecure-skip-tls-verify`: accepts any certificate (the handshake still encrypts).
#[derive(Debug)]
struct NoVerification;

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// How requests reach the endpoint.
#[derive(Clone)]
enum Via {
    /// An HTTP/1.1 connection (TLS when `tls`) to `addr`; paths go below `base` (the URL's
    /// path).
    Direct {
        addr: String,
        authority: String,
        base: String,
        tls: Option<Tls>,
    },
    /// The API server's service proxy.
    Proxy { client: kube::Client, base: String },
}

/// A model endpoint: where, which headers, and the name used in protocol paths.
#[derive(Clone)]
pub struct Endpoint {
    via: Via,
    /// The port-forward the direct address leads through; it ends with the last clone of
    /// the endpoint.
    forward: Option<Arc<super::forward::Forward>>,
    headers: HeaderMap,
    /// Model name in protocol paths.
    pub model: String,
    /// Where, for people: a URL, or `service ns/name:port (API server proxy)`.
    pub label: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("bad header `{k}`"))?;
        let value = HeaderValue::from_str(v).map_err(|_| format!("bad value of header `{k}`"))?;
        map.insert(name, value);
    }
    Ok(map)
}

impl Endpoint {
    /// A direct endpoint: `http://host:port/base` or `https://…` (certificates verified
    /// against the system's roots unless `skip_verify`). `prefix` is the runtime's path prefix.
    pub fn direct(
        url: &str,
        prefix: &str,
        model: &str,
        headers: &[(String, String)],
        skip_verify: bool,
    ) -> Result<Endpoint, String> {
        let uri: Uri = url
            .parse()
            .map_err(|_| format!("`{url}` is not a URL (http://host:port/path)"))?;
        let (https, default_port) = match uri.scheme_str() {
            Some("http") => (false, 80),
            Some("https") => (true, 443),
            _ => return Err(format!("`{url}` is not an http:// or https:// URL")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        let addr = format!(
            "{}:{}",
            authority.host(),
            uri.port_u16().unwrap_or(default_port)
        );
        let tls = https
            .then(|| Tls::new(authority.host(), skip_verify))
            .transpose()?;
        let authority = authority.to_string();
        let base = format!("{}{prefix}", uri.path().trim_end_matches('/'));
        Ok(Endpoint {
            via: Via::Direct {
                addr,
                authority,
                base,
                tls,
            },
            forward: None,
            headers: header_map(headers)?,
            model: model.to_string(),
            label: url.to_string(),
        })
    }

    /// An endpoint behind the API server's service proxy.
    pub fn proxy(client: kube::Client, svc: &ServiceRef, prefix: &str) -> Result<Endpoint, String> {
        let base = proxy_base(svc, prefix);
        Ok(Endpoint {
            via: Via::Proxy { client, base },
            forward: None,
            headers: header_map(&svc.headers)?,
            model: svc.model.clone(),
            label: format!(
                "service {}/{}:{} (through the API server)",
                svc.namespace, svc.name, svc.port
            ),
        })
    }

    /// An endpoint through a port-forward to one pod behind `svc` (see [`super::forward`]).
    pub fn forwarded(
        forward: super::forward::Forward,
        svc: &ServiceRef,
        prefix: &str,
    ) -> Result<Endpoint, String> {
        let addr = forward.addr.to_string();
        let label = format!(
            "pod {}/{}:{} (port-forward of service {}:{})",
            svc.namespace, forward.target.pod, forward.target.port, svc.name, svc.port
        );
        // An HTTPS Service's certificate is signed by the operator's own CA (KServe's), which
        // no trust store holds; the tunnel to the pod is already authenticated by the API
        // server, so TLS inside it encrypts without verifying.
        let tls = svc
            .https
            .then(|| Tls::new(&format!("{}.{}.svc", svc.name, svc.namespace), true))
            .transpose()?;
        Ok(Endpoint {
            via: Via::Direct {
                authority: addr.clone(),
                addr,
                base: prefix.to_string(),
                tls,
            },
            forward: Some(Arc::new(forward)),
            headers: header_map(&svc.headers)?,
            model: svc.model.clone(),
            label,
        })
    }

    /// What the port-forward behind this endpoint last reported, if it failed.
    pub fn forward_error(&self) -> Option<String> {
        self.forward.as_ref().and_then(|f| f.last_error())
    }

    /// The full path of `call` as sent (for messages).
    pub fn path_of(&self, call: &Call) -> String {
        match &self.via {
            Via::Direct { base, .. } | Via::Proxy { base, .. } => format!("{base}{}", call.path),
        }
    }

    /// A connection for a load-test worker (direct: one keep-alive HTTP/1.1 connection,
    /// opened on first use and reopened after a failure).
    pub fn connection(&self) -> Connection {
        Connection {
            endpoint: self.clone(),
            conn: None,
        }
    }

    /// Sends one request on a fresh connection and keeps the body (the smoke test).
    pub async fn call(&self, call: &Call, timeout: Duration) -> Result<Answer, Failure> {
        let mut conn = self.connection();
        let request = self.request(call)?;
        conn.send(&request, Instant::now(), timeout, true).await
    }

    /// A prepared request, to be sent many times.
    pub fn request(&self, call: &Call) -> Result<Prepared, Failure> {
        let path = self.path_of(call);
        let uri: Uri = path
            .parse()
            .map_err(|_| Failure::new("request", format!("`{path}` is not a valid path")))?;
        let mut headers = self.headers.clone();
        if let Via::Direct { authority, .. } = &self.via {
            let host = HeaderValue::from_str(authority)
                .map_err(|_| Failure::new("request", "bad host"))?;
            headers.insert(HOST, host);
        }
        if call.body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        Ok(Prepared {
            method: call.method.clone(),
            uri,
            headers,
            body: Bytes::from(call.body.clone().unwrap_or_default()),
            streaming: call.streaming,
        })
    }
}

/// A request built once and sent many times.
#[derive(Debug, Clone)]
pub struct Prepared {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    /// Whether the answer is a token stream.
    pub streaming: bool,
}

impl Prepared {
    fn build<B>(&self, body: B) -> Request<B> {
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// One worker's way to the endpoint.
pub struct Connection {
    endpoint: Endpoint,
    conn: Option<(http1::SendRequest<Full<Bytes>>, tokio::task::JoinHandle<()>)>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some((_, task)) = self.conn.take() {
            task.abort();
        }
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Connection {
    async fn open(
        addr: &str,
        tls: Option<&Tls>,
    ) -> Result<(http1::SendRequest<Full<Bytes>>, tokio::task::JoinHandle<()>), Failure> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| Failure::new("connect", format!("connecting to {addr} timed out")))?
            .map_err(|e| {
                let kind = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    "connection refused"
                } else {
                    "connect"
                };
                Failure::new(kind, format!("cannot connect to {addr}: {e}"))
            })?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = tls else {
            return Self::handshake(addr, stream).await;
        };
        let stream = tls
            .connector
            .connect(tls.server_name.clone(), stream)
            .await
            .map_err(|e| tls_failure(addr, tls, &e))?;
        Self::handshake(addr, stream).await
    }

    async fn handshake<S>(
        addr: &str,
        stream: S,
    ) -> Result<(http1::SendRequest<Full<Bytes>>, tokio::task::JoinHandle<()>), Failure>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::new("connect", format!("HTTP handshake with {addr}: {e}")))?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((sender, task))
    }

    /// Sends `req`; the latency counts from `start` (the intended send time in an open loop).
    /// The whole exchange, connecting included, has `timeout`; after any failure the connection
    /// is dropped so the next request starts clean.
    pub async fn send(
        &mut self,
        req: &Prepared,
        start: Instant,
        timeout: Duration,
        keep_body: bool,
    ) -> Result<Answer, Failure> {
        let result = tokio::time::timeout(timeout, self.exchange(req, start, keep_body)).await;
        match result {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(f)) => {
                self.reset();
                Err(f)
            }
            Err(_) => {
                self.reset();
                Err(Failure::new(
                    "timeout",
                    format!("no complete answer within {}s", timeout.as_secs_f64()),
                ))
            }
        }
    }

    fn reset(&mut self) {
        if let Some((_, task)) = self.conn.take() {
            task.abort();
        }
    }

    async fn exchange(
        &mut self,
        req: &Prepared,
        start: Instant,
        keep_body: bool,
    ) -> Result<Answer, Failure> {
        match &self.endpoint.via {
            Via::Direct { addr, tls, .. } => {
                if self.conn.as_ref().is_none_or(|(s, _)| s.is_closed()) {
                    let (addr, tls) = (addr.clone(), tls.clone());
                    self.reset();
                    self.conn = Some(Self::open(&addr, tls.as_ref()).await?);
                }
                let Some((sender, _)) = self.conn.as_mut() else {
                    return Err(Failure::new("connect", "no connection"));
                };
                sender
                    .ready()
                    .await
                    .map_err(|e| Failure::new("connection closed", e.to_string()))?;
                let resp = sender
                    .send_request(req.build(Full::new(req.body.clone())))
                    .await
                    .map_err(|e| Failure::new(transport_kind(&e.to_string()), e.to_string()))?;
                read(resp, req.streaming, start, keep_body).await
            }
            Via::Proxy { client, .. } => {
                let resp = client
                    .send(req.build(kube::client::Body::from(req.body.clone())))
                    .await
                    .map_err(|e| Failure::new("API server", e.to_string()))?;
                read(resp, req.streaming, start, keep_body).await
            }
        }
    }
}

/// A failed TLS handshake, with what to do about an untrusted certificate.
fn tls_failure(addr: &str, tls: &Tls, e: &std::io::Error) -> Failure {
    let message = e.to_string();
    let certificate = message.contains("certificate") || message.contains("UnknownIssuer");
    let detail = if certificate && tls.verified {
        format!(
            "TLS handshake with {addr}: {message}; the server's certificate is not trusted by this system: add its CA to the system's store (or point SSL_CERT_FILE at it), or pass --insecure-skip-tls-verify to test without verifying"
        )
    } else {
        format!("TLS handshake with {addr}: {message}")
    };
    Failure::new("tls", detail)
}

fn transport_kind(message: &str) -> &'static str {
    if message.contains("reset") {
        "connection reset"
    } else if message.contains("closed") || message.contains("incomplete") {
        "connection closed"
    } else {
        "transport"
    }
}

/// Reads an answer to the end. Non-2xx answers are failures that keep the start of the body
/// (for the message); streaming answers are timed per token.
async fn read<B>(
    resp: http::Response<B>,
    streaming: bool,
    start: Instant,
    keep_body: bool,
) -> Result<Answer, Failure>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let status = resp.status().as_u16();
    let ok = resp.status().is_success();
    let mut body = pin!(resp.into_body());
    let mut kept = Vec::new();
    let mut sse = (streaming && ok).then(SseTokens::default);
    let mut answer = Answer {
        status,
        ..Answer::default()
    };
    let mut last: Option<Instant> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Failure::new(
                transport_kind(&e.to_string()),
                format!("reading the answer: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if (keep_body || !ok) && kept.len() < 1 << 20 {
            kept.extend_from_slice(&data);
        }
        if let Some(p) = sse.as_mut() {
            let n = p.feed(&data);
            if n > 0 {
                let now = Instant::now();
                match last {
                    None => answer.ttft = Some(now - start),
                    Some(prev) => answer.gaps.push(now - prev),
                }
                last = Some(now);
                answer.tokens += n as u64;
            }
        }
    }
    answer.latency = start.elapsed();
    if !ok {
        return Err(Failure {
            kind: format!("HTTP {status}"),
            detail: format!("HTTP {status}"),
            status: Some(status),
            body: String::from_utf8_lossy(&kept[..kept.len().min(4096)]).into_owned(),
        });
    }
    if let Some(p) = &sse
        && answer.tokens == 0
    {
        let why = if p.done {
            "it sent no text"
        } else {
            "the stream had no events"
        };
        return Err(Failure::new(
            "no tokens",
            format!("streaming answer without tokens: {why}"),
        ));
    }
    answer.body = Bytes::from(kept);
    Ok(answer)
}

/// The protocol a `--url` is probably speaking, for a hint when a request failed.
pub fn protocol_hint(p: Protocol) -> &'static str {
    match p {
        Protocol::OipV2 => "the URL should be the server's base (its /v2/… paths are added)",
        Protocol::KserveV1 => {
            "the URL should be the server's base (its /v1/models/… paths are added)"
        }
        Protocol::SeldonV1 => "the URL should be the base of /api/v1.0/predictions",
        Protocol::Openai => "the URL should be the base of /v1/chat/completions (KServe: …/openai)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Runtime;
    use crate::model::Canary;

    fn model(runtime: Runtime, canary: bool) -> Model {
        let source = Source::Image {
            image: "img:1".into(),
            port: 9000,
        };
        Model {
            name: "ocr".into(),
            runtime,
            source: source.clone(),
            replicas: 1,
            cpu: "1".into(),
            memory: "1Gi".into(),
            gpu: None,
            env: Default::default(),
            secret_env: Vec::new(),
            autoscale: None,
            canary: canary.then_some(Canary {
                source,
                traffic: 10,
            }),
            slo: Default::default(),
            test: Default::default(),
            llm: None,
            identity: None,
        }
    }

    #[test]
    fn services_follow_the_runtime_names() {
        let s = |r, c| service_for("ns", &model(r, c), c).unwrap();
        assert_eq!(
            (
                s(Runtime::Deployment, false).name,
                s(Runtime::Deployment, false).port
            ),
            ("ocr".into(), 9000)
        );
        assert_eq!(s(Runtime::Seldon, false).name, "ocr-default");
        assert_eq!(s(Runtime::Seldon, true).name, "ocr-canary");
        assert_eq!(s(Runtime::Kserve, false).name, "ocr-predictor");
        let v2 = s(Runtime::SeldonV2, true);
        assert_eq!(v2.name, "seldon-mesh");
        assert_eq!(
            v2.headers,
            vec![("Seldon-Model".into(), "ocr-canary".into())]
        );
        assert_eq!(v2.model, "ocr-canary");
        assert!(service_for("ns", &model(Runtime::Seldon, false), true).is_err());
    }

    #[test]
    fn an_llm_inference_service_is_reached_on_its_workload_service_over_https() {
        let mut m = model(Runtime::Kserve, false);
        m.llm = Some(crate::model::llm::Llm {
            kind: Some(crate::config::LlmKind::Llmisvc),
            scheme: "hf",
            model_id: Some("Qwen/Qwen2.5-0.5B-Instruct".into()),
            revision: None,
            pvc: None,
            params_billions: None,
            max_model_len: None,
            dtype: None,
            quantization: None,
            gpu_memory_utilization: None,
            tensor_parallel: 1,
            extra_args: Vec::new(),
            image: String::new(),
            hf_token: None,
            cache: None,
        });
        let svc = service_for("ns", &m, false).unwrap();
        assert_eq!(
            (svc.name.as_str(), svc.port, svc.https),
            ("ocr-kserve-workload-svc", 8000, true)
        );
        assert_eq!(
            proxy_base(&svc, ""),
            "/api/v1/namespaces/ns/services/https:ocr-kserve-workload-svc:8000/proxy"
        );
        // The InferenceService path of the same model keeps the predictor Service.
        m.llm.as_mut().unwrap().kind = Some(crate::config::LlmKind::Inferenceservice);
        let isvc = service_for("ns", &m, false).unwrap();
        assert_eq!(
            (isvc.name.as_str(), isvc.port, isvc.https),
            ("ocr-predictor", 80, false)
        );
        assert_eq!(
            proxy_base(&isvc, "/openai"),
            "/api/v1/namespaces/ns/services/ocr-predictor:80/proxy/openai"
        );
    }

    /// The Services here and the endpoints `status` shows (the runtime rows) must agree.
    #[test]
    fn services_agree_with_the_runtime_rows() {
        for runtime in Runtime::ALL {
            let crate::runtime::Endpoint::Url(url) = crate::runtime::spec(runtime).endpoint else {
                continue;
            };
            let url = url
                .replace("{name}", "ocr")
                .replace("{namespace}", "ns")
                .replace("{port}", "9000");
            let svc = service_for("ns", &model(runtime, false), false).unwrap();
            let host = if svc.port == 80 {
                format!("http://{}.ns.svc/", svc.name)
            } else {
                format!("http://{}.ns.svc:{}", svc.name, svc.port)
            };
            assert!(url.starts_with(&host), "{runtime:?}: {url} vs {host}");
        }
    }

    #[test]
    fn direct_urls_are_http_or_https_with_a_base_path() {
        let e = Endpoint::direct("http://127.0.0.1:8080/openai/", "", "m", &[], false).unwrap();
        let call = crate::verify::protocol::infer(Protocol::Openai, "m", b"{}".to_vec());
        assert_eq!(e.path_of(&call), "/openai/v1/chat/completions");
        let Via::Direct { addr, tls, .. } =
            Endpoint::direct("https://models.example.com/x", "", "m", &[], true)
                .unwrap()
                .via
        else {
            panic!("direct")
        };
        assert_eq!(addr, "models.example.com:443");
        assert!(tls.is_some_and(|t| !t.verified));
        let Via::Direct { addr, tls, .. } = Endpoint::direct("http://[::1]", "", "m", &[], false)
            .unwrap()
            .via
        else {
            panic!("direct")
        };
        assert_eq!((addr.as_str(), tls.is_none()), ("[::1]:80", true));
        assert!(
            Endpoint::direct("ftp://x", "", "m", &[], false)
                .unwrap_err()
                .contains("https://")
        );
        assert!(Endpoint::direct("nonsense", "", "m", &[], false).is_err());
    }
}
