//! Executing a plan: server-side apply in DESIGN's kind order (CRDs → Namespaces →
//! ServiceAccounts/RBAC → ConfigMaps/Secrets → Services → workloads → custom resources →
//! monitoring) where the order has a reason ([`needs`]), each object sent as soon as what it needs
//! is applied, with bounded concurrency; no request for unchanged objects, the ApplySet parent
//! kept a superset of its members and its inventory current, and prune only after everything
//! applied. Also `delete`, in reverse order. Nothing is deleted that is not a member (its id
//! label, seen in the plan, and its uid as the delete's precondition), and a Namespace only when
//! nothing in it is foreign.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::FuturesUnordered;
use futures::{StreamExt, stream};
use serde_json::Value;

use super::ClusterError;
use super::api::{Api, Resource, display};
use super::applyset;
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
    /// Requests in flight at once, all groups together.
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
    /// Objects kept because they are not ours (delete) or hold foreign objects (Namespaces).
    pub kept: Vec<String>,
}

async fn secret_resource(api: &Api) -> Result<Resource, ClusterError> {
    api.resource("v1", "Secret")
        .await?
        .ok_or_else(|| ClusterError::Other("the cluster does not serve Secrets".into()))
}

/// Writes the ApplySet parent unless the live one already says the same.
async fn write_parent(
    api: &Api,
    plan: &Plan,
    live: Option<&Value>,
    kinds: &BTreeSet<String>,
    inventory: &applyset::Inventory,
) -> Result<(), ClusterError> {
    let set = &plan.applyset;
    let up_to_date = live.is_some_and(|p| {
        applyset::contains(p) == *kinds
            && applyset::inventory(p) == *inventory
            && p["metadata"]["labels"][applyset::ID] == set.id.as_str()
            && p["metadata"]["labels"][applyset::PROJECT] == set.project.as_str()
    });
    if up_to_date {
        return Ok(());
    }
    let secret = secret_resource(api).await?;
    api.apply(
        &secret,
        Some(&set.namespace),
        &set.name,
        &set.parent(kinds, &plan.parent_labels, inventory),
        true,
        false,
    )
    .await
    .map(drop)
}

/// What one write did: its action, label, member key and fingerprint.
type Written = (Action, String, String, String);

/// Model-serving custom resources: their operators make pods from them, so they wait for what
/// pods need (RBAC, NetworkPolicies, configuration, Services), but nothing reads our workloads
/// from them.
const SERVING: &[&str] = &[
    "SeldonDeployment",
    "InferenceService",
    "LLMInferenceService",
    "Model",
    "Server",
    "Experiment",
];

/// The apply groups ([`crate::bundle::group`]) that must be complete, without a failure, before
/// an object of `group` and `kind` is sent. DESIGN's order, kept wherever it has a reason:
/// everything after the Namespace it lives in; workloads after ServiceAccounts/RBAC,
/// NetworkPolicies (no pod runs unprotected), ConfigMaps/Secrets/claims and Services (their
/// environment variables are injected at pod creation); model-serving custom resources after the
/// same, but not after our workloads (nothing relates them); other custom resources (a KEDA
/// ScaledObject reads its target when created) after the workloads; monitoring after the
/// Services it selects — it is read continuously by its operator, so it waits for nothing else.
/// Objects of groups 2, 3 and 4 do not depend on each other.
pub fn needs(group: u8, kind: &str) -> &'static [u8] {
    match group {
        0 => &[],
        1 => &[0],
        2..=4 => &[0, 1],
        5 => &[0, 1, 2, 3, 4],
        6 if SERVING.contains(&kind) => &[0, 1, 2, 3, 4],
        7 => &[0, 1, 4],
        _ => &[0, 1, 2, 3, 4, 5],
    }
}

