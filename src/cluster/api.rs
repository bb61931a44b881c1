//! REST access to the API server: connection from kubeconfig (contexts, exec credential plugins,
//! in-cluster), discovery of kinds, and every request with bounded retries (429 honouring
//! Retry-After, 5xx, connection errors) and exponential backoff with jitter.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, Request, StatusCode};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use tokio::sync::Mutex;

use super::{ClusterError, FIELD_MANAGER};

/// What the API server says about a resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `group/version` (`v1` for the core group).
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Plural name used in URLs.
    pub plural: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

impl Resource {
    /// The group (empty for core).
    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    /// `Kind.group` as ApplySets write it (`Deployment.apps`, `Service`).
    pub fn group_kind(&self) -> String {
        match self.group() {
            "" => self.kind.clone(),
            g => format!("{}.{g}", self.kind),
        }
    }

    fn base(&self) -> String {
        if self.api_version.contains('/') {
            format!("/apis/{}", self.api_version)
        } else {
            format!("/api/{}", self.api_version)
        }
    }

    /// The collection URL, in a namespace or cluster-wide.
    pub fn collection(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}/namespaces/{ns}/{}", self.base(), self.plural),
            _ => format!("{}/{}", self.base(), self.plural),
        }
    }

    /// One object's URL.
    pub fn object(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{name}", self.collection(namespace))
    }
}

/// Retry policy for transient failures.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubled each time, with jitter.
    pub base: Duration,
    /// Longest single wait.
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        // MLDEPLOY_RETRY_BASE_MS lets tests (and impatient users) shorten backoff.
        let base_ms = std::env::var("MLDEPLOY_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(250);
        Retry {
            attempts: 6,
            base: Duration::from_millis(base_ms),
            max: Duration::from_secs(10),
        }
    }
}

/// A refused request, as the API server's `Status` describes it.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// HTTP status.
    pub code: u16,
    /// `reason` (NotFound, Conflict, …).
    pub reason: Option<String>,
    /// Message.
    pub message: String,
    /// `details.causes` as (field, message).
    pub causes: Vec<(String, String)>,
}

/// A connection to one cluster.
pub struct Api {
    client: kube::Client,
    /// The kubeconfig context (or `in-cluster`).
    pub context: String,
    retry: Retry,
    resources: Mutex<HashMap<String, Arc<Vec<Resource>>>>,
    cancel: Arc<AtomicBool>,
    seed: AtomicU64,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("context", &self.context)
            .finish()
    }
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn exec_hint(message: &str) -> String {
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
    for (plugin, hint) in plugins {
        if message.contains(plugin) {
            return format!("the credential plugin `{plugin}` failed: {hint}");
        }
    }
    "check the kubeconfig (kubectl config get-contexts) or pass --kubeconfig / --context".into()
}

