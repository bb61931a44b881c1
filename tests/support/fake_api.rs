//! An in-process fake Kubernetes API server for tests.
//!
//! [`FakeApi::start`] serves plain HTTP on `127.0.0.1:<random port>` from a tokio runtime on its own
//! thread, so it works from sync `#[test]`s (which run the `mldeploy` binary) and from
//! `#[tokio::test]`s alike; it stops when dropped. It is for whole-binary tests only (the cluster
//! logic is unit-tested below HTTP on src/cluster/memory.rs), so it speaks what the binary
//! sends: discovery, GET / LIST (label and field selectors) / DELETE, server-side apply with
//! field managers, conflicts, `force` and `dryRun=All`, the service proxy and port-forward.
//! Every request is recorded; faults (a status, optionally with Retry-After) can be injected.
//!
//! Simplifications: lists are atomic for field ownership, there are no watches, merge patches,
//! POST/PUT or status subresources, Namespace deletion is immediate, and only a handful of
//! API-server defaults are applied (Deployment, Service, Secret, Namespace).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::Body;
use http::{Method, Request, Response, header};
use serde_json::{Map, Value, json};

/// The bearer token the fake accepts (written into the kubeconfig).
pub const TOKEN: &str = "fake-token";
/// The fixed timestamp used for creationTimestamp and managedFields times.
pub const TIMESTAMP: &str = "2024-01-01T00:00:00Z";
const ALL_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Metadata fields the server owns: never part of a manager's field set.
const SERVER_META: [&str; 10] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

// ------------------------------------------------------------------------------------------------
// Public types
// ------------------------------------------------------------------------------------------------

/// One request as the fake received it, in arrival order.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// HTTP method.
    pub method: Method,
    /// URL path, without the query.
    pub path: String,
    /// Decoded query parameters.
    pub query: BTreeMap<String, String>,
    /// `dryRun=All` was set.
    pub dry_run: bool,
    /// Response status; 0 while in flight.
    pub status: u16,
    /// The parsed request body (JSON or YAML), if any.
    pub body: Option<Value>,
}

impl Recorded {
    /// A non-dry-run PATCH or DELETE (whatever its outcome).
    pub fn is_write(&self) -> bool {
        !self.dry_run && matches!(self.method, Method::PATCH | Method::DELETE)
    }
}

/// An injected failure: the next `times` requests that match get `status` with a `Status` body.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Only requests with this method (any when `None`).
    pub method: Option<Method>,
    /// Only requests whose path contains this (any when `None`).
    pub path_contains: Option<String>,
    /// Only dry-run (`Some(true)`) or only real (`Some(false)`) requests.
    pub dry_run: Option<bool>,
    /// The HTTP status to answer with.
    pub status: u16,
    /// How many matching requests fail.
    pub times: usize,
    /// Sends `Retry-After: N` (and `details.retryAfterSeconds`).
    pub retry_after_secs: Option<u64>,
}

impl Fault {
    /// Fail the next matching request (any request until narrowed) with `status`.
    pub fn new(status: u16) -> Self {
        Fault {
            method: None,
            path_contains: None,
            dry_run: None,
            status,
            times: 1,
            retry_after_secs: None,
        }
    }
    /// Only this method.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }
    /// Only paths containing `part`.
    pub fn path(mut self, part: &str) -> Self {
        self.path_contains = Some(part.to_string());
        self
    }
    /// Only dry-run or only non-dry-run requests.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = Some(dry_run);
        self
    }
    /// Fail `times` matching requests.
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }
    /// Add a `Retry-After` header.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    fn matches(&self, method: &Method, path: &str, dry_run: bool) -> bool {
        self.times > 0
            && self.method.as_ref().is_none_or(|m| m == method)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
            && self.dry_run.is_none_or(|d| d == dry_run)
    }
}

/// The fake API server. Dropping it stops the server.
pub struct FakeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeApi {
    /// Bind 127.0.0.1:0 and serve from a background thread. Built-in kinds are registered and the
    /// namespaces `default`, `kube-system`, `kube-public` and `kube-node-lease` exist.
    pub fn start() -> FakeApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            proxies: Mutex::new(BTreeMap::new()),
            forwards: Mutex::new(BTreeMap::new()),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let server = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fake-api".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("fake-api-worker")
                    .enable_all()
                    .build()
                    .expect("fake-api runtime");
                rt.block_on(serve(listener, server, rx));
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .expect("spawn fake-api thread");
        FakeApi {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Write `dir/kubeconfig`: cluster `fake` at [`url`](Self::url), user `fake` (token
    /// [`TOKEN`]), contexts `fake` (current, namespace `default`) and `other` (same server, no
    /// namespace). Returns the path.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
users:
- name: fake
  user:
    token: {TOKEN}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: default
- name: other
  context:
    cluster: fake
    user: fake
current-context: fake
",
            url = self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    // --- service proxy --------------------------------------------------------------------------

    /// Serve `/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/…` by forwarding to
    /// `backend`; `None` answers 503 as a Service without ready endpoints does.
    pub fn proxy_service(&self, ns: &str, name: &str, port: u16, backend: Option<SocketAddr>) {
        self.shared
            .proxies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(format!("{ns}/{name}:{port}"), backend);
    }

    // --- port-forward ---------------------------------------------------------------------------

    /// Serve `/api/v1/namespaces/{ns}/pods/{pod}/portforward?ports={port}` (the WebSocket
    /// protocol `v4.channel.k8s.io`, as kubectl and kube-rs speak it) by connecting each stream
    /// to `backend`. A port without a backend gets an error on its error channel, as the
    /// kubelet sends when nothing listens.
    pub fn forward_pod(&self, ns: &str, pod: &str, port: u16, backend: SocketAddr) {
        self.shared
            .forwards
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(format!("{ns}/{pod}:{port}"), backend);
    }

    /// A Service `name` (port `port`, named `http`, to the pods' port `http`) with an
    /// EndpointSlice listing `pods` (name, ready) on `target_port`, each ready pod forwarded
    /// to `backend`: what a port-forward to a Service needs to find.
    pub fn service_with_pods(
        &self,
        ns: &str,
        name: &str,
        port: u16,
        target_port: u16,
        pods: &[(&str, bool)],
        backend: SocketAddr,
    ) {
        self.put(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"ports": [{"name": "http", "port": port, "targetPort": "http"}],
                     "selector": {"app": name}},
        }));
        let endpoints: Vec<Value> = pods
            .iter()
            .map(|(pod, ready)| {
                json!({"addresses": ["10.0.0.1"], "conditions": {"ready": ready},
                       "targetRef": {"kind": "Pod", "name": pod, "namespace": ns}})
            })
            .collect();
        self.put(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-abcde"), "namespace": ns,
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": target_port, "protocol": "TCP"}],
            "endpoints": endpoints,
        }));
        for (pod, ready) in pods {
            if *ready {
                self.forward_pod(ns, pod, target_port, backend);
            }
        }
    }

    // --- requests -------------------------------------------------------------------------------

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Forget the recorded requests (in-flight ones are still completed, unrecorded).
    pub fn clear_requests(&self) {
        let mut st = self.shared.lock();
        st.requests_cleared += st.requests.len();
        st.requests.clear();
    }

    /// Write requests: non-dry-run PATCH/DELETE, whatever their outcome. A no-op apply must
    /// produce none.
    pub fn writes(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(Recorded::is_write)
            .collect()
    }

    // --- objects --------------------------------------------------------------------------------

    /// A stored object, as a GET at `api_version` would return it.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let st = self.shared.lock();
        let k = st.kind_for(api_version, kind)?;
        let key = obj_key(&k, namespace, name);
        st.objects.get(&key).map(|s| view(&k, &s.obj))
    }

    /// Seed a live object directly: no request is recorded, the namespace need not exist and
    /// `status` is kept as given (server defaults and the [`auto_ready`](Self::auto_ready)
    /// controllers still apply). Its `metadata.managedFields`, when present, define the field
    /// owners; otherwise nobody owns anything. Panics if the kind is not registered.
    pub fn put(&self, obj: Value) {
        self.shared.lock().seed(obj, None);
    }

    /// Seed a live object whose every field is owned by `manager` (operation Apply), as if
    /// `kubectl apply --server-side --field-manager=MANAGER` had created it.
    pub fn put_owned(&self, obj: Value, manager: &str) {
        self.shared.lock().seed(obj, Some(manager));
    }

    /// When on, the fake plays the controllers: every stored Deployment gets a ready status
    /// (`observedGeneration` = generation, replicas/updated/ready/available = `spec.replicas`),
    /// SeldonDeployments `status.state: Available`, Seldon Models/Experiments and KServe
    /// InferenceServices a `Ready` `True` condition. Turning it on also updates existing objects.
    pub fn auto_ready(&self, on: bool) {
        let mut st = self.shared.lock();
        st.auto_ready = on;
        if on {
            let keys: Vec<ObjKey> = st.objects.keys().cloned().collect();
            for key in keys {
                st.reconcile(&key);
            }
        }
    }

    /// Record a core/v1 Event about an object (`type_` is `Normal` or `Warning`). Later events
    /// get later timestamps.
    pub fn add_event(
        &self,
        namespace: &str,
        involved_kind: &str,
        involved_name: &str,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        let mut st = self.shared.lock();
        st.event_seq += 1;
        let seq = st.event_seq;
        let time = timestamp_plus(seq);
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": format!("{involved_name}.{seq:016x}"), "namespace": namespace},
            "involvedObject": {"kind": involved_kind, "name": involved_name, "namespace": namespace},
            "type": type_,
            "reason": reason,
            "message": message,
            "count": 1,
            "firstTimestamp": time,
            "lastTimestamp": time,
            "source": {"component": "fake-api"},
            "reportingComponent": "fake-api",
        });
        st.seed(event, None);
    }

    /// Register SeldonDeployment, Seldon v2 Model, Experiment and Server, KServe InferenceService and
    /// Prometheus-operator ServiceMonitor.
    pub fn register_ml_crds(&self) {
        let mut st = self.shared.lock();
        for (group, version, kind, plural) in [
            (
                "machinelearning.seldon.io",
                "v1",
                "SeldonDeployment",
                "seldondeployments",
            ),
            ("mlops.seldon.io", "v1alpha1", "Model", "models"),
            ("mlops.seldon.io", "v1alpha1", "Experiment", "experiments"),
            ("mlops.seldon.io", "v1alpha1", "Server", "servers"),
            (
                "serving.kserve.io",
                "v1beta1",
                "InferenceService",
                "inferenceservices",
            ),
            (
                "monitoring.coreos.com",
                "v1",
                "ServiceMonitor",
                "servicemonitors",
            ),
        ] {
            st.kinds.push(KindInfo {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
                plural: plural.into(),
                singular: kind.to_lowercase(),
                namespaced: true,
                status: true,
                custom: true,
            });
        }
    }

    // --- faults ---------------------------------------------------------------------------------

    /// Queue a fault. Faults are checked in the order given; each matching request consumes one
    /// of the first matching fault's `times`.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// How many injected failures have not fired yet.
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().faults.iter().map(|f| f.times).sum()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Server plumbing
// ------------------------------------------------------------------------------------------------

