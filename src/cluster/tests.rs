//! Plan, apply, prune, delete and wait on the seam below HTTP ([`super::memory`]): request
//! budgets, ownership, drift and the inventory, with no socket and no server.

use serde_json::{Value, json};

use super::api::Api;
use super::apply::{self, Options as ApplyOptions};
use super::applyset::ApplySet;
use super::connect::Options;
use super::memory::Memory;
use super::plan::{self, Action, Compare, Options as PlanOptions, Plan};
use super::progress::{Mode, Progress};
use super::{ClusterError, wait};
use crate::bundle::{Bundle, Manifest, group};

fn manifest(obj: Value) -> Manifest {
    let kind = obj["kind"].as_str().expect("kind").to_string();
    Manifest {
        group: group(&kind),
        api_version: obj["apiVersion"].as_str().expect("apiVersion").to_string(),
        name: obj["metadata"]["name"].as_str().expect("name").to_string(),
        namespace: obj["metadata"]["namespace"].as_str().map(str::to_string),
        template: "test".into(),
        text: obj.to_string(),
        kind,
    }
}

/// A namespace with `models` Deployments and Services.
fn bundle(ns: &str, models: &[&str], replicas: i64) -> Bundle {
    let labels = json!({"app.kubernetes.io/managed-by": "mldeploy", "app.kubernetes.io/part-of": "shop",
                        "mldeploy.io/environment": "prod"});
    let mut manifests = vec![manifest(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": labels}}))];
    for m in models {
        manifests.push(manifest(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": m, "namespace": ns, "labels": labels},
            "spec": {"ports": [{"port": 80}], "selector": {"app": m}}})));
        manifests.push(manifest(
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": m, "namespace": ns, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": m}}}}),
        ));
    }
    manifests.sort_by_key(|m| m.group);
    Bundle {
        manifests,
        terraform: Vec::new(),
    }
}

struct Rig {
    mem: Memory,
    rt: tokio::runtime::Runtime,
}