impl Api {
    /// Connects with a kubeconfig (`--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`) and
    /// a context (`context`; else `fallback` when the kubeconfig has it — the name `infra
    /// kubeconfig` writes; else the current one), or in-cluster when there is no kubeconfig and we
    /// run in a pod.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
        fallback: Option<&str>,
    ) -> Result<Api, ClusterError> {
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
        let (mut config, name) = match kc {
            Some(kc) => {
                let name = context
                    .map(str::to_string)
                    .or_else(|| {
                        fallback
                            .filter(|f| kc.contexts.iter().any(|c| c.name == *f))
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
                if !kc.contexts.iter().any(|c| c.name == name) {
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
                }
                let options = KubeConfigOptions {
                    context: Some(name.clone()),
                    ..KubeConfigOptions::default()
                };
                let config = kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(|e| {
                        connect_error(
                            &format!("context {name}"),
                            e.to_string(),
                            exec_hint(&e.to_string()),
                        )
                    })?;
                (config, name)
            }
            None => match kube::Config::incluster() {
                Ok(c) => (c, "in-cluster".to_string()),
                Err(_) => {
                    return Err(connect_error(
                        "a cluster",
                        "no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a pod".into(),
                        "pass --kubeconfig PATH, set KUBECONFIG, or run `mldeploy infra kubeconfig --write`".into(),
                    ));
                }
            },
        };
        config.default_retry = false;
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(Duration::from_secs(60));
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("mldeploy/", env!("CARGO_PKG_VERSION"))),
        ));
        let client = kube::Client::try_from(config).map_err(|e| {
            connect_error(
                &format!("context {name}"),
                e.to_string(),
                exec_hint(&e.to_string()),
            )
        })?;
        Ok(Api {
            client,
            context: name,
            retry: Retry::default(),
            resources: Mutex::new(HashMap::new()),
            cancel: Arc::new(AtomicBool::new(false)),
            seed: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
        })
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The kube client of this connection (for requests outside this layer, such as the
    /// service proxy of `mldeploy test`).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A flag that, once set, stops further requests (Ctrl-C).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.cancel)
    }

    /// Full jitter: a random wait in [backoff/2, backoff].
    fn jitter(&self, backoff: Duration) -> Duration {
        let mut x = self
            .seed
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        let frac = (x % 1000) as f64 / 1000.0;
        backoff.mul_f64(0.5 + frac / 2.0)
    }

    /// Sends a request with retries. `Ok(Err(refusal))` is a definite answer from the server
    /// (4xx, or 5xx after retries); `Err` is a transport failure or cancellation.
    async fn send(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Result<Value, Refusal>, ClusterError> {
        let mut backoff = self.retry.base;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if self.cancel.load(Ordering::SeqCst) {
                return Err(ClusterError::Cancelled {
                    what: what.to_string(),
                });
            }
            let mut builder = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(http::header::ACCEPT, "application/json");
            if let Some((content_type, _)) = &body {
                builder = builder.header(http::header::CONTENT_TYPE, *content_type);
            }
            let request = builder
                .body(kube::client::Body::from(
                    body.as_ref().map(|(_, b)| b.clone()).unwrap_or_default(),
                ))
                .map_err(|e| ClusterError::Other(format!("{what}: {e}")))?;
            let last = attempt >= self.retry.attempts;
            // The request and its body: any failure here is the network's, and retried.
            let answer = async {
                let response = self.client.send(request).await.map_err(|e| e.to_string())?;
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs);
                let bytes = response
                    .into_body()
                    .collect_bytes()
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((status, retry_after, bytes))
            }
            .await;
            let retry_after = match answer {
                Err(message) if last => {
                    return Err(ClusterError::Transport {
                        what: what.to_string(),
                        message: format!("{message} (after {attempt} attempts)"),
                    });
                }
                Err(_) => None,
                Ok((status, retry_after, bytes)) => {
                    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    if status.is_success() {
                        return Ok(Ok(value));
                    }
                    let transient =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !transient || last {
                        return Ok(Err(refusal(status.as_u16(), &value, &bytes)));
                    }
                    retry_after
                }
            };
            // The server may say when (Retry-After: no jitter needed, but never wait forever);
            // otherwise exponential backoff with jitter.
            let pause = retry_after
                .map_or_else(|| self.jitter(backoff), |w| w.min(Duration::from_secs(30)));
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(self.retry.max);
        }
    }

    fn api_error(what: &str, r: Refusal) -> ClusterError {
        ClusterError::Api {
            what: what.to_string(),
            code: r.code,
            reason: r.reason,
            message: r.message,
        }
    }

    /// Looks up a kind through discovery (cached per group/version). `Ok(None)` when the server
    /// does not serve it (a missing CRD).
    pub async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<Resource>, ClusterError> {
        let list = {
            let cache = self.resources.lock().await;
            cache.get(api_version).cloned()
        };
        let list = match list {
            Some(l) => l,
            None => {
                let path = if api_version.contains('/') {
                    format!("/apis/{api_version}")
                } else {
                    format!("/api/{api_version}")
                };
                let what = format!("discover {api_version}");
                let found = match self.send(&what, Method::GET, &path, None).await? {
                    Ok(v) => v["resources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|r| !r["name"].as_str().unwrap_or("").contains('/'))
                        .filter_map(|r| {
                            Some(Resource {
                                api_version: api_version.to_string(),
                                kind: r["kind"].as_str()?.to_string(),
                                plural: r["name"].as_str()?.to_string(),
                                namespaced: r["namespaced"].as_bool().unwrap_or(true),
                            })
                        })
                        .collect(),
                    Err(r) if r.code == 404 => Vec::new(),
                    Err(r) => return Err(Self::api_error(&what, r)),
                };
                let found = Arc::new(found);
                self.resources
                    .lock()
                    .await
                    .insert(api_version.to_string(), Arc::clone(&found));
                found
            }
        };
        Ok(list.iter().find(|r| r.kind == kind).cloned())
    }

    /// The preferred `group/version` of an API group, from `/apis`.
    pub async fn preferred_version(&self, group: &str) -> Result<Option<String>, ClusterError> {
        let what = "discover API groups";
        match self.send(what, Method::GET, "/apis", None).await? {
            Ok(v) => Ok(v["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|g| g["name"] == group)
                .and_then(|g| g["preferredVersion"]["groupVersion"].as_str())
                .map(str::to_string)),
            Err(e) => Err(Self::api_error(what, e)),
        }
    }

    /// Forgets discovery results (after CRDs were installed).
    pub async fn forget_discovery(&self) {
        self.resources.lock().await.clear();
    }

    /// GET one object; `None` when it does not exist.
    pub async fn get(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let what = format!("get {} {}", r.kind, display(namespace, name));
        match self
            .send(&what, Method::GET, &r.object(namespace, name), None)
            .await?
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(Self::api_error(&what, e)),
        }
    }

    /// Server-side apply (optionally as a dry run, optionally forcing ownership of conflicts).
    pub async fn apply(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        object: &Value,
        force: bool,
        dry_run: bool,
    ) -> Result<Value, ClusterError> {
        let mut path = format!("{}?fieldManager={FIELD_MANAGER}", r.object(namespace, name));
        if force {
            path.push_str("&force=true");
        }
        if dry_run {
            path.push_str("&dryRun=All");
        }
        let verb = if dry_run { "dry-run apply" } else { "apply" };
        let what = format!("{verb} {} {}", r.kind, display(namespace, name));
        let body = serde_json::to_vec(object).map_err(|e| ClusterError::Other(e.to_string()))?;
        match self
            .send(
                &what,
                Method::PATCH,
                &path,
                Some(("application/apply-patch+yaml", body)),
            )
            .await?
        {
            Ok(v) => Ok(v),
            Err(e) if e.code == 409 && !e.causes.is_empty() => Err(ClusterError::Conflict {
                object: format!("{} {}", r.kind, display(namespace, name)),
                conflicts: e
                    .causes
                    .iter()
                    .map(|(field, message)| (field.clone(), manager_of(message)))
                    .collect(),
            }),
            Err(e) => Err(Self::api_error(&what, e)),
        }
    }

    /// LIST objects with a label selector, in a namespace or cluster-wide.
    pub async fn list(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        let path = format!(
            "{}?labelSelector={}",
            r.collection(namespace),
            encode(selector)
        );
        let what = format!(
            "list {} {}",
            r.plural,
            namespace.map(|n| format!("in {n}")).unwrap_or_default()
        );
        match self.send(&what, Method::GET, &path, None).await? {
            Ok(v) => Ok(v["items"].as_array().cloned().unwrap_or_default()),
            Err(e) if e.code == 404 => Ok(Vec::new()),
            Err(e) => Err(Self::api_error(&what, e)),
        }
    }

    /// DELETE one object (background propagation); a missing object is not an error.
    pub async fn delete(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ClusterError> {
        let what = format!("delete {} {}", r.kind, display(namespace, name));
        let body = serde_json::to_vec(&serde_json::json!({
            "apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"
        }))
        .map_err(|e| ClusterError::Other(e.to_string()))?;
        match self
            .send(
                &what,
                Method::DELETE,
                &r.object(namespace, name),
                Some(("application/json", body)),
            )
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(Self::api_error(&what, e)),
        }
    }

    /// Events about one object, newest last.
    pub async fn events(&self, namespace: &str, name: &str) -> Result<Vec<Value>, ClusterError> {
        let path = format!(
            "/api/v1/namespaces/{namespace}/events?fieldSelector={}",
            encode(&format!("involvedObject.name={name}"))
        );
        let what = format!("list events of {namespace}/{name}");
        match self.send(&what, Method::GET, &path, None).await? {
            Ok(v) => {
                let mut items = v["items"].as_array().cloned().unwrap_or_default();
                items.sort_by_key(event_time);
                Ok(items)
            }
            Err(e) if e.code == 404 => Ok(Vec::new()),
            Err(e) => Err(Self::api_error(&what, e)),
        }
    }
}

