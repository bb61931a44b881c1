//! From a kubeconfig to a [`kube::Client`]: context choice, warnings about connections that expose
//! credentials, and the client stack — kube's own (auth, exec plugins, TLS, base URI) plus kube's
//! `RetryPolicy` for 429/503/504 and one layer of ours that caps response bodies and logs each
//! request under `-v`. Errors are described for people here, and never with a credential: an exec
//! plugin's failure names its command and exit status, not its environment or output.

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body_util::Limited;
use hyper_util::client::legacy::connect::HttpConnector;
use kube::client::{Body, ClientBuilder, DynBody};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tower::util::BoxService;
use tower::{BoxError, Layer, Service};

/// kube's boxed client service.
type GenericService = BoxService<Request<Body>, Response<Box<DynBody>>, BoxError>;

use super::ClusterError;

/// The largest response body mldeploy reads (a LIST is paginated far below this).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// How requests are made.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Deadline of one request, retries included.
    pub request_timeout: Duration,
    /// `-v` logs each request; `-vv` adds retry decisions.
    pub verbosity: u8,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            request_timeout: Duration::from_secs(30),
            verbosity: 0,
        }
    }
}

/// A connected client and what it connected to.
pub struct Connection {
    /// The client.
    pub client: kube::Client,
    /// The kubeconfig context (or `in-cluster`).
    pub context: String,
    /// The exec credential plugin's command, if the context uses one (for error messages).
    pub exec_command: Option<String>,
}

/// The context `infra kubeconfig --write` names for a cluster, and the name older versions used.
#[derive(Debug, Clone, Copy)]
pub struct Fallback<'a> {
    /// `mldeploy.<project>.<cluster>`.
    pub current: &'a str,
    /// `mldeploy-<project>-<cluster>`: ambiguous (`a-b`+`c` and `a`+`b-c` share it), so never
    /// used by itself.
    pub legacy: &'a str,
}

