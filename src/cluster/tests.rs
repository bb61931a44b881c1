//! Plan, apply, prune, delete and wait on the seam below HTTP ([`super::memory`]): request
//! budgets, ownership, drift, the inventory, ordering, concurrency, conflicts, retries, deadlines
//! and pagination, with no socket and no server. The binary's own behaviour (flags, exit codes,
//! output, the HTTP client stack) is tested against the HTTP fake in tests/cluster.rs.

use serde_json::{Value, json};

use super::api::Api;
use super::apply::{self, Options as ApplyOptions};
use super::applyset::ApplySet;
use super::connect::Options;
use super::memory::{Fault, Memory};
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
        self.api_with(Options::default())
    }

    fn api_with(&self, opts: Options) -> Api {
        // kube's client spawns its request buffer: inside the runtime.
        let _inside = self.rt.enter();
        Api::from_client(self.mem.client(), "memory", opts)
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
        self.apply_with(
            b,
            set,
            ApplyOptions {
                prune,
                concurrency: 4,
                ..ApplyOptions::default()
            },
        )
    }

    fn apply_with(
        &self,
        b: &Bundle,
        set: &ApplySet,
        o: ApplyOptions,
    ) -> Result<apply::Outcome, ClusterError> {
        let api = self.api();
        let opts = PlanOptions {
            compare: Compare::DryRun,
            adopt: false,
            concurrency: o.concurrency,
        };
        self.rt.block_on(async {
            let plan = plan::plan(&api, b, &set.env, set.clone(), opts).await?;
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

/// A namespace with, per model, one object of each apply group after it: a ServiceAccount (2),
/// a ConfigMap (3), a Service (4), a Deployment (5), an InferenceService and a ScaledObject (6),
/// a ServiceMonitor (7).
fn every_group(ns: &str, models: &[&str]) -> Bundle {
    let mut b = bundle(ns, &[], 1);
    let meta = |m: &str| json!({"name": m, "namespace": ns});
    for m in models {
        for obj in [
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(m)}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(m), "data": {"k": "v"}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(m),
                   "spec": {"ports": [{"port": 80}]}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(m),
                   "spec": {"replicas": 1}}),
            json!({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                   "metadata": meta(m), "spec": {"predictor": {}}}),
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": meta(m),
                   "spec": {"scaleTargetRef": {"name": m}}}),
            json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                   "metadata": meta(m), "spec": {"endpoints": []}}),
        ] {
            b.manifests.push(manifest(obj));
        }
    }
    b.manifests.sort_by_key(|m| m.group);
    b
}

/// The resource (plural) each write went to, in the order the server saw them; the parent is
/// `parent`.
fn written(rig: &Rig) -> Vec<String> {
    rig.mem
        .writes()
        .iter()
        .map(|w| {
            let path = w.uri.split('?').next().unwrap_or("");
            let mut segs = path.rsplit('/');
            let name = segs.next().unwrap_or("");
            let plural = segs.next().unwrap_or("");
            if plural == "secrets" && name.starts_with("mldeploy.") {
                "parent".to_string()
            } else {
                plural.to_string()
            }
        })
        .collect()
}

fn kind_of(plural: &str) -> &'static str {
    match plural {
        "namespaces" => "Namespace",
        "serviceaccounts" => "ServiceAccount",
        "configmaps" => "ConfigMap",
        "services" => "Service",
        "deployments" => "Deployment",
        "inferenceservices" => "InferenceService",
        "scaledobjects" => "ScaledObject",
        "servicemonitors" => "ServiceMonitor",
        other => panic!("unexpected write to {other}"),
    }
}