async fn apply_one(
    api: &Api,
    c: &Change,
    opts: Options,
    progress: &Progress,
) -> Result<Written, ClusterError> {
    let desired = c
        .desired
        .as_ref()
        .ok_or_else(|| ClusterError::Other(format!("{}: nothing to apply", c.label())))?;
    let result = api
        .apply(
            &c.resource,
            c.namespace.as_deref(),
            &c.name,
            desired,
            opts.force_conflicts || c.adopted,
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
    let key = applyset::member_key(&c.resource.group_kind(), c.namespace.as_deref(), &c.name);
    Ok((
        c.action,
        c.label(),
        key,
        applyset::fingerprint(desired, &result),
    ))
}

/// Applies `changes`: each is sent as soon as every group it [`needs`] is complete, at most
/// `opts.concurrency` at once, lower groups first (bundle order within a group), so one group's
/// tail overlaps the next groups' start instead of leaving the server idle. A failure stops every
/// group that needs the failed one, directly or not; the rest run to their end and every failure
/// is reported. Dropping the future (Ctrl-C, a deadline) drops the requests in flight; nothing is
/// spawned.
async fn apply_scheduled(
    api: &Api,
    changes: &[&Change],
    opts: Options,
    progress: &Progress,
) -> Result<Vec<Written>, ClusterError> {
    let mut waiting: Vec<&Change> = changes.to_vec();
    waiting.sort_by_key(|c| c.group);
    let mut left: BTreeMap<u8, usize> = BTreeMap::new();
    for c in &waiting {
        *left.entry(c.group).or_default() += 1;
    }
    let mut failed: BTreeSet<u8> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    let mut done = Vec::new();
    let mut errors = Vec::new();
    let limit = opts.concurrency.max(1);
    loop {
        while running.len() < limit {
            let ready = waiting.iter().position(|c| {
                needs(c.group, &c.resource.kind)
                    .iter()
                    .all(|g| !failed.contains(g) && left.get(g).is_none_or(|n| *n == 0))
            });
            let Some(i) = ready else { break };
            let c = waiting.remove(i);
            running.push(async move { (c.group, apply_one(api, c, opts, progress).await) });
        }
        let Some((group, result)) = running.next().await else {
            break;
        };
        if let Some(n) = left.get_mut(&group) {
            *n -= 1;
        }
        match result {
            Ok(x) => done.push(x),
            Err(e) => {
                failed.insert(group);
                errors.push(e);
            }
        }
    }
    match errors.len() {
        0 => Ok(done),
        1 => Err(errors.remove(0)),
        _ => Err(ClusterError::Many { errors }),
    }
}

/// The objects of a plan that exist but are not ours, as `Kind ns/name (why)`.
pub fn foreign(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| c.action == Action::Foreign)
        .map(|c| format!("{} ({})", c.label(), c.why.as_deref().unwrap_or("not ours")))
        .collect()
}

/// Notes about parents of environments that are no longer in the config.
pub fn orphan_notes(plan: &Plan) -> Vec<String> {
    orphan_notes_in(&plan.applyset.namespace, &plan.orphans)
}

/// Notes about `orphans` (parent name, environment) in `namespace`, for `diff`, `apply` and
/// `status` alike.
pub fn orphan_notes_in(namespace: &str, orphans: &[(String, String)]) -> Vec<String> {
    orphans
        .iter()
        .map(|(name, env)| {
            format!(
                "environment `{env}` is not in the config, but its objects are still on the cluster \
                 (ApplySet parent Secret {namespace}/{name}); `mldeploy delete --orphan {env}` removes them"
            )
        })
        .collect()
}

/// Executes a plan. Nothing is written when a rendered object is someone else's, and nothing
/// is pruned unless every create and update succeeded.
pub async fn execute(
    api: &Api,
    plan: &Plan,
    opts: Options,
    progress: &Progress,
) -> Result<Outcome, ClusterError> {
    let not_ours = foreign(plan);
    if !not_ours.is_empty() {
        return Err(ClusterError::NotOurs { objects: not_ours });
    }
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
    let current_kinds = plan.group_kinds();
    // The parent must list every kind before members of it exist (KEP-3659): the union of what it
    // listed and what is rendered now. It lives in the environment's namespace, so it is written
    // right after the Namespace group — only when the kinds grow.
    let mut superset = plan
        .parent
        .as_ref()
        .map(applyset::contains)
        .unwrap_or_default();
    let grows = !current_kinds.is_subset(&superset) || plan.parent.is_none();
    superset.extend(current_kinds.iter().cloned());
    // What the inventory records: members known unchanged now, then each write's answer.
    let mut inventory: applyset::Inventory = plan.known.clone();
    let mut parent_live = plan.parent.clone();
    let parent_written = opts.dry_run || !grows;
    // The Namespace (and CRDs) first; then the parent, which lives in the namespace; then the
    // rest, scheduled by what each object needs.
    let (early, late): (Vec<&Change>, Vec<&Change>) = writes.iter().partition(|c| c.group <= 1);
    let mut written = apply_scheduled(api, &early, opts, progress).await?;
    if !late.is_empty() {
        if !parent_written {
            write_parent(api, plan, parent_live.as_ref(), &superset, &inventory).await?;
            parent_live = None;
        }
        written.extend(apply_scheduled(api, &late, opts, progress).await?);
    }
    for (action, label, key, fingerprint) in written {
        inventory.insert(key, fingerprint);
        match action {
            Action::Create => outcome.created.push(label),
            _ => outcome.updated.push(label),
        }
    }
    if opts.dry_run {
        return Ok(outcome);
    }
    let prunes: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Prune)
        .collect();
    let kinds = if opts.prune {
        let (pruned, kept) = delete_members(api, plan, &prunes, opts.concurrency, progress).await?;
        outcome.pruned = pruned;
        outcome.kept = kept;
        // Everything is applied and pruned: the parent lists exactly what is rendered.
        &current_kinds
    } else {
        if !prunes.is_empty() {
            progress.note(&format!(
                "{} object(s) are no longer rendered; `apply --prune` deletes them",
                prunes.len()
            ));
        }
        &superset
    };
    // After a write earlier in this run the live parent is not the plan's any more: write.
    write_parent(api, plan, parent_live.as_ref(), kinds, &inventory).await?;
    finish_legacy(api, plan, opts.prune, progress).await?;
    for note in orphan_notes(plan) {
        progress.note(&note);
    }
    Ok(outcome)
}