struct Shared {
    state: Mutex<State>,
    /// Service proxy backends by `ns/name:port`; `None` is a Service without ready endpoints.
    proxies: Mutex<BTreeMap<String, Option<SocketAddr>>>,
    /// Port-forward backends by `ns/pod:port`.
    forwards: Mutex<BTreeMap<String, SocketAddr>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    if let Some(key) = portforward_target(&req) {
        return Ok(portforward(&shared, key, req));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(Body::new(body), 64 << 20)
        .await
        .unwrap_or_default();
    let hdr = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = hdr(header::CONTENT_TYPE);
    let authorization = hdr(header::AUTHORIZATION).unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query().unwrap_or(""));
    let parsed = parse_body(&bytes);
    // DeleteOptions carry dryRun in the body.
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All")
        || matches!(&parsed, Ok(Some(b)) if b["dryRun"].as_array().is_some_and(|d| d.contains(&json!("All"))));

    let index = {
        let mut st = shared.lock();
        st.requests.push(Recorded {
            method: parts.method.clone(),
            path: path.clone(),
            query: query.clone(),
            dry_run,
            status: 0,
            body: parsed.as_ref().ok().cloned().flatten(),
        });
        st.requests_cleared + st.requests.len() - 1
    };
    if let Some((key, rest)) = proxy_target(&path) {
        if authorization != format!("Bearer {TOKEN}") {
            return Ok(Reply::error(401, "Unauthorized", "Unauthorized", None).into_response());
        }
        let backend = shared
            .proxies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .copied();
        let rest = match parts.uri.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest,
        };
        return Ok(proxy(&key, backend, parts, rest, bytes).await);
    }

    let mut st = shared.lock();
    let fault = st
        .faults
        .iter_mut()
        .find(|f| f.matches(&parts.method, &path, dry_run))
        .map(|f| {
            f.times -= 1;
            f.clone()
        });
    st.faults.retain(|f| f.times > 0);
    let reply = if let Some(fault) = fault {
        fault_reply(&fault)
    } else if authorization != format!("Bearer {TOKEN}") {
        Reply::error(401, "Unauthorized", "Unauthorized", None)
    } else {
        let call = Call {
            method: &parts.method,
            path: &path,
            query: &query,
            content_type: content_type.as_deref().unwrap_or(""),
            body: parsed,
            dry_run,
        };
        st.route(&call)
    };
    let cleared = st.requests_cleared;
    if let Some(r) = index
        .checked_sub(cleared)
        .and_then(|i| st.requests.get_mut(i))
    {
        r.status = reply.status;
    }
    drop(st);
    Ok(reply.into_response())
}

/// `ns/pod:port` of a port-forward WebSocket request.
fn portforward_target<B>(req: &Request<B>) -> Option<String> {
    let rest = req.uri().path().strip_prefix("/api/v1/namespaces/")?;
    let (ns, rest) = rest.split_once("/pods/")?;
    let pod = rest.strip_suffix("/portforward")?;
    req.headers().get(header::UPGRADE)?;
    let query = parse_query(req.uri().query().unwrap_or(""));
    Some(format!("{ns}/{pod}:{}", query.get("ports")?))
}

/// Answers a port-forward upgrade, records it, and serves the stream: channel 0 carries the
/// data of the one port, channel 1 its errors; each starts with the port number (u16 LE).
fn portforward(
    shared: &Arc<Shared>,
    key: String,
    mut req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    use futures::{SinkExt as _, StreamExt as _};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_tungstenite::tungstenite::Message;

    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
    shared.lock().requests.push(Recorded {
        method: req.method().clone(),
        path: req.uri().path().to_string(),
        query: parse_query(req.uri().query().unwrap_or("")),
        dry_run: false,
        status: if authorized { 101 } else { 401 },
        body: None,
    });
    if !authorized {
        return Reply::error(401, "Unauthorized", "Unauthorized", None).into_response();
    }
    let Some(accept) = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| tokio_tungstenite::tungstenite::handshake::derive_accept_key(k.as_bytes()))
    else {
        return Reply::bad_request("not a WebSocket upgrade").into_response();
    };
    let port: u16 = key
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(0);
    let backend = shared
        .forwards
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .copied();
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        let [lo, hi] = port.to_le_bytes();
        for ch in [0u8, 1] {
            if ws.send(Message::binary(vec![ch, lo, hi])).await.is_err() {
                return;
            }
        }
        let stream = match backend {
            Some(addr) => tokio::net::TcpStream::connect(addr).await.ok(),
            None => None,
        };
        let Some(mut stream) = stream else {
            let why = format!("error forwarding port {port}: connection refused");
            let mut msg = vec![1u8];
            msg.extend_from_slice(why.as_bytes());
            let _ = ws.send(Message::binary(msg)).await;
            let _ = ws.close(None).await;
            return;
        };
        let mut buf = vec![0u8; 64 << 10];
        loop {
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(Message::Binary(data))) if data.len() > 1 && data[0] == 0 => {
                        if stream.write_all(&data[1..]).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                n = stream.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut msg = Vec::with_capacity(n + 1);
                        msg.push(0u8);
                        msg.extend_from_slice(&buf[..n]);
                        if ws.send(Message::binary(msg)).await.is_err() {
                            break;
                        }
                    }
                },
            }
        }
        let _ = ws.close(None).await;
    });
    Response::builder()
        .status(101)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .header(header::SEC_WEBSOCKET_PROTOCOL, "v4.channel.k8s.io")
        .body(Body::empty())
        .expect("upgrade response")
}

/// `(ns/name:port, rest)` of a service proxy path.
fn proxy_target(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (ns, rest) = rest.split_once("/services/")?;
    let (svc, rest) = rest.split_once("/proxy")?;
    let svc = svc.strip_prefix("http:").unwrap_or(svc);
    let rest = if rest.is_empty() { "/" } else { rest };
    Some((format!("{ns}/{svc}"), rest.to_string()))
}

/// Forwards a service proxy request to its backend, streaming the answer back.
async fn proxy(
    key: &str,
    backend: Option<Option<SocketAddr>>,
    parts: http::request::Parts,
    rest: String,
    body: bytes::Bytes,
) -> Response<Body> {
    let name = key.split_once('/').map_or(key, |(_, s)| s);
    let name = name.split(':').next().unwrap_or(name);
    let addr = match backend {
        None => {
            return Reply::error(
                404,
                "NotFound",
                &format!("services \"{name}\" not found"),
                None,
            )
            .into_response();
        }
        Some(None) => {
            return Reply::error(
                503,
                "ServiceUnavailable",
                &format!("no endpoints available for service \"{name}\""),
                None,
            )
            .into_response();
        }
        Some(Some(addr)) => addr,
    };
    let unavailable = |e: String| {
        Reply::error(
            503,
            "ServiceUnavailable",
            &format!("error trying to reach service: {e}"),
            None,
        )
        .into_response()
    };
    let stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return unavailable(e.to_string()),
    };
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
            Ok(x) => x,
            Err(e) => return unavailable(e.to_string()),
        };
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(parts.method)
        .uri(rest)
        .header(header::HOST, addr.to_string());
    for (k, v) in &parts.headers {
        if k != header::HOST && k != header::AUTHORIZATION {
            req = req.header(k, v);
        }
    }
    let req = req
        .body(http_body_util::Full::new(body))
        .expect("proxied request");
    match sender.send_request(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(e) => unavailable(e.to_string()),
    }
}

struct Call<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a BTreeMap<String, String>,
    content_type: &'a str,
    /// `Ok(None)` when there was no body, `Err` when it was neither JSON nor YAML.
    body: Result<Option<Value>, String>,
    dry_run: bool,
}

impl Call<'_> {
    fn body(&self) -> Result<&Value, Reply> {
        match &self.body {
            Ok(Some(v)) if v.is_object() => Ok(v),
            Ok(Some(_)) => Err(Reply::bad_request("the request body must be an object")),
            Ok(None) => Err(Reply::bad_request("the request body is empty")),
            Err(e) => Err(Reply::bad_request(&format!(
                "the request body is not JSON or YAML: {e}"
            ))),
        }
    }
}

struct Reply {
    status: u16,
    body: Vec<u8>,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            body: serde_json::to_vec(v).expect("serialize JSON"),
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    fn error(code: u16, reason: &str, message: &str, details: Option<Value>) -> Reply {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        });
        if let Some(d) = details {
            body["details"] = d;
        }
        Reply::json(code, &body)
    }

    fn bad_request(message: &str) -> Reply {
        Reply::error(400, "BadRequest", message, None)
    }

    fn not_found_path() -> Reply {
        Reply::error(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        )
    }

    fn method_not_allowed(message: &str) -> Reply {
        Reply::error(405, "MethodNotAllowed", message, Some(json!({})))
    }

    fn into_response(self) -> Response<Body> {
        let mut b = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, self.content_type);
        for (k, v) in &self.headers {
            b = b.header(*k, v.as_str());
        }
        b.body(Body::from(self.body)).expect("valid response")
    }
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

fn fault_reply(f: &Fault) -> Reply {
    let details = f
        .retry_after_secs
        .map(|s| json!({"retryAfterSeconds": s}))
        .unwrap_or_else(|| json!({}));
    let mut r = Reply::error(
        f.status,
        reason_for(f.status),
        &format!("fake-api: injected {}", f.status),
        Some(details),
    );
    if let Some(s) = f.retry_after_secs {
        r.headers.push(("retry-after", s.to_string()));
    }
    r
}

// ------------------------------------------------------------------------------------------------
// State
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
struct KindInfo {
    group: String,
    version: String,
    kind: String,
    plural: String,
    singular: String,
    namespaced: bool,
    /// Has a `status` subresource (the main endpoint then ignores `status`).
    status: bool,
    /// Served from a CRD (list items keep apiVersion/kind, no strategic merge patch).
    custom: bool,
}

impl KindInfo {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `configmaps` for the core group (as in API error messages).
    fn resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn is(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind == kind
    }
}

/// (group, plural, namespace or "", name). Objects are shared between the versions of a group,
/// as in the real server.
type ObjKey = (String, String, String, String);

fn obj_key(k: &KindInfo, namespace: Option<&str>, name: &str) -> ObjKey {
    let ns = if k.namespaced {
        namespace.unwrap_or("default")
    } else {
        ""
    };
    (k.group.clone(), k.plural.clone(), ns.into(), name.into())
}

