//! The plan, shared by `diff`, `apply` and `delete` (as kapp does). One LIST per kind finds what
//! is live; membership of this environment's ApplySet (its id label) is the only proof that a
//! live object is ours. Rendered objects that are not live are created; members whose intent and
//! live state match what the parent's inventory recorded are unchanged without a request of their
//! own; only the rest get a server-side dry run, and only real changes become updates. Members
//! no longer rendered are pruned; rendered objects that exist but are not ours are reported,
//! never touched (unless adopted).

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use serde_json::Value;

use super::ClusterError;
use super::api::{Api, Resource, display};
use super::applyset::{self, ApplySet};
use crate::bundle::{Bundle, group};

/// What applying will do to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Not on the cluster yet.
    Create,
    /// On the cluster, different.
    Update,
    /// On the cluster, identical: no write.
    Unchanged,
    /// A member of the ApplySet that is no longer rendered.
    Prune,
    /// Exists on the cluster but is not a member: someone else's (`--adopt` takes it over).
    Foreign,
    /// A Namespace that exists and is not ours: deployed into as it is, never changed or deleted.
    Used,
}

/// One object's change.
#[derive(Debug, Clone)]
pub struct Change {
    /// The action.
    pub action: Action,
    /// Apply group (order).
    pub group: u8,
    /// The resource type.
    pub resource: Resource,
    /// Namespace (namespaced kinds).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// What we apply (None for prune).
    pub desired: Option<Value>,
    /// A unified diff of live → desired, for updates and prunes (empty otherwise; a create's is
    /// made only when shown: [`Change::diff_text`]).
    pub diff: String,
    /// The live object's uid (members and foreign objects), the precondition of a delete.
    pub uid: Option<String>,
    /// Why the object is foreign (for [`Action::Foreign`]).
    pub why: Option<String>,
    /// For an unchanged member: its fingerprint now (what the inventory records for it).
    pub fingerprint: Option<String>,
    /// Not a member yet, taken over by `--adopt`: applied with ownership of every field.
    pub adopted: bool,
}

impl Change {
    /// The diff to show: a create's whole object (Secrets masked), made on demand — `apply`
    /// never shows it, and making it for every object of a first apply sat on its critical path.
    pub fn diff_text(&self) -> std::borrow::Cow<'_, str> {
        match (&self.desired, self.action) {
            (Some(desired), Action::Create) => {
                let mut shown = desired.clone();
                mask_secret(&mut shown, None, "after");
                let label = label_of(&self.resource, self.namespace.as_deref(), &self.name);
                unified("", &to_yaml(&shown), &label).into()
            }
            _ => self.diff.as_str().into(),
        }
    }

    /// `Kind namespace/name`.
    pub fn label(&self) -> String {
        format!(
            "{} {}",
            self.resource.kind,
            display(self.namespace.as_deref(), &self.name)
        )
    }
}

/// The plan of one environment.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Environment.
    pub env: String,
    /// kubeconfig context.
    pub context: String,
    /// The environment's ApplySet.
    pub applyset: ApplySet,
    /// The live parent, if the ApplySet exists.
    pub parent: Option<Value>,
    /// Labels for the parent (the environment's common labels).
    pub parent_labels: serde_json::Map<String, Value>,
    /// Every change, in apply order (prunes last).
    pub changes: Vec<Change>,
    /// The inventory the live parent recorded.
    pub recorded: applyset::Inventory,
    /// Fingerprints of members known to be as intended now (unchanged ones), by member key.
    pub known: applyset::Inventory,
    /// A parent under the name mldeploy 0.1 used, proven ours by its labels: its members are
    /// ours too, and it is removed once nothing is labelled with its id any more.
    pub legacy: Option<LegacyParent>,
    /// Parents of this project in the namespace whose environment is not this one (renamed or
    /// removed environments): `(parent name, environment)`.
    pub orphans: Vec<(String, String)>,
}

/// A parent under the legacy name.
#[derive(Debug, Clone)]
pub struct LegacyParent {
    /// Its name.
    pub name: String,
    /// Its id (its members' label).
    pub id: String,
    /// Its uid.
    pub uid: Option<String>,
}

/// A change as JSON (`diff --output json`).
#[derive(Serialize)]
struct JsonChange<'a> {
    action: Action,
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    diff: std::borrow::Cow<'a, str>,
}

