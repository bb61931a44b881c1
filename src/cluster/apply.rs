//! Executing a plan: server-side apply in kind order (CRDs → Namespaces → ServiceAccounts/RBAC →
//! ConfigMaps/Secrets → Services → workloads → custom resources → monitoring), bounded concurrency
//! within a group, no request for unchanged objects, the ApplySet parent kept a superset of its
//! members, and prune only after everything applied. Also `delete`, in reverse order.

use std::collections::BTreeSet;

use futures::{StreamExt, stream};
use serde_json::Value;

use super::ClusterError;
use super::api::{Api, Resource, display};
use super::applyset::{self, ApplySet};
use super::plan::{Action, Change, Plan};
use super::progress::Progress;

/// How to apply.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Take over fields other managers own.
    pub force_conflicts: bool,
    /// Server-side dry run only.
    pub dry_run: bool,
    /// Delete members no longer rendered.
    pub prune: bool,
    /// Requests in flight at once within a group.
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            force_conflicts: false,
            dry_run: false,
            prune: false,
            concurrency: 16,
        }
    }
}

/// What an apply did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Outcome {
    /// Objects created.
    pub created: Vec<String>,
    /// Objects updated.
    pub updated: Vec<String>,
    /// Objects left alone (no request sent).
    pub unchanged: usize,
    /// Objects pruned.
    pub pruned: Vec<String>,
}

async fn secret_resource(api: &Api) -> Result<Resource, ClusterError> {
    api.resource("v1", "Secret")
        .await?
        .ok_or_else(|| ClusterError::Other("the cluster does not serve Secrets".into()))
}

/// Writes the ApplySet parent if it differs from what is live.
async fn write_parent(
    api: &Api,
    set: &ApplySet,
    live: Option<&Value>,
    kinds: &BTreeSet<String>,
    labels: &serde_json::Map<String, Value>,
) -> Result<(), ClusterError> {
    let up_to_date = live.is_some_and(|p| {
        applyset::contains(p) == *kinds && p["metadata"]["labels"][applyset::ID] == set.id.as_str()
    });
    if up_to_date {
        return Ok(());
    }
    let secret = secret_resource(api).await?;
    api.apply(
        &secret,
        Some(&set.namespace),
        &set.name,
        &set.parent(kinds, labels),
        true,
        false,
    )
    .await
    .map(drop)
}

/// Applies the changes of one group concurrently; every failure is collected.
async fn apply_group(
    api: &Api,
    changes: &[&Change],
    opts: Options,
    progress: &Progress,
) -> Result<Vec<(Action, String)>, ClusterError> {
    let results: Vec<Result<(Action, String), ClusterError>> =
        stream::iter(changes.iter().map(|c| async move {
            let desired = c
                .desired
                .as_ref()
                .ok_or_else(|| ClusterError::Other(format!("{}: nothing to apply", c.label())))?;
            api.apply(
                &c.resource,
                c.namespace.as_deref(),
                &c.name,
                desired,
                opts.force_conflicts,
                opts.dry_run,
            )
            .await?;
            let verb = match (c.action, opts.dry_run) {
                (Action::Create, false) => "created",
                (Action::Create, true) => "would be created (server dry run)",
                (_, false) => "updated",
                (_, true) => "would be updated (server dry run)",
            };
            progress.event("apply", &c.label(), verb);
            Ok((c.action, c.label()))
        }))
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let mut done = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(x) => done.push(x),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(done),
        1 => Err(errors.remove(0)),
        _ => Err(ClusterError::Many { errors }),
    }
}

/// Executes a plan. Nothing is pruned unless every create and update succeeded.
pub async fn execute(
    api: &Api,
    plan: &Plan,
    opts: Options,
    progress: &Progress,
) -> Result<Outcome, ClusterError> {
    let mut outcome = Outcome {
        unchanged: plan.count(Action::Unchanged),
        ..Outcome::default()
    };
    for c in plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Unchanged)
    {
        progress.event("apply", &c.label(), "unchanged");
    }
    let writes: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update))
        .collect();
    let groups: BTreeSet<u8> = writes.iter().map(|c| c.group).collect();
    let current_kinds = plan.group_kinds();
    // The parent must list every kind before members of it exist (KEP-3659): the union of what it
    // listed and what is rendered now. It lives in the environment's namespace, so it is written
    // right after the Namespace group.
    let mut superset = plan
        .parent
        .as_ref()
        .map(applyset::contains)
        .unwrap_or_default();
    superset.extend(current_kinds.iter().cloned());
    let mut parent_written = opts.dry_run;
    for g in groups {
        if g > 1 && !parent_written {
            write_parent(
                api,
                &plan.applyset,
                plan.parent.as_ref(),
                &superset,
                &plan.parent_labels,
            )
            .await?;
            parent_written = true;
        }
        let batch: Vec<&Change> = writes.iter().copied().filter(|c| c.group == g).collect();
        for (action, label) in apply_group(api, &batch, opts, progress).await? {
            match action {
                Action::Create => outcome.created.push(label),
                _ => outcome.updated.push(label),
            }
        }
    }
    if !parent_written {
        write_parent(
            api,
            &plan.applyset,
            plan.parent.as_ref(),
            &superset,
            &plan.parent_labels,
        )
        .await?;
    }
    if opts.dry_run {
        return Ok(outcome);
    }
    let prunes: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Prune)
        .collect();
    if opts.prune {
        outcome.pruned =
            delete_members(api, &plan.applyset, &prunes, opts.concurrency, progress).await?;
        // Everything is applied and pruned: the parent lists exactly what is rendered.
        let live = api
            .get(
                &secret_resource(api).await?,
                Some(&plan.applyset.namespace),
                &plan.applyset.name,
            )
            .await?;
        write_parent(
            api,
            &plan.applyset,
            live.as_ref(),
            &current_kinds,
            &plan.parent_labels,
        )
        .await?;
    } else if !prunes.is_empty() {
        progress.note(&format!(
            "{} object(s) are no longer rendered; `apply --prune` deletes them",
            prunes.len()
        ));
    }
    Ok(outcome)
}