impl Rig {
    fn new() -> Self {
        Rig {
            mem: Memory::default(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }

    fn api(&self) -> Api {
        // kube's client spawns its request buffer: inside the runtime.
        let _inside = self.rt.enter();
        Api::from_client(self.mem.client(), "memory", Options::default())
    }

    fn plan_with(
        &self,
        b: &Bundle,
        set: &ApplySet,
        compare: Compare,
        adopt: bool,
    ) -> Result<Plan, ClusterError> {
        let api = self.api();
        let opts = PlanOptions {
            compare,
            adopt,
            concurrency: 4,
        };
        self.rt
            .block_on(plan::plan(&api, b, &set.env, set.clone(), opts))
    }

    fn plan(&self, b: &Bundle, set: &ApplySet) -> Plan {
        self.plan_with(b, set, Compare::DryRun, false)
            .expect("plan")
    }

    fn apply(
        &self,
        b: &Bundle,
        set: &ApplySet,
        prune: bool,
    ) -> Result<apply::Outcome, ClusterError> {
        let api = self.api();
        let opts = PlanOptions {
            compare: Compare::DryRun,
            adopt: false,
            concurrency: 4,
        };
        self.rt.block_on(async {
            let plan = plan::plan(&api, b, &set.env, set.clone(), opts).await?;
            let o = ApplyOptions {
                prune,
                concurrency: 4,
                ..ApplyOptions::default()
            };
            apply::execute(&api, &plan, o, &Progress::new(Mode::Quiet, "apply", 0)).await
        })
    }

    fn delete(&self, b: &Bundle, set: &ApplySet) -> apply::Outcome {
        let api = self.api();
        self.rt
            .block_on(async {
                let plan = plan::plan(
                    &api,
                    b,
                    &set.env,
                    set.clone(),
                    PlanOptions {
                        compare: Compare::Existence,
                        adopt: false,
                        concurrency: 4,
                    },
                )
                .await?;
                apply::delete_all(&api, &plan, 4, &Progress::new(Mode::Quiet, "delete", 0)).await
            })
            .expect("delete")
    }
}

fn prod() -> ApplySet {
    ApplySet::new("shop", "prod", "shop")
}

#[test]
fn first_apply_creates_without_dry_runs_and_a_noop_costs_only_lists() {
    let rig = Rig::new();
    let b = bundle("shop", &["a", "b", "c"], 1);
    let out = rig.apply(&b, &prod(), false).expect("apply");
    assert_eq!(out.created.len(), 7);
    assert_eq!(rig.mem.dry_runs(), 0, "{:#?}", rig.mem.seen());
    // 7 applies + the parent before the members (it must list their kinds) and after (the
    // inventory of what the server answered).
    assert_eq!(rig.mem.writes().len(), 9, "{:#?}", rig.mem.writes());

    rig.mem.forget();
    let out = rig.apply(&b, &prod(), false).expect("no-op apply");
    assert_eq!(out.unchanged, 7);
    assert!(rig.mem.writes().is_empty(), "{:#?}", rig.mem.writes());
    assert_eq!(rig.mem.dry_runs(), 0);
    let seen = rig.mem.seen();
    let lists = seen
        .iter()
        .filter(|s| s.method == "GET" && s.uri.contains("limit="))
        .count();
    let discovery = seen.len() - lists;
    // One LIST per kind (Namespace, Service, Deployment) and one of the namespace's parents;
    // discovery of the two group-versions.
    assert_eq!((lists, discovery), (4, 2), "{seen:#?}");
}

#[test]
fn drift_by_another_manager_shows_in_the_plan_and_apply_restores_it() {
    let rig = Rig::new();
    let b = bundle("shop", &["a", "b"], 2);
    rig.apply(&b, &prod(), false).expect("apply");
    rig.mem.edit(
        "apps/v1",
        "deployments",
        "shop",
        "a",
        &["spec", "replicas"],
        json!(5),
    );
    let plan = rig.plan(&b, &prod());
    let updates: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Update)
        .map(|c| c.label())
        .collect();
    assert_eq!(updates, ["Deployment shop/a"]);
    let diff = &plan
        .changes
        .iter()
        .find(|c| c.action == Action::Update)
        .expect("update")
        .diff;
    assert!(
        diff.contains("-  replicas: 5") && diff.contains("+  replicas: 2"),
        "{diff}"
    );
    // Only the object that failed the fingerprint test got a dry run.
    assert_eq!(rig.mem.dry_runs(), 1);
    rig.apply(&b, &prod(), false).expect("apply");
    let live = rig
        .mem
        .get("apps/v1", "deployments", Some("shop"), "a")
        .expect("a");
    assert_eq!(live["spec"]["replicas"], 2);
    // And after the repair, the next apply is a no-op again.
    rig.mem.forget();
    let out = rig.apply(&b, &prod(), false).expect("apply");
    assert_eq!(out.unchanged, 5);
    assert!(rig.mem.writes().is_empty(), "{:#?}", rig.mem.writes());
}

#[test]
fn a_changed_intent_is_an_update_of_that_object_only() {
    let rig = Rig::new();
    rig.apply(&bundle("shop", &["a", "b"], 1), &prod(), false)
        .expect("apply");
    rig.mem.forget();
    let out = rig
        .apply(&bundle("shop", &["a", "b"], 3), &prod(), false)
        .expect("apply");
    assert_eq!(out.updated, ["Deployment shop/a", "Deployment shop/b"]);
    assert_eq!(out.unchanged, 3);
    // Two dry runs, two applies, one parent write (the inventory).
    assert_eq!(rig.mem.dry_runs(), 2);
    assert_eq!(rig.mem.writes().len(), 3, "{:#?}", rig.mem.writes());
}

#[test]
fn objects_that_are_not_ours_are_never_changed_or_deleted() {
    let rig = Rig::new();
    // Another tool's Deployment with the name of one of our models.
    rig.mem.put(
        "apps/v1",
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "b", "namespace": "shop"}, "spec": {"replicas": 7}}),
    );
    let b = bundle("shop", &["a", "b"], 1);
    let plan = rig.plan(&b, &prod());
    let foreign: Vec<String> = apply::foreign(&plan);
    assert_eq!(
        foreign,
        ["Deployment shop/b (not created by mldeploy (managed by other))"]
    );
    assert!(plan.has_changes());
    rig.mem.forget();
    match rig.apply(&b, &prod(), true) {
        Err(ClusterError::NotOurs { objects }) => assert_eq!(objects.len(), 1),
        other => panic!("expected NotOurs, got {other:?}"),
    }
    assert!(
        rig.mem.writes().is_empty(),
        "nothing may be written: {:#?}",
        rig.mem.writes()
    );

    // With --adopt it becomes ours; before, delete leaves it alone.
    let without = bundle("shop", &["a"], 1);
    rig.apply(&without, &prod(), false)
        .expect("apply without b");
    let out = rig.delete(&b, &prod());
    assert!(
        out.kept.iter().any(|k| k.contains("Deployment shop/b")),
        "{out:?}"
    );
    let still = rig
        .mem
        .get("apps/v1", "deployments", Some("shop"), "b")
        .expect("b kept");
    assert_eq!(still["spec"]["replicas"], 7);
    // The namespace holds b, which is not ours: it stays.
    assert!(rig.mem.get("v1", "namespaces", None, "shop").is_some());

    let plan = rig
        .plan_with(&b, &prod(), Compare::DryRun, true)
        .expect("plan --adopt");
    assert!(apply::foreign(&plan).is_empty());
}