/// Connects with a kubeconfig (`--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`) and
/// a context (`context`; else the `fallback` context when the kubeconfig has it; else the
/// current one), or in-cluster when there is no kubeconfig and we run in a pod. A kubeconfig
/// that has only the legacy name of the fallback is an error with the rename to make: that
/// context may be another project's, and the current context may be any cluster.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    fallback: Option<Fallback<'_>>,
    opts: Options,
) -> Result<Connection, ClusterError> {
    let connect_error = |target: &str, message: String, hint: String| ClusterError::Connect {
        target: target.to_string(),
        message,
        hint,
    };
    let kc = match kubeconfig {
        Some(path) => Some(Kubeconfig::read_from(path).map_err(|e| {
            connect_error(
                &path.display().to_string(),
                e.to_string(),
                "check the --kubeconfig path".into(),
            )
        })?),
        None => Kubeconfig::read().ok(),
    };
    let (config, name, exec_command) = match kc {
        Some(kc) => {
            let has = |n: &str| kc.contexts.iter().any(|c| c.name == n);
            if context.is_none()
                && let Some(f) = fallback
                && !has(f.current)
                && has(f.legacy)
            {
                return Err(connect_error(
                    &format!("context {}", f.legacy),
                    format!(
                        "the kubeconfig has the context `{}` an older mldeploy wrote, a name another project can share",
                        f.legacy
                    ),
                    format!(
                        "if it is this project's cluster: kubectl config rename-context {} {} (or pass --context)",
                        f.legacy, f.current
                    ),
                ));
            }
            let name = context
                .map(str::to_string)
                .or_else(|| {
                    fallback
                        .map(|f| f.current)
                        .filter(|f| has(f))
                        .map(str::to_string)
                })
                .or_else(|| kc.current_context.clone())
                .ok_or_else(|| {
                    connect_error(
                        "kubeconfig",
                        "no context given and no current-context set".into(),
                        "pass --context NAME".into(),
                    )
                })?;
            let Some(named) = kc.contexts.iter().find(|c| c.name == name) else {
                let names: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
                let hint = match crate::suggest::closest(&name, names.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`? contexts: {}", names.join(", ")),
                    None => format!("contexts in the kubeconfig: {}", names.join(", ")),
                };
                return Err(connect_error(
                    &format!("context {name}"),
                    "no such context in the kubeconfig".into(),
                    hint,
                ));
            };
            let (cluster_name, user_name) = named
                .context
                .as_ref()
                .map(|c| (c.cluster.clone(), c.user.clone().unwrap_or_default()))
                .unwrap_or_default();
            let cluster = kc
                .clusters
                .iter()
                .find(|c| c.name == cluster_name)
                .and_then(|c| c.cluster.as_ref());
            let auth = kc
                .auth_infos
                .iter()
                .find(|a| a.name == user_name)
                .and_then(|a| a.auth_info.as_ref());
            let exec_command = auth
                .and_then(|a| a.exec.as_ref())
                .and_then(|e| e.command.clone());
            if let Some(cluster) = cluster {
                for w in connection_warnings(
                    &name,
                    cluster.server.as_deref().unwrap_or(""),
                    cluster.insecure_skip_tls_verify == Some(true),
                    auth.is_some_and(|a| {
                        a.token.is_some()
                            || a.token_file.is_some()
                            || a.exec.is_some()
                            || a.password.is_some()
                            || a.auth_provider.is_some()
                    }),
                ) {
                    errln!("warning: {w}");
                }
            }
            let options = KubeConfigOptions {
                context: Some(name.clone()),
                ..KubeConfigOptions::default()
            };
            let config = kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| {
                    let e = kube::Error::InferKubeconfig(e);
                    connect_error(
                        &format!("context {name}"),
                        describe(&e, exec_command.as_deref()),
                        exec_hint(exec_command.as_deref()),
                    )
                })?;
            (config, name, exec_command)
        }
        None => match kube::Config::incluster() {
            Ok(c) => (c, "in-cluster".to_string(), None),
            Err(_) => {
                return Err(connect_error(
                    "a cluster",
                    "no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a pod"
                        .into(),
                    "pass --kubeconfig PATH, set KUBECONFIG, or run `mldeploy infra kubeconfig --write`"
                        .into(),
                ));
            }
        },
    };
    let client = client(config, opts).map_err(|e| {
        connect_error(
            &format!("context {name}"),
            describe(&e, exec_command.as_deref()),
            exec_hint(exec_command.as_deref()),
        )
    })?;
    Ok(Connection {
        client,
        context: name,
        exec_command,
    })
}

/// What is unsafe about a connection, said before any request is made.
pub fn connection_warnings(
    context: &str,
    server: &str,
    insecure: bool,
    has_credentials: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    if insecure {
        out.push(format!(
            "context {context}: insecure-skip-tls-verify is set: the API server's identity is not checked, \
             so anyone on the network path can read and change what mldeploy sends"
        ));
    }
    if server.starts_with("http://") && has_credentials {
        out.push(format!(
            "context {context}: credentials are sent over plain HTTP to {server}: use https://"
        ));
    }
    out
}

/// The client stack: kube's layers (base URI, auth and exec plugins, extra headers, TLS from the
/// kubeconfig) over a connector that offers HTTP/2 as well as HTTP/1.1, without kube's default
/// retry (ours below is server-aware and bounded), plus the body cap and request log.
pub fn client(mut config: kube::Config, opts: Options) -> Result<kube::Client, kube::Error> {
    config.default_retry = false;
    config.connect_timeout = Some(Duration::from_secs(10));
    // The per-request deadline (retries included) is enforced above the client, and is the one
    // that fires: a read timeout of the same length would race it with a vaguer message.
    config.read_timeout = None;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(concat!("mldeploy/", env!("CARGO_PKG_VERSION"))),
    ));
    let retry =
        kube::client::retry::RetryPolicy::new(retry_base(), Duration::from_secs(10), 5, true)
            .map_err(|e| kube::Error::Service(Box::new(e)))?;
    let default_ns = config.default_namespace.clone();
    // Retrying needs a service it can clone: a buffer in front of the stack.
    Ok(ClientBuilder::new(service(&config)?, default_ns)
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::retry::RetryLayer::new(retry))
        .with_layer(&GuardLayer {
            limit: MAX_BODY,
            verbosity: opts.verbosity,
        })
        .build())
}

/// kube's service stack (`ClientBuilder::try_from` in kube-client 5, less its tracing and
/// default retry) over kube's rustls configuration, with ALPN offering `h2` before `http/1.1`:
/// kube 5 enables HTTP/1.1 only, so 16 requests in flight meant 16 connections and 16 TLS
/// handshakes (each ~4 ms of API-server CPU and, at the start, a wait on the critical path).
/// Over HTTP/2 one connection carries them all; a server that does not offer `h2` (or an
/// `http://` URL) gets HTTP/1.1 as before.
fn service(config: &kube::Config) -> Result<GenericService, kube::Error> {
    use kube::client::ConfigExt as _;
    use tower::ServiceExt as _;
    if let Some(proxy_url) = &config.proxy_url {
        // mldeploy builds kube without proxy support; kube's own builder says so in its words.
        return Err(ClientBuilder::try_from(config.clone()).err().unwrap_or(
            kube::Error::ProxyProtocolUnsupported {
                proxy_url: Box::new(proxy_url.clone()),
            },
        ));
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    // HTTP/2 writes a request's HEADERS and DATA frames separately: with Nagle's algorithm the
    // DATA waits for the server's delayed ACK (40 ms) whenever nothing else is in flight — the
    // Namespace, the parent, any lone apply.
    http.set_nodelay(true);
    let mut tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name =
            tokio_rustls::rustls::pki_types::ServerName::try_from(name.clone()).map_err(|e| {
                kube::Error::RustlsTls(kube::client::RustlsTlsError::InvalidServerName(e))
            })?;
        tls = tls.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    let connector = tls.enable_http1().enable_http2().wrap_connector(http);
    let client: hyper_util::client::legacy::Client<_, Body> =
        hyper_util::client::legacy::Builder::new(hyper_util::rt::TokioExecutor::new())
            .build(connector);
    let stack = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(client)
        .map_response(|r: Response<hyper::body::Incoming>| {
            r.map(|body| {
                Box::new(http_body_util::BodyExt::map_err(body, BoxError::from)) as Box<DynBody>
            })
        });
    Ok(stack.boxed())
}

/// First backoff of a retry (`MLDEPLOY_RETRY_BASE_MS` shortens it for tests and the impatient).
pub fn retry_base() -> Duration {
    Duration::from_millis(
        std::env::var("MLDEPLOY_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(250),
    )
}

/// Caps every response body at `limit` bytes and, with `-v`, logs method, path, status and
/// duration of each request (never headers or bodies).
#[derive(Debug, Clone, Copy)]
pub struct GuardLayer {
    /// Largest body read.
    pub limit: usize,
    /// `-v` level.
    pub verbosity: u8,
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;
    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            limit: self.limit,
            verbosity: self.verbosity,
        }
    }
}

/// The service [`GuardLayer`] makes.
#[derive(Debug, Clone)]
pub struct Guard<S> {
    inner: S,
    limit: usize,
    verbosity: u8,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<Body>> for Guard<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Limited<B>>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Body>) -> BoxFuture<Result<Self::Response, BoxError>> {
        let method = req.method().clone();
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
        let (limit, verbosity) = (self.limit, self.verbosity);
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await.map_err(Into::into);
            if verbosity >= 1 {
                let outcome = match &result {
                    Ok(r) => r.status().as_u16().to_string(),
                    Err(_) => "failed".to_string(),
                };
                errln!(
                    "  {method} {path} {outcome} {}ms",
                    started.elapsed().as_millis()
                );
            }
            let response = result?;
            let too_big = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|n| n > limit as u64);
            if too_big {
                return Err(BoxError::from(BodyTooLarge(limit)));
            }
            Ok(response.map(|b| Limited::new(b, limit)))
        })
    }
}

/// A response larger than [`MAX_BODY`].
#[derive(Debug, thiserror::Error)]
#[error("the response is larger than {} MiB", .0 / (1024 * 1024))]
pub struct BodyTooLarge(pub usize);

/// What to do when connecting failed.
pub fn exec_hint(exec_command: Option<&str>) -> String {
    let plugins = [
        (
            "gke-gcloud-auth-plugin",
            "install it: gcloud components install gke-gcloud-auth-plugin",
        ),
        (
            "aws",
            "install the AWS CLI and log in (aws sso login / aws configure)",
        ),
        ("kubelogin", "install kubelogin: az aks install-cli"),
    ];
    if let Some(cmd) = exec_command {
        for (plugin, hint) in plugins {
            if cmd.contains(plugin) {
                return format!("the credential plugin `{plugin}` failed: {hint}");
            }
        }
    }
    "check the kubeconfig (kubectl config get-contexts) or pass --kubeconfig / --context".into()
}

/// The chain of causes of an error, each once.
fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !out.iter().any(|o| o.contains(&s)) {
            out.push(s);
        }
        cur = err.source();
    }
    out
}