/// Retires a legacy parent once none of its members is left under its id: every rendered one
/// now carries the current id; the rest were pruned (or still wait for `--prune`).
async fn finish_legacy(
    api: &Api,
    plan: &Plan,
    pruned: bool,
    progress: &Progress,
) -> Result<(), ClusterError> {
    let Some(legacy) = &plan.legacy else {
        return Ok(());
    };
    let left = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Prune)
        .count();
    if left > 0 && !pruned {
        progress.note(&format!(
            "the ApplySet parent {ns}/{old} (named by an earlier mldeploy) still owns {left} object(s) that \
             are no longer rendered; `mldeploy apply --prune` removes them and finishes the move to {ns}/{new}",
            ns = plan.applyset.namespace,
            old = legacy.name,
            new = plan.applyset.name
        ));
        return Ok(());
    }
    let secret = secret_resource(api).await?;
    api.delete(
        &secret,
        Some(&plan.applyset.namespace),
        &legacy.name,
        legacy.uid.as_deref(),
    )
    .await?;
    progress.event(
        "migrate",
        &format!("Secret {}/{}", plan.applyset.namespace, legacy.name),
        &format!("ApplySet moved to {}", plan.applyset.name),
    );
    Ok(())
}

/// Objects in a namespace that are not ours: every namespaced kind the server lists is looked
/// at. Ours are members (labelled with one of `ids`), the ApplySet parents, and whatever a member
/// owns, directly or through owners it owns (ReplicaSets, Pods, EndpointSlices); Kubernetes'
/// own furniture (the default ServiceAccount, `kube-root-ca.crt`, token Secrets, Events, a
/// member Service's Endpoints) is not counted.
async fn foreign_objects(
    api: &Api,
    ids: &[&str],
    member_uids: &BTreeSet<String>,
    namespace: &str,
    concurrency: usize,
) -> Result<Vec<String>, ClusterError> {
    let (kinds, unknown) = api.namespaced_listable().await?;
    let listed: Vec<(Resource, Vec<Value>)> = futures::TryStreamExt::try_collect(stream::iter(kinds.into_iter().map(|r| async move {
        if r.kind == "Event" {
            return Ok::<_, ClusterError>((r, Vec::new()));
        }
        let items = match api.list(&r, Some(namespace), "").await {
            Ok(items) => items,
            // A kind we may not list is a kind we cannot prove empty.
            Err(ClusterError::Api { code: 403, .. }) => {
                return Ok((r.clone(), vec![serde_json::json!({"metadata": {"name": format!("(any: listing {} is forbidden)", r.plural)}})]));
            }
            Err(e) => return Err(e),
        };
        Ok((r, items))
    }))
    .buffer_unordered(concurrency.max(1)))
    .await?;
    let mut ours: BTreeSet<String> = member_uids.clone();
    let mut services: BTreeSet<String> = BTreeSet::new();
    let mut all: Vec<(String, &Value)> = Vec::new();
    for (r, items) in &listed {
        for obj in items {
            let labels = &obj["metadata"]["labels"];
            let is_member = labels[applyset::PART_OF]
                .as_str()
                .is_some_and(|id| ids.contains(&id))
                || labels[applyset::ID]
                    .as_str()
                    .is_some_and(|id| ids.contains(&id));
            if is_member && let Some(uid) = obj["metadata"]["uid"].as_str() {
                ours.insert(uid.to_string());
                if r.kind == "Service" {
                    services.insert(obj["metadata"]["name"].as_str().unwrap_or("").to_string());
                }
            }
            all.push((r.kind.clone(), obj));
        }
    }
    // Ownership is transitive: repeat until nothing new is ours.
    loop {
        let before = ours.len();
        for (_, obj) in &all {
            let owned = obj["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["uid"].as_str().is_some_and(|u| ours.contains(u)));
            if owned && let Some(uid) = obj["metadata"]["uid"].as_str() {
                ours.insert(uid.to_string());
            }
        }
        if ours.len() == before {
            break;
        }
    }
    // An API group that could not be discovered may hold anything.
    let mut foreign: Vec<String> = unknown
        .iter()
        .map(|gv| format!("(anything of {gv}: it could not be discovered)"))
        .collect();
    for (kind, obj) in all {
        let meta = &obj["metadata"];
        let name = meta["name"].as_str().unwrap_or("");
        let furniture = (kind == "ServiceAccount" && name == "default")
            || (kind == "ConfigMap" && name == "kube-root-ca.crt")
            || obj["type"] == "kubernetes.io/service-account-token"
            || (kind == "Endpoints" && services.contains(name));
        let mine = meta["uid"].as_str().is_some_and(|u| ours.contains(u));
        if !mine && !furniture {
            foreign.push(format!("{kind} {name}"));
        }
    }
    foreign.sort();
    foreign.dedup();
    Ok(foreign)
}

/// Deletes ApplySet members in reverse apply order (concurrently within a group), each only if
/// it is still the object the plan saw (uid precondition), keeping any Namespace that holds
/// objects that are not ours. Returns (deleted, kept).
async fn delete_members(
    api: &Api,
    plan: &Plan,
    members: &[&Change],
    concurrency: usize,
    progress: &Progress,
) -> Result<(Vec<String>, Vec<String>), ClusterError> {
    let mut ids: Vec<&str> = vec![plan.applyset.id.as_str()];
    if let Some(l) = &plan.legacy {
        ids.push(l.id.as_str());
    }
    let member_uids: BTreeSet<String> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Foreign)
        .filter_map(|c| c.uid.clone())
        .collect();
    let groups: BTreeSet<u8> = members.iter().map(|c| c.group).collect();
    let mut deleted = Vec::new();
    let mut kept = Vec::new();
    for g in groups.into_iter().rev() {
        let batch: Vec<&&Change> = members.iter().filter(|c| c.group == g).collect();
        let results: Vec<Result<Result<String, String>, ClusterError>> =
            stream::iter(batch.into_iter().map(|c| {
                let (ids, member_uids) = (&ids, &member_uids);
                async move {
                    if c.resource.kind == "Namespace" {
                        let foreign =
                            foreign_objects(api, ids, member_uids, &c.name, concurrency).await?;
                        if !foreign.is_empty() {
                            progress.event(
                                "prune",
                                &c.label(),
                                &format!(
                                    "kept: it holds objects that are not this environment's ({})",
                                    foreign.join(", ")
                                ),
                            );
                            return Ok(Err(c.label()));
                        }
                    }
                    api.delete(
                        &c.resource,
                        c.namespace.as_deref(),
                        &c.name,
                        c.uid.as_deref(),
                    )
                    .await?;
                    progress.event("delete", &c.label(), "deleted");
                    Ok(Ok(c.label()))
                }
            }))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        for r in results {
            match r? {
                Ok(label) => deleted.push(label),
                Err(label) => kept.push(label),
            }
        }
    }
    deleted.sort();
    kept.sort();
    Ok((deleted, kept))
}