#[test]
fn each_object_is_sent_only_after_every_group_it_needs() {
    let rig = Rig::new();
    let models = ["a", "b", "c", "d", "e"];
    let b = every_group("shop", &models);
    let out = rig.apply(&b, &prod(), false).expect("apply");
    assert_eq!(out.created.len(), 1 + 7 * models.len());
    let seen = written(&rig);
    // The parent before any member but the Namespace it lives in, and once more at the end.
    assert_eq!(seen[0], "namespaces", "{seen:?}");
    assert_eq!(seen[1], "parent", "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("parent"), "{seen:?}");
    assert_eq!(seen.iter().filter(|p| *p == "parent").count(), 2);
    let members = &seen[2..seen.len() - 1];
    for (i, plural) in members.iter().enumerate() {
        let kind = kind_of(plural);
        for needed in apply::needs(group(kind), kind) {
            if let Some(late) = members[i..].iter().find(|p| group(kind_of(p)) == *needed) {
                panic!("{kind} was sent before {late} (group {needed}) was done: {members:?}");
            }
        }
    }
    // What DESIGN's order has a reason for.
    let need = |k: &str| apply::needs(group(k), k);
    for before in ["ServiceAccount", "ConfigMap", "Service"] {
        for after in ["Deployment", "InferenceService", "ScaledObject"] {
            assert!(
                need(after).contains(&group(before)),
                "{after} after {before}"
            );
        }
    }
    assert!(need("ScaledObject").contains(&group("Deployment")));
    assert!(need("ServiceMonitor").contains(&group("Service")));
    // And what it does not: serving resources and monitoring do not wait for workloads or each
    // other, and groups 2–4 do not wait for each other.
    assert!(!need("InferenceService").contains(&group("Deployment")));
    assert!(!need("ServiceMonitor").contains(&group("InferenceService")));
    assert!(!need("Service").contains(&group("ConfigMap")));
}

#[test]
fn a_failure_stops_the_objects_that_need_it_and_no_others() {
    // (the failing resource, the path of its object `b`, sent, never sent)
    let cases: [(&str, &'static str, &[&str], &[&str]); 3] = [
        // A Service fails: nothing that needs Services is sent.
        (
            "services",
            "/services/b",
            &["serviceaccounts", "configmaps", "services"],
            &[
                "deployments",
                "inferenceservices",
                "scaledobjects",
                "servicemonitors",
            ],
        ),
        // A Deployment fails: the ScaledObjects that scale workloads wait; the rest goes on.
        (
            "deployments",
            "/deployments/b",
            &[
                "services",
                "deployments",
                "inferenceservices",
                "servicemonitors",
            ],
            &["scaledobjects"],
        ),
        // A serving resource fails: monitoring and workloads do not wait for those.
        (
            "inferenceservices",
            "/inferenceservices/b",
            &[
                "deployments",
                "inferenceservices",
                "scaledobjects",
                "servicemonitors",
            ],
            &[],
        ),
    ];
    for (failing, path, sent, never) in cases {
        let rig = Rig::new();
        rig.mem.inject(Fault::new("PATCH", path, 422, 1));
        let b = every_group("shop", &["a", "b", "c"]);
        let err = rig
            .apply(&b, &prod(), false)
            .expect_err("one object is invalid");
        assert!(err.to_string().contains("injected fault"), "{err}");
        let seen = written(&rig);
        for p in sent {
            assert!(
                seen.iter().any(|s| s == p),
                "{failing}: {p} not sent: {seen:?}"
            );
        }
        for p in never {
            assert!(
                !seen.iter().any(|s| s == p),
                "{failing}: {p} sent: {seen:?}"
            );
        }
        // Every object of the failing group was tried; no inventory is recorded after a failure.
        let tried = seen.iter().filter(|s| *s == failing).count();
        assert_eq!(tried, 3, "{failing}: {seen:?}");
        assert_eq!(seen.iter().filter(|s| *s == "parent").count(), 1);
    }
}

#[test]
fn ctrl_c_stops_at_once_and_a_rerun_converges() {
    let rig = Rig::new();
    let b = every_group("shop", &["a", "b", "c"]);
    rig.mem.hold("services");
    let api = rig.api();
    let opts = PlanOptions {
        compare: Compare::DryRun,
        adopt: false,
        concurrency: 4,
    };
    let stopped = rig.rt.block_on(async {
        let plan = plan::plan(&api, &b, "prod", prod(), opts)
            .await
            .expect("plan");
        let quiet = Progress::new(Mode::Quiet, "apply", 0);
        let run = apply::execute(
            &api,
            &plan,
            ApplyOptions {
                concurrency: 4,
                ..ApplyOptions::default()
            },
            &quiet,
        );
        // Ctrl-C (commands::cluster's `select!`) drops the apply while Services are in flight.
        let interrupt = async {
            while rig.mem.parked() == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::select! {
            _ = run => false,
            () = interrupt => true,
        }
    });
    assert!(stopped, "the apply finished although Services were held");
    rig.mem.release();
    let seen = written(&rig);
    for p in [
        "deployments",
        "inferenceservices",
        "scaledobjects",
        "servicemonitors",
    ] {
        assert!(
            !seen.iter().any(|s| s == p),
            "{p} sent after the interrupt: {seen:?}"
        );
    }
    assert_eq!(
        seen.iter().filter(|s| *s == "parent").count(),
        1,
        "{seen:?}"
    );
    let out = rig.apply(&b, &prod(), false).expect("rerun");
    assert_eq!(out.created.len() + out.updated.len() + out.unchanged, 22);
    rig.mem.forget();
    let out = rig.apply(&b, &prod(), false).expect("no-op");
    assert_eq!(out.unchanged, 22);
    assert!(rig.mem.writes().is_empty(), "{:#?}", rig.mem.writes());
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
    rig.mem.put_owned(
        "apps/v1",
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "a", "namespace": "shop", "labels": {"applyset.kubernetes.io/part-of": legacy_id}},
               "spec": {"replicas": 1}}),
        super::FIELD_MANAGER,
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
    let text: String = plan.changes.iter().map(|c| c.diff_text()).collect();
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

/// The apply group of a request path, by its resource (as [`crate::bundle::group`] orders kinds).
fn group_of(uri: &str) -> u8 {
    let path = uri.split('?').next().unwrap_or("");
    match path.split('/').rev().nth(1).unwrap_or("") {
        "namespaces" => 1,
        "secrets" | "configmaps" => 3,
        "services" => 4,
        "deployments" => 5,
        other => panic!("no group for {other} in {uri}"),
    }
}

/// A Seldon-free, KServe model beside the Deployments: the kind a CRD serves, waited on by its
/// Ready condition.
fn with_inference_service(mut b: Bundle, ns: &str, name: &str) -> Bundle {
    b.manifests
        .push(manifest(json!({"apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService", "metadata": {"name": name, "namespace": ns,
        "labels": {"app.kubernetes.io/managed-by": "mldeploy"}},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}}})));
    b.manifests.sort_by_key(|m| m.group);
    b
}