/// A kube error for people: TLS failures by cause, exec plugins without their secrets, bodies by
/// size, and the rest with their chain of causes.
pub fn describe(e: &kube::Error, exec_command: Option<&str>) -> String {
    use kube::client::AuthError as A;
    let plugin = exec_command.unwrap_or("the credential plugin");
    let auth = match e {
        kube::Error::Auth(a) => Some(a),
        _ => None,
    };
    if let Some(a) = auth {
        return match a {
            A::AuthExecRun { out, .. } => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let stderr: String = stderr
                    .trim()
                    .lines()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" / ");
                let stderr = crate::cluster::escape(&stderr, 400);
                format!(
                    "the kubeconfig's credential plugin `{plugin}` failed ({}){}",
                    out.status,
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!(": {stderr}")
                    }
                )
            }
            A::AuthExecStart(io) => {
                format!("could not start the kubeconfig's credential plugin `{plugin}`: {io}")
            }
            A::AuthExecParse(_) | A::AuthExec(_) | A::AuthExecSerialize(_) => format!(
                "the kubeconfig's credential plugin `{plugin}` did not print a valid ExecCredential"
            ),
            other => format!("authentication failed: {}", first_line(&other.to_string())),
        };
    }
    let causes = chain(e);
    let all = causes.join(": ");
    let lower = all.to_lowercase();
    if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
        return "TLS: the API server's certificate is signed by an authority this kubeconfig does not \
                trust (check certificate-authority-data)"
            .into();
    }
    if lower.contains("notvalidforname") || lower.contains("not valid for name") {
        return "TLS: the API server's certificate is not valid for this host name (check the \
                cluster's server URL or tls-server-name)"
            .into();
    }
    if lower.contains("expired") && lower.contains("certificate") {
        return "TLS: the API server's certificate has expired (or this machine's clock is wrong)"
            .into();
    }
    if lower.contains("invalid peer certificate") || lower.contains("invalidcertificate") {
        return format!(
            "TLS: the API server's certificate was refused: {}",
            first_line(&all)
        );
    }
    if let Some(big) = find_cause::<BodyTooLarge>(e) {
        return big.to_string();
    }
    if lower.contains("length limit exceeded") {
        return BodyTooLarge(MAX_BODY).to_string();
    }
    match e {
        kube::Error::SerdeError(_) => {
            "the API server answered with something that is not a Kubernetes object".into()
        }
        kube::Error::Api(s) => s.message.clone(),
        _ => crate::cluster::escape(
            &causes
                .iter()
                .map(|c| {
                    c.trim_start_matches("ServiceError: ")
                        .trim_start_matches("HyperError: ")
                })
                .collect::<Vec<_>>()
                .join(": "),
            600,
        ),
    }
}