type FieldPath = Vec<String>;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct EntryKey {
    manager: String,
    /// "Apply" or "Update".
    operation: String,
    /// "" or "status".
    subresource: String,
}

type Owners = BTreeMap<EntryKey, BTreeSet<FieldPath>>;

#[derive(Clone, Debug)]
struct Stored {
    obj: Value,
    owners: Owners,
}

struct State {
    kinds: Vec<KindInfo>,
    objects: BTreeMap<ObjKey, Stored>,
    resource_version: u64,
    uid_seq: u64,
    ip_seq: u64,
    event_seq: u64,
    requests: Vec<Recorded>,
    /// How many recorded requests `clear_requests` dropped (so in-flight ones find their slot).
    requests_cleared: usize,
    faults: Vec<Fault>,
    auto_ready: bool,
    /// Set while a status write runs, so the fake controllers do not overwrite it.
    writing_status: bool,
}

fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    status: bool,
) -> KindInfo {
    KindInfo {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        status,
        custom: false,
    }
}

impl State {
    fn new() -> State {
        let kinds = vec![
            builtin("", "v1", "Namespace", "namespaces", false, true),
            builtin("", "v1", "ServiceAccount", "serviceaccounts", true, false),
            builtin("", "v1", "ConfigMap", "configmaps", true, false),
            builtin("", "v1", "Secret", "secrets", true, false),
            builtin("", "v1", "Service", "services", true, true),
            builtin("", "v1", "Event", "events", true, false),
            builtin("", "v1", "Pod", "pods", true, true),
            builtin(
                "discovery.k8s.io",
                "v1",
                "EndpointSlice",
                "endpointslices",
                true,
                false,
            ),
            builtin("apps", "v1", "Deployment", "deployments", true, true),
            builtin(
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                true,
                true,
            ),
            builtin(
                "policy",
                "v1",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
                true,
                true,
            ),
            builtin(
                "networking.k8s.io",
                "v1",
                "NetworkPolicy",
                "networkpolicies",
                true,
                false,
            ),
        ];
        let mut st = State {
            kinds,
            objects: BTreeMap::new(),
            resource_version: 0,
            uid_seq: 0,
            ip_seq: 0,
            event_seq: 0,
            requests: Vec::new(),
            requests_cleared: 0,
            faults: Vec::new(),
            auto_ready: false,
            writing_status: false,
        };
        let ns_kind = st.kinds[0].clone();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let mut obj =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            default_object(&ns_kind, &mut obj, None, &mut 0);
            let key = obj_key(&ns_kind, None, ns);
            st.commit(&ns_kind, &key, None, obj, Owners::new(), false);
        }
        st
    }

    // --- kinds ----------------------------------------------------------------------------------

    fn kind_by_plural(&self, group: &str, version: &str, plural: &str) -> Option<KindInfo> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
            .cloned()
    }

    /// By apiVersion and kind; falls back to another served version of the same group.
    fn kind_for(&self, api_version: &str, kind: &str) -> Option<KindInfo> {
        let (group, version) = split_api_version(api_version);
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.kind == kind)
            .or_else(|| {
                self.kinds
                    .iter()
                    .find(|k| k.group == group && k.kind == kind)
            })
            .cloned()
    }

    fn group_served(&self, group: &str) -> bool {
        self.kinds.iter().any(|k| k.group == group)
    }

    fn gv_served(&self, group: &str, version: &str) -> bool {
        self.kinds
            .iter()
            .any(|k| k.group == group && k.version == version)
    }

    // --- storing --------------------------------------------------------------------------------

    fn next_rv(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    /// Store `obj` (already merged and defaulted) with `owners`, maintaining uid,
    /// resourceVersion, generation, creationTimestamp and managedFields. A write that changes
    /// neither the object nor its field owners stores nothing and returns the live object
    /// unchanged. Dry runs compute the result without storing it or consuming counters.
    fn commit(
        &mut self,
        kind: &KindInfo,
        key: &ObjKey,
        old: Option<&Stored>,
        mut obj: Value,
        mut owners: Owners,
        dry_run: bool,
    ) -> Value {
        owners.retain(|_, f| !f.is_empty());
        let api_version = kind.api_version();
        {
            let m = ensure_object(&mut obj);
            m.insert("apiVersion".into(), json!(api_version));
            m.insert("kind".into(), json!(kind.kind));
        }
        let meta = ensure_object(
            ensure_object(&mut obj)
                .entry("metadata")
                .or_insert(json!({})),
        );
        for f in SERVER_META {
            meta.remove(f);
        }
        meta.insert("name".into(), json!(key.3));
        if kind.namespaced {
            meta.insert("namespace".into(), json!(key.2));
        }
        if !owners.is_empty() {
            meta.insert(
                "managedFields".into(),
                render_managed(&owners, &api_version),
            );
        }
        meta.insert("creationTimestamp".into(), json!(TIMESTAMP));
        match old {
            Some(old) => {
                let old_meta = &old.obj["metadata"];
                let generation = old_meta["generation"].as_i64().unwrap_or(1)
                    + i64::from(spec_part(&old.obj) != spec_part(&obj));
                let meta = ensure_object(&mut obj["metadata"]);
                meta.insert("uid".into(), old_meta["uid"].clone());
                meta.insert("generation".into(), json!(generation));
                meta.insert(
                    "resourceVersion".into(),
                    old_meta["resourceVersion"].clone(),
                );
                if let Some(ts) = old_meta.get("creationTimestamp") {
                    meta.insert("creationTimestamp".into(), ts.clone());
                }
                if obj == old.obj && owners == old.owners {
                    return old.obj.clone();
                }
                if dry_run {
                    return obj;
                }
            }
            None => {
                let uid = format!("00000000-0000-4000-8000-{:012x}", self.uid_seq + 1);
                let meta = ensure_object(&mut obj["metadata"]);
                meta.insert("uid".into(), json!(uid));
                meta.insert("generation".into(), json!(1));
                if dry_run {
                    return obj;
                }
                self.uid_seq += 1;
            }
        }
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.objects.insert(
            key.clone(),
            Stored {
                obj: obj.clone(),
                owners,
            },
        );
        self.after_store(kind, key, old.is_none());
        obj
    }

    /// What controllers and admission would do right after a store.
    fn after_store(&mut self, kind: &KindInfo, key: &ObjKey, created: bool) {
        if created && kind.is("", "Namespace") {
            let ns = key.3.clone();
            let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": ns}});
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                    "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nFAKE\n-----END CERTIFICATE-----\n"}});
            self.seed(sa, None);
            self.seed(cm, None);
        }
        self.reconcile(key);
    }

    fn seed(&mut self, mut obj: Value, manager: Option<&str>) {
        let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
        let kind_name = obj["kind"].as_str().unwrap_or("").to_string();
        let kind = self.kind_for(&api_version, &kind_name).unwrap_or_else(|| {
            panic!("fake-api: cannot seed unregistered kind {api_version} {kind_name}")
        });
        let name = obj["metadata"]["name"]
            .as_str()
            .expect("seeded object has metadata.name")
            .to_string();
        let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
        let key = obj_key(&kind, ns.as_deref(), &name);
        let owners = match manager {
            Some(m) => {
                let mut o = Owners::new();
                o.insert(
                    EntryKey {
                        manager: m.into(),
                        operation: "Apply".into(),
                        subresource: String::new(),
                    },
                    leaves(&owned_view(&obj, &kind)),
                );
                o
            }
            None => parse_managed(&obj["metadata"]["managedFields"]),
        };
        strip_nulls(&mut obj);
        let old = self.objects.get(&key).cloned();
        let mut ip = self.ip_seq;
        default_object(&kind, &mut obj, old.as_ref().map(|s| &s.obj), &mut ip);
        self.ip_seq = ip;
        self.commit(&kind, &key, old.as_ref(), obj, owners, false);
    }

    fn write_status(&mut self, kind: &KindInfo, key: &ObjKey, status: Value) {
        let Some(old) = self.objects.get(key).cloned() else {
            return;
        };
        let mut obj = old.obj.clone();
        obj["status"] = status;
        self.writing_status = true;
        self.commit(kind, key, Some(&old), obj, old.owners.clone(), false);
        self.writing_status = false;
    }

    /// The fake controllers (only when `auto_ready` is on).
    fn reconcile(&mut self, key: &ObjKey) {
        if !self.auto_ready || self.writing_status {
            return;
        }
        let Some(stored) = self.objects.get(key) else {
            return;
        };
        let obj = &stored.obj;
        let Some(kind) = self.kind_for(
            obj["apiVersion"].as_str().unwrap_or(""),
            obj["kind"].as_str().unwrap_or(""),
        ) else {
            return;
        };
        let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
        let (name, ns) = (key.3.as_str(), key.2.as_str());
        let ready_condition = json!({"type": "Ready", "status": "True",
            "lastTransitionTime": TIMESTAMP, "reason": "Ready"});
        let status = if kind.is("apps", "Deployment") {
            let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability.",
                     "lastTransitionTime": TIMESTAMP, "lastUpdateTime": TIMESTAMP},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                     "message": format!("ReplicaSet \"{name}\" has successfully progressed."),
                     "lastTransitionTime": TIMESTAMP, "lastUpdateTime": TIMESTAMP},
                ],
            })
        } else if kind.is("machinelearning.seldon.io", "SeldonDeployment") {
            let mut s = obj.get("status").cloned().unwrap_or_else(|| json!({}));
            s["state"] = json!("Available");
            s
        } else if kind.is("mlops.seldon.io", "Model")
            || kind.is("mlops.seldon.io", "Experiment")
            || kind.is("mlops.seldon.io", "Server")
        {
            json!({"observedGeneration": generation, "conditions": [ready_condition]})
        } else if kind.is("serving.kserve.io", "InferenceService") {
            json!({
                "observedGeneration": generation,
                "url": format!("http://{name}.{ns}.example.com"),
                "address": {"url": format!("http://{name}.{ns}.svc.cluster.local")},
                "conditions": [ready_condition],
            })
        } else {
            return;
        };
        if obj.get("status") != Some(&status) {
            self.write_status(&kind, key, status);
        }
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .contains_key(&(String::new(), "namespaces".into(), String::new(), ns.into()))
    }

    fn namespace_missing(&self, kind: &KindInfo, ns: &str) -> Option<Reply> {
        (kind.namespaced && !self.namespace_exists(ns)).then(|| {
            Reply::error(
                404,
                "NotFound",
                &format!("namespaces \"{ns}\" not found"),
                Some(json!({"name": ns, "kind": "namespaces"})),
            )
        })
    }

    // --- routing --------------------------------------------------------------------------------

    fn route(&mut self, call: &Call<'_>) -> Reply {
        let segs: Vec<&str> = call.path.split('/').filter(|s| !s.is_empty()).collect();
        let get = call.method == Method::GET;
        match segs.as_slice() {
            ["api"] if get => Reply::json(200, &json!({"kind": "APIVersions", "versions": ["v1"]})),
            ["apis"] if get => {
                let groups: Vec<Value> = self
                    .group_names()
                    .iter()
                    .map(|g| self.group_json(g))
                    .collect();
                Reply::json(
                    200,
                    &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                )
            }
            ["api", v] if get && self.gv_served("", v) => self.resource_list("", v),
            ["apis", g] if get && self.group_served(g) => {
                let mut body = self.group_json(g);
                body["kind"] = json!("APIGroup");
                body["apiVersion"] = json!("v1");
                Reply::json(200, &body)
            }
            ["apis", g, v] if get && self.gv_served(g, v) => self.resource_list(g, v),
            ["api", v, rest @ ..] if !rest.is_empty() => self.resource("", v, rest, call),
            ["apis", g, v, rest @ ..] if !rest.is_empty() => self.resource(g, v, rest, call),
            _ => Reply::not_found_path(),
        }
    }

    fn resource(&mut self, group: &str, version: &str, rest: &[&str], call: &Call<'_>) -> Reply {
        let (plural, ns, name) = match rest {
            ["namespaces", ns, plural] => (*plural, Some(*ns), None),
            ["namespaces", ns, plural, name] => (*plural, Some(*ns), Some(*name)),
            [plural] => (*plural, None, None),
            [plural, name] => (*plural, None, Some(*name)),
            _ => return Reply::not_found_path(),
        };
        let Some(kind) = self.kind_by_plural(group, version, plural) else {
            return Reply::not_found_path();
        };
        if !kind.namespaced && ns.is_some() {
            return Reply::not_found_path();
        }
        let method = call.method.clone();
        match name {
            None => match method {
                Method::GET => self.list(&kind, ns, call),
                _ => Reply::method_not_allowed(&format!(
                    "the server does not allow this method on the requested resource ({method})"
                )),
            },
            Some(name) => {
                if kind.namespaced && ns.is_none() {
                    return Reply::not_found_path();
                }
                let key = obj_key(&kind, ns, name);
                match method {
                    Method::GET => match self.objects.get(&key) {
                        Some(s) => Reply::json(200, &view(&kind, &s.obj)),
                        None => not_found(&kind, name),
                    },
                    Method::PATCH => self.apply(&kind, &key, call),
                    Method::DELETE => self.delete(&kind, &key, call),
                    _ => Reply::method_not_allowed(&format!(
                        "the server does not allow this method on the requested resource ({method})"
                    )),
                }
            }
        }
    }

    // --- discovery ------------------------------------------------------------------------------

    fn group_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in &self.kinds {
            if !k.group.is_empty() && !out.contains(&k.group) {
                out.push(k.group.clone());
            }
        }
        out
    }

    fn versions_of(&self, group: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in self.kinds.iter().filter(|k| k.group == group) {
            if !out.contains(&k.version) {
                out.push(k.version.clone());
            }
        }
        out
    }

    fn group_json(&self, group: &str) -> Value {
        let versions: Vec<Value> = self
            .versions_of(group)
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        let preferred = versions.first().cloned().unwrap_or(Value::Null);
        json!({"name": group, "versions": versions, "preferredVersion": preferred})
    }

    fn resource_list(&self, group: &str, version: &str) -> Reply {
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        let mut resources = Vec::new();
        for k in self
            .kinds
            .iter()
            .filter(|k| k.group == group && k.version == version)
        {
            resources.push(json!({
                "name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
                "kind": k.kind, "verbs": ALL_VERBS,
            }));
            if k.status {
                resources.push(json!({
                    "name": format!("{}/status", k.plural), "singularName": "",
                    "namespaced": k.namespaced, "kind": k.kind, "verbs": ["get", "patch", "update"],
                }));
            }
        }
        Reply::json(
            200,
            &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        )
    }

    // --- verbs ----------------------------------------------------------------------------------

    fn list(&self, kind: &KindInfo, ns: Option<&str>, call: &Call<'_>) -> Reply {
        let labels = match call.query.get("labelSelector") {
            Some(s) => match parse_label_selector(s) {
                Ok(r) => r,
                Err(e) => return Reply::bad_request(&format!("unable to parse requirement: {e}")),
            },
            None => Vec::new(),
        };
        let fields = match call.query.get("fieldSelector") {
            Some(s) => match parse_field_selector(s) {
                Ok(r) => r,
                Err(e) => return Reply::bad_request(&e),
            },
            None => Vec::new(),
        };
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|((g, p, n, _), _)| {
                g == &kind.group && p == &kind.plural && ns.is_none_or(|ns| ns == n)
            })
            .map(|(_, s)| &s.obj)
            .filter(|o| labels.iter().all(|r| r.matches(o)) && fields.iter().all(|f| f.matches(o)))
            .map(|o| {
                let mut item = view(kind, o);
                if !kind.custom
                    && let Some(m) = item.as_object_mut()
                {
                    // The real server omits these on the items of built-in lists.
                    m.remove("apiVersion");
                    m.remove("kind");
                }
                item
            })
            .collect();
        Reply::json(
            200,
            &json!({
                "kind": format!("{}List", kind.kind),
                "apiVersion": kind.api_version(),
                "metadata": {"resourceVersion": self.resource_version.to_string()},
                "items": items,
            }),
        )
    }

    fn check_type(&self, kind: &KindInfo, body: &Value) -> Result<(), Reply> {
        let api_version = body["apiVersion"].as_str().unwrap_or("");
        let k = body["kind"].as_str().unwrap_or("");
        if api_version.is_empty() || k.is_empty() {
            return Err(Reply::bad_request(
                "Object 'Kind' or 'apiVersion' is missing in the request body",
            ));
        }
        if api_version != kind.api_version() {
            return Err(Reply::bad_request(&format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                kind.api_version()
            )));
        }
        if k != kind.kind {
            return Err(Reply::bad_request(&format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                kind.kind
            )));
        }
        Ok(())
    }

    fn check_identity(&self, kind: &KindInfo, key: &ObjKey, body: &Value) -> Result<(), Reply> {
        match body["metadata"]["name"].as_str() {
            Some(n) if n == key.3 => {}
            Some(n) => {
                return Err(Reply::bad_request(&format!(
                    "the name of the object ({n}) does not match the name on the URL ({})",
                    key.3
                )));
            }
            None => return Err(Reply::bad_request("metadata.name: Required value")),
        }
        if kind.namespaced
            && let Some(n) = body["metadata"]["namespace"].as_str()
            && n != key.2
        {
            return Err(Reply::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(())
    }

    fn precondition(old: &Stored, body: &Value) -> Result<(), Reply> {
        match body["metadata"]["resourceVersion"].as_str() {
            Some(rv) if Some(rv) != old.obj["metadata"]["resourceVersion"].as_str() => {
                Err(conflict_modified(&old.obj))
            }
            _ => Ok(()),
        }
    }

    /// Server-side apply (see the module docs and [`apply_merge`] for the semantics).
    fn apply(&mut self, kind: &KindInfo, key: &ObjKey, call: &Call<'_>) -> Reply {
        let ct = call.content_type.split(';').next().unwrap_or("").trim();
        if ct != "application/apply-patch+yaml" {
            return Reply::error(
                415,
                "UnsupportedMediaType",
                &format!("fake-api serves server-side apply only, got {ct:?}"),
                Some(json!({})),
            );
        }
        let Some(manager) = call.query.get("fieldManager").filter(|m| !m.is_empty()) else {
            return Reply::bad_request(
                "PATCH, fieldManager: Required value: is required for apply patch",
            );
        };
        let body = match call.body() {
            Ok(b) => b.clone(),
            Err(r) => return r,
        };
        if let Err(r) = self
            .check_type(kind, &body)
            .and_then(|()| self.check_identity(kind, key, &body))
        {
            return r;
        }
        let force = call.query.get("force").is_some_and(|f| f == "true");
        let old = self.objects.get(key).cloned();
        match &old {
            None => {
                if let Some(r) = self.namespace_missing(kind, &key.2) {
                    return r;
                }
            }
            Some(old) => {
                if let Err(r) = Self::precondition(old, &body) {
                    return r;
                }
            }
        }
        let mut ip = self.ip_seq;
        let outcome = apply_merge(
            kind,
            key,
            old.as_ref(),
            &body,
            EntryKey {
                manager: manager.clone(),
                operation: "Apply".into(),
                subresource: String::new(),
            },
            force,
            &mut ip,
        );
        let (merged, owners) = match outcome {
            Ok(x) => x,
            Err(conflicts) => return conflict_reply(kind, &key.3, &conflicts),
        };
        let out = self.commit(kind, key, old.as_ref(), merged, owners, call.dry_run);
        if !call.dry_run {
            self.ip_seq = ip;
        }
        Reply::json(if old.is_none() { 201 } else { 200 }, &view(kind, &out))
    }

    fn delete(&mut self, kind: &KindInfo, key: &ObjKey, call: &Call<'_>) -> Reply {
        let Some(old) = self.objects.get(key).cloned() else {
            return not_found(kind, &key.3);
        };
        if let Ok(Some(body)) = &call.body {
            let pre = &body["preconditions"];
            let uid_ok = pre["uid"]
                .as_str()
                .is_none_or(|u| Some(u) == old.obj["metadata"]["uid"].as_str());
            let rv_ok = pre["resourceVersion"]
                .as_str()
                .is_none_or(|r| Some(r) == old.obj["metadata"]["resourceVersion"].as_str());
            if !uid_ok || !rv_ok {
                return Reply::error(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {} \"{}\": Precondition failed",
                        kind.resource(),
                        key.3
                    ),
                    Some(json!({"name": key.3, "group": kind.group, "kind": kind.plural})),
                );
            }
        }
        let mut out = view(kind, &old.obj);
        if kind.is("", "Namespace") {
            out["metadata"]["deletionTimestamp"] = json!(TIMESTAMP);
            out["status"]["phase"] = json!("Terminating");
        }
        if call.dry_run {
            return Reply::json(200, &out);
        }
        self.objects.remove(key);
        if kind.is("", "Namespace") {
            // Immediate: the real server finalizes asynchronously.
            self.objects.retain(|(_, _, ns, _), _| ns != &key.3);
        }
        self.next_rv();
        Reply::json(200, &out)
    }
}

