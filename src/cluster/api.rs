//! Requests to the API server, on kube's dynamic API (`Api<DynamicObject>`, `PatchParams::apply`,
//! `ListParams`, `DeleteParams`, discovery of one group-version at a time). What kube lacks is
//! added here and nowhere else: a deadline per request (retries included), retries of transport
//! failures and 500/502 with jittered backoff (kube's `RetryPolicy` in the client stack handles
//! 429/503/504 and `Retry-After`), answers checked to be the object asked for, and errors said
//! for people.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions,
};
use kube::core::GroupVersion;
use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};

use super::connect::{self, Options};
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

    fn api_resource(&self) -> ApiResource {
        let (group, version) = self
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", &self.api_version));
        ApiResource {
            group: group.to_string(),
            version: version.to_string(),
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }
}

/// One group-version's kinds, discovered once.
type Discovered = OnceCell<Arc<Vec<Resource>>>;

/// Page size of LIST requests.
const PAGE: u32 = 500;

/// A connection to one cluster.
pub struct Api {
    client: kube::Client,
    /// The kubeconfig context (or `in-cluster`).
    pub context: String,
    exec_command: Option<String>,
    opts: Options,
    /// Discovery per group-version, each fetched once even when asked for concurrently.
    resources: Mutex<HashMap<String, Arc<Discovered>>>,
    seed: AtomicU64,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("context", &self.context)
            .finish()
    }
}

/// A LIST answer: its items as JSON, and the token of the next page.
#[derive(serde::Deserialize)]
struct RawList {
    #[serde(default)]
    metadata: RawListMeta,
    #[serde(default)]
    items: Option<Vec<Value>>,
}

#[derive(serde::Deserialize, Default)]
struct RawListMeta {
    #[serde(rename = "continue", default)]
    continue_: Option<String>,
}

/// Attempts of one request in all, for transport failures and 500/502.
const ATTEMPTS: u32 = 5;