/// Objects in a namespace that mldeploy did not create (and that are not created automatically).
async fn foreign_objects(
    api: &Api,
    set: &ApplySet,
    namespace: &str,
) -> Result<Vec<String>, ClusterError> {
    let kinds = [
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("v1", "PersistentVolumeClaim"),
        ("v1", "Pod"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("batch/v1", "Job"),
    ];
    let mut foreign = Vec::new();
    for (api_version, kind) in kinds {
        let Some(r) = api.resource(api_version, kind).await? else {
            continue;
        };
        for obj in api.list(&r, Some(namespace), "").await? {
            let meta = &obj["metadata"];
            let name = meta["name"].as_str().unwrap_or("");
            let ours = meta["labels"][applyset::PART_OF] == set.id.as_str()
                || meta["labels"][applyset::ID] == set.id.as_str()
                || meta["ownerReferences"]
                    .as_array()
                    .is_some_and(|o| !o.is_empty())
                || (kind == "ServiceAccount" && name == "default")
                || (kind == "ConfigMap" && name == "kube-root-ca.crt")
                || obj["type"] == "kubernetes.io/service-account-token";
            if !ours {
                foreign.push(format!("{kind} {name}"));
            }
        }
    }
    Ok(foreign)
}

/// Deletes ApplySet members in reverse apply order (concurrently within a group), keeping any
/// Namespace that still holds objects mldeploy does not manage.
async fn delete_members(
    api: &Api,
    set: &ApplySet,
    members: &[&Change],
    concurrency: usize,
    progress: &Progress,
) -> Result<Vec<String>, ClusterError> {
    let groups: BTreeSet<u8> = members.iter().map(|c| c.group).collect();
    let mut deleted = Vec::new();
    for g in groups.into_iter().rev() {
        let batch: Vec<&&Change> = members.iter().filter(|c| c.group == g).collect();
        let results: Vec<Result<Option<String>, ClusterError>> =
            stream::iter(batch.into_iter().map(|c| async move {
                if c.resource.kind == "Namespace" {
                    let foreign = foreign_objects(api, set, &c.name).await?;
                    if !foreign.is_empty() {
                        progress.event(
                            "prune",
                            &c.label(),
                            &format!(
                                "kept: it holds objects mldeploy does not manage ({})",
                                foreign.join(", ")
                            ),
                        );
                        return Ok(None);
                    }
                }
                api.delete(&c.resource, c.namespace.as_deref(), &c.name)
                    .await?;
                progress.event("delete", &c.label(), "deleted");
                Ok(Some(c.label()))
            }))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        for r in results {
            if let Some(label) = r? {
                deleted.push(label);
            }
        }
    }
    deleted.sort();
    Ok(deleted)
}

/// Deletes every member of an environment's ApplySet, then its parent. Returns what was deleted.
pub async fn delete_all(
    api: &Api,
    plan: &Plan,
    concurrency: usize,
    progress: &Progress,
) -> Result<Vec<String>, ClusterError> {
    let Some(_) = &plan.parent else {
        progress.note(&format!(
            "nothing to delete: no ApplySet {}/{} on context {}",
            plan.applyset.namespace, plan.applyset.name, api.context
        ));
        return Ok(Vec::new());
    };
    // Members are what is live and labelled: rendered objects that exist, and prune candidates.
    let mut members: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Update | Action::Unchanged | Action::Prune))
        .collect();
    // The Namespace holds the parent: it goes last, after the parent.
    let namespace: Vec<&Change> = members
        .iter()
        .copied()
        .filter(|c| c.resource.kind == "Namespace")
        .collect();
    members.retain(|c| c.resource.kind != "Namespace");
    let mut deleted = delete_members(api, &plan.applyset, &members, concurrency, progress).await?;
    let secret = secret_resource(api).await?;
    api.delete(&secret, Some(&plan.applyset.namespace), &plan.applyset.name)
        .await?;
    progress.event(
        "delete",
        &format!(
            "Secret {}",
            display(Some(&plan.applyset.namespace), &plan.applyset.name)
        ),
        "deleted (ApplySet parent)",
    );
    deleted.extend(delete_members(api, &plan.applyset, &namespace, concurrency, progress).await?);
    Ok(deleted)
}
