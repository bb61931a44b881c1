//! Port-forward mode of `mldeploy test` (`--port-forward`): load that the API server's service
//! proxy should not carry goes to one ready pod behind the model's Service instead, through
//! kube's `portforward`. The load generator needs plain connections, so a listener on
//! 127.0.0.1 bridges each accepted connection to a port-forward stream of its own; the bridge
//! lives as long as the endpoint that uses it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ListParams;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};

use super::endpoint::ServiceRef;

/// How long opening one port-forward stream (a WebSocket through the API server) may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of the lookups that pick the pod.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The pod a Service's traffic is forwarded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Pod name.
    pub pod: String,
    /// The pod's port behind the Service port.
    pub port: u16,
}

/// A running bridge: 127.0.0.1:port → a pod's port. Dropping it closes the listener and every
/// bridged connection.
#[derive(Debug)]
pub struct Forward {
    /// The local address to connect to.
    pub addr: SocketAddr,
    /// Where it leads.
    pub target: Target,
    /// The last error a stream reported (the pod's port refused, the pod went away).
    errors: Arc<std::sync::Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Forward {
    /// The last error a port-forward stream reported, for the message of a failed request.
    pub fn last_error(&self) -> Option<String> {
        self.errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        // The accept loop owns the bridges (a JoinSet): aborting it aborts them all.
        self.task.abort();
    }
}

/// Why a Service cannot be forwarded to.
fn no_pod(svc: &ServiceRef, why: &str) -> String {
    format!(
        "cannot port-forward to service {}/{}:{}: {why}",
        svc.namespace, svc.name, svc.port
    )
}

async fn within<T, E: std::fmt::Display>(
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(LOOKUP_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!(
            "{what}: no answer within {}s",
            LOOKUP_TIMEOUT.as_secs()
        )),
    }
}

/// Picks a ready pod behind `svc` and the pod port its Service port leads to: the Service's
/// port entry gives the port's name, the EndpointSlices of the Service give ready pods and
/// the resolved number (a named `targetPort` included). The first ready pod by name, so the
/// choice is stable.
pub async fn pick_pod(client: &kube::Client, svc: &ServiceRef) -> Result<Target, String> {
    let services: kube::Api<Service> = kube::Api::namespaced(client.clone(), &svc.namespace);
    let service = within("reading the Service", services.get_opt(&svc.name))
        .await
        .map_err(|e| no_pod(svc, &e))?
        .ok_or_else(|| {
            no_pod(
                svc,
                "the Service does not exist: is the model applied to this environment (`mldeploy status`)?",
            )
        })?;
    let spec = service.spec.unwrap_or_default();
    if spec.type_.as_deref() == Some("ExternalName") {
        return Err(no_pod(
            svc,
            "it is an ExternalName Service (KServe Serverless): it has no pods of its own; use --url with the ingress address",
        ));
    }
    let entry = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .find(|p| u16::try_from(p.port).ok() == Some(svc.port))
        .ok_or_else(|| no_pod(svc, &format!("the Service has no port {}", svc.port)))?;
    let port_name = entry.name.clone().unwrap_or_default();
    let slices: kube::Api<EndpointSlice> = kube::Api::namespaced(client.clone(), &svc.namespace);
    let params = ListParams::default().labels(&format!("kubernetes.io/service-name={}", svc.name));
    let slices = within("listing the Service's EndpointSlices", slices.list(&params))
        .await
        .map_err(|e| no_pod(svc, &e))?;
    let mut ready: Vec<Target> = Vec::new();
    for slice in slices.items {
        // The slice's port of the same name is the number the Service port resolves to.
        let number = slice
            .ports
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.name.clone().unwrap_or_default() == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
            .or(match &entry.target_port {
                Some(IntOrString::Int(n)) => u16::try_from(*n).ok(),
                Some(IntOrString::String(_)) => None,
                None => Some(svc.port),
            });
        let Some(number) = number else { continue };
        for ep in slice.endpoints {
            let is_ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            let pod = ep
                .target_ref
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name);
            if let (true, Some(pod)) = (is_ready, pod) {
                ready.push(Target { pod, port: number });
            }
        }
    }
    ready.sort_by(|a, b| a.pod.cmp(&b.pod));
    ready.into_iter().next().ok_or_else(|| {
        no_pod(
            svc,
            "the Service has no ready pods (the model is still starting or crashing: see `mldeploy status` and the pods' logs)",
        )
    })
}

