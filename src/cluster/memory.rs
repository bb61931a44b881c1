//! The test seam below HTTP: an in-memory API server as a `tower` service, behind a real
//! [`kube::Client`], so plan, apply, prune and wait are unit-tested through kube's own request
//! building and response parsing without a socket. It keeps what the cluster logic depends on —
//! discovery, label-selected and paginated LISTs, server-side apply with our field manager's
//! `managedFields` entry and `generation`, field-manager conflicts and `force`, dry runs, uid
//! preconditions on delete — and records every request so tests can count them. Faults (an
//! error status or a broken connection) and a delay per request can be injected.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use serde_json::{Value, json};

/// A kind the memory server serves: (apiVersion, kind, plural, namespaced).
pub type Kind = (&'static str, &'static str, &'static str, bool);

/// Built-in and custom kinds the tests use.
pub const KINDS: &[Kind] = &[
    ("v1", "Namespace", "namespaces", false),
    ("v1", "Secret", "secrets", true),
    ("v1", "ConfigMap", "configmaps", true),
    ("v1", "Service", "services", true),
    ("v1", "ServiceAccount", "serviceaccounts", true),
    ("v1", "Event", "events", true),
    ("apps/v1", "Deployment", "deployments", true),
    (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        "servicemonitors",
        true,
    ),
    ("keda.sh/v1alpha1", "ScaledObject", "scaledobjects", true),
    (
        "serving.kserve.io/v1beta1",
        "InferenceService",
        "inferenceservices",
        true,
    ),
];

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The body, as text.
    pub body: String,
}

impl Seen {
    /// A write that is not a dry run.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "PATCH" | "POST" | "PUT" | "DELETE")
            && !self.uri.contains("dryRun=All")
    }
}

/// An injected failure: the next `times` requests whose method and path match get `code` with a
/// `Status` body, or (code 0) no answer at all, as when a connection breaks.
#[derive(Debug, Clone)]
pub struct Fault {
    method: &'static str,
    path: &'static str,
    code: u16,
    times: usize,
    dry_run: Option<bool>,
}

impl Fault {
    /// `times` answers `code` (0: a broken connection) to `method` requests whose path contains
    /// `path` (either may be empty: any).
    pub fn new(method: &'static str, path: &'static str, code: u16, times: usize) -> Fault {
        Fault {
            method,
            path,
            code,
            times,
            dry_run: None,
        }
    }

    /// Only writes that are (`true`) or are not (`false`) dry runs.
    pub fn dry_run(mut self, dry_run: bool) -> Fault {
        self.dry_run = Some(dry_run);
        self
    }

    fn matches(&self, seen: &Seen) -> bool {
        (self.method.is_empty() || seen.method == self.method)
            && seen.uri.split('?').next().unwrap_or("").contains(self.path)
            && self
                .dry_run
                .is_none_or(|d| d == seen.uri.contains("dryRun=All"))
    }
}

/// The connection broke: the error a transport failure gives.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by the memory server")]
pub struct Broken;

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    seen: Vec<Seen>,
    next: u64,
    forbidden_lists: Vec<String>,
    faults: Vec<Fault>,
    delay: Duration,
    in_flight: usize,
    max_in_flight: usize,
    held: Vec<String>,
    parked: usize,
}

/// The in-memory server.
#[derive(Clone, Default)]
pub struct Memory {
    state: Arc<Mutex<State>>,
    released: Arc<tokio::sync::Notify>,
}

fn kind_of(plural: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.2 == plural)
}

fn key(api_version: &str, plural: &str, namespace: Option<&str>, name: &str) -> String {
    format!("{api_version}/{plural}/{}/{name}", namespace.unwrap_or(""))
}

/// The field set of an applied object, as `fieldsV1` writes it.
fn fields(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind"))
                .map(|(k, v)| (format!("f:{k}"), fields(v)))
                .collect(),
        ),
        _ => json!({}),
    }
}

/// Deep-merges `patch` into `base` (objects merge, everything else replaces).
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "code": code, "reason": reason, "message": message});
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