#[test]
fn two_projects_whose_names_collided_keep_their_own_objects() {
    let rig = Rig::new();
    let one = ApplySet::new("a-b", "c", "shared");
    let two = ApplySet::new("a", "b-c", "shared");
    assert_ne!(one.name, two.name);
    let first = bundle("shared", &["x"], 1);
    rig.apply(&first, &one, false).expect("first project");
    // The second project renders other objects into the same namespace and prunes. The
    // namespace is the first one's: the second uses it as it is.
    let second = bundle("shared", &["y"], 1);
    let plan = rig.plan(&second, &two);
    assert_eq!(plan.changes[0].action, Action::Used);
    assert!(!plan.changes.iter().any(|c| c.action == Action::Foreign));
    rig.apply(&second, &two, true).expect("second project");
    for name in ["x", "y"] {
        assert!(
            rig.mem
                .get("apps/v1", "deployments", Some("shared"), name)
                .is_some(),
            "{name} is gone"
        );
    }
}

#[test]
fn prune_deletes_members_only_and_names_their_uid() {
    let rig = Rig::new();
    rig.apply(&bundle("shop", &["a", "b"], 1), &prod(), false)
        .expect("apply");
    let uid = rig
        .mem
        .get("apps/v1", "deployments", Some("shop"), "b")
        .expect("b")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    rig.mem.forget();
    let out = rig
        .apply(&bundle("shop", &["a"], 1), &prod(), true)
        .expect("prune");
    assert_eq!(out.pruned, ["Deployment shop/b", "Service shop/b"]);
    assert!(
        rig.mem
            .get("apps/v1", "deployments", Some("shop"), "b")
            .is_none()
    );
    let deletes: Vec<_> = rig
        .mem
        .writes()
        .into_iter()
        .filter(|w| w.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 2);
    // The delete names the object the plan saw: a re-created namesake is not deleted.
    assert!(
        deletes.iter().any(|d| d.body.contains(&uid)),
        "{deletes:#?}"
    );
}