// ------------------------------------------------------------------------------------------------
// Server-side apply
// ------------------------------------------------------------------------------------------------

/// One field another manager owns that an apply would change.
struct ConflictItem {
    entry: EntryKey,
    api_version: String,
    path: FieldPath,
}

/// Merge `body` (the applied configuration of `manager`) into `old`.
///
/// * The manager's field set becomes the leaf paths of the applied configuration (objects are
///   walked key by key; scalars, lists and empty objects are leaves, so lists are atomic).
///   apiVersion, kind, server-owned metadata and, for kinds with a status subresource, `status`
///   (or, on `/status`, everything but `status`) are not part of it.
/// * Fields the manager applied last time but no longer applies are removed, unless another
///   manager owns them too.
/// * A field owned by another manager (the same path, or a parent/child of it) whose value the
///   apply would change is a conflict; with `force` the other manager loses it. Applying the same
///   value as another manager shares ownership without conflict.
fn apply_merge(
    kind: &KindInfo,
    key: &ObjKey,
    old: Option<&Stored>,
    body: &Value,
    entry: EntryKey,
    force: bool,
    ip: &mut u64,
) -> Result<(Value, Owners), Vec<ConflictItem>> {
    let config = owned_view(body, kind);
    let applied = leaves(&config);
    let live = match old {
        Some(s) => s.obj.clone(),
        None => {
            let mut meta = json!({"name": key.3});
            if kind.namespaced {
                meta["namespace"] = json!(key.2);
            }
            json!({"apiVersion": kind.api_version(), "kind": kind.kind, "metadata": meta})
        }
    };
    let mut owners = old.map(|s| s.owners.clone()).unwrap_or_default();
    let previous = owners.get(&entry).cloned().unwrap_or_default();

    let mut merged = live.clone();
    for gone in previous.difference(&applied) {
        let shared = owners
            .iter()
            .any(|(e, fields)| e != &entry && fields.contains(gone));
        if !shared {
            remove_path(&mut merged, gone);
        }
    }
    for p in &applied {
        let value = get_path(&config, p).cloned().unwrap_or(Value::Null);
        let keep_live_object = value.as_object().is_some_and(Map::is_empty)
            && get_path(&merged, p).is_some_and(Value::is_object);
        if !keep_live_object {
            set_path(&mut merged, p, value);
        }
    }
    default_object(kind, &mut merged, old.map(|s| &s.obj), ip);

    let mut conflicts = Vec::new();
    for (e, fields) in &owners {
        if e == &entry {
            continue;
        }
        for q in fields {
            if applied.iter().any(|p| related(p, q)) && get_path(&live, q) != get_path(&merged, q) {
                conflicts.push(ConflictItem {
                    entry: e.clone(),
                    api_version: kind.api_version(),
                    path: q.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(conflicts);
        }
        for c in &conflicts {
            if let Some(f) = owners.get_mut(&c.entry) {
                f.remove(&c.path);
            }
        }
    }
    owners.insert(entry, applied);
    owners.retain(|_, f| !f.is_empty());
    Ok((merged, owners))
}

fn conflict_reply(kind: &KindInfo, name: &str, conflicts: &[ConflictItem]) -> Reply {
    let who = |c: &ConflictItem| {
        if c.entry.operation == "Apply" {
            format!("conflict with \"{}\"", c.entry.manager)
        } else {
            format!(
                "conflict with \"{}\" using {}",
                c.entry.manager, c.api_version
            )
        }
    };
    let n = conflicts.len();
    let list: Vec<String> = conflicts
        .iter()
        .map(|c| format!("{}: {}", who(c), path_string(&c.path)))
        .collect();
    let message = format!(
        "Apply failed with {n} conflict{}: {}",
        if n == 1 { "" } else { "s" },
        list.join("\n")
    );
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({"reason": "FieldManagerConflict", "message": who(c), "field": path_string(&c.path)}))
        .collect();
    Reply::error(
        409,
        "Conflict",
        &message,
        Some(json!({"name": name, "group": kind.group, "kind": kind.plural, "causes": causes})),
    )
}

/// The part of an object field managers can own (not its status, for kinds with a status
/// subresource).
fn owned_view(obj: &Value, kind: &KindInfo) -> Value {
    let mut c = obj.clone();
    strip_nulls(&mut c);
    let Some(m) = c.as_object_mut() else {
        return json!({});
    };
    m.remove("apiVersion");
    m.remove("kind");
    if let Some(Value::Object(meta)) = m.get_mut("metadata") {
        for f in SERVER_META {
            meta.remove(f);
        }
        meta.remove("generateName");
        if meta.is_empty() {
            m.remove("metadata");
        }
    }
    if kind.status {
        m.remove("status");
    }
    c
}

fn render_managed(owners: &Owners, api_version: &str) -> Value {
    let entries: Vec<Value> = owners
        .iter()
        .map(|(e, fields)| {
            let mut tree = json!({});
            for p in fields {
                let mut cur = &mut tree;
                for seg in p {
                    cur = ensure_object(cur)
                        .entry(format!("f:{seg}"))
                        .or_insert(json!({}));
                }
            }
            let mut entry = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": api_version,
                "time": TIMESTAMP,
                "fieldsType": "FieldsV1",
                "fieldsV1": tree,
            });
            if !e.subresource.is_empty() {
                entry["subresource"] = json!(e.subresource);
            }
            entry
        })
        .collect();
    Value::Array(entries)
}