fn event_time(e: &Value) -> String {
    ["lastTimestamp", "eventTime", "firstTimestamp"]
        .iter()
        .find_map(|k| e[k].as_str())
        .unwrap_or("")
        .to_string()
}

/// `namespace/name` or `name`.
pub fn display(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// `conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas` → the manager.
fn manager_of(message: &str) -> String {
    message
        .split('"')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| message.to_string())
}

fn refusal(code: u16, body: &Value, raw: &[u8]) -> Refusal {
    let message = body["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(raw).chars().take(300).collect());
    let causes = body["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "FieldManagerConflict" || c["reason"] == "FieldManagerConflict")
        .map(|c| {
            (
                c["field"].as_str().unwrap_or("").to_string(),
                c["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    Refusal {
        code,
        reason: body["reason"].as_str().map(str::to_string),
        message,
        causes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_group_kinds() {
        let r = Resource {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
            namespaced: true,
        };
        assert_eq!(
            r.object(Some("ns"), "x"),
            "/apis/apps/v1/namespaces/ns/deployments/x"
        );
        assert_eq!(r.group_kind(), "Deployment.apps");
        let ns = Resource {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            plural: "namespaces".into(),
            namespaced: false,
        };
        assert_eq!(ns.object(Some("ignored"), "x"), "/api/v1/namespaces/x");
        assert_eq!(ns.group_kind(), "Namespace");
        assert_eq!(encode("a=b,c in (d)"), "a%3Db%2Cc%20in%20%28d%29");
        assert_eq!(
            manager_of("conflict with \"kubectl\": .spec.replicas"),
            "kubectl"
        );
    }
}