/// Starts the bridge to `target` in `namespace` on 127.0.0.1 (a free port).
pub async fn start(
    client: kube::Client,
    namespace: &str,
    target: Target,
) -> Result<Forward, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1 for the port-forward: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("port-forward listener: {e}"))?;
    let pods: kube::Api<Pod> = kube::Api::namespaced(client, namespace);
    let errors = Arc::new(std::sync::Mutex::new(None));
    let shared = Arc::new((pods, target.clone(), errors.clone()));
    let task = tokio::spawn(async move {
        let mut bridges = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((local, _)) = accepted else { continue };
                    let _ = local.set_nodelay(true);
                    let shared = shared.clone();
                    bridges.spawn(async move { bridge(&shared.0, &shared.1, &shared.2, local).await });
                }
                // Reap finished bridges so the set does not grow with every connection.
                Some(_) = bridges.join_next(), if !bridges.is_empty() => {}
            }
        }
    });
    Ok(Forward {
        addr,
        target,
        errors,
        task,
    })
}

/// Bridges one local connection to a new port-forward stream. When the stream cannot be
/// opened, the local side gets an HTTP 502 that says why, so the test reports the cause
/// rather than a closed connection.
async fn bridge(
    pods: &kube::Api<Pod>,
    target: &Target,
    errors: &std::sync::Mutex<Option<String>>,
    mut local: tokio::net::TcpStream,
) {
    let record = |e: String| {
        *errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
    };
    let opened = tokio::time::timeout(OPEN_TIMEOUT, pods.portforward(&target.pod, &[target.port]))
        .await
        .map_err(|_| format!("no answer within {}s", OPEN_TIMEOUT.as_secs()))
        .and_then(|r| r.map_err(|e| e.to_string()));
    let mut forwarder = match opened {
        Ok(f) => f,
        Err(e) => {
            let why = format!("port-forward to pod {}:{}: {e}", target.pod, target.port);
            let _ = local.write_all(bad_gateway(&why).as_bytes()).await;
            record(why);
            return;
        }
    };
    let (Some(remote), Some(error)) = (
        forwarder.take_stream(target.port),
        forwarder.take_error(target.port),
    ) else {
        return;
    };
    // The error channel speaks when the pod's port cannot be reached; the stream then ends
    // and the request fails as a closed connection, so keep the reason for its message.
    // Recorded inside the future, before the select drops the local connection: the client
    // must find the reason as soon as it sees the connection close.
    let watch = async {
        match error.await {
            Some(e) => record(format!(
                "port-forward to pod {}:{}: {e}",
                target.pod, target.port
            )),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        () = watch => {}
        () = splice(local, remote) => {}
    }
    forwarder.abort();
}

/// Copies both ways until either side ends: a client that closed its connection wants no more
/// answer, and a pod that closed its side has none to give.
pub async fn splice<A, B>(a: A, b: B)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    tokio::select! {
        _ = tokio::io::copy(&mut ar, &mut bw) => {}
        _ = tokio::io::copy(&mut br, &mut aw) => {}
    }
    let _ = aw.shutdown().await;
    let _ = bw.shutdown().await;
}

fn bad_gateway(why: &str) -> String {
    let body = serde_json::json!({ "error": why }).to_string();
    format!(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splice_copies_both_ways_and_ends_with_either_side() {
        let (a, mut a_peer) = tokio::io::duplex(64);
        let (b, mut b_peer) = tokio::io::duplex(64);
        let task = tokio::spawn(splice(a, b));
        use tokio::io::AsyncReadExt as _;
        a_peer.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        b_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        b_peer.write_all(b"pong").await.unwrap();
        a_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        drop(a_peer);
        task.await.unwrap();
        // The other side sees the end too.
        assert_eq!(b_peer.read(&mut buf).await.unwrap(), 0);
    }

    #[test]
    fn a_failed_forward_answers_502_with_the_reason() {
        let r = bad_gateway("port-forward to pod p:80: refused");
        assert!(r.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
        let body = r.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(
            r.lines()
                .find(|l| l.starts_with("content-length"))
                .unwrap()
                .trim_end(),
            format!("content-length: {}", body.len())
        );
        assert!(body.contains("refused"));
    }
}