impl Plan {
    /// Whether applying would change anything (what `diff` exits 2 for). Foreign objects count:
    /// the cluster does not hold what the config says.
    pub fn has_changes(&self) -> bool {
        self.changes
            .iter()
            .any(|c| !matches!(c.action, Action::Unchanged | Action::Used))
    }

    /// How many changes of each action.
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// The group-kinds the rendered objects use.
    pub fn group_kinds(&self) -> BTreeSet<String> {
        self.changes
            .iter()
            .filter(|c| !matches!(c.action, Action::Prune | Action::Foreign | Action::Used))
            .map(|c| c.resource.group_kind())
            .collect()
    }

    /// The plan as one JSON document.
    pub fn to_json(&self) -> Value {
        let changes: Vec<JsonChange<'_>> = self
            .changes
            .iter()
            .map(|c| JsonChange {
                action: c.action,
                api_version: &c.resource.api_version,
                kind: &c.resource.kind,
                namespace: c.namespace.as_deref(),
                name: &c.name,
                diff: c.diff_text(),
            })
            .collect();
        serde_json::json!({
            "env": self.env,
            "context": self.context,
            "changed": self.has_changes(),
            "summary": {
                "create": self.count(Action::Create),
                "update": self.count(Action::Update),
                "unchanged": self.count(Action::Unchanged),
                "prune": self.count(Action::Prune),
                "notOurs": self.count(Action::Foreign),
            },
            "orphanedEnvironments": self.orphans.iter().map(|(_, e)| e).collect::<Vec<_>>(),
            "changes": changes,
        })
    }
}

/// Fields the server owns or changes on every write: not part of a comparison.
pub fn normalize(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "uid",
            "selfLink",
        ] {
            meta.remove(key);
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            a.remove("deployment.kubernetes.io/revision");
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

/// JSON with keys sorted at every level, for stable YAML.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// A Secret with its values masked, as `kubectl diff` does: `***` where both sides agree,
/// `*** (before)` / `*** (after)` where they differ. `other` is the object on the other side.
pub fn mask_secret(v: &mut Value, other: Option<&Value>, side: &str) {
    if v["kind"] != "Secret" || v["apiVersion"] != "v1" {
        return;
    }
    for field in ["data", "stringData"] {
        if let Some(map) = v.get_mut(field).and_then(Value::as_object_mut) {
            for (key, value) in map.iter_mut() {
                let same = other.is_some_and(|o| o[field][key] == *value);
                *value = Value::from(if same {
                    "***".to_string()
                } else {
                    format!("*** ({side})")
                });
            }
        }
    }
}

/// An object as YAML for diffs.
pub fn to_yaml(v: &Value) -> String {
    serde_saphyr::to_string(&sorted(v)).unwrap_or_default()
}

/// A unified diff between two texts.
pub fn unified(old: &str, new: &str, label: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{label}"), &format!("rendered/{label}"))
        .to_string()
}

/// How `plan` compares a rendered object that exists on the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// The recorded inventory, else a server-side dry-run apply, so updates and their diffs are
    /// exact (diff, apply).
    DryRun,
    /// Existence only, every live member counts as unchanged (delete needs no more).
    Existence,
}

/// How to plan.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How to compare.
    pub compare: Compare,
    /// Treat rendered objects that exist without our label as ours (`--adopt`).
    pub adopt: bool,
    /// Requests in flight at once.
    pub concurrency: usize,
}

/// What to install for a missing group, for the error's hint: the runtime rows know which
/// operator serves which API group.
fn install_hint(api_version: &str) -> &'static str {
    let group = api_version.split('/').next().unwrap_or("");
    match crate::runtime::addon_for_group(group) {
        Some(addon) => addon.title,
        None if group == "monitoring.coreos.com" => "kube-prometheus-stack (Prometheus Operator)",
        None if group == "keda.sh" => "KEDA (the kedacore/keda Helm chart)",
        None if group == "kyverno.io" => {
            "Kyverno (the kyverno/kyverno Helm chart; `security.installKyverno: true` adds it)"
        }
        None => "the operator that provides it",
    }
}

