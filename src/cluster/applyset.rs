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

/// One environment's ApplySet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplySet {
    /// Parent Secret name.
    pub name: String,
    /// Parent Secret namespace (the environment's).
    pub namespace: String,
    /// The id every member is labelled with.
    pub id: String,
}

impl ApplySet {
    /// The ApplySet of a project's environment.
    pub fn new(project: &str, env: &str, namespace: &str) -> Self {
        let name: String = format!("mldeploy-{project}-{env}")
            .chars()
            .take(253)
            .collect();
        ApplySet {
            id: id(&name, namespace, "Secret", ""),
            name,
            namespace: namespace.to_string(),
        }
    }

    /// The parent Secret, listing `group_kinds`.
    pub fn parent(
        &self,
        group_kinds: &BTreeSet<String>,
        labels: &serde_json::Map<String, Value>,
    ) -> Value {
        let mut labels = labels.clone();
        labels.insert(ID.into(), Value::from(self.id.clone()));
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
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

/// The ApplySet id of KEP-3659: `applyset-<base64url(sha256(name.namespace.kind.group))>-v1`.
pub fn id(name: &str, namespace: &str, kind: &str, group: &str) -> String {
    let digest = Sha256::digest(format!("{name}.{namespace}.{kind}.{group}").as_bytes());
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
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
        assert_eq!(set.name, "mldeploy-shop-prod");
        assert!(set.id.starts_with("applyset-") && set.id.ends_with("-v1"));
        assert_eq!(split_group_kind("Deployment.apps"), ("Deployment", "apps"));
        assert_eq!(split_group_kind("Service"), ("Service", ""));
        let kinds: BTreeSet<String> = ["Service".to_string(), "Deployment.apps".to_string()].into();
        let parent = set.parent(&kinds, &serde_json::Map::new());
        assert_eq!(contains(&parent), kinds);
        assert_eq!(
            parent["metadata"]["annotations"][CONTAINS],
            "Deployment.apps,Service"
        );
    }
}
