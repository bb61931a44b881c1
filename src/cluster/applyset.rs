//! The inventory: a KEP-3659 ApplySet whose parent is a Secret in the environment's namespace,
//! so `kubectl` (and a later mldeploy) can tell exactly which objects this environment owns.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Label on every member: the ApplySet id.
pub const PART_OF: &str = "applyset.kubernetes.io/part-of";
/// Label on the parent: the ApplySet id.
pub const ID: &str = "applyset.kubernetes.io/id";
/// Annotation on the parent: the tool that manages it.
pub const TOOLING: &str = "applyset.kubernetes.io/tooling";
/// Annotation on the parent: every `Kind.group` that has members.
pub const CONTAINS: &str = "applyset.kubernetes.io/contains-group-kinds";

/// Label on the parent: the project it belongs to (with the environment label, the proof that a
/// parent found under an older name is this environment's).
pub const PROJECT: &str = "mldeploy.io/project";
/// Label on the parent and every member: the environment.
pub const ENVIRONMENT: &str = "mldeploy.io/environment";
/// Key of the parent's data that records, per member, what was applied and what the server
/// said then (see [`fingerprint`]).
pub const INVENTORY: &str = "inventory";

/// One environment's ApplySet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplySet {
    /// Parent Secret name.
    pub name: String,
    /// Parent Secret namespace (the environment's).
    pub namespace: String,
    /// The id every member is labelled with.
    pub id: String,
    /// Project.
    pub project: String,
    /// Environment.
    pub env: String,
}

impl ApplySet {
    /// The ApplySet of a project's environment. Project and environment are DNS labels, which
    /// never hold a `.`; Secret names may, so `mldeploy.<project>.<env>` cannot name two
    /// (project, environment) pairs.
    pub fn new(project: &str, env: &str, namespace: &str) -> Self {
        let name = parent_name(project, env);
        ApplySet {
            id: id(&name, namespace, "Secret", ""),
            name,
            namespace: namespace.to_string(),
            project: project.to_string(),
            env: env.to_string(),
        }
    }

    /// The parent name mldeploy 0.1 used, `mldeploy-<project>-<env>`: ambiguous (`a-b`+`c` and
    /// `a`+`b-c` share it), so a parent under it is only taken as ours when its labels say so.
    pub fn legacy_name(&self) -> String {
        format!("mldeploy-{}-{}", self.project, self.env)
            .chars()
            .take(253)
            .collect()
    }

    /// Whether a live parent Secret is this environment's: under the current name with our id,
    /// or under the legacy name with our project and environment labels.
    pub fn owns_parent(&self, parent: &Value) -> bool {
        let meta = &parent["metadata"];
        let name = meta["name"].as_str().unwrap_or("");
        let labels = &meta["labels"];
        if name == self.name {
            return labels[ID] == self.id.as_str();
        }
        name == self.legacy_name()
            && labels[ID].is_string()
            && labels["app.kubernetes.io/part-of"] == self.project.as_str()
            && labels[ENVIRONMENT] == self.env.as_str()
    }

    /// The parent Secret, listing `group_kinds` and recording `inventory`.
    pub fn parent(
        &self,
        group_kinds: &BTreeSet<String>,
        labels: &serde_json::Map<String, Value>,
        inventory: &Inventory,
    ) -> Value {
        let mut labels = labels.clone();
        labels.insert(ID.into(), Value::from(self.id.clone()));
        labels.insert(PROJECT.into(), Value::from(self.project.clone()));
        labels.insert(ENVIRONMENT.into(), Value::from(self.env.clone()));
        labels.insert(
            "app.kubernetes.io/managed-by".into(),
            Value::from("mldeploy"),
        );
        let record = serde_json::to_vec(inventory).unwrap_or_default();
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "data": {
                INVENTORY: base64::engine::general_purpose::STANDARD.encode(record),
            },
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": {
                    TOOLING: concat!("mldeploy/v", env!("CARGO_PKG_VERSION")),
                    CONTAINS: group_kinds.iter().cloned().collect::<Vec<_>>().join(","),
                },
            },
        })
    }
}

/// `mldeploy.<project>.<env>`: project and environment are DNS labels (no `.`), so the name is
/// unambiguous; a Secret name is a DNS subdomain, so it is valid.
pub fn parent_name(project: &str, env: &str) -> String {
    format!("mldeploy.{project}.{env}")
}