/// Resolves every kind the bundle uses; all missing CRDs are reported together.
async fn resolve_kinds(
    api: &Api,
    bundle: &Bundle,
    concurrency: usize,
) -> Result<Vec<Resource>, ClusterError> {
    let mut kinds: Vec<(String, String)> = bundle
        .manifests
        .iter()
        .map(|m| (m.api_version.clone(), m.kind.clone()))
        .collect();
    kinds.sort();
    kinds.dedup();
    // The first request goes alone: it opens the connection that (over HTTP/2) every later
    // request shares, instead of a burst of requests each opening its own.
    if let Some((v, k)) = kinds.first() {
        api.resource(v, k).await?;
    }
    let found: Vec<Option<Resource>> = stream::iter(kinds.iter().map(|(v, k)| api.resource(v, k)))
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut resources = Vec::new();
    let mut missing = Vec::new();
    for ((api_version, kind), r) in kinds.iter().zip(found) {
        match r {
            Some(r) => resources.push(r),
            None => missing.push((api_version.clone(), kind.clone())),
        }
    }
    if !missing.is_empty() {
        let mut installs: Vec<&str> = missing.iter().map(|(v, _)| install_hint(v)).collect();
        installs.dedup();
        return Err(ClusterError::NotInstalled {
            kinds: missing.iter().map(|(v, k)| format!("{k} ({v})")).collect(),
            context: api.context.clone(),
            hint: format!(
                "run `mldeploy infra apply`, or install {}",
                installs.join(" and ")
            ),
        });
    }
    Ok(resources)
}

/// The ApplySet parents in the environment's namespace: ours, a legacy one proven ours, and
/// this project's parents of other environments.
struct Parents {
    current: Option<Value>,
    legacy: Option<LegacyParent>,
    legacy_kinds: BTreeSet<String>,
    orphans: Vec<(String, String)>,
}

async fn parents(api: &Api, set: &ApplySet) -> Result<Parents, ClusterError> {
    let secret = api
        .resource("v1", "Secret")
        .await?
        .ok_or_else(|| ClusterError::Other("the cluster does not serve Secrets".into()))?;
    let all = api
        .list(&secret, Some(&set.namespace), applyset::ID)
        .await?;
    let mut out = Parents {
        current: None,
        legacy: None,
        legacy_kinds: BTreeSet::new(),
        orphans: Vec::new(),
    };
    for p in all {
        let meta = &p["metadata"];
        let name = meta["name"].as_str().unwrap_or("").to_string();
        let labels = &meta["labels"];
        if name == set.name {
            if set.owns_parent(&p) {
                out.current = Some(p);
            }
        } else if set.owns_parent(&p) {
            out.legacy_kinds = applyset::contains(&p);
            out.legacy = Some(LegacyParent {
                name,
                id: labels[applyset::ID].as_str().unwrap_or("").to_string(),
                uid: meta["uid"].as_str().map(str::to_string),
            });
        } else if (labels[applyset::PROJECT] == set.project.as_str()
            || labels["app.kubernetes.io/part-of"] == set.project.as_str())
            && labels["app.kubernetes.io/managed-by"] == "mldeploy"
            && let Some(env) = labels[applyset::ENVIRONMENT].as_str()
            && env != set.env
        {
            out.orphans.push((name, env.to_string()));
        }
    }
    out.orphans.sort();
    Ok(out)
}

/// This project's parents of environments other than `set`'s in its namespace (renamed or
/// removed environments), as `(parent name, environment)`.
pub async fn orphans(api: &Api, set: &ApplySet) -> Result<Vec<(String, String)>, ClusterError> {
    Ok(parents(api, set).await?.orphans)
}

/// Live objects of one kind, by (namespace, name).
type Listing = BTreeMap<(Option<String>, String), Value>;

/// What to LIST of one kind: where, with which selector, and the rendered names (read one by one
/// when listing is forbidden).
struct ListSpec {
    resource: Resource,
    namespaces: BTreeSet<Option<String>>,
    selector: String,
    names: Vec<(Option<String>, String)>,
}

/// Lists one kind: unselected where rendered objects of it live (so objects that are not ours
/// but have our names are seen), label-selected elsewhere (members of kinds no longer rendered).
/// Where RBAC forbids the unselected LIST (a namespace-scoped user and cluster-wide Namespaces),
/// the rendered objects are read one by one instead.
async fn list_kind(api: &Api, spec: &ListSpec) -> Result<Listing, ClusterError> {
    let mut out = Listing::new();
    let resource = &spec.resource;
    for ns in &spec.namespaces {
        let scope = if resource.namespaced {
            ns.as_deref()
        } else {
            None
        };
        let items = match api.list(resource, scope, &spec.selector).await {
            Ok(items) => items,
            Err(ClusterError::Api { code: 403, .. }) if spec.selector.is_empty() => {
                let mut items = Vec::new();
                for (namespace, name) in spec
                    .names
                    .iter()
                    .filter(|(n, _)| n == ns || !resource.namespaced)
                {
                    if let Some(obj) = api.get(resource, namespace.as_deref(), name).await? {
                        items.push(obj);
                    }
                }
                items
            }
            Err(e) => return Err(e),
        };
        for obj in items {
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            let namespace = obj["metadata"]["namespace"].as_str().map(str::to_string);
            out.insert((namespace, name), obj);
        }
        if !resource.namespaced {
            break;
        }
    }
    Ok(out)
}