fn ok(v: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap_or_default()
}

impl Memory {
    /// A client talking to this server.
    pub fn client(&self) -> kube::Client {
        let me = self.clone();
        let service = tower::service_fn(move |req: Request<kube::client::Body>| {
            let me = me.clone();
            async move {
                let (parts, body) = req.into_parts();
                me.wait_if_held(&parts.method, &parts.uri).await;
                let bytes = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let delay = {
                    let mut st = me.lock();
                    st.in_flight += 1;
                    st.max_in_flight = st.max_in_flight.max(st.in_flight);
                    st.delay
                };
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let answer = me.handle(&parts.method, &parts.uri, &bytes);
                me.lock().in_flight -= 1;
                answer
            }
        });
        kube::Client::new(service, "default")
    }

    /// Injects a fault (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Faults not yet spent.
    pub fn pending_faults(&self) -> usize {
        self.lock().faults.iter().map(|f| f.times).sum()
    }

    /// Holds every request for `delay` before answering (so concurrent requests overlap).
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Holds every apply (not dry run) of `plural` until [`Memory::release`]: the requests stay
    /// in flight, unanswered.
    pub fn hold(&self, plural: &str) {
        self.lock().held.push(plural.to_string());
    }

    /// Answers the held requests and holds no more.
    pub fn release(&self) {
        self.lock().held.clear();
        self.released.notify_waiters();
    }

    /// How many requests have been held so far.
    pub fn parked(&self) -> usize {
        self.lock().parked
    }

    async fn wait_if_held(&self, method: &http::Method, uri: &http::Uri) {
        let mut first = true;
        loop {
            let released = self.released.notified();
            {
                let mut st = self.lock();
                let held = method == http::Method::PATCH
                    && !uri.query().unwrap_or("").contains("dryRun")
                    && st
                        .held
                        .iter()
                        .any(|p| uri.path().contains(&format!("/{p}/")));
                if !held {
                    return;
                }
                if first {
                    st.parked += 1;
                    first = false;
                }
            }
            released.await;
        }
    }

    /// The most requests in flight at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Forgets the recorded requests and the most in flight.
    pub fn forget(&self) {
        let mut st = self.lock();
        st.seen.clear();
        st.max_in_flight = 0;
    }