#[test]
fn a_legacy_parent_proven_ours_is_migrated_and_one_not_ours_is_left() {
    let rig = Rig::new();
    let set = prod();
    // What mldeploy 0.1 left: a parent under the old name, and a member labelled with its id.
    let legacy_id = super::applyset::id(&set.legacy_name(), "shop", "Secret", "");
    rig.mem.put(
        "v1",
        "secrets",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": set.legacy_name(), "namespace": "shop",
               "labels": {"applyset.kubernetes.io/id": legacy_id, "app.kubernetes.io/part-of": "shop",
                          "mldeploy.io/environment": "prod", "app.kubernetes.io/managed-by": "mldeploy"},
               "annotations": {"applyset.kubernetes.io/contains-group-kinds": "Deployment.apps"}}}),
    );
    rig.mem.put(
        "apps/v1",
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "a", "namespace": "shop", "labels": {"applyset.kubernetes.io/part-of": legacy_id}},
               "spec": {"replicas": 1}}),
    );
    let plan = rig.plan(&bundle("shop", &["a"], 1), &set);
    assert!(plan.legacy.is_some());
    assert!(
        apply::foreign(&plan).is_empty(),
        "{:?}",
        apply::foreign(&plan)
    );
    rig.apply(&bundle("shop", &["a"], 1), &set, false)
        .expect("apply");
    let a = rig
        .mem
        .get("apps/v1", "deployments", Some("shop"), "a")
        .expect("a");
    assert_eq!(
        a["metadata"]["labels"]["applyset.kubernetes.io/part-of"],
        set.id.as_str()
    );
    assert!(
        rig.mem
            .get("v1", "secrets", Some("shop"), &set.legacy_name())
            .is_none()
    );

    // Another project's parent under the same legacy name is not ours: its member is foreign.
    let rig = Rig::new();
    let other = ApplySet::new("shop-prod", "x", "shop");
    assert_eq!(other.legacy_name(), "mldeploy-shop-prod-x");
    let mine = ApplySet::new("shop", "prod-x", "shop");
    let id = super::applyset::id(&mine.legacy_name(), "shop", "Secret", "");
    rig.mem.put(
        "v1",
        "secrets",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": mine.legacy_name(), "namespace": "shop",
               "labels": {"applyset.kubernetes.io/id": id, "app.kubernetes.io/part-of": "shop-prod",
                          "mldeploy.io/environment": "x"}}}),
    );
    rig.mem.put(
        "apps/v1",
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "a", "namespace": "shop", "labels": {"applyset.kubernetes.io/part-of": id}}}),
    );
    let plan = rig.plan(&bundle("shop", &["a"], 1), &mine);
    assert!(plan.legacy.is_none());
    assert_eq!(
        apply::foreign(&plan),
        ["Deployment shop/a (a member of another ApplySet)"]
    );
}

#[test]
fn parents_of_removed_environments_are_reported() {
    let rig = Rig::new();
    let staging = ApplySet::new("shop", "staging", "shop");
    let mut b = bundle("shop", &["a"], 1);
    for m in &mut b.manifests {
        m.text = m.text.replace("\"prod\"", "\"staging\"");
    }
    rig.apply(&b, &staging, false).expect("staging");
    let plan = rig.plan(&bundle("shop", &["z"], 1), &prod());
    assert_eq!(
        plan.orphans,
        [(staging.name.clone(), "staging".to_string())]
    );
    assert!(apply::orphan_notes(&plan)[0].contains("mldeploy delete --orphan staging"));
}

#[test]
fn secrets_are_masked_in_diffs() {
    let rig = Rig::new();
    let mut b = bundle("shop", &[], 1);
    b.manifests
        .push(manifest(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "shop"}, "stringData": {"token": "hunter2"}})));
    let plan = rig.plan(&b, &prod());
    let text: String = plan.changes.iter().map(|c| c.diff.clone()).collect();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("token: '*** (after)'") || text.contains("token: \"*** (after)\""),
        "{text}"
    );
}

#[test]
fn wait_reads_readiness_through_the_same_client() {
    let rig = Rig::new();
    let b = bundle("shop", &["a"], 1);
    rig.apply(&b, &prod(), false).expect("apply");
    let api = rig.api();
    let plan = rig.plan(&b, &prod());
    let targets: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| wait::waited_on(&c.resource.kind))
        .map(|c| (c.resource.clone(), c.namespace.clone(), c.name.clone()))
        .collect();
    let quiet = Progress::new(Mode::Quiet, "wait", 0);
    let ms = std::time::Duration::from_millis;
    let err = rig
        .rt
        .block_on(wait::wait(&api, &targets, ms(30), ms(5), &quiet))
        .expect_err("not ready yet");
    assert!(err.to_string().contains("1 object(s) not ready"), "{err}");
    rig.mem.set_status(
        "apps/v1",
        "deployments",
        "shop",
        "a",
        json!({"observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 1}),
    );
    rig.rt
        .block_on(wait::wait(&api, &targets, ms(500), ms(5), &quiet))
        .expect("ready");
}

#[test]
fn a_user_who_may_not_list_namespaces_still_plans() {
    let rig = Rig::new();
    rig.mem.forbid_cluster_list("namespaces");
    let b = bundle("shop", &["a"], 1);
    rig.apply(&b, &prod(), false).expect("apply");
    let plan = rig.plan(&b, &prod());
    assert!(
        !plan.has_changes(),
        "{:?}",
        plan.changes
            .iter()
            .map(|c| (c.label(), c.action))
            .collect::<Vec<_>>()
    );
}