/// Whether `live` carries one of `ids` as its ApplySet label.
fn member_of(live: &Value, ids: &[&str]) -> bool {
    live["metadata"]["labels"][applyset::PART_OF]
        .as_str()
        .is_some_and(|id| ids.contains(&id))
}

fn label_of(resource: &Resource, namespace: Option<&str>, name: &str) -> String {
    format!(
        "{}/{}",
        resource.kind.to_lowercase(),
        display(namespace, name)
    )
}

/// Compares the bundle with the cluster.
pub async fn plan(
    api: &Api,
    bundle: &Bundle,
    env: &str,
    applyset: ApplySet,
    opts: Options,
) -> Result<Plan, ClusterError> {
    let concurrency = opts.concurrency.max(1);
    // Reading the rendered YAML back into objects is the plan's main CPU cost: it runs on the
    // blocking pool while discovery and the LISTs wait for the server.
    let parsing = parse_manifests(bundle);
    let resources = resolve_kinds(api, bundle, concurrency).await?;
    let find = |api_version: &str, kind: &str| {
        resources
            .iter()
            .find(|r| r.api_version == api_version && r.kind == kind)
            .cloned()
            .ok_or_else(|| ClusterError::Other(format!("{kind} was resolved but not found")))
    };
    let parents = parents(api, &applyset).await?;
    let recorded = parents
        .current
        .as_ref()
        .map(applyset::inventory)
        .unwrap_or_default();
    let mut ids: Vec<&str> = vec![applyset.id.as_str()];
    if let Some(l) = &parents.legacy {
        ids.push(l.id.as_str());
    }

    // What is rendered, keyed by group-kind.
    let mut parent_labels = serde_json::Map::new();
    let mut rendered: Vec<(Resource, Option<String>, String, Value)> = Vec::new();
    let objects = parsing.await?;
    for (m, mut desired) in bundle.manifests.iter().zip(objects) {
        let resource = find(&m.api_version, &m.kind)?;
        if m.kind == "Namespace"
            && let Some(labels) = desired["metadata"]["labels"].as_object()
        {
            parent_labels = labels.clone();
        }
        desired["metadata"]["labels"][applyset::PART_OF] = Value::from(applyset.id.clone());
        let namespace = resource.namespaced.then(|| m.namespace.clone()).flatten();
        rendered.push((resource, namespace, m.name.clone(), desired));
    }

    // One LIST per kind (and namespace): rendered kinds unselected, the parents' other kinds
    // selected by the ApplySet id.
    let mut namespaces: BTreeSet<Option<String>> = rendered.iter().map(|r| r.1.clone()).collect();
    namespaces.insert(Some(applyset.namespace.clone()));
    namespaces.remove(&None);
    let mut lists: BTreeMap<String, ListSpec> = BTreeMap::new();
    for (resource, namespace, name, _) in &rendered {
        let entry = lists
            .entry(resource.group_kind())
            .or_insert_with(|| ListSpec {
                resource: resource.clone(),
                namespaces: BTreeSet::new(),
                selector: String::new(),
                names: Vec::new(),
            });
        entry.namespaces.insert(namespace.clone());
        entry.names.push((namespace.clone(), name.clone()));
    }
    let mut listed_kinds: BTreeSet<String> = parents
        .current
        .as_ref()
        .map(applyset::contains)
        .unwrap_or_default();
    listed_kinds.extend(parents.legacy_kinds.iter().cloned());
    let mut dropped = Vec::new();
    for gk in listed_kinds {
        if !lists.contains_key(&gk) {
            dropped.push(gk);
        }
    }
    let found: Vec<Option<Resource>> = stream::iter(dropped.iter().map(|gk| {
        let (kind, group_name) = applyset::split_group_kind(gk);
        discover_group_kind(api, kind, group_name, &resources)
    }))
    .buffered(concurrency)
    .try_collect()
    .await?;
    for r in found.into_iter().flatten() {
        // Members may only be labelled with one of our ids: select on each.
        for id in &ids {
            lists.insert(
                format!("{} {id}", r.group_kind()),
                ListSpec {
                    resource: r.clone(),
                    namespaces: namespaces.clone(),
                    selector: format!("{}={id}", applyset::PART_OF),
                    names: Vec::new(),
                },
            );
        }
    }
    let listed: Vec<(String, Listing)> = stream::iter(lists.iter().map(|(key, spec)| async move {
        let items = list_kind(api, spec).await?;
        Ok::<_, ClusterError>((key.split(' ').next().unwrap_or(key).to_string(), items))
    }))
    .buffered(concurrency)
    .try_collect()
    .await?;
    let mut live: BTreeMap<String, Listing> = BTreeMap::new();
    for (gk, items) in listed {
        live.entry(gk).or_default().extend(items);
    }

    // Classify each rendered object. Its live object is taken out of `live`: what stays there
    // afterwards is exactly what is live and no longer rendered.
    let changes: Vec<Change> = stream::iter(rendered.into_iter().map(
        |(resource, namespace, name, desired)| {
            let current = live
                .get_mut(&resource.group_kind())
                .and_then(|l| l.remove(&(namespace.clone(), name.clone())));
            let recorded = &recorded;
            let ids = &ids;
            async move {
                classify(
                    api, resource, namespace, name, desired, current, recorded, ids, opts,
                )
                .await
            }
        },
    ))
    .buffered(concurrency)
    .try_collect()
    .await?;

    // Members no longer rendered (rendered objects were taken out of `live` above).
    let mut prunes = Vec::new();
    let by_group_kind: BTreeMap<String, &Resource> = lists
        .values()
        .map(|l| (l.resource.group_kind(), &l.resource))
        .rev()
        .collect();
    for (gk, items) in &live {
        for ((namespace, name), obj) in items {
            if !member_of(obj, &ids) {
                continue;
            }
            let Some(resource) = by_group_kind.get(gk).map(|r| (*r).clone()) else {
                continue;
            };
            let label = label_of(&resource, namespace.as_deref(), name);
            let mut before = normalize(obj.clone());
            mask_secret(&mut before, None, "before");
            prunes.push(Change {
                action: Action::Prune,
                group: group(&resource.kind),
                diff: unified(&to_yaml(&before), "", &label),
                uid: obj["metadata"]["uid"].as_str().map(str::to_string),
                resource,
                namespace: namespace.clone(),
                name: name.clone(),
                desired: None,
                why: None,
                fingerprint: None,
                adopted: false,
            });
        }
    }
    prunes.sort_by(|a, b| {
        (b.group, &a.resource.kind, &a.name).cmp(&(a.group, &b.resource.kind, &b.name))
    });
    let known = changes
        .iter()
        .filter_map(|c| {
            let key =
                applyset::member_key(&c.resource.group_kind(), c.namespace.as_deref(), &c.name);
            Some((key, c.fingerprint.clone()?))
        })
        .collect();
    let mut all = changes;
    all.extend(prunes);
    Ok(Plan {
        env: env.to_string(),
        context: api.context.clone(),
        applyset,
        parent: parents.current,
        parent_labels,
        changes: all,
        recorded,
        known,
        legacy: parents.legacy,
        orphans: parents.orphans,
    })
}