#[test]
fn apply_goes_group_by_group_with_the_parent_first_and_last() {
    let rig = Rig::new();
    let set = prod();
    rig.apply(&bundle("shop", &["a", "b", "c"], 1), &set, false)
        .expect("apply");
    let writes: Vec<String> = rig.mem.writes().into_iter().map(|w| w.uri).collect();
    let parent = format!("/api/v1/namespaces/shop/secrets/{}?", set.name);
    // The Namespace that holds the parent, then the parent (listing the kinds to come, so a
    // failure part-way leaves nothing prune cannot find), the members group by group, and the
    // parent again with what was applied.
    assert!(
        writes[0].starts_with("/api/v1/namespaces/shop?"),
        "{writes:#?}"
    );
    assert!(writes[1].starts_with(&parent), "{writes:#?}");
    assert!(writes[writes.len() - 1].starts_with(&parent), "{writes:#?}");
    let groups: Vec<u8> = writes[2..writes.len() - 1]
        .iter()
        .map(|w| group_of(w))
        .collect();
    assert!(groups.windows(2).all(|w| w[0] <= w[1]), "{writes:#?}");
    assert_eq!(groups.len(), 6);

    let live = rig
        .mem
        .get("v1", "secrets", Some("shop"), &set.name)
        .expect("parent");
    let annotations = &live["metadata"]["annotations"];
    assert_eq!(
        annotations[super::applyset::CONTAINS],
        "Deployment.apps,Namespace,Service"
    );
    assert!(
        annotations[super::applyset::TOOLING]
            .as_str()
            .is_some_and(|t| t.starts_with("mldeploy/v")),
        "{annotations}"
    );
    assert_eq!(live["metadata"]["labels"][super::applyset::ID], set.id);
    for (api_version, plural, name) in [("apps/v1", "deployments", "a"), ("v1", "services", "c")] {
        let m = rig
            .mem
            .get(api_version, plural, Some("shop"), name)
            .expect("member");
        assert_eq!(
            m["metadata"]["labels"][super::applyset::PART_OF],
            set.id,
            "{m}"
        );
    }

    // Dropping every Service and pruning takes the kind out of the parent's list.
    rig.apply(
        &Bundle {
            manifests: bundle("shop", &["a"], 1)
                .manifests
                .into_iter()
                .filter(|m| m.kind != "Service")
                .collect(),
            terraform: Vec::new(),
        },
        &set,
        true,
    )
    .expect("prune");
    let live = rig
        .mem
        .get("v1", "secrets", Some("shop"), &set.name)
        .expect("parent");
    assert_eq!(
        live["metadata"]["annotations"][super::applyset::CONTAINS],
        "Deployment.apps,Namespace"
    );
}

