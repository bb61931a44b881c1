//! The plan, shared by `diff` and `apply` (as kapp does): every rendered object classified as
//! create / update / unchanged against live state (compared through a server-side dry-run apply),
//! plus the ApplySet members that are no longer rendered (prune).

use std::collections::BTreeSet;

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
    /// A unified diff of live → desired (empty when unchanged).
    pub diff: String,
}

impl Change {
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
    diff: &'a str,
}

impl Plan {
    /// Whether applying would change anything (what `diff` exits 2 for).
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::Unchanged)
    }

    /// How many changes of each action.
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// The group-kinds the rendered objects use.
    pub fn group_kinds(&self) -> BTreeSet<String> {
        self.changes
            .iter()
            .filter(|c| c.action != Action::Prune)
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
                diff: &c.diff,
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
            },
            "changes": changes,
        })
    }
}

/// What to install for a missing group, for the error's hint.
fn install_hint(api_version: &str) -> &'static str {
    match api_version.split('/').next().unwrap_or("") {
        "machinelearning.seldon.io" => "Seldon Core v1",
        "mlops.seldon.io" => "Seldon Core v2",
        "serving.kserve.io" => "KServe",
        "monitoring.coreos.com" => "kube-prometheus-stack (Prometheus Operator)",
        _ => "the operator that provides it",
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
    /// A server-side dry-run apply, so updates and their diffs are exact (diff, apply).
    DryRun,
    /// Existence only, every live object counts as unchanged (delete needs no more).
    Existence,
}

/// Compares the bundle with the cluster.
pub async fn plan(
    api: &Api,
    bundle: &Bundle,
    env: &str,
    applyset: ApplySet,
    compare: Compare,
    concurrency: usize,
) -> Result<Plan, ClusterError> {
    // Resolve every kind first, so all missing CRDs are reported together.
    let mut kinds: Vec<(String, String)> = bundle
        .manifests
        .iter()
        .map(|m| (m.api_version.clone(), m.kind.clone()))
        .collect();
    kinds.sort();
    kinds.dedup();
    let mut resources = Vec::new();
    let mut missing = Vec::new();
    let found: Vec<Option<Resource>> = stream::iter(kinds.iter().map(|(v, k)| api.resource(v, k)))
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
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
    let find = |api_version: &str, kind: &str| {
        resources
            .iter()
            .find(|r| r.api_version == api_version && r.kind == kind)
            .cloned()
            .ok_or_else(|| ClusterError::Other(format!("{kind} was resolved but not found")))
    };

    let mut parent_labels = serde_json::Map::new();
    let mut work = Vec::new();
    for m in &bundle.manifests {
        let resource = find(&m.api_version, &m.kind)?;
        let mut desired = m.object();
        if m.kind == "Namespace"
            && let Some(labels) = desired["metadata"]["labels"].as_object()
        {
            parent_labels = labels.clone();
        }
        desired["metadata"]["labels"][applyset::PART_OF] = Value::from(applyset.id.clone());
        let namespace = resource.namespaced.then(|| m.namespace.clone()).flatten();
        work.push((resource, namespace, m.name.clone(), desired));
    }

    let changes: Vec<Change> = stream::iter(work.into_iter().map(
        |(resource, namespace, name, desired)| async move {
            let live = api.get(&resource, namespace.as_deref(), &name).await?;
            let label = format!(
                "{}/{}",
                resource.kind.to_lowercase(),
                display(namespace.as_deref(), &name)
            );
            let (action, diff) = match &live {
                None => (Action::Create, unified("", &to_yaml(&desired), &label)),
                Some(_) if compare == Compare::Existence => (Action::Unchanged, String::new()),
                Some(live) => {
                    let result = api
                        .apply(
                            &resource,
                            namespace.as_deref(),
                            &name,
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
                    let before = to_yaml(&normalize(live.clone()));
                    let after = to_yaml(&normalize(result));
                    if before == after {
                        (Action::Unchanged, String::new())
                    } else {
                        (Action::Update, unified(&before, &after, &label))
                    }
                }
            };
            Ok::<Change, ClusterError>(Change {
                action,
                group: group(&resource.kind),
                resource,
                namespace,
                name,
                desired: Some(desired),
                diff,
            })
        },
    ))
    .buffered(concurrency.max(1))
    .try_collect()
    .await?;

    // Members of the ApplySet that are no longer rendered.
    let secret = api
        .resource("v1", "Secret")
        .await?
        .ok_or_else(|| ClusterError::Other("the cluster does not serve Secrets".into()))?;
    let parent = api
        .get(&secret, Some(&applyset.namespace), &applyset.name)
        .await?;
    let mut prunes = Vec::new();
    if let Some(parent) = &parent {
        let mut group_kinds = applyset::contains(parent);
        group_kinds.extend(changes.iter().map(|c| c.resource.group_kind()));
        // Each kind's members are listed concurrently; the order of the result is fixed below.
        let selector = format!("{}={}", applyset::PART_OF, applyset.id);
        let listed: Vec<Option<(Resource, Vec<Value>)>> =
            stream::iter(group_kinds.iter().map(|gk| {
                let (kind, group_name) = applyset::split_group_kind(gk);
                let (resources, selector, namespace) = (&resources, &selector, &applyset.namespace);
                async move {
                    let Some(resource) =
                        discover_group_kind(api, kind, group_name, resources).await?
                    else {
                        return Ok::<_, ClusterError>(None);
                    };
                    let scope = resource.namespaced.then_some(namespace.as_str());
                    let items = api.list(&resource, scope, selector).await?;
                    Ok(Some((resource, items)))
                }
            }))
            .buffered(concurrency.max(1))
            .try_collect()
            .await?;
        for (resource, items) in listed.into_iter().flatten() {
            for live in items {
                let name = live["metadata"]["name"].as_str().unwrap_or("").to_string();
                let namespace = live["metadata"]["namespace"].as_str().map(str::to_string);
                let rendered = changes.iter().any(|c| {
                    c.resource.group_kind() == resource.group_kind()
                        && c.name == name
                        && c.namespace == namespace
                });
                if !rendered {
                    let label = format!(
                        "{}/{}",
                        resource.kind.to_lowercase(),
                        display(namespace.as_deref(), &name)
                    );
                    prunes.push(Change {
                        action: Action::Prune,
                        group: group(&resource.kind),
                        diff: unified(&to_yaml(&normalize(live)), "", &label),
                        resource: resource.clone(),
                        namespace,
                        name,
                        desired: None,
                    });
                }
            }
        }
    }
    prunes.sort_by(|a, b| {
        (b.group, &a.resource.kind, &a.name).cmp(&(a.group, &b.resource.kind, &b.name))
    });
    let mut all = changes;
    all.extend(prunes);
    Ok(Plan {
        env: env.to_string(),
        context: api.context.clone(),
        applyset,
        parent,
        parent_labels,
        changes: all,
    })
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