/// Parses the bundle's objects (as [`crate::bundle::Manifest::object`]) on the blocking pool,
/// one task per core, in bundle order.
fn parse_manifests(bundle: &Bundle) -> impl Future<Output = Result<Vec<Value>, ClusterError>> {
    let tasks = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let chunk = bundle.manifests.len().div_ceil(tasks).max(1);
    let handles: Vec<_> = bundle
        .manifests
        .chunks(chunk)
        .map(|part| {
            let texts: Vec<String> = part.iter().map(|m| m.text.clone()).collect();
            tokio::task::spawn_blocking(move || {
                texts
                    .iter()
                    .map(|t| crate::bundle::parse_object(t))
                    .collect::<Vec<Value>>()
            })
        })
        .collect();
    async move {
        let mut out = Vec::new();
        for h in handles {
            match h.await {
                Ok(part) => out.extend(part),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => return Err(ClusterError::Other(format!("reading the bundle: {e}"))),
            }
        }
        Ok(out)
    }
}

/// Classifies one rendered object against what is live.
#[allow(clippy::too_many_arguments)]
async fn classify(
    api: &Api,
    resource: Resource,
    namespace: Option<String>,
    name: String,
    desired: Value,
    live: Option<Value>,
    recorded: &applyset::Inventory,
    ids: &[&str],
    opts: Options,
) -> Result<Change, ClusterError> {
    let label = label_of(&resource, namespace.as_deref(), &name);
    let key = applyset::member_key(&resource.group_kind(), namespace.as_deref(), &name);
    let mut change = Change {
        action: Action::Create,
        group: group(&resource.kind),
        resource,
        namespace,
        name,
        desired: None,
        diff: String::new(),
        uid: None,
        why: None,
        fingerprint: None,
        adopted: false,
    };
    let Some(live) = live else {
        change.desired = Some(desired);
        return Ok(change);
    };
    change.uid = live["metadata"]["uid"].as_str().map(str::to_string);
    if !member_of(&live, ids)
        && change.resource.kind == "Namespace"
        && change.resource.group().is_empty()
    {
        // Deploying into a namespace someone else made (or another environment shares) is the
        // normal case: it is used as it is, and never becomes ours to delete.
        change.action = Action::Used;
        change.why = Some("exists and is not this environment's: used as it is".into());
        return Ok(change);
    }
    if !member_of(&live, ids) && !opts.adopt {
        change.action = Action::Foreign;
        change.why = Some(
            match live["metadata"]["labels"][applyset::PART_OF].as_str() {
                Some(_) => "a member of another ApplySet".to_string(),
                None => match live["metadata"]["managedFields"]
                    .as_array()
                    .and_then(|m| m.first())
                    .and_then(|m| m["manager"].as_str())
                {
                    Some(manager) => format!("not created by mldeploy (managed by {manager})"),
                    None => "not created by mldeploy".to_string(),
                },
            },
        );
        change.desired = Some(desired);
        return Ok(change);
    }
    change.adopted = !member_of(&live, ids);
    let fingerprint = applyset::fingerprint(&desired, &live);
    let relabel = !member_of(&live, &ids[..1]);
    if opts.compare == Compare::Existence || (!relabel && recorded.get(&key) == Some(&fingerprint))
    {
        change.action = Action::Unchanged;
        change.fingerprint = Some(fingerprint);
        change.desired = Some(desired);
        return Ok(change);
    }
    let result = api
        .apply(
            &change.resource,
            change.namespace.as_deref(),
            &change.name,
            &desired,
            false,
            true,
        )
        .await;
    let result = match result {
        Ok(r) => r,
        // A conflict shows in the plan as an update; apply reports who owns what.
        Err(ClusterError::Conflict { .. }) => desired.clone(),
        Err(e) => return Err(e),
    };
    let mut before = normalize(live.clone());
    let mut after = normalize(result);
    let raw_after = after.clone();
    mask_secret(&mut before, Some(&raw_after), "before");
    mask_secret(&mut after, Some(&normalize(live.clone())), "after");
    let (before, after) = (to_yaml(&before), to_yaml(&after));
    if before == after && !relabel {
        change.action = Action::Unchanged;
        change.fingerprint = Some(fingerprint);
    } else {
        change.action = Action::Update;
        change.diff = unified(&before, &after, &label);
    }
    change.desired = Some(desired);
    Ok(change)
}