fn first_line(s: &str) -> String {
    crate::cluster::escape(s.lines().next().unwrap_or(""), 300)
}

fn find_cause<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_about_unsafe_connections() {
        assert!(connection_warnings("c", "https://x", false, true).is_empty());
        let w = connection_warnings("c", "https://x", true, true);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("insecure-skip-tls-verify"), "{w:?}");
        let w = connection_warnings("c", "http://x:8080", false, true);
        assert!(w[0].contains("plain HTTP"), "{w:?}");
        assert!(connection_warnings("c", "http://x:8080", false, false).is_empty());
    }

    #[test]
    fn exec_failures_never_show_output_or_environment() {
        use std::os::unix::process::ExitStatusExt as _;
        let out = std::process::Output {
            status: std::process::ExitStatus::from_raw(256),
            stdout: b"{\"status\":{\"token\":\"SECRET-TOKEN\"}}".to_vec(),
            stderr: b"login required\n".to_vec(),
        };
        let e = kube::Error::Auth(kube::client::AuthError::AuthExecRun {
            cmd: "API_KEY=\"SECRET-ENV\" \"plugin\"".into(),
            out: Box::new(out),
        });
        let text = describe(&e, Some("plugin"));
        assert!(!text.contains("SECRET"), "{text}");
        assert!(
            text.contains("`plugin`") && text.contains("login required"),
            "{text}"
        );
    }
}