#[test]
fn requests_within_a_group_overlap_up_to_the_concurrency() {
    let rig = Rig::new();
    let b = bundle("shop", &["a", "b", "c", "d", "e", "f"], 1);
    let api = rig.api();
    let plan = rig.plan(&b, &prod());
    // Each answer waits a little, so requests sent together are in flight together.
    rig.mem.set_delay(std::time::Duration::from_millis(2));
    rig.mem.forget();
    let o = ApplyOptions {
        concurrency: 3,
        ..ApplyOptions::default()
    };
    rig.rt
        .block_on(apply::execute(
            &api,
            &plan,
            o,
            &Progress::new(Mode::Quiet, "apply", 0),
        ))
        .expect("apply");
    assert_eq!(rig.mem.max_in_flight(), 3);
}

#[test]
fn prune_happens_only_when_asked_in_reverse_order_and_never_to_look_alikes() {
    let rig = Rig::new();
    rig.apply(&bundle("shop", &["a", "b"], 1), &prod(), false)
        .expect("apply");
    // Someone else's object with the labels of ours but no membership.
    rig.mem.put(
        "v1",
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs", "namespace": "shop",
               "labels": {"app.kubernetes.io/managed-by": "mldeploy", "app.kubernetes.io/part-of": "shop",
                          "mldeploy.io/environment": "prod"}}}),
    );
    let smaller = bundle("shop", &["a"], 1);
    let plan = rig.plan(&smaller, &prod());
    let prunes: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Prune)
        .map(|c| c.label())
        .collect();
    assert_eq!(prunes, ["Deployment shop/b", "Service shop/b"]);

    rig.mem.forget();
    let out = rig.apply(&smaller, &prod(), false).expect("apply");
    assert!(out.pruned.is_empty());
    assert!(
        rig.mem.writes().iter().all(|w| w.method != "DELETE"),
        "{:#?}",
        rig.mem.writes()
    );

    rig.mem.forget();
    rig.apply(&smaller, &prod(), true).expect("prune");
    let deletes: Vec<String> = rig
        .mem
        .writes()
        .into_iter()
        .filter(|w| w.method == "DELETE")
        .map(|w| w.uri)
        .collect();
    // The reverse of the apply order: what uses a Service goes before it.
    assert_eq!(deletes.len(), 2, "{deletes:#?}");
    assert!(deletes[0].contains("/deployments/b"), "{deletes:#?}");
    assert!(deletes[1].contains("/services/b"), "{deletes:#?}");
    assert!(
        rig.mem
            .get("v1", "configmaps", Some("shop"), "theirs")
            .is_some()
    );
    assert!(!rig.plan(&smaller, &prod()).has_changes());
}

#[test]
fn nothing_is_pruned_after_a_failed_apply_and_500s_are_retried_a_bounded_number_of_times() {
    let rig = Rig::new();
    rig.apply(&bundle("shop", &["a", "b"], 1), &prod(), false)
        .expect("apply");
    rig.mem
        .inject(Fault::new("PATCH", "/deployments/a", 500, 100).dry_run(false));
    rig.mem.forget();
    let err = rig
        .apply(&bundle("shop", &["a"], 2), &prod(), true)
        .expect_err("the write of a fails");
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert!(
        rig.mem.writes().iter().all(|w| w.method != "DELETE"),
        "pruned after a failure: {:#?}",
        rig.mem.writes()
    );
    assert!(
        rig.mem
            .get("apps/v1", "deployments", Some("shop"), "b")
            .is_some()
    );
    let attempts = rig
        .mem
        .writes()
        .iter()
        .filter(|w| w.method == "PATCH" && w.uri.contains("/deployments/a?"))
        .count();
    assert_eq!(attempts, 5, "{:#?}", rig.mem.writes());
}