/// Finds the resource for a `Kind.group` from the parent's annotation: the kinds the bundle uses
/// are known already; others (dropped from the bundle) under the group's preferred version.
async fn discover_group_kind(
    api: &Api,
    kind: &str,
    group_name: &str,
    known: &[Resource],
) -> Result<Option<Resource>, ClusterError> {
    if let Some(r) = known
        .iter()
        .find(|r| r.kind == kind && r.group() == group_name)
    {
        return Ok(Some(r.clone()));
    }
    let api_version = if group_name.is_empty() {
        Some("v1".to_string())
    } else {
        api.preferred_version(group_name).await?
    };
    match api_version {
        Some(v) => api.resource(&v, kind).await,
        None => Ok(None),
    }
}

#[cfg(test)]
mod hint_tests {
    use super::install_hint;

    #[test]
    fn every_platform_group_we_render_names_what_installs_it() {
        assert_eq!(install_hint("serving.kserve.io/v1beta1"), "KServe");
        assert!(install_hint("monitoring.coreos.com/v1").contains("Prometheus Operator"));
        assert!(install_hint("keda.sh/v1alpha1").starts_with("KEDA"));
        assert!(install_hint("kyverno.io/v1").contains("security.installKyverno"));
        assert_eq!(
            install_hint("example.com/v1"),
            "the operator that provides it"
        );
    }
}