/// The ApplySet id of KEP-3659: `applyset-<base64url(sha256(name.namespace.kind.group))>-v1`.
pub fn id(name: &str, namespace: &str, kind: &str, group: &str) -> String {
    let digest = Sha256::digest(format!("{name}.{namespace}.{kind}.{group}").as_bytes());
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// Per member key ([`member_key`]) its [`fingerprint`] at our last apply.
pub type Inventory = std::collections::BTreeMap<String, String>;

/// The inventory a live parent records (empty when it has none or it does not parse).
pub fn inventory(parent: &Value) -> Inventory {
    parent["data"][INVENTORY]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// `Kind.group/namespace/name` (namespace empty for cluster-scoped objects).
pub fn member_key(group_kind: &str, namespace: Option<&str>, name: &str) -> String {
    format!("{group_kind}/{}/{name}", namespace.unwrap_or(""))
}

/// What proves a member unchanged without asking the server: the intent we applied, and our
/// field manager's entry in `managedFields` as the server reported it right after. Server-side
/// apply keeps that entry exact: anyone else's change to a field we own — an update (`kubectl
/// edit`, `scale`, `patch`), a forced apply, a removal — takes the field out of our entry, and
/// a re-created or stripped object has no entry of ours. So a live object whose fingerprint
/// matches the recorded one has every field we own as we left it. `metadata.generation` is
/// deliberately not part of it: it also moves when others change fields that are not ours
/// (an HPA scaling a Deployment whose replicas we leave alone, `kubectl rollout restart`'s
/// template annotation), and those changes need neither a dry run nor a correction.
pub fn fingerprint(desired: &Value, live: &Value) -> String {
    let entry = live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e["manager"] == super::FIELD_MANAGER
                && e["operation"] == "Apply"
                && e["subresource"].as_str().unwrap_or("").is_empty()
        });
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(desired).unwrap_or_default());
    h.update(b"\0");
    if let Some(e) = entry {
        h.update(e["apiVersion"].to_string().as_bytes());
        h.update(serde_json::to_vec(&e["fieldsV1"]).unwrap_or_default());
    }
    let digest = h.finalize();
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// The group-kinds a live parent lists.
pub fn contains(parent: &Value) -> BTreeSet<String> {
    parent["metadata"]["annotations"][CONTAINS]
        .as_str()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits `Deployment.apps` into (`Deployment`, `apps`); core kinds have an empty group.
pub fn split_group_kind(gk: &str) -> (&str, &str) {
    gk.split_once('.').unwrap_or((gk, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_follows_kep_3659() {
        // kubectl's documented example: a Secret parent `mysecret` in namespace `myns`.
        let digest = Sha256::digest(b"mysecret.myns.Secret.");
        let expected = format!(
            "applyset-{}-v1",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        );
        assert_eq!(id("mysecret", "myns", "Secret", ""), expected);
        let set = ApplySet::new("shop", "prod", "shop");
        assert_eq!(set.name, "mldeploy.shop.prod");
        assert_eq!(set.legacy_name(), "mldeploy-shop-prod");
        assert!(set.id.starts_with("applyset-") && set.id.ends_with("-v1"));
        assert_eq!(split_group_kind("Deployment.apps"), ("Deployment", "apps"));
        assert_eq!(split_group_kind("Service"), ("Service", ""));
        let kinds: BTreeSet<String> = ["Service".to_string(), "Deployment.apps".to_string()].into();
        let mut record = Inventory::new();
        record.insert("Service//x".into(), "abc".into());
        let parent = set.parent(&kinds, &serde_json::Map::new(), &record);
        assert_eq!(contains(&parent), kinds);
        assert_eq!(inventory(&parent), record);
        assert!(set.owns_parent(&parent));
        assert_eq!(
            parent["metadata"]["annotations"][CONTAINS],
            "Deployment.apps,Service"
        );
    }
}

#[cfg(test)]
mod names {
    use super::*;
    use proptest::prelude::*;

    fn label() -> impl Strategy<Value = String> {
        "[a-z]([a-z0-9-]{0,6}[a-z0-9])?"
    }

    proptest! {
        /// Two distinct (project, environment) pairs never share a parent, so never an id.
        #[test]
        fn parents_never_collide(a in (label(), label()), b in (label(), label())) {
            prop_assume!(a != b);
            let x = ApplySet::new(&a.0, &a.1, "shared");
            let y = ApplySet::new(&b.0, &b.1, "shared");
            prop_assert_ne!(x.name, y.name);
            prop_assert_ne!(x.id, y.id);
        }
    }

    #[test]
    fn the_reported_collision_is_gone() {
        let x = ApplySet::new("a-b", "c", "shared");
        let y = ApplySet::new("a", "b-c", "shared");
        assert_eq!(x.legacy_name(), y.legacy_name());
        assert_ne!(x.name, y.name);
        // A legacy parent is ours only when its labels say so.
        let legacy = serde_json::json!({"metadata": {"name": "mldeploy-a-b-c", "labels": {
            ID: "applyset-x-v1", "app.kubernetes.io/part-of": "a-b", ENVIRONMENT: "c"}}});
        assert!(x.owns_parent(&legacy));
        assert!(!y.owns_parent(&legacy));
    }

    #[test]
    fn fingerprints_change_with_intent_and_ownership_not_with_others_fields() {
        let desired = serde_json::json!({"spec": {"replicas": 2}});
        let live = serde_json::json!({"metadata": {"generation": 3, "managedFields": [
            {"manager": "mldeploy", "operation": "Apply", "apiVersion": "apps/v1",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
             "fieldsV1": {"f:status": {}}}]}});
        let base = fingerprint(&desired, &live);
        assert_eq!(base, fingerprint(&desired, &live));
        assert_ne!(
            base,
            fingerprint(&serde_json::json!({"spec": {"replicas": 3}}), &live)
        );
        // An HPA scaling, a rollout restart: the generation moves, our fields do not.
        let mut bumped = live.clone();
        bumped["metadata"]["generation"] = 4.into();
        assert_eq!(base, fingerprint(&desired, &bumped));
        // No entry of ours (re-created by someone else, managedFields stripped).
        let mut stripped = live.clone();
        stripped["metadata"]["managedFields"] = serde_json::json!([]);
        assert_ne!(base, fingerprint(&desired, &stripped));
        let mut taken = live.clone();
        taken["metadata"]["managedFields"][0]["fieldsV1"] = serde_json::json!({"f:spec": {}});
        assert_ne!(base, fingerprint(&desired, &taken));
        // Someone else's status writes do not matter.
        let mut status = live.clone();
        status["metadata"]["managedFields"][1]["fieldsV1"] = serde_json::json!({});
        assert_eq!(base, fingerprint(&desired, &status));
    }
}