/// Deletes every member of an environment's ApplySet, then its parent (and a legacy parent).
/// Rendered objects that exist but are not members are left alone and reported.
pub async fn delete_all(
    api: &Api,
    plan: &Plan,
    concurrency: usize,
    progress: &Progress,
) -> Result<Outcome, ClusterError> {
    let mut outcome = Outcome::default();
    for c in plan.changes.iter().filter(|c| c.action == Action::Foreign) {
        progress.event(
            "delete",
            &c.label(),
            &format!(
                "left alone: {}",
                c.why.as_deref().unwrap_or("not this environment's")
            ),
        );
        outcome.kept.push(c.label());
    }
    if plan.parent.is_none() && plan.legacy.is_none() {
        progress.note(&format!(
            "nothing to delete: no ApplySet {}/{} on context {}",
            plan.applyset.namespace, plan.applyset.name, api.context
        ));
        return Ok(outcome);
    }
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
    let (deleted, kept) = delete_members(api, plan, &members, concurrency, progress).await?;
    outcome.pruned = deleted;
    outcome.kept.extend(kept);
    let secret = secret_resource(api).await?;
    let mut parents: Vec<(String, Option<String>)> = Vec::new();
    if let Some(p) = &plan.parent {
        parents.push((
            plan.applyset.name.clone(),
            p["metadata"]["uid"].as_str().map(str::to_string),
        ));
    }
    if let Some(l) = &plan.legacy {
        parents.push((l.name.clone(), l.uid.clone()));
    }
    for (name, uid) in parents {
        api.delete(
            &secret,
            Some(&plan.applyset.namespace),
            &name,
            uid.as_deref(),
        )
        .await?;
        progress.event(
            "delete",
            &format!("Secret {}", display(Some(&plan.applyset.namespace), &name)),
            "deleted (ApplySet parent)",
        );
    }
    let (deleted, kept) = delete_members(api, plan, &namespace, concurrency, progress).await?;
    outcome.pruned.extend(deleted);
    outcome.kept.extend(kept);
    Ok(outcome)
}