#[test]
fn server_errors_and_broken_connections_are_retried_and_the_apply_converges() {
    let rig = Rig::new();
    let b = bundle("shop", &["a", "b"], 1);
    rig.mem.inject(Fault::new("GET", "/deployments", 500, 2));
    rig.mem
        .inject(Fault::new("PATCH", "/services/", 502, 2).dry_run(false));
    // Code 0: the connection breaks without an answer.
    rig.mem.inject(Fault::new("PATCH", "/deployments/", 0, 2));
    rig.mem.inject(Fault::new("GET", "/apis", 0, 1));
    let out = rig.apply(&b, &prod(), false).expect("apply");
    assert_eq!(out.created.len(), 5);
    assert_eq!(rig.mem.pending_faults(), 0);
    rig.mem.forget();
    let out = rig.apply(&b, &prod(), false).expect("no-op");
    assert_eq!(out.unchanged, 5);
    assert!(rig.mem.writes().is_empty(), "{:#?}", rig.mem.writes());
}

#[test]
fn a_definite_refusal_is_not_retried_stops_later_groups_and_a_rerun_converges() {
    let rig = Rig::new();
    let b = bundle("shop", &["a", "b"], 1);
    rig.mem
        .inject(Fault::new("PATCH", "/services/a", 400, 1).dry_run(false));
    let err = rig.apply(&b, &prod(), false).expect_err("refused");
    assert!(err.to_string().contains("HTTP 400"), "{err}");
    let patches = |what: &str| {
        rig.mem
            .writes()
            .iter()
            .filter(|w| w.method == "PATCH" && w.uri.contains(what))
            .count()
    };
    assert_eq!(patches("/services/a?"), 1, "a 400 is not retried");
    assert_eq!(patches("/deployments/"), 0, "a later group was applied");
    let out = rig.apply(&b, &prod(), false).expect("rerun");
    assert_eq!(out.unchanged + out.created.len(), 5, "{out:?}");
    rig.mem.forget();
    assert!(!rig.plan(&b, &prod()).has_changes());
    assert!(rig.mem.writes().is_empty());
}