    /// Writes that were not dry runs.
    pub fn writes(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_write).collect()
    }

    /// Dry runs.
    pub fn dry_runs(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.uri.contains("dryRun=All"))
            .count()
    }

    /// A live object.
    pub fn get(
        &self,
        api_version: &str,
        plural: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.lock()
            .objects
            .get(&key(api_version, plural, ns, name))
            .cloned()
    }

    /// Seeds an object as another tool would have created it (manager `other`).
    pub fn put(&self, api_version: &str, plural: &str, obj: Value) {
        self.put_owned(api_version, plural, obj, "other");
    }

    /// Seeds an object as `manager` applied it.
    pub fn put_owned(&self, api_version: &str, plural: &str, mut obj: Value, manager: &str) {
        let mut st = self.lock();
        st.next += 1;
        let n = st.next;
        obj["metadata"]["uid"] = json!(format!("uid-{n}"));
        obj["metadata"]["generation"] = json!(1);
        obj["metadata"]["managedFields"] = json!([{"manager": manager, "operation": "Apply", "apiVersion": api_version, "fieldsV1": fields(&obj)}]);
        let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        st.objects
            .insert(key(api_version, plural, ns.as_deref(), &name), obj);
    }

    /// Another field manager changes `path` (a spec field mldeploy owns) to `value`, taking it
    /// over as an update does: the field leaves our managedFields entry, the generation moves.
    pub fn edit(
        &self,
        api_version: &str,
        plural: &str,
        ns: &str,
        name: &str,
        path: &[&str],
        value: Value,
    ) {
        let mut st = self.lock();
        let k = key(api_version, plural, Some(ns), name);
        let obj = st.objects.get_mut(&k).expect("object to edit exists");
        let mut target = &mut *obj;
        for p in path {
            target = &mut target[*p];
        }
        *target = value;
        obj["metadata"]["generation"] =
            json!(obj["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
        if let Some(entries) = obj["metadata"]["managedFields"].as_array_mut() {
            for e in entries.iter_mut() {
                let mut f = &mut e["fieldsV1"];
                for p in &path[..path.len() - 1] {
                    f = &mut f[format!("f:{p}")];
                }
                if let Some(m) = f.as_object_mut() {
                    m.remove(&format!("f:{}", path[path.len() - 1]));
                }
            }
            entries.push(json!({"manager": "kubectl-edit", "operation": "Update", "apiVersion": api_version, "fieldsV1": {}}));
        }
    }

    /// Another manager (`manager`, an Update as `kubectl edit` sends) sets `path` to `value` and
    /// so owns it: the field leaves every other manager's set, and an apply that sets it to
    /// another value conflicts unless forced.
    #[allow(clippy::too_many_arguments)]
    pub fn take_over(
        &self,
        api_version: &str,
        plural: &str,
        ns: &str,
        name: &str,
        path: &[&str],
        value: Value,
        manager: &str,
    ) {
        self.edit(api_version, plural, ns, name, path, value);
        let mut st = self.lock();
        let obj = st
            .objects
            .get_mut(&key(api_version, plural, Some(ns), name))
            .expect("object exists");
        let mut owned = json!({});
        let mut f = &mut owned;
        for p in path {
            f = &mut f[format!("f:{p}")];
        }
        *f = json!({});
        let entries = obj["metadata"]["managedFields"]
            .as_array_mut()
            .expect("managedFields");
        entries.retain(|e| e["manager"] != "kubectl-edit");
        entries.push(json!({"manager": manager, "operation": "Update", "apiVersion": api_version, "fieldsV1": owned}));
    }

    /// Refuses (403) cluster-wide LISTs of `plural`, as RBAC does for a namespace-scoped user.
    pub fn forbid_cluster_list(&self, plural: &str) {
        self.lock().forbidden_lists.push(plural.to_string());
    }

    /// Replaces an object's status (as a controller would).
    pub fn set_status(&self, api_version: &str, plural: &str, ns: &str, name: &str, status: Value) {
        let mut st = self.lock();
        if let Some(obj) = st
            .objects
            .get_mut(&key(api_version, plural, Some(ns), name))
        {
            obj["status"] = status;
        }
    }

    fn handle(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        body: &[u8],
    ) -> Result<Response<Full<Bytes>>, Broken> {
        let mut st = self.lock();
        let seen = Seen {
            method: method.to_string(),
            uri: uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            body: String::from_utf8_lossy(body).into_owned(),
        };
        let fault = st
            .faults
            .iter_mut()
            .find(|f| f.times > 0 && f.matches(&seen))
            .map(|f| {
                f.times -= 1;
                f.code
            });
        st.seen.push(seen);
        match fault {
            Some(0) => return Err(Broken),
            Some(code) => {
                return Ok(status(
                    code,
                    if code == 409 {
                        "Conflict"
                    } else {
                        "InternalError"
                    },
                    "injected fault",
                ));
            }
            None => {}
        }
        Ok(self.answer(&mut st, method, uri, body))
    }

    fn answer(
        &self,
        st: &mut State,
        method: &http::Method,
        uri: &http::Uri,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let query: BTreeMap<String, String> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), decode(v)))
            .collect();
        let segs: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
        // Discovery.
        match segs.as_slice() {
            ["api"] => return ok(&json!({"kind": "APIVersions", "versions": ["v1"]})),
            ["apis"] => {
                let mut groups: BTreeMap<&str, &str> = BTreeMap::new();
                for (v, _, _, _) in KINDS {
                    if let Some((g, ver)) = v.split_once('/') {
                        groups.insert(g, ver);
                    }
                }
                let groups: Vec<Value> = groups
                    .iter()
                    .map(|(g, v)| {
                        let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                        json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                    })
                    .collect();
                return ok(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}));
            }
            ["api", v] | ["apis", _, v] => {
                let gv = if segs[0] == "api" {
                    v.to_string()
                } else {
                    format!("{}/{v}", segs[1])
                };
                let resources: Vec<Value> = KINDS
                    .iter()
                    .filter(|k| k.0 == gv)
                    .map(|(_, kind, plural, namespaced)| {
                        json!({"name": plural, "singularName": kind.to_lowercase(), "namespaced": namespaced,
                               "kind": kind, "verbs": ["create", "delete", "get", "list", "patch", "update"]})
                    })
                    .collect();
                if resources.is_empty() {
                    return status(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    );
                }
                return ok(
                    &json!({"kind": "APIResourceList", "groupVersion": gv, "resources": resources}),
                );
            }
            _ => {}
        }
        // Objects: /api/v1[/namespaces/NS]/PLURAL[/NAME] or /apis/G/V[/namespaces/NS]/PLURAL[/NAME].
        let (api_version, rest) = if segs[0] == "api" {
            (segs[1].to_string(), &segs[2..])
        } else {
            (format!("{}/{}", segs[1], segs[2]), &segs[3..])
        };
        let (ns, rest) = match rest {
            ["namespaces", ns, r @ ..] if !r.is_empty() => (Some(ns.to_string()), r),
            r => (None, r),
        };
        let (plural, name) = match rest {
            [p] => (*p, None),
            [p, n] => (*p, Some(n.to_string())),
            _ => return status(404, "NotFound", "no such path"),
        };
        let Some(kind) = kind_of(plural) else {
            return status(404, "NotFound", "no such resource");
        };
        match (method.as_str(), name) {
            ("GET", None) if ns.is_none() && st.forbidden_lists.iter().any(|p| p == plural) => {
                status(
                    403,
                    "Forbidden",
                    &format!("{plural} is forbidden: cannot list at the cluster scope"),
                )
            }
            ("GET", None) => {
                let selector = query.get("labelSelector").cloned().unwrap_or_default();
                let fields_sel = query.get("fieldSelector").cloned().unwrap_or_default();
                let prefix = format!("{api_version}/{plural}/");
                let mut items: Vec<Value> = st
                    .objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(_, v)| v)
                    .filter(|o| {
                        ns.is_none() || o["metadata"]["namespace"].as_str() == ns.as_deref()
                    })
                    .filter(|o| matches(o, &selector))
                    .filter(|o| {
                        fields_sel.is_empty()
                            || fields_sel
                                .strip_prefix("involvedObject.name=")
                                .is_some_and(|n| o["involvedObject"]["name"] == n)
                    })
                    .cloned()
                    .collect();
                let start: usize = query
                    .get("continue")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let limit: usize = query
                    .get("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(usize::MAX);
                let total = items.len();
                items = items.into_iter().skip(start).take(limit).collect();
                let next = start + items.len();
                let cont = if next < total {
                    next.to_string()
                } else {
                    String::new()
                };
                ok(
                    &json!({"kind": format!("{}List", kind.1), "apiVersion": api_version,
                           "metadata": {"resourceVersion": "1", "continue": cont}, "items": items}),
                )
            }
            ("GET", Some(name)) => {
                match st
                    .objects
                    .get(&key(&api_version, plural, ns.as_deref(), &name))
                {
                    Some(o) => ok(o),
                    None => status(404, "NotFound", &format!("{plural} \"{name}\" not found")),
                }
            }
            ("DELETE", Some(name)) => {
                let k = key(&api_version, plural, ns.as_deref(), &name);
                let Some(live) = st.objects.get(&k) else {
                    return status(404, "NotFound", &format!("{plural} \"{name}\" not found"));
                };
                let want = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
                if let Some(uid) = want["preconditions"]["uid"].as_str()
                    && live["metadata"]["uid"] != uid
                {
                    return status(
                        409,
                        "Conflict",
                        "Precondition failed: UID in precondition does not match",
                    );
                }
                let gone = st.objects.remove(&k).unwrap_or_default();
                ok(&gone)
            }
            ("PATCH", Some(name)) => {
                let Ok(applied) = serde_json::from_slice::<Value>(body) else {
                    return status(400, "BadRequest", "not JSON");
                };
                let manager = query.get("fieldManager").cloned().unwrap_or_default();
                let dry = query.contains_key("dryRun");
                let force = query.get("force").is_some_and(|f| f == "true");
                let k = key(&api_version, plural, ns.as_deref(), &name);
                let mut obj = match st.objects.get(&k) {
                    Some(live) => live.clone(),
                    None => {
                        st.next += 1;
                        json!({"metadata": {"uid": format!("uid-{}", st.next), "generation": 0}})
                    }
                };
                // Fields another manager owns that this apply would set to another value:
                // conflicts, or with force that manager's no longer.
                let live = obj.clone();
                let mut causes = Vec::new();
                for e in obj["metadata"]["managedFields"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                    .filter(|e| e["manager"] != manager.as_str())
                {
                    let other = e["manager"].as_str().unwrap_or_default().to_string();
                    for path in leaves(&e["fieldsV1"]) {
                        let Some(want) = at(&applied, &path) else {
                            continue;
                        };
                        if at(&live, &path) == Some(want) {
                            continue;
                        }
                        if force {
                            let (last, parents) = path.split_last().expect("a leaf has a path");
                            let mut f = &mut e["fieldsV1"];
                            for p in parents {
                                f = &mut f[format!("f:{p}")];
                            }
                            if let Some(m) = f.as_object_mut() {
                                m.remove(&format!("f:{last}"));
                            }
                        } else {
                            causes.push(json!({"reason": "FieldManagerConflict",
                                "message": format!("conflict with \"{other}\" using {api_version}"),
                                "field": format!(".{}", path.join("."))}));
                        }
                    }
                }
                if !causes.is_empty() {
                    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "code": 409, "reason": "Conflict",
                        "message": format!("Apply failed with {} conflict(s)", causes.len()),
                        "details": {"name": name, "kind": plural, "causes": causes}});
                    return Response::builder()
                        .status(409)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body.to_string())))
                        .unwrap_or_default();
                }
                let before_spec = obj["spec"].clone();
                let before = obj.clone();
                merge(&mut obj, &applied);
                obj["metadata"]["name"] = json!(name);
                if let Some(ns) = &ns {
                    obj["metadata"]["namespace"] = json!(ns);
                }
                let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
                if obj["spec"] != before_spec || generation == 0 {
                    obj["metadata"]["generation"] = json!(generation + 1);
                }
                let entry = json!({"manager": manager, "operation": "Apply", "apiVersion": api_version,
                                   "fieldsV1": fields(&applied)});
                let mut managed: Vec<Value> = obj["metadata"]["managedFields"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|e| e["manager"] != manager.as_str())
                    .collect();
                managed.push(entry);
                obj["metadata"]["managedFields"] = Value::Array(managed);
                if obj == before {
                    return ok(&obj);
                }
                if !dry {
                    st.objects.insert(k, obj.clone());
                }
                ok(&obj)
            }
            _ => status(
                405,
                "MethodNotAllowed",
                "not supported by the memory server",
            ),
        }
    }
}

/// The leaf paths of a `fieldsV1` set (`f:` keys; a node without `f:` children is a leaf).
fn leaves(fields: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    fn walk(node: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let children: Vec<(&String, &Value)> = node
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with("f:"))
            .collect();
        if children.is_empty() {
            if !path.is_empty() {
                out.push(path.clone());
            }
            return;
        }
        for (k, v) in children {
            path.push(k["f:".len()..].to_string());
            walk(v, path, out);
            path.pop();
        }
    }
    walk(fields, &mut Vec::new(), &mut out);
    out
}

/// The value at `path` in `v`.
fn at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, p| v.get(p))
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=b,c` (equality and existence) selectors.
fn matches(obj: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let labels = &obj["metadata"]["labels"];
        match term.split_once('=') {
            Some((k, v)) => labels[k] == v,
            None => labels[term].is_string(),
        }
    })
}