/// Read `metadata.managedFields` (FieldsV1). Keyed list items (`k:`, `v:`, `i:`) make the list
/// one atomic field.
fn parse_managed(managed: &Value) -> Owners {
    fn walk(node: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        let Some(m) = node.as_object() else { return };
        if m.is_empty() && !path.is_empty() {
            out.insert(path.clone());
            return;
        }
        for (k, child) in m {
            if k == "." {
                out.insert(path.clone());
            } else if let Some(seg) = k.strip_prefix("f:") {
                path.push(seg.to_string());
                walk(child, path, out);
                path.pop();
            } else if !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
    let mut owners = Owners::new();
    for e in managed.as_array().into_iter().flatten() {
        let key = EntryKey {
            manager: e["manager"].as_str().unwrap_or("unknown").into(),
            operation: e["operation"].as_str().unwrap_or("Update").into(),
            subresource: e["subresource"].as_str().unwrap_or("").into(),
        };
        let mut fields = BTreeSet::new();
        walk(&e["fieldsV1"], &mut Vec::new(), &mut fields);
        owners.entry(key).or_default().extend(fields);
    }
    owners
}

// ------------------------------------------------------------------------------------------------
// API-server defaults
// ------------------------------------------------------------------------------------------------

/// A few of the API server's defaults, so a dry-run result differs from the rendered manifest
/// the way it does on a real cluster. `ip` is the Service IP allocator.
fn default_object(kind: &KindInfo, obj: &mut Value, old: Option<&Value>, ip: &mut u64) {
    fn default(v: &mut Value, key: &str, value: Value) {
        let m = ensure_object(v);
        if m.get(key).is_none_or(Value::is_null) {
            m.insert(key.into(), value);
        }
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    if kind.is("", "Namespace") {
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        default(&mut obj["spec"], "finalizers", json!(["kubernetes"]));
        default(&mut obj["status"], "phase", json!("Active"));
    } else if kind.is("", "Secret") {
        if let Some(Value::Object(string_data)) =
            obj.as_object_mut().and_then(|m| m.remove("stringData"))
        {
            for (k, v) in string_data {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                obj["data"][k] = json!(base64(text.as_bytes()));
            }
        }
        default(obj, "type", json!("Opaque"));
    } else if kind.is("", "Service") {
        let spec = &mut obj["spec"];
        default(spec, "type", json!("ClusterIP"));
        default(spec, "sessionAffinity", json!("None"));
        if spec["type"] != "ExternalName" {
            let live_ip = old.and_then(|o| o["spec"].get("clusterIP")).cloned();
            let cluster_ip = live_ip.unwrap_or_else(|| {
                *ip += 1;
                json!(format!("10.96.{}.{}", *ip / 250, *ip % 250 + 1))
            });
            default(spec, "clusterIP", cluster_ip.clone());
            default(spec, "clusterIPs", json!([spec["clusterIP"].clone()]));
            default(spec, "ipFamilies", json!(["IPv4"]));
            default(spec, "ipFamilyPolicy", json!("SingleStack"));
            default(spec, "internalTrafficPolicy", json!("Cluster"));
        }
        for port in spec["ports"].as_array_mut().into_iter().flatten() {
            default(port, "protocol", json!("TCP"));
            if let Some(p) = port.get("port").cloned() {
                default(port, "targetPort", p);
            }
        }
    } else if kind.is("apps", "Deployment") {
        let spec = &mut obj["spec"];
        default(spec, "replicas", json!(1));
        default(spec, "revisionHistoryLimit", json!(10));
        default(spec, "progressDeadlineSeconds", json!(600));
        default(spec, "strategy", json!({"type": "RollingUpdate"}));
        if spec["strategy"]["type"] == "RollingUpdate" {
            default(
                &mut spec["strategy"],
                "rollingUpdate",
                json!({"maxSurge": "25%", "maxUnavailable": "25%"}),
            );
        }
        if obj["spec"]["template"]["spec"].get("containers").is_some() {
            let pod = &mut obj["spec"]["template"]["spec"];
            default(pod, "restartPolicy", json!("Always"));
            default(pod, "terminationGracePeriodSeconds", json!(30));
            default(pod, "dnsPolicy", json!("ClusterFirst"));
            default(pod, "securityContext", json!({}));
            default(pod, "schedulerName", json!("default-scheduler"));
            for list in ["containers", "initContainers"] {
                for c in pod[list].as_array_mut().into_iter().flatten() {
                    let image = c["image"].as_str().unwrap_or("");
                    let last = image.rsplit('/').next().unwrap_or("");
                    let latest =
                        (!last.contains(':') && !image.contains('@')) || last.ends_with(":latest");
                    let policy = if latest { "Always" } else { "IfNotPresent" };
                    default(c, "imagePullPolicy", json!(policy));
                    default(c, "terminationMessagePath", json!("/dev/termination-log"));
                    default(c, "terminationMessagePolicy", json!("File"));
                    default(c, "resources", json!({}));
                    for port in c["ports"].as_array_mut().into_iter().flatten() {
                        default(port, "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18 & 63) as usize] as char);
        out.push(T[(n >> 12 & 63) as usize] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6 & 63) as usize] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[(n & 63) as usize] as char
        } else {
            '='
        });
    }
    out
}

// ------------------------------------------------------------------------------------------------
// JSON helpers
// ------------------------------------------------------------------------------------------------

fn ensure_object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// An object as served at `kind`'s version.
fn view(kind: &KindInfo, obj: &Value) -> Value {
    let mut out = obj.clone();
    out["apiVersion"] = json!(kind.api_version());
    out
}

/// Everything but metadata and status: a change here bumps `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    let mut c = obj.clone();
    if let Some(m) = c.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    c
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, c| !c.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Leaf paths: scalars, lists and empty objects (null values are skipped).
fn leaves(v: &Value) -> BTreeSet<FieldPath> {
    fn walk(v: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        match v {
            Value::Object(m) if !m.is_empty() || prefix.is_empty() => {
                for (k, c) in m {
                    if c.is_null() {
                        continue;
                    }
                    prefix.push(k.clone());
                    walk(c, prefix, out);
                    prefix.pop();
                }
            }
            _ => {
                out.insert(prefix.clone());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn path_string(p: &[String]) -> String {
    p.iter().fold(String::new(), |mut s, seg| {
        let _ = write!(s, ".{seg}");
        s
    })
}

fn get_path<'a>(v: &'a Value, p: &[String]) -> Option<&'a Value> {
    p.iter().try_fold(v, |cur, k| cur.as_object()?.get(k))
}

fn get_path_mut<'a>(v: &'a mut Value, p: &[String]) -> Option<&'a mut Value> {
    p.iter()
        .try_fold(v, |cur, k| cur.as_object_mut()?.get_mut(k))
}

fn set_path(v: &mut Value, p: &[String], value: Value) {
    let mut cur = v;
    for k in p {
        cur = ensure_object(cur).entry(k.clone()).or_insert(Value::Null);
    }
    *cur = value;
}

/// Remove a field, then any parent object it leaves empty (top-level keys stay).
fn remove_path(v: &mut Value, p: &[String]) {
    let Some((last, parents)) = p.split_last() else {
        return;
    };
    if let Some(Value::Object(m)) = get_path_mut(v, parents) {
        m.remove(last);
    }
    for depth in (2..p.len()).rev() {
        let parent = &p[..depth];
        let empty = get_path(v, parent).is_some_and(|x| x.as_object().is_some_and(Map::is_empty));
        if !empty {
            break;
        }
        let (k, pp) = parent.split_last().expect("depth >= 2");
        if let Some(Value::Object(m)) = get_path_mut(v, pp) {
            m.remove(k);
        }
    }
}

fn parse_body(bytes: &[u8]) -> Result<Option<Value>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Ok(Some(v));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    serde_saphyr::from_str::<Value>(text)
        .map(Some)
        .map_err(|e| e.to_string())
}

fn parse_query(q: &str) -> BTreeMap<String, String> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let hex = |c: u8| char::from(c).to_digit(16);
                    match (hex(b[i + 1]), hex(b[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push((h * 16 + l) as u8);
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn not_found(kind: &KindInfo, name: &str) -> Reply {
    Reply::error(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", kind.resource()),
        Some(json!({"name": name, "group": kind.group, "kind": kind.plural})),
    )
}

fn conflict_modified(obj: &Value) -> Reply {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    Reply::error(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
        Some(json!({"name": name})),
    )
}

/// `2024-01-01T00:00:00Z` plus `secs` seconds (same day).
fn timestamp_plus(secs: u64) -> String {
    let s = secs % 86_400;
    format!(
        "2024-01-01T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

// ------------------------------------------------------------------------------------------------
// Selectors
// ------------------------------------------------------------------------------------------------

/// One term of a label selector: `key=value` (or `==`) or `key` (exists). The binary sends no
/// other form; the fake refuses the rest (set-based, `!=`, `!key`) rather than misread it.
#[derive(Debug, PartialEq)]
enum LabelReq {
    Eq(String, String),
    Exists(String),
}

impl LabelReq {
    fn matches(&self, obj: &Value) -> bool {
        let label = |k: &str| obj["metadata"]["labels"][k].as_str().map(str::to_string);
        match self {
            LabelReq::Eq(k, v) => label(k).as_deref() == Some(v.as_str()),
            LabelReq::Exists(k) => label(k).is_some(),
        }
    }
}

fn parse_label_selector(s: &str) -> Result<Vec<LabelReq>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            if t.contains(['(', ')', '!', ' ']) {
                return Err(format!(
                    "fake-api serves equality and existence selectors only, not {t:?}"
                ));
            }
            Ok(match t.split_once("==").or_else(|| t.split_once('=')) {
                Some((k, v)) => LabelReq::Eq(k.to_string(), v.to_string()),
                None => LabelReq::Exists(t.to_string()),
            })
        })
        .collect()
}

/// `path=value` on a dotted field path (any field: the real server only allows a few per kind).
struct FieldReq {
    path: FieldPath,
    value: String,
}

impl FieldReq {
    fn matches(&self, obj: &Value) -> bool {
        let actual = match get_path(obj, &self.path) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        };
        actual == self.value
    }
}

fn parse_field_selector(s: &str) -> Result<Vec<FieldReq>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| match t.split_once('=') {
            Some((k, v)) if !k.ends_with('!') => Ok(FieldReq {
                path: k.trim().split('.').map(str::to_string).collect(),
                value: v.trim_start_matches('=').trim().to_string(),
            }),
            _ => Err(format!(
                "fake-api serves field=value selectors only, not {t:?}"
            )),
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// The fake's own tests, through a real kube-rs client
// ------------------------------------------------------------------------------------------------

mod tests {
    use std::io::{Read as _, Write as _};

    use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
    use kube::config::{KubeConfigOptions, Kubeconfig};
    use kube::core::{GroupVersionKind, Status};
    use kube::discovery::{ApiResource, Scope, pinned_kind};
    use kube::{Client, Config, Discovery};

    use super::*;

    async fn client_for(api: &FakeApi, context: Option<&str>) -> Client {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = api.write_kubeconfig(dir.path());
        let kubeconfig = Kubeconfig::read_from(&path).expect("kubeconfig parses");
        let options = KubeConfigOptions {
            context: context.map(str::to_string),
            ..Default::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .expect("config from kubeconfig");
        Client::try_from(config).expect("client")
    }

    async fn client(api: &FakeApi) -> Client {
        client_for(api, None).await
    }

    async fn resource(client: &Client, group: &str, version: &str, kind: &str) -> ApiResource {
        pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .unwrap_or_else(|e| panic!("discover {group}/{version} {kind}: {e}"))
            .0
    }

    async fn deployments(client: &Client, ns: &str) -> Api<DynamicObject> {
        let ar = resource(client, "apps", "v1", "Deployment").await;
        Api::namespaced_with(client.clone(), ns, &ar)
    }

    async fn config_maps(client: &Client, ns: &str) -> Api<DynamicObject> {
        let ar = resource(client, "", "v1", "ConfigMap").await;
        Api::namespaced_with(client.clone(), ns, &ar)
    }

    fn dynamic(v: Value) -> DynamicObject {
        serde_json::from_value(v).expect("a valid DynamicObject")
    }

    fn deployment(name: &str, replicas: i64, labels: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "model", "image": "ghcr.io/acme/model:1.0"}]},
                },
            },
        })
    }

    fn config_map(name: &str, ns: &str, labels: Value) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "data": {"key": name},
        })
    }

    fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<Status> {
        match result {
            Err(kube::Error::Api(status)) => status,
            other => panic!("expected an API error, got {other:?}"),
        }
    }

    fn rv(obj: &DynamicObject) -> String {
        obj.metadata
            .resource_version
            .clone()
            .expect("resourceVersion")
    }

    /// The resourceVersion counter: it moves only when stored state changes.
    fn counter_of(api: &FakeApi) -> u64 {
        api.shared.lock().resource_version
    }

    fn ssa() -> PatchParams {
        PatchParams::apply("mldeploy")
    }

    /// One raw HTTP/1.1 exchange: (status, lower-cased head, body). Status 0: no response.
    fn raw_http(
        api: &FakeApi,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        let mut s = std::net::TcpStream::connect(api.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: fake\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).expect("write request");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let Some((head, body)) = out.split_once("\r\n\r\n") else {
            return (0, String::new(), out);
        };
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, head.to_lowercase(), body.to_string())
    }

    const AUTH: (&str, &str) = ("Authorization", "Bearer fake-token");

    #[tokio::test]
    async fn discovery_resolves_builtin_and_registered_kinds() {
        let fake = FakeApi::start();
        let client = client(&fake).await;
        let gvk = GroupVersionKind::gvk("apps", "v1", "Deployment");
        let (ar, caps) = pinned_kind(&client, &gvk).await.expect("Deployment");
        assert_eq!(ar.plural, "deployments");
        assert_eq!(caps.scope, Scope::Namespaced);
        assert!(caps.subresources.iter().any(|(r, _)| r.plural == "status"));
        let (_, caps) = pinned_kind(&client, &GroupVersionKind::gvk("", "v1", "Namespace"))
            .await
            .expect("Namespace");
        assert_eq!(caps.scope, Scope::Cluster);
        for (g, v, k) in [
            ("autoscaling", "v2", "HorizontalPodAutoscaler"),
            ("policy", "v1", "PodDisruptionBudget"),
            ("", "v1", "Event"),
        ] {
            resource(&client, g, v, k).await;
        }

        let seldon = GroupVersionKind::gvk("machinelearning.seldon.io", "v1", "SeldonDeployment");
        let missing = api_error(pinned_kind(&client, &seldon).await);
        assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));

        fake.register_ml_crds();
        let (ar, caps) = pinned_kind(&client, &seldon)
            .await
            .expect("SeldonDeployment");
        assert_eq!(ar.plural, "seldondeployments");
        assert_eq!(caps.scope, Scope::Namespaced);
        let (ar, _) = pinned_kind(
            &client,
            &GroupVersionKind::gvk("serving.kserve.io", "v1beta1", "InferenceService"),
        )
        .await
        .expect("InferenceService");
        assert_eq!(ar.plural, "inferenceservices");

        let status = api_error(client.list_api_group_resources("nope.example.com/v1").await);
        assert_eq!(status.code, 404);

        // Whole-cluster discovery.
        let d = Discovery::new(client.clone())
            .run()
            .await
            .expect("discovery");
        assert!(d.has_group("mlops.seldon.io"));
        let (ar, caps) = d
            .resolve_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"))
            .expect("ConfigMap");
        assert_eq!(
            (ar.plural.as_str(), caps.scope),
            ("configmaps", Scope::Namespaced)
        );
    }

    #[tokio::test]
    async fn apply_creates_and_an_identical_reapply_changes_nothing() {
        let fake = FakeApi::start();
        let client = client(&fake).await;
        let api = deployments(&client, "default").await;
        let desired = deployment("web", 2, json!({"app": "web", "tier": "api"}));

        fake.clear_requests();
        let created = api
            .patch("web", &ssa(), &Patch::Apply(dynamic(desired.clone())))
            .await
            .expect("create by apply");
        let last = fake.requests().pop().expect("a request");
        assert_eq!((last.method, last.status), (Method::PATCH, 201));
        assert_eq!(last.query["fieldManager"], "mldeploy");
        assert_eq!(created.metadata.generation, Some(1));
        assert!(created.metadata.uid.is_some());
        let managed = created
            .metadata
            .managed_fields
            .clone()
            .expect("managedFields");
        assert_eq!(managed.len(), 1);
        assert_eq!(managed[0].manager.as_deref(), Some("mldeploy"));
        assert_eq!(managed[0].operation.as_deref(), Some("Apply"));
        // Server defaults appear, as on a real cluster.
        assert_eq!(created.data["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(
            created.data["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );

        // A dry-run of the same configuration returns exactly the live object.
        let planned = api
            .patch(
                "web",
                &ssa().dry_run(),
                &Patch::Apply(dynamic(desired.clone())),
            )
            .await
            .expect("dry-run apply");
        let live = fake
            .get("apps/v1", "Deployment", Some("default"), "web")
            .expect("stored");
        assert_eq!(serde_json::to_value(&planned).expect("json"), live);

        let counter = counter_of(&fake);
        let again = api
            .patch("web", &ssa(), &Patch::Apply(dynamic(desired.clone())))
            .await
            .expect("re-apply");
        assert_eq!(rv(&again), rv(&created));
        assert_eq!(counter_of(&fake), counter);
        let last = fake.requests().pop().expect("a request");
        assert_eq!(last.status, 200);
        // Both applies count as write requests (only one changed anything).
        assert_eq!(fake.writes().len(), 2);

        // A spec change bumps resourceVersion and generation.
        let mut scaled = desired.clone();
        scaled["spec"]["replicas"] = json!(3);
        let scaled = api
            .patch("web", &ssa(), &Patch::Apply(dynamic(scaled)))
            .await
            .expect("scale");
        assert_ne!(rv(&scaled), rv(&created));
        assert_eq!(scaled.metadata.generation, Some(2));

        // A field the manager stops applying is removed; metadata changes keep the generation.
        let mut fewer = desired.clone();
        fewer["spec"]["replicas"] = json!(3);
        fewer["metadata"]["labels"] = json!({"app": "web"});
        let fewer = api
            .patch("web", &ssa(), &Patch::Apply(dynamic(fewer)))
            .await
            .expect("drop a label");
        let labels = fewer.metadata.labels.clone().expect("labels");
        assert_eq!(labels.len(), 1, "{labels:?}");
        assert_eq!(fewer.metadata.generation, Some(2));
        assert_ne!(rv(&fewer), rv(&scaled));
    }

    /// Objects the server defaults or rewrites (Service clusterIP, Secret stringData, Namespace
    /// label) still re-apply as no-ops, and their dry-run equals the live object.
    #[tokio::test]
    async fn server_defaults_keep_reapplies_no_ops() {
        let fake = FakeApi::start();
        let client = client(&fake).await;
        let objects = [
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml",
                "labels": {"team": "ml"}}}),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "ml"},
                "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}),
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "creds", "namespace": "ml"},
                "stringData": {"token": "hello"}}),
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "web", "namespace": "ml"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
        ];
        let mut apis = Vec::new();
        for obj in &objects {
            let (group, version) =
                split_api_version(obj["apiVersion"].as_str().expect("apiVersion"));
            let ar = resource(&client, group, version, obj["kind"].as_str().expect("kind")).await;
            let api = match obj["metadata"]["namespace"].as_str() {
                Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar),
                None => Api::<DynamicObject>::all_with(client.clone(), &ar),
            };
            let name = obj["metadata"]["name"].as_str().expect("name").to_string();
            api.patch(&name, &ssa(), &Patch::Apply(dynamic(obj.clone())))
                .await
                .expect("apply");
            apis.push((api, name, obj.clone()));
        }
        let ns = fake.get("v1", "Namespace", None, "ml").expect("namespace");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "ml"
        );
        let svc = fake
            .get("v1", "Service", Some("ml"), "web")
            .expect("service");
        assert!(
            svc["spec"]["clusterIP"]
                .as_str()
                .is_some_and(|ip| ip.starts_with("10.96."))
        );
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        let secret = fake
            .get("v1", "Secret", Some("ml"), "creds")
            .expect("secret");
        assert_eq!(secret["data"]["token"], "aGVsbG8=");
        assert!(secret.get("stringData").is_none());
        assert_eq!(secret["type"], "Opaque");

        let counter = counter_of(&fake);
        for (api, name, obj) in &apis {
            let planned = api
                .patch(name, &ssa().dry_run(), &Patch::Apply(dynamic(obj.clone())))
                .await
                .expect("dry-run");
            let live = api.get(name).await.expect("get");
            assert_eq!(
                serde_json::to_value(&planned).expect("json"),
                serde_json::to_value(&live).expect("json"),
                "{name}"
            );
            api.patch(name, &ssa(), &Patch::Apply(dynamic(obj.clone())))
                .await
                .expect("re-apply");
        }
        assert_eq!(counter_of(&fake), counter, "no re-apply changed anything");
    }

    #[tokio::test]
    async fn dry_run_apply_stores_nothing() {
        let fake = FakeApi::start();
        let client = client(&fake).await;
        let api = config_maps(&client, "default").await;
        let counter = counter_of(&fake);
        fake.clear_requests();

        let planned = api
            .patch(
                "settings",
                &ssa().dry_run(),
                &Patch::Apply(dynamic(config_map("settings", "default", json!({})))),
            )
            .await
            .expect("dry-run create");
        assert_eq!(planned.data["data"]["key"], "settings");
        assert!(planned.metadata.uid.is_some());
        assert!(
            fake.get("v1", "ConfigMap", Some("default"), "settings")
                .is_none()
        );
        assert_eq!(counter_of(&fake), counter);
        let requests = fake.requests();
        assert_eq!(requests.len(), 1);
        assert!(requests[0].dry_run);
        assert!(fake.writes().is_empty());
        assert!(api.get_opt("settings").await.expect("get").is_none());

        // As on a real cluster, even a dry-run create needs its namespace to exist.
        let in_missing_ns = config_maps(&client, "ml-prod").await;
        let status = api_error(
            in_missing_ns
                .patch(
                    "settings",
                    &ssa().dry_run(),
                    &Patch::Apply(dynamic(config_map("settings", "ml-prod", json!({})))),
                )
                .await,
        );
        assert_eq!(status.code, 404);
        assert_eq!(status.message, "namespaces \"ml-prod\" not found");

        // Dry-run delete keeps the object.
        fake.put(config_map("kept", "default", json!({})));
        let dp = DeleteParams {
            dry_run: true,
            ..Default::default()
        };
        api.delete("kept", &dp).await.expect("dry-run delete");
        assert!(
            fake.get("v1", "ConfigMap", Some("default"), "kept")
                .is_some()
        );
    }

    #[tokio::test]
    async fn conflicts_name_the_other_manager_and_force_takes_ownership() {
        let fake = FakeApi::start();
        let client = client(&fake).await;
        let api = deployments(&client, "default").await;
        fake.put_owned(deployment("web", 3, json!({"app": "web"})), "kubectl");
        let counter = counter_of(&fake);

        let ours = deployment("web", 5, json!({"app": "web"}));
        let status = api_error(
            api.patch("web", &ssa(), &Patch::Apply(dynamic(ours.clone())))
                .await,
        );
        assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
        assert_eq!(
            status.message,
            "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"
        );
        let details = status.details.clone().expect("details");
        assert_eq!(details.name, "web");
        assert_eq!(details.causes.len(), 1);
        assert_eq!(details.causes[0].reason, "FieldManagerConflict");
        assert_eq!(details.causes[0].field, ".spec.replicas");
        assert_eq!(details.causes[0].message, "conflict with \"kubectl\"");
        assert_eq!(counter_of(&fake), counter, "a conflict changes nothing");

        // The same value as the other manager is shared ownership, not a conflict.
        let shared = api
            .patch(
                "web",
                &ssa(),
                &Patch::Apply(dynamic(deployment("web", 3, json!({"app": "web"})))),
            )
            .await
            .expect("shared apply");
        let owners_of_replicas = |obj: &DynamicObject| -> Vec<String> {
            obj.metadata
                .managed_fields
                .iter()
                .flatten()
                .filter(|m| {
                    m.fields_v1
                        .as_ref()
                        .is_some_and(|f| f.0["f:spec"].get("f:replicas").is_some())
                })
                .filter_map(|m| m.manager.clone())
                .collect()
        };
        assert_eq!(owners_of_replicas(&shared), ["kubectl", "mldeploy"]);

        let forced = api
            .patch("web", &ssa().force(), &Patch::Apply(dynamic(ours)))
            .await
            .expect("forced apply");
        assert_eq!(forced.data["spec"]["replicas"], 5);
        assert_eq!(owners_of_replicas(&forced), ["mldeploy"]);
        assert!(fake.requests().last().expect("request").query["force"] == "true");

        // An Update-operation owner (kubectl edit/scale) is reported with its API version.
        let mut edited = deployment("web", 7, json!({"app": "web"}));
        edited["metadata"]["managedFields"] = json!([{"manager": "kubectl-edit",
            "operation": "Update", "apiVersion": "apps/v1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
        fake.put(edited);
        let status = api_error(
            api.patch(
                "web",
                &ssa(),
                &Patch::Apply(dynamic(deployment("web", 5, json!({"app": "web"})))),
            )
            .await,
        );
        let cause = &status.details.as_ref().expect("details").causes[0];
        assert_eq!(
            cause.message,
            "conflict with \"kubectl-edit\" using apps/v1"
        );
        assert_eq!(cause.field, ".spec.replicas");
    }

    #[tokio::test]
    async fn lists_filter_by_label_and_field_selectors() {
        let fake = FakeApi::start();
        let client = client(&fake).await;
        for ns in ["a", "b"] {
            fake.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        }
        fake.put(config_map("x1", "a", json!({"app": "x", "tier": "web"})));
        fake.put(config_map("x2", "a", json!({"app": "x"})));
        fake.put(config_map("y1", "a", json!({"app": "y", "tier": "db"})));
        fake.put(config_map("z1", "b", json!({"app": "z"})));
        fake.put(config_map("x3", "b", json!({"app": "x"})));

        let in_a = config_maps(&client, "a").await;
        let names = |list: kube::api::ObjectList<DynamicObject>| -> Vec<String> {
            let mut n: Vec<String> = list
                .items
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .collect();
            n.sort();
            n
        };
        for (selector, expected) in [
            ("app=x", vec!["x1", "x2"]),
            ("app==x", vec!["x1", "x2"]),
            ("tier", vec!["x1", "y1"]),
            ("tier,app=y", vec!["y1"]),
            ("app=x,tier=web", vec!["x1"]),
        ] {
            let list = in_a
                .list(&ListParams::default().labels(selector))
                .await
                .expect("list");
            assert_eq!(names(list), expected, "selector {selector:?}");
        }

        let all = Api::<DynamicObject>::all_with(
            client.clone(),
            &resource(&client, "", "v1", "ConfigMap").await,
        );
        let list = all
            .list(&ListParams::default().labels("app=x"))
            .await
            .expect("cluster-wide list");
        assert_eq!(names(list.clone()), ["x1", "x2", "x3"]);
        assert!(list.metadata.resource_version.is_some());

        // A form the binary does not send is refused, not misread.
        let status = api_error(
            in_a.list(&ListParams::default().labels("app in (x,z)"))
                .await,
        );
        assert_eq!(status.code, 400);

        fake.add_event(
            "a",
            "Deployment",
            "web",
            "Warning",
            "FailedCreate",
            "quota exceeded",
        );
        fake.add_event(
            "a",
            "Deployment",
            "web",
            "Normal",
            "ScalingReplicaSet",
            "scaled up",
        );
        fake.add_event(
            "a",
            "Deployment",
            "db",
            "Normal",
            "ScalingReplicaSet",
            "scaled up",
        );
        let events = Api::<DynamicObject>::namespaced_with(
            client.clone(),
            "a",
            &resource(&client, "", "v1", "Event").await,
        );
        let list = events
            .list(&ListParams::default().fields("involvedObject.name=web"))
            .await
            .expect("events");
        assert_eq!(list.items.len(), 2);
        assert_eq!(list.items[0].data["reason"], "FailedCreate");
        assert!(
            list.items[0].data["lastTimestamp"].as_str()
                < list.items[1].data["lastTimestamp"].as_str()
        );
        let warnings = events
            .list(&ListParams::default().fields("involvedObject.name=web,type=Warning"))
            .await
            .expect("warnings");
        assert_eq!(warnings.items.len(), 1);
        let everywhere = Api::<DynamicObject>::all_with(
            client.clone(),
            &resource(&client, "", "v1", "Event").await,
        );
        assert_eq!(
            everywhere
                .list(&ListParams::default())
                .await
                .expect("list")
                .items
                .len(),
            3
        );
    }

    #[tokio::test]
    async fn faults_fire_exactly_as_often_as_asked() {
        let fake = FakeApi::start();
        let client = client(&fake).await;
        let api = config_maps(&client, "default").await;
        fake.put(config_map("settings", "default", json!({})));

        fake.inject(
            Fault::new(500)
                .method(Method::GET)
                .path("/configmaps/settings")
                .times(2),
        );
        assert_eq!(fake.pending_faults(), 2);
        for _ in 0..2 {
            let status = api_error(api.get("settings").await);
            assert_eq!(
                (status.code, status.reason.as_str()),
                (500, "InternalError")
            );
        }
        api.get("settings").await.expect("third GET succeeds");
        assert_eq!(fake.pending_faults(), 0);

        // 404 on the dry-run only; the real apply is untouched.
        fake.inject(Fault::new(404).method(Method::PATCH).dry_run(true));
        let cm = config_map("other", "default", json!({}));
        let status = api_error(
            api.patch(
                "other",
                &ssa().dry_run(),
                &Patch::Apply(dynamic(cm.clone())),
            )
            .await,
        );
        assert_eq!(status.code, 404);
        api.patch("other", &ssa(), &Patch::Apply(dynamic(cm.clone())))
            .await
            .expect("real apply not affected");

        fake.inject(Fault::new(409).path("/configmaps/other"));
        assert_eq!(api_error(api.get("other").await).code, 409);

        // kube 5 clients retry 429/503/504 by themselves (Config::default_retry): the call
        // succeeds and the fake saw every attempt.
        fake.clear_requests();
        fake.inject(Fault::new(429).method(Method::GET).times(2));
        api.get("other").await.expect("retried past the 429s");
        let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [429, 429, 200]);

        // A fault that outlives the client's retries surfaces.
        let mut config = Config::new(fake.url().parse().expect("url"));
        config.default_retry = false;
        config.auth_info.token = Some(TOKEN.to_string().into());
        let no_retry = Client::try_from(config).expect("client");
        let ar = resource(&no_retry, "", "v1", "ConfigMap").await;
        let api = Api::<DynamicObject>::namespaced_with(no_retry, "default", &ar);
        fake.inject(Fault::new(503).times(1));
        assert_eq!(api_error(api.get("other").await).code, 503);
    }

    #[tokio::test]
    async fn auto_ready_plays_the_controllers() {
        let fake = FakeApi::start();
        let client = client(&fake).await;
        fake.register_ml_crds();
        let api = deployments(&client, "default").await;

        api.patch(
            "slow",
            &ssa(),
            &Patch::Apply(dynamic(deployment("slow", 2, json!({})))),
        )
        .await
        .expect("apply");
        let live = fake
            .get("apps/v1", "Deployment", Some("default"), "slow")
            .expect("stored");
        assert!(live.get("status").is_none(), "no controller yet");

        fake.auto_ready(true);
        let live = api.get("slow").await.expect("get");
        assert_eq!(
            live.data["status"]["readyReplicas"], 2,
            "existing objects too"
        );

        api.patch(
            "web",
            &ssa(),
            &Patch::Apply(dynamic(deployment("web", 3, json!({})))),
        )
        .await
        .expect("apply");
        let live = api.get("web").await.expect("get");
        let status = &live.data["status"];
        assert_eq!(status["observedGeneration"], 1);
        for field in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ] {
            assert_eq!(status[field], 3, "{field}");
        }
        // The status is not the applier's: an identical re-apply is still a no-op.
        let again = api
            .patch(
                "web",
                &ssa(),
                &Patch::Apply(dynamic(deployment("web", 3, json!({})))),
            )
            .await
            .expect("re-apply");
        assert_eq!(rv(&again), rv(&live));
        let scaled = api
            .patch(
                "web",
                &ssa(),
                &Patch::Apply(dynamic(deployment("web", 4, json!({})))),
            )
            .await
            .expect("scale");
        assert!(scaled.data.get("status").is_some());
        let live = api.get("web").await.expect("get");
        assert_eq!(live.data["status"]["observedGeneration"], 2);
        assert_eq!(live.data["status"]["readyReplicas"], 4);

        for (api_version, kind, check) in [
            ("machinelearning.seldon.io/v1", "SeldonDeployment", "state"),
            ("mlops.seldon.io/v1alpha1", "Model", "Ready"),
            ("serving.kserve.io/v1beta1", "InferenceService", "Ready"),
        ] {
            let (group, version) = split_api_version(api_version);
            let ar = resource(&client, group, version, kind).await;
            let api = Api::<DynamicObject>::namespaced_with(client.clone(), "default", &ar);
            let obj = json!({"apiVersion": api_version, "kind": kind,
                "metadata": {"name": "iris"}, "spec": {"replicas": 1}});
            api.patch("iris", &ssa(), &Patch::Apply(dynamic(obj)))
                .await
                .expect("apply custom resource");
            let live = api.get("iris").await.expect("get");
            let status = &live.data["status"];
            if check == "state" {
                assert_eq!(status["state"], "Available");
            } else {
                let ready = status["conditions"]
                    .as_array()
                    .expect("conditions")
                    .iter()
                    .find(|c| c["type"] == "Ready")
                    .expect("Ready condition");
                assert_eq!(ready["status"], "True", "{kind}");
            }
        }
    }

    #[tokio::test]
    async fn other_context_reaches_the_same_server() {
        let fake = FakeApi::start();
        let client = client_for(&fake, Some("other")).await;
        assert_eq!(client.default_namespace(), "default");
        config_maps(&client, "kube-system")
            .await
            .get("kube-root-ca.crt")
            .await
            .expect("get through the other context");
    }

    /// Sync use, as the CLI tests do, with raw HTTP: auth, YAML apply bodies, Retry-After and
    /// Status bodies.
    #[test]
    fn raw_http_from_a_sync_test() {
        let fake = FakeApi::start();

        let (status, _, body) = raw_http(&fake, "GET", "/api/v1/namespaces", &[], "");
        assert_eq!(status, 401);
        assert_eq!(
            serde_json::from_str::<Value>(&body).expect("json")["kind"],
            "Status"
        );

        let yaml =
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: \"1\"\n";
        let (status, head, body) = raw_http(
            &fake,
            "PATCH",
            "/api/v1/namespaces/default/configmaps/from-yaml?fieldManager=mldeploy",
            &[AUTH, ("Content-Type", "application/apply-patch+yaml")],
            yaml,
        );
        assert_eq!(status, 201, "{body}");
        assert!(head.contains("content-type: application/json"));
        let stored = fake
            .get("v1", "ConfigMap", Some("default"), "from-yaml")
            .expect("stored");
        assert_eq!(stored["data"]["a"], "1");

        let (status, _, body) = raw_http(
            &fake,
            "PATCH",
            "/api/v1/namespaces/default/configmaps/from-yaml",
            &[AUTH, ("Content-Type", "application/apply-patch+yaml")],
            yaml,
        );
        assert_eq!(status, 400, "fieldManager is required: {body}");

        let (status, _, body) = raw_http(&fake, "GET", "/apis/nope.example.com/v1", &[AUTH], "");
        assert_eq!(status, 404);
        let body: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            (body["kind"].as_str(), body["reason"].as_str()),
            (Some("Status"), Some("NotFound"))
        );

        fake.inject(Fault::new(429).retry_after(1));
        let (status, head, body) = raw_http(&fake, "GET", "/api/v1/namespaces", &[AUTH], "");
        assert_eq!(status, 429);
        assert!(head.contains("retry-after: 1"), "{head}");
        let body: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(body["reason"], "TooManyRequests");
        assert_eq!(body["details"]["retryAfterSeconds"], 1);

        let recorded = fake.requests();
        assert_eq!(recorded.len(), 5);
        assert_eq!(recorded[1].body.as_ref().expect("body")["data"]["a"], "1");
    }

    #[test]
    fn selector_and_ssa_helpers() {
        assert_eq!(
            parse_label_selector("a=b, e").expect("parses"),
            [
                LabelReq::Eq("a".into(), "b".into()),
                LabelReq::Exists("e".into()),
            ]
        );
        for other in ["a in (b)", "c!=d", "!f"] {
            assert!(parse_label_selector(other).is_err(), "{other}");
        }
        let q = parse_query("labelSelector=app+in+%28a%2Cb%29&dryRun=All&x");
        assert_eq!(q["labelSelector"], "app in (a,b)");
        assert_eq!(q["x"], "");
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        let owners = parse_managed(&render_managed(
            &[(
                EntryKey {
                    manager: "m".into(),
                    operation: "Apply".into(),
                    subresource: String::new(),
                },
                leaves(&json!({"spec": {"replicas": 1, "args": ["a"]}, "metadata": {"labels": {"a": "b"}}})),
            )]
            .into_iter()
            .collect(),
            "apps/v1",
        ));
        let fields: Vec<String> = owners.values().flatten().map(|p| path_string(p)).collect();
        assert_eq!(
            fields,
            [".metadata.labels.a", ".spec.args", ".spec.replicas"]
        );
    }
}