#[test]
fn a_server_that_does_not_answer_meets_the_deadline() {
    let rig = Rig::new();
    rig.mem.set_delay(std::time::Duration::from_secs(3600));
    let api = rig.api_with(Options {
        request_timeout: std::time::Duration::from_millis(300),
        verbosity: 0,
    });
    let b = bundle("shop", &["a"], 1);
    let err = rig
        .rt
        .block_on(plan::plan(
            &api,
            &b,
            "prod",
            prod(),
            PlanOptions {
                compare: Compare::DryRun,
                adopt: false,
                concurrency: 4,
            },
        ))
        .expect_err("no answer");
    match err {
        ClusterError::Timeout { after, .. } => assert_eq!(after.as_millis(), 300),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn a_field_another_manager_took_over_is_a_conflict_naming_both_until_forced() {
    let rig = Rig::new();
    let b = bundle("shop", &["a"], 2);
    rig.apply(&b, &prod(), false).expect("apply");
    rig.mem.take_over(
        "apps/v1",
        "deployments",
        "shop",
        "a",
        &["spec", "replicas"],
        json!(9),
        "kubectl-edit",
    );
    rig.mem.forget();
    let err = rig.apply(&b, &prod(), false).expect_err("conflict");
    let conflict = match &err {
        ClusterError::Conflict { .. } => &err,
        ClusterError::Many { errors } => errors
            .iter()
            .find(|e| matches!(e, ClusterError::Conflict { .. }))
            .unwrap_or_else(|| panic!("{err}")),
        other => panic!("expected a conflict, got {other:?}"),
    };
    match conflict {
        ClusterError::Conflict { object, conflicts } => {
            assert_eq!(object, "Deployment shop/a");
            assert_eq!(
                conflicts,
                &[(".spec.replicas".to_string(), "kubectl-edit".to_string())]
            );
        }
        _ => unreachable!(),
    }
    assert!(
        conflict
            .hint()
            .is_some_and(|h| h.contains("--force-conflicts"))
    );
    let live = rig
        .mem
        .get("apps/v1", "deployments", Some("shop"), "a")
        .expect("a");
    assert_eq!(live["spec"]["replicas"], 9, "the refused apply changed it");
    rig.apply_with(
        &b,
        &prod(),
        ApplyOptions {
            force_conflicts: true,
            concurrency: 4,
            ..ApplyOptions::default()
        },
    )
    .expect("forced");
    let live = rig
        .mem
        .get("apps/v1", "deployments", Some("shop"), "a")
        .expect("a");
    assert_eq!(live["spec"]["replicas"], 2);
}

#[test]
fn a_kind_the_cluster_does_not_serve_is_named_and_nothing_is_written() {
    let rig = Rig::new();
    let mut b = bundle("shop", &["a"], 1);
    b.manifests.push(manifest(
        json!({"apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment", "metadata": {"name": "s", "namespace": "shop"}, "spec": {}}),
    ));
    b.manifests.sort_by_key(|m| m.group);
    match rig.plan_with(&b, &prod(), Compare::DryRun, false) {
        Err(ClusterError::NotInstalled { kinds, .. }) => {
            assert_eq!(kinds, ["SeldonDeployment (machinelearning.seldon.io/v1)"]);
        }
        other => panic!("expected NotInstalled, got {other:?}"),
    }
    assert!(rig.mem.writes().is_empty(), "{:#?}", rig.mem.writes());
}

#[test]
fn lists_read_every_page() {
    let rig = Rig::new();
    for i in 0..501 {
        rig.mem.put(
            "v1",
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": format!("c{i:03}"), "namespace": "shop", "labels": {"x": "y"}}}),
        );
    }
    rig.mem.put(
        "v1",
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": "shop"}}),
    );
    let api = rig.api();
    let r = super::api::Resource {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
        namespaced: true,
    };
    let items = rig
        .rt
        .block_on(api.list(&r, Some("shop"), "x=y"))
        .expect("list");
    assert_eq!(items.len(), 501);
    assert_eq!(items[500]["metadata"]["name"], "c500");
    assert_eq!(items[0]["kind"], "ConfigMap");
    let pages: Vec<String> = rig.mem.seen().into_iter().map(|s| s.uri).collect();
    assert_eq!(pages.len(), 2, "{pages:#?}");
    assert!(pages[1].contains("continue=500"), "{pages:#?}");
}

#[test]
fn wait_names_what_is_not_ready_with_its_conditions_and_warnings_per_kind() {
    let rig = Rig::new();
    let b = with_inference_service(bundle("shop", &["a"], 1), "shop", "isvc");
    rig.apply(&b, &prod(), false).expect("apply");
    rig.mem.put(
        "v1",
        "events",
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "a.1", "namespace": "shop"},
               "involvedObject": {"name": "a"}, "type": "Warning", "reason": "FailedCreate",
               "message": "quota exceeded"}),
    );
    rig.mem.set_status(
        "serving.kserve.io/v1beta1",
        "inferenceservices",
        "shop",
        "isvc",
        json!({"conditions": [{"type": "Ready", "status": "False", "message": "predictor not ready"}]}),
    );
    let api = rig.api();
    let plan = rig.plan(&b, &prod());
    let targets: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| wait::waited_on(&c.resource.kind))
        .map(|c| (c.resource.clone(), c.namespace.clone(), c.name.clone()))
        .collect();
    assert_eq!(targets.len(), 2, "Deployment and InferenceService");
    let quiet = Progress::new(Mode::Quiet, "wait", 0);
    let ms = std::time::Duration::from_millis;
    let err = rig
        .rt
        .block_on(wait::wait(&api, &targets, ms(20), ms(5), &quiet))
        .expect_err("not ready");
    let ClusterError::NotReady { not_ready, .. } = err else {
        panic!("expected NotReady, got {err:?}");
    };
    let objects: Vec<&str> = not_ready.iter().map(|n| n.object.as_str()).collect();
    assert_eq!(objects, ["Deployment shop/a", "InferenceService shop/isvc"]);
    assert_eq!(not_ready[0].events, ["FailedCreate: quota exceeded"]);
    assert!(
        not_ready[1]
            .conditions
            .iter()
            .any(|c| c.contains("Ready=False") && c.contains("predictor not ready")),
        "{:?}",
        not_ready[1].conditions
    );
    // Each kind by its own rule: the InferenceService by its Ready condition.
    rig.mem.set_status(
        "apps/v1",
        "deployments",
        "shop",
        "a",
        json!({"observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 1}),
    );
    let err = rig
        .rt
        .block_on(wait::wait(&api, &targets, ms(20), ms(5), &quiet))
        .expect_err("the InferenceService is not ready");
    assert!(err.to_string().contains("1 object(s)"), "{err}");
    rig.mem.set_status(
        "serving.kserve.io/v1beta1",
        "inferenceservices",
        "shop",
        "isvc",
        json!({"conditions": [{"type": "Ready", "status": "True"}]}),
    );
    rig.rt
        .block_on(wait::wait(&api, &targets, ms(500), ms(5), &quiet))
        .expect("ready");
}