impl Api {
    /// Connects through a kubeconfig (see [`connect::connect`]).
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
        fallback: Option<connect::Fallback<'_>>,
        opts: Options,
    ) -> Result<Api, ClusterError> {
        let c = connect::connect(kubeconfig, context, fallback, opts).await?;
        let mut api = Api::from_client(c.client, &c.context, opts);
        api.exec_command = c.exec_command;
        Ok(api)
    }

    /// Wraps a client: the seam tests use with an in-memory service.
    pub fn from_client(client: kube::Client, context: &str, opts: Options) -> Api {
        Api {
            client,
            context: context.to_string(),
            exec_command: None,
            opts,
            resources: Mutex::new(HashMap::new()),
            seed: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
        }
    }

    /// The underlying client (for requests this module does not wrap, such as a service proxy).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The request options.
    pub fn options(&self) -> Options {
        self.opts
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

    /// Runs one request under the deadline, retrying what kube's policy does not: transport
    /// failures and 500/502. `Ok(Err(status))` is the server's definite answer.
    async fn call<T, F, Fut>(
        &self,
        what: &str,
        mut request: F,
    ) -> Result<Result<T, kube::core::Status>, ClusterError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let deadline = tokio::time::Instant::now() + self.opts.request_timeout;
        let mut backoff = connect::retry_base();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match tokio::time::timeout_at(deadline, request()).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(ClusterError::Timeout {
                        what: what.to_string(),
                        after: self.opts.request_timeout,
                    });
                }
            };
            let error = match result {
                Ok(v) => return Ok(Ok(v)),
                Err(kube::Error::Api(status)) if !matches!(status.code, 500 | 502) => {
                    return Ok(Err(*status));
                }
                Err(e) => e,
            };
            let transient = match &error {
                kube::Error::Api(_) | kube::Error::HyperError(_) => true,
                kube::Error::Service(_) => !connect::describe(&error, None).starts_with("TLS"),
                _ => false,
            };
            let pause = self.jitter(backoff);
            let in_time = tokio::time::Instant::now() + pause < deadline;
            if !transient || attempt >= ATTEMPTS || !in_time {
                if let kube::Error::Api(status) = error {
                    return Ok(Err(*status));
                }
                let message = connect::describe(&error, self.exec_command.as_deref());
                let message = if transient && attempt > 1 {
                    format!("{message} (after {attempt} attempts)")
                } else {
                    message
                };
                return Err(ClusterError::Transport {
                    what: what.to_string(),
                    message,
                });
            }
            if self.opts.verbosity >= 2 {
                errln!(
                    "  retry {what} in {}ms (attempt {attempt} of {ATTEMPTS}): {}",
                    pause.as_millis(),
                    connect::describe(&error, self.exec_command.as_deref())
                );
            }
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    fn api_error(what: &str, s: kube::core::Status) -> ClusterError {
        ClusterError::Api {
            what: what.to_string(),
            code: s.code,
            reason: (!s.reason.is_empty()).then(|| s.reason.clone()),
            message: super::escape(&s.message, 600),
        }
    }

    /// Sends a request built by kube's request builder for `api` and reads the answer straight
    /// into `T` (JSON values, not `DynamicObject`s: their flattened fields are buffered by serde
    /// and every answer was turned back into JSON anyway).
    fn raw<T, B>(
        &self,
        api: &kube::Api<DynamicObject>,
        verb: &'static str,
        build: B,
    ) -> impl Future<Output = Result<T, kube::Error>> + use<T, B>
    where
        T: serde::de::DeserializeOwned,
        B: FnOnce(
            &kube::core::Request,
        ) -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    {
        let request = kube::core::Request::new(api.resource_url());
        let built = build(&request).map(|mut req| {
            req.extensions_mut().insert(verb);
            req
        });
        let client = self.client.clone();
        async move {
            client
                .request::<T>(built.map_err(kube::Error::BuildRequest)?)
                .await
        }
    }

    fn dynamic(&self, r: &Resource, namespace: Option<&str>) -> kube::Api<DynamicObject> {
        let ar = r.api_resource();
        match (r.namespaced, namespace) {
            (true, Some(ns)) => kube::Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => kube::Api::all_with(self.client.clone(), &ar),
        }
    }

    /// Looks up a kind through discovery of its group-version (cached). `Ok(None)` when the
    /// server does not serve it (a missing CRD).
    pub async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<Resource>, ClusterError> {
        let cell = Arc::clone(
            self.resources
                .lock()
                .await
                .entry(api_version.to_string())
                .or_default(),
        );
        let list = cell
            .get_or_try_init(|| async {
                let gv: GroupVersion = api_version
                    .parse()
                    .map_err(|e| ClusterError::Other(format!("apiVersion {api_version}: {e}")))?;
                let what = format!("discover {api_version}");
                let found: Vec<Resource> = match self
                    .call(&what, || kube::discovery::pinned_group(&self.client, &gv))
                    .await?
                {
                    Ok(group) => group
                        .versioned_resources(&gv.version)
                        .into_iter()
                        .map(|(ar, caps)| Resource {
                            api_version: ar.api_version,
                            kind: ar.kind,
                            plural: ar.plural,
                            namespaced: caps.scope == kube::discovery::Scope::Namespaced,
                        })
                        .collect(),
                    Err(s) if s.code == 404 => Vec::new(),
                    Err(s) => return Err(Self::api_error(&what, s)),
                };
                Ok(Arc::new(found))
            })
            .await?;
        Ok(list.iter().find(|r| r.kind == kind).cloned())
    }

    /// The preferred `group/version` of an API group.
    pub async fn preferred_version(&self, group: &str) -> Result<Option<String>, ClusterError> {
        let what = format!("discover API group {group}");
        match self
            .call(&what, || kube::discovery::group(&self.client, group))
            .await
        {
            Ok(Ok(g)) => Ok(Some(format!("{group}/{}", g.preferred_version_or_latest()))),
            Ok(Err(s)) if s.code == 404 => Ok(None),
            Ok(Err(s)) => Err(Self::api_error(&what, s)),
            Err(ClusterError::Transport { message, .. })
                if message.contains("Missing Api Group") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Every namespaced kind the server can LIST (for the Namespace guard), and the
    /// group-versions that could not be discovered (an aggregated API that is down): those cannot
    /// be proven empty.
    pub async fn namespaced_listable(&self) -> Result<(Vec<Resource>, Vec<String>), ClusterError> {
        let what = "discover API groups";
        let groups = match self.call(what, || self.client.list_api_groups()).await? {
            Ok(g) => g,
            Err(s) => return Err(Self::api_error(what, s)),
        };
        let mut versions = vec!["v1".to_string()];
        versions.extend(groups.groups.iter().filter_map(|g| {
            g.preferred_version
                .as_ref()
                .or(g.versions.first())
                .map(|v| v.group_version.clone())
        }));
        let mut out = Vec::new();
        let mut unknown = Vec::new();
        for gv in versions {
            let parsed: GroupVersion = match gv.parse() {
                Ok(p) => p,
                Err(_) => continue,
            };
            let what = format!("discover {gv}");
            let group = match self
                .call(&what, || {
                    kube::discovery::pinned_group(&self.client, &parsed)
                })
                .await
            {
                Ok(Ok(g)) => g,
                Ok(Err(_)) | Err(ClusterError::Transport { .. }) => {
                    unknown.push(gv);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for (ar, caps) in group.versioned_resources(&parsed.version) {
                if caps.scope == kube::discovery::Scope::Namespaced
                    && caps.supports_operation(kube::discovery::verbs::LIST)
                {
                    out.push(Resource {
                        api_version: ar.api_version,
                        kind: ar.kind,
                        plural: ar.plural,
                        namespaced: true,
                    });
                }
            }
        }
        Ok((out, unknown))
    }

    /// Forgets discovery results (after CRDs were installed).
    pub async fn forget_discovery(&self) {
        self.resources.lock().await.clear();
    }

    /// An answer, checked to be an object of the kind asked for.
    fn checked(what: &str, r: &Resource, obj: Value) -> Result<Value, ClusterError> {
        let bad = |message: String| ClusterError::BadResponse {
            what: what.to_string(),
            message,
        };
        if !obj.is_object() {
            return Err(bad("the answer is not an object".into()));
        }
        if let Some(kind) = obj.get("kind")
            && *kind != r.kind.as_str()
        {
            return Err(bad(format!(
                "expected a {}, the server sent a {}",
                r.kind,
                kind.as_str().unwrap_or("non-string kind")
            )));
        }
        if !obj["metadata"]["name"].is_string() {
            return Err(bad("the answer has no metadata.name".into()));
        }
        Ok(obj)
    }

    /// GET one object; `None` when it does not exist.
    pub async fn get(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let what = format!("get {} {}", r.kind, display(namespace, name));
        let api = self.dynamic(r, namespace);
        let get = || self.raw::<Value, _>(&api, "get", |q| q.get(name, &Default::default()));
        match self.call(&what, get).await? {
            Ok(obj) => Ok(Some(Self::checked(&what, r, obj)?)),
            Err(s) if s.code == 404 => Ok(None),
            Err(s) => Err(Self::api_error(&what, s)),
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
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if force {
            params = params.force();
        }
        if dry_run {
            params = params.dry_run();
        }
        let verb = if dry_run { "dry-run apply" } else { "apply" };
        let what = format!("{verb} {} {}", r.kind, display(namespace, name));
        let api = self.dynamic(r, namespace);
        let patch = Patch::Apply(object);
        let send = || self.raw::<Value, _>(&api, "patch", |q| q.patch(name, &params, &patch));
        match self.call(&what, send).await? {
            Ok(obj) => Self::checked(&what, r, obj),
            Err(s) if s.code == 409 => {
                let conflicts: Vec<(String, String)> = s
                    .details
                    .as_ref()
                    .map(|d| {
                        d.causes
                            .iter()
                            .filter(|c| c.reason == "FieldManagerConflict")
                            .map(|c| (c.field.clone(), manager_of(&c.message)))
                            .collect()
                    })
                    .unwrap_or_default();
                if conflicts.is_empty() {
                    Err(Self::api_error(&what, s))
                } else {
                    Err(ClusterError::Conflict {
                        object: format!("{} {}", r.kind, display(namespace, name)),
                        conflicts,
                    })
                }
            }
            Err(s) => Err(Self::api_error(&what, s)),
        }
    }

    /// LIST objects (all pages), in a namespace or cluster-wide, optionally label-selected.
    pub async fn list(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        let what = format!(
            "list {}{}",
            r.plural,
            namespace.map(|n| format!(" in {n}")).unwrap_or_default()
        );
        let api = self.dynamic(r, namespace);
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut lp = ListParams::default().limit(PAGE);
            if !selector.is_empty() {
                lp = lp.labels(selector);
            }
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let list = || self.raw::<RawList, _>(&api, "list", |q| q.list(&lp));
            let page = match self.call(&what, list).await? {
                Ok(page) => page,
                Err(s) if s.code == 404 => return Ok(Vec::new()),
                Err(s) => return Err(Self::api_error(&what, s)),
            };
            for mut v in page.items.unwrap_or_default() {
                let Some(obj) = v.as_object_mut() else {
                    return Err(ClusterError::BadResponse {
                        what: what.clone(),
                        message: "a list item is not an object".into(),
                    });
                };
                // List items carry no type; the list's type is the resource's.
                obj.insert("apiVersion".into(), Value::from(r.api_version.as_str()));
                obj.insert("kind".into(), Value::from(r.kind.as_str()));
                items.push(v);
            }
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(items);
            }
        }
    }

    /// DELETE one object (background propagation) — only the very object `uid` names, so an
    /// object deleted and re-created by someone else since we looked is never ours to delete.
    /// A missing object is not an error.
    pub async fn delete(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
    ) -> Result<(), ClusterError> {
        let what = format!("delete {} {}", r.kind, display(namespace, name));
        let api = self.dynamic(r, namespace);
        let mut params = DeleteParams::background();
        if let Some(uid) = uid {
            params = params.preconditions(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            });
        }
        match self.call(&what, || api.delete(name, &params)).await? {
            Ok(_) => Ok(()),
            Err(s) if s.code == 404 => Ok(()),
            Err(s) => Err(Self::api_error(&what, s)),
        }
    }

    /// Events about one object, newest last.
    pub async fn events(&self, namespace: &str, name: &str) -> Result<Vec<Value>, ClusterError> {
        let what = format!("list events of {namespace}/{name}");
        let r = Resource {
            api_version: "v1".into(),
            kind: "Event".into(),
            plural: "events".into(),
            namespaced: true,
        };
        let api = self.dynamic(&r, Some(namespace));
        let lp = ListParams::default()
            .fields(&format!("involvedObject.name={name}"))
            .limit(PAGE);
        match self.call(&what, || api.list(&lp)).await? {
            Ok(list) => {
                let mut items: Vec<Value> = list
                    .items
                    .into_iter()
                    .filter_map(|o| serde_json::to_value(o).ok())
                    .collect();
                items.sort_by_key(event_time);
                Ok(items)
            }
            Err(s) if s.code == 404 => Ok(Vec::new()),
            Err(s) => Err(Self::api_error(&what, s)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_kinds_and_conflict_managers() {
        let r = Resource {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
            namespaced: true,
        };
        assert_eq!(r.group_kind(), "Deployment.apps");
        assert_eq!(r.api_resource().group, "apps");
        let ns = Resource {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            plural: "namespaces".into(),
            namespaced: false,
        };
        assert_eq!(ns.group_kind(), "Namespace");
        assert_eq!(ns.api_resource().group, "");
        assert_eq!(
            manager_of("conflict with \"kubectl\": .spec.replicas"),
            "kubectl"
        );
    }
}
