//! Rendered Terraform: parses as HCL, passes `terraform fmt -check`, and holds what each cloud needs.

use std::path::Path;
use std::process::Command;

use hcl::{Block, BlockLabel, Body, Expression, ObjectKey};
use mldeploy::bundle::Bundle;
use mldeploy::catalog::Vendor;
use mldeploy::config::Runtime;
use mldeploy::model::{self, Project};
use mldeploy::render::{self, Templates};

use crate::{root, yaml_files};

/// One environment's rendered Terraform, parsed.
struct Rendered {
    /// `<example>-<env>`, for messages.
    label: String,
    project: Project,
    env: String,
    bundle: Bundle,
    /// Every file parsed, in file order.
    bodies: Vec<(String, Body)>,
}

impl Rendered {
    fn cluster(&self) -> &mldeploy::model::ClusterModel {
        &self.project.clusters[&self.project.environments[&self.env].cluster]
    }

    fn cloud(&self) -> &'static str {
        self.cluster().cloud.name()
    }

    /// Top-level blocks of every file: `ident` with labels starting with `labels`.
    fn blocks(&self, ident: &str, labels: &[&str]) -> Vec<&Block> {
        self.bodies
            .iter()
            .flat_map(|(_, body)| blocks(body, ident, labels))
            .collect()
    }

    /// The one top-level block `ident` with exactly these leading labels.
    fn block(&self, ident: &str, labels: &[&str]) -> &Block {
        let found = self.blocks(ident, labels);
        assert_eq!(
            found.len(),
            1,
            "{}: expected one `{ident} {labels:?}` block, found {}",
            self.label,
            found.len()
        );
        found[0]
    }

    fn has(&self, ident: &str, labels: &[&str]) -> bool {
        !self.blocks(ident, labels).is_empty()
    }

    /// Whether any model of any environment on this cluster runs on `runtime` (the add-ons serve
    /// the whole cluster).
    fn cluster_uses(&self, runtime: Runtime) -> bool {
        let cluster = &self.project.environments[&self.env].cluster;
        self.project
            .environments
            .values()
            .filter(|e| &e.cluster == cluster)
            .any(|e| e.models.iter().any(|m| m.runtime == runtime))
    }
}

fn label_str(l: &BlockLabel) -> &str {
    match l {
        BlockLabel::Identifier(i) => i.as_str(),
        BlockLabel::String(s) => s,
    }
}

fn blocks<'a>(body: &'a Body, ident: &str, labels: &[&str]) -> Vec<&'a Block> {
    body.blocks()
        .filter(|b| b.identifier() == ident)
        .filter(|b| {
            b.labels().len() >= labels.len()
                && b.labels()
                    .iter()
                    .zip(labels)
                    .all(|(l, want)| label_str(l) == *want)
        })
        .collect()
}

fn block<'a>(body: &'a Body, ident: &str) -> &'a Block {
    let found = blocks(body, ident, &[]);
    assert_eq!(found.len(), 1, "expected one `{ident}` block");
    found[0]
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// The attribute `key`, which must exist.
fn must<'a>(body: &'a Body, key: &str) -> &'a Expression {
    attr(body, key).unwrap_or_else(|| panic!("no attribute `{key}` in\n{}", show(body)))
}

fn show<T: hcl::format::Format>(value: &T) -> String {
    hcl::format::to_string(value).unwrap_or_else(|e| format!("(cannot format: {e})"))
}

/// A string literal's value.
fn string(e: &Expression) -> &str {
    match e {
        Expression::String(s) => s,
        other => panic!("expected a string literal, found {}", show(other)),
    }
}

fn number(e: &Expression) -> u32 {
    match e {
        Expression::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .expect("a small whole number"),
        other => panic!("expected a number, found {}", show(other)),
    }
}

fn boolean(e: &Expression) -> bool {
    match e {
        Expression::Bool(b) => *b,
        other => panic!("expected a boolean, found {}", show(other)),
    }
}

fn array(e: &Expression) -> &[Expression] {
    match e {
        Expression::Array(items) => items,
        other => panic!("expected a list, found {}", show(other)),
    }
}

fn object_key(k: &ObjectKey) -> String {
    match k {
        ObjectKey::Identifier(i) => i.as_str().to_string(),
        ObjectKey::Expression(Expression::String(s)) => s.clone(),
        other => show(other),
    }
}

/// The value of `key` in an object expression.
fn get<'a>(e: &'a Expression, key: &str) -> Option<&'a Expression> {
    match e {
        Expression::Object(map) => map
            .iter()
            .find(|(k, _)| object_key(k) == key)
            .map(|(_, v)| v),
        other => panic!("expected an object, found {}", show(other)),
    }
}

/// The expression as written (references, function calls), for comparisons.
fn source(e: &Expression) -> String {
    show(e)
}

fn project_from(file: &Path) -> Project {
    let loaded = mldeploy::config::load_file(&root().join(file)).expect("example parses");
    model::resolve(&loaded).unwrap_or_else(|r| panic!("{}", r.render(false)))
}

fn project_from_str(text: &str) -> Project {
    let loaded =
        mldeploy::config::load_str(Path::new("variant.yaml"), text).expect("variant parses");
    model::resolve(&loaded).unwrap_or_else(|r| panic!("{}", r.render(false)))
}

fn render_env(label: String, project: Project, env: &str) -> Rendered {
    let templates = Templates::builtin().expect("built-ins compile");
    let bundle = render::render_env(&project, &project.environments[env], &templates)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let bodies = bundle
        .terraform
        .iter()
        .map(|t| {
            let body = hcl::from_str::<Body>(&t.text).unwrap_or_else(|e| {
                panic!("{label}: {} is not valid HCL: {e}\n{}", t.file, t.text)
            });
            (t.file.clone(), body)
        })
        .collect();
    Rendered {
        label,
        project,
        env: env.to_string(),
        bundle,
        bodies,
    }
}

/// Every example × environment.
fn examples() -> Vec<Rendered> {
    let mut out = Vec::new();
    for file in yaml_files("examples") {
        let project = project_from(&file);
        let stem = file
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        for env in project.environments.keys().cloned().collect::<Vec<_>>() {
            out.push(render_env(format!("{stem}-{env}"), project.clone(), &env));
        }
    }
    assert!(out.len() >= 6, "every example renders");
    out
}

/// Configs beyond the examples: a zonal GKE cluster (with a pool name that is no Terraform
/// identifier, and its state under a prefix of its own), EKS in an existing VPC with spot GPUs,
/// AKS whose pools all have GPUs or spot capacity, EKS and GKE with nothing but GPU pools (as in
/// DESIGN.md), and a plain kubeadm cluster without add-ons and with local state. Only the
/// examples and the zonal and kubeadm variants say where their state lives.
const VARIANTS: &[(&str, &str)] = &[
    (
        "gke-zonal",
        r#"
version: 1
project: shop
models:
  - {name: ranker, runtime: deployment, image: r.example.com/ranker:1, gpu: {type: l4, count: 1}}
clusters:
  zonal:
    cloud: gcp
    region: us-central1
    gcp: {project: shop-ml, zone: us-central1-a}
    state: {gcs: {bucket: shop-tfstate, prefix: "terraform/${zonal}"}}
    nodePools:
      - {name: cpu4, machine: {cpu: 4, memory: 16Gi}, min: 2, max: 5}
      - {name: gpu-l4, gpu: {type: l4, count: 1}, spot: true, max: 2}
environments:
  prod: {cluster: zonal}
"#,
    ),
    (
        "eks-existing-vpc",
        r#"
version: 1
project: shop
labels: {example.com/owner: data-team}
models:
  - {name: ranker, runtime: seldon, image: r.example.com/ranker:1, gpu: {type: t4, count: 1}}
clusters:
  eks:
    cloud: aws
    region: us-east-1
    aws: {vpcId: vpc-0123, subnetIds: [subnet-a, subnet-b]}
    nodePools:
      - {name: cpu, machine: {cpu: 2, memory: 8Gi}}
      - {name: gpu-spot, gpu: {type: t4, count: 1}, spot: true, max: 4, diskSizeGb: 200}
environments:
  prod: {cluster: eks}
monitoring: {prometheus: false}
"#,
    ),
    (
        "aks-no-system-pool",
        r#"
version: 1
project: shop
labels: {example.com/owner: data-team, team: ml}
models:
  - {name: ranker, runtime: kserve, server: sklearn, modelUri: "https://x.blob.core.windows.net/m/1"}
clusters:
  aks:
    cloud: azure
    region: northeurope
    azure: {resourceGroup: shop-rg}
    nodePools:
      - {name: batchspot, machine: {cpu: 8, memory: 32Gi}, spot: true, max: 10}
      - {name: gput4, gpu: {type: t4, count: 1}, spot: true, max: 2}
environments:
  prod: {cluster: aks}
"#,
    ),
    (
        "gpu-only",
        r#"
version: 1
project: shop
models:
  - {name: ranker, runtime: kserve, server: sklearn, modelUri: "s3://models/ranker/1"}
clusters:
  aws-staging:
    cloud: aws
    region: eu-central-1
    nodePools: [{name: gpu, gpu: {type: a10g, count: 1}, min: 0, max: 2}]
  gke-staging:
    cloud: gcp
    region: europe-west4
    gcp: {project: shop-ml}
    nodePools: [{name: gpu, gpu: {type: t4, count: 1}, min: 0, max: 2}]
environments:
  eks: {cluster: aws-staging}
  gke: {cluster: gke-staging}
"#,
    ),
    (
        "kubeadm",
        r#"
version: 1
project: shop
models:
  - {name: ranker, runtime: deployment, image: r.example.com/ranker:1}
clusters:
  lab:
    cloud: onprem
    distribution: kubeadm
    state: {local: {path: state/lab.tfstate}}
environments:
  prod: {cluster: lab}
monitoring: {prometheus: false}
"#,
    ),
];

fn variants() -> Vec<Rendered> {
    let mut out = Vec::new();
    for (name, text) in VARIANTS {
        let project = project_from_str(text);
        for env in project.environments.keys().cloned().collect::<Vec<_>>() {
            out.push(render_env(format!("{name}-{env}"), project.clone(), &env));
        }
    }
    out
}

/// Writes the files as `render --out` does and runs `terraform fmt -check` on them.
fn assert_fmt_clean(r: &Rendered) {
    let dir = tempfile::tempdir().expect("tempdir");
    r.bundle.write_to(dir.path()).expect("writes");
    let out = Command::new("terraform")
        .args(["fmt", "-check", "-diff", "-no-color"])
        .arg(dir.path().join("terraform"))
        .output()
        .expect("terraform runs");
    assert!(
        out.status.success(),
        "{}: terraform fmt -check found changes:\n{}{}",
        r.label,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_rendered_file_parses_as_hcl_and_is_not_empty() {
    for r in examples().iter().chain(&variants()) {
        assert!(!r.bodies.is_empty(), "{}: no Terraform rendered", r.label);
        for (file, body) in &r.bodies {
            assert!(
                body.iter().next().is_some(),
                "{}: {file} has no blocks or attributes",
                r.label
            );
        }
        for t in &r.bundle.terraform {
            assert!(t.file.ends_with(".tf"), "{}: {}", r.label, t.file);
            assert!(
                !t.text.starts_with('\n') && t.text.ends_with("}\n"),
                "{}: {} should start with content and end with one newline",
                r.label,
                t.file
            );
        }
    }
}

#[test]
#[ignore = "needs terraform on PATH: cargo test -- --ignored (.ci/run runs it when terraform is installed, and says so)"]
fn rendered_terraform_passes_terraform_fmt_check() {
    crate::require_tool(
        "terraform",
        "https://developer.hashicorp.com/terraform/install",
    );
    for r in examples().iter().chain(&variants()) {
        assert_fmt_clean(r);
    }
    // User strings quoted for HCL are in terraform fmt's canonical form too.
    assert_fmt_clean(&hostile().1);
}

#[test]
fn providers_are_pinned_and_state_has_a_remote_backend() {
    for r in examples().iter().chain(&variants()) {
        let terraform = r.block("terraform", &[]);
        let version = string(must(terraform.body(), "required_version"));
        assert!(version.starts_with(">="), "{}: {version}", r.label);

        let providers = block(terraform.body(), "required_providers");
        let mut names: Vec<&str> = providers.body().attributes().map(|a| a.key()).collect();
        names.sort_unstable();
        let cloud_provider = match r.cloud() {
            "gcp" => Some("google"),
            "aws" => Some("aws"),
            "azure" => Some("azurerm"),
            _ => None,
        };
        let mut expected: Vec<&str> = ["helm", "kubernetes"]
            .into_iter()
            .chain(cloud_provider)
            .collect();
        expected.sort_unstable();
        assert_eq!(names, expected, "{}", r.label);
        for a in providers.body().attributes() {
            let source = string(get(a.expr(), "source").expect("source"));
            assert_eq!(source, format!("hashicorp/{}", a.key()), "{}", r.label);
            let version = string(get(a.expr(), "version").expect("version"));
            assert!(
                version.starts_with("~> ") && version[3..].split('.').count() == 2,
                "{}: provider {} is not pinned to a minor floor: {version}",
                r.label,
                a.key()
            );
        }
        assert_eq!(
            string(get(must(providers.body(), "helm"), "version").expect("version")),
            "~> 2.17",
            "{}: helm provider 2.x block syntax is used",
            r.label
        );

        // Every module is pinned to one exact version (a module's code runs with our
        // credentials; a new release is reviewed, not picked up).
        for m in r.blocks("module", &[]) {
            let version = string(must(m.body(), "version"));
            assert!(
                version.split('.').count() == 3
                    && version.split('.').all(|p| p.parse::<u32>().is_ok()),
                "{}: module not pinned exactly: {version}",
                r.label
            );
        }

        let project = &r.project.name;
        let cluster = &r.cluster().name;
        let backends: Vec<&Block> = r
            .blocks("terraform", &[])
            .into_iter()
            .flat_map(|t| blocks(t.body(), "backend", &[]))
            .collect();
        assert_eq!(backends.len(), 1, "{}: one backend", r.label);
        let kind = label_str(&backends[0].labels()[0]);
        let backend = backends[0].body();
        match render::context::backend(r.cluster()) {
            // Where the state lives comes from the cluster's `state`, setting by setting.
            Some(expected) => {
                assert_eq!(kind, expected.kind, "{}", r.label);
                let mut names: Vec<&str> = backend.attributes().map(|a| a.key()).collect();
                let mut wanted: Vec<&str> = expected.settings.iter().map(|s| s.name).collect();
                names.sort_unstable();
                wanted.sort_unstable();
                assert_eq!(names, wanted, "{}", r.label);
                for setting in &expected.settings {
                    let got = must(backend, setting.name);
                    match &setting.value {
                        serde_json::Value::String(v) => assert_eq!(string(got), v, "{}", r.label),
                        serde_json::Value::Bool(v) => assert_eq!(boolean(got), *v, "{}", r.label),
                        other => panic!("{}: unexpected setting {other}", r.label),
                    }
                }
                if kind == "kubernetes" {
                    assert_eq!(
                        attr(backend, "config_context").map(string),
                        r.cluster().context.as_deref(),
                        "{}",
                        r.label
                    );
                }
                let own = match r.cloud() {
                    "gcp" => "gcs",
                    "aws" => "s3",
                    "azure" => "azurerm",
                    _ => "kubernetes",
                };
                assert!(kind == own || kind == "local", "{}: {kind}", r.label);
            }
            // Without one, a partial backend keyed by project and cluster: where the state
            // lives is given at init, never rendered.
            None => {
                let (want, key, value) = match r.cloud() {
                    "gcp" => ("gcs", "prefix", format!("{project}/{cluster}")),
                    "aws" => (
                        "s3",
                        "key",
                        format!("{project}/{cluster}/terraform.tfstate"),
                    ),
                    "azure" => ("azurerm", "key", format!("{project}/{cluster}.tfstate")),
                    other => panic!("{}: an {other} cluster always has state", r.label),
                };
                assert_eq!(kind, want, "{}", r.label);
                assert_eq!(string(must(backend, key)), value, "{}", r.label);
                if kind == "s3" {
                    assert!(boolean(must(backend, "encrypt")), "{}", r.label);
                }
                for unset in ["bucket", "storage_account_name", "container_name"] {
                    assert!(attr(backend, unset).is_none(), "{}: {unset}", r.label);
                }
            }
        }
        // Credentials and this machine's paths are never rendered.
        for secretish in ["access_key", "sas_token", "config_path", "credentials"] {
            assert!(
                attr(backend, secretish).is_none(),
                "{}: {secretish}",
                r.label
            );
        }
    }
}

#[test]
fn state_defaults_to_keys_of_project_and_cluster() {
    let examples = examples();
    let by_label = |label: &str| {
        let r = examples
            .iter()
            .find(|r| r.label == label)
            .unwrap_or_else(|| panic!("no example {label}"));
        let backend = r
            .blocks("terraform", &[])
            .into_iter()
            .flat_map(|t| blocks(t.body(), "backend", &[]))
            .next()
            .expect("backend");
        backend.body().clone()
    };
    let gcs = by_label("gcp-prod");
    assert_eq!(string(must(&gcs, "prefix")), "visual-qc/gke-prod");
    let s3 = by_label("aws-prod");
    assert_eq!(
        string(must(&s3, "key")),
        "doc-ai/eks-main/terraform.tfstate"
    );
    assert_eq!(
        string(must(&s3, "region")),
        "eu-central-1",
        "the cluster's region"
    );
    let azurerm = by_label("azure-dr");
    assert_eq!(string(must(&azurerm, "key")), "radiology/aks-dr.tfstate");
    let kubernetes = by_label("onprem-k3s-factory");
    assert_eq!(
        string(must(&kubernetes, "secret_suffix")),
        "factory-vision.factory.state"
    );
    assert_eq!(string(must(&kubernetes, "namespace")), "kube-system");
}

#[test]
fn kubernetes_and_helm_providers_reach_the_cluster() {
    for r in examples().iter().chain(&variants()) {
        let kubernetes = r.block("provider", &["kubernetes"]);
        let helm = r.block("provider", &["helm"]);
        let helm_k8s = block(helm.body(), "kubernetes");
        for body in [kubernetes.body(), helm_k8s.body()] {
            let text = show(body);
            let wired = match r.cloud() {
                "gcp" => {
                    text.contains("google_container_cluster.this.endpoint")
                        && text.contains("data.google_client_config.current.access_token")
                        && text.contains("cluster_ca_certificate")
                }
                "aws" => {
                    text.contains("module.eks.cluster_endpoint")
                        && text.contains("get-token")
                        && text.contains("cluster_certificate_authority_data")
                }
                // The admin credentials: the user ones sign in with Entra ID (kubelogin).
                "azure" => {
                    text.contains("azurerm_kubernetes_cluster.this.kube_admin_config[0].host")
                        && text.contains("client_key")
                }
                _ => {
                    source(must(body, "config_context")) == "var.kube_context"
                        && source(must(body, "config_path")).contains("var.kubeconfig_path")
                }
            };
            assert!(
                wired,
                "{}: provider not wired to the cluster:\n{text}",
                r.label
            );
        }
    }
}

#[test]
fn gke_node_pools_autoscale_and_gpu_pools_get_accelerators_and_drivers() {
    let all: Vec<Rendered> = examples().into_iter().chain(variants()).collect();
    let gke: Vec<&Rendered> = all.iter().filter(|r| r.cloud() == "gcp").collect();
    assert!(gke.len() >= 2);
    for r in gke {
        let c = r
            .block("resource", &["google_container_cluster", "this"])
            .body();
        assert!(boolean(must(c, "remove_default_node_pool")), "{}", r.label);
        assert_eq!(number(must(c, "initial_node_count")), 1);
        assert!(!blocks(c, "release_channel", &[]).is_empty(), "{}", r.label);
        let wi = block(c, "workload_identity_config");
        assert!(source(must(wi.body(), "workload_pool")).contains(".svc.id.goog"));
        let location = r.block("variable", &["location"]);
        let cluster = r.cluster();
        assert_eq!(
            string(must(location.body(), "default")),
            cluster
                .gcp_zone
                .as_deref()
                .or(cluster.region.as_deref())
                .expect("location"),
            "{}: regional unless a zone is set",
            r.label
        );

        let pools = r.blocks("resource", &["google_container_node_pool"]);
        let added = usize::from(cluster.node_pools.iter().all(|p| p.gpu.is_some()));
        assert_eq!(pools.len(), cluster.node_pools.len() + added, "{}", r.label);
        assert!(
            pools.iter().any(|b| {
                let node = block(b.body(), "node_config");
                blocks(node.body(), "guest_accelerator", &[]).is_empty()
            }),
            "{}: cluster services need a pool without GPUs",
            r.label
        );
        for pool in &cluster.node_pools {
            let found = pools
                .iter()
                .find(|b| string(must(b.body(), "name")) == pool.name)
                .unwrap_or_else(|| panic!("{}: no node pool {}", r.label, pool.name))
                .body();
            let scaling = block(found, "autoscaling").body();
            assert_eq!(number(must(scaling, "total_min_node_count")), pool.min);
            assert_eq!(number(must(scaling, "total_max_node_count")), pool.max);
            let node = block(found, "node_config").body();
            assert_eq!(string(must(node, "machine_type")), pool.machine_type);
            assert_eq!(number(must(node, "disk_size_gb")), pool.disk_size_gb);
            assert_eq!(boolean(must(node, "spot")), pool.spot);
            let accelerators = blocks(node, "guest_accelerator", &[]);
            match &pool.gpu {
                Some(gpu) => {
                    assert_eq!(accelerators.len(), 1, "{}: {}", r.label, pool.name);
                    let acc = accelerators[0].body();
                    assert_eq!(
                        string(must(acc, "type")),
                        gpu.accelerator.expect("GKE accelerator")
                    );
                    assert_eq!(number(must(acc, "count")), gpu.count);
                    let driver = block(acc, "gpu_driver_installation_config");
                    assert_eq!(string(must(driver.body(), "gpu_driver_version")), "DEFAULT");
                }
                None => assert!(accelerators.is_empty(), "{}: {}", r.label, pool.name),
            }
        }
    }
}

#[test]
fn eks_gpu_node_groups_are_labelled_and_tainted() {
    let all: Vec<Rendered> = examples().into_iter().chain(variants()).collect();
    let eks: Vec<&Rendered> = all.iter().filter(|r| r.cloud() == "aws").collect();
    assert!(eks.len() >= 3);
    for r in eks {
        let module = r.block("module", &["eks"]).body();
        assert_eq!(
            string(must(module, "source")),
            "terraform-aws-modules/eks/aws"
        );
        let cluster = r.cluster();
        let groups = must(module, "eks_managed_node_groups");
        let Expression::Object(all_groups) = groups else {
            panic!("node groups are an object")
        };
        let added = usize::from(cluster.node_pools.iter().all(|p| p.gpu.is_some()));
        assert_eq!(
            all_groups.len(),
            cluster.node_pools.len() + added,
            "{}",
            r.label
        );
        assert!(
            all_groups.values().any(|g| get(g, "taints").is_none()),
            "{}: cluster services need a node group without GPUs",
            r.label
        );
        for pool in &cluster.node_pools {
            let group = get(groups, &pool.name)
                .unwrap_or_else(|| panic!("{}: no node group {}", r.label, pool.name));
            let field = |k: &str| get(group, k).unwrap_or_else(|| panic!("{k}"));
            assert_eq!(number(field("min_size")), pool.min);
            assert_eq!(number(field("max_size")), pool.max);
            assert_eq!(number(field("desired_size")), pool.min);
            assert_eq!(
                string(&array(field("instance_types"))[0]),
                pool.machine_type
            );
            assert_eq!(
                string(field("capacity_type")),
                if pool.spot { "SPOT" } else { "ON_DEMAND" }
            );
            let ebs = get(
                get(field("block_device_mappings"), "xvda").expect("xvda"),
                "ebs",
            )
            .expect("ebs");
            assert_eq!(
                number(get(ebs, "volume_size").expect("size")),
                pool.disk_size_gb
            );
            let ami = string(field("ami_type"));
            match &pool.gpu {
                Some(gpu) => {
                    assert_eq!(ami, "AL2023_x86_64_NVIDIA", "{}", r.label);
                    let labels = field("labels");
                    assert_eq!(
                        get(labels, "k8s.amazonaws.com/accelerator").map(string),
                        gpu.accelerator,
                        "{}: {}",
                        r.label,
                        pool.name
                    );
                    let taints = field("taints");
                    let Expression::Object(taints) = taints else {
                        panic!("taints is an object")
                    };
                    let taint = taints.values().next().expect("one taint");
                    assert_eq!(string(get(taint, "key").expect("key")), "nvidia.com/gpu");
                    assert_eq!(string(get(taint, "value").expect("value")), "true");
                    assert_eq!(string(get(taint, "effect").expect("effect")), "NO_SCHEDULE");
                }
                None => {
                    assert_eq!(ami, "AL2023_x86_64_STANDARD", "{}", r.label);
                    assert!(get(group, "taints").is_none(), "{}", r.label);
                }
            }
        }
        // A VPC is created unless the config names one.
        match &cluster.aws_vpc_id {
            Some(vpc) => {
                assert!(!r.has("module", &["vpc"]), "{}", r.label);
                assert_eq!(source(must(module, "vpc_id")), "var.vpc_id");
                let var = r.block("variable", &["vpc_id"]);
                assert_eq!(string(must(var.body(), "default")), vpc);
                let subnets = r.block("variable", &["subnet_ids"]);
                let ids: Vec<&str> = array(must(subnets.body(), "default"))
                    .iter()
                    .map(string)
                    .collect();
                assert_eq!(ids, cluster.aws_subnet_ids, "{}", r.label);
            }
            None => {
                let vpc = r.block("module", &["vpc"]).body();
                assert_eq!(string(must(vpc, "source")), "terraform-aws-modules/vpc/aws");
                assert_eq!(source(must(module, "vpc_id")), "module.vpc.vpc_id");
            }
        }
        // EKS scales nothing by itself.
        let ca = r.block("resource", &["helm_release", "cluster_autoscaler"]);
        assert_eq!(string(must(ca.body(), "chart")), "cluster-autoscaler");
        assert!(r.has("resource", &["helm_release", "metrics_server"]));
    }
}

#[test]
fn aks_signs_people_in_with_entra_id_and_makes_the_creator_an_admin() {
    let all: Vec<Rendered> = examples().into_iter().chain(variants()).collect();
    for r in all.iter().filter(|r| r.cloud() == "azure") {
        let aks = r
            .block("resource", &["azurerm_kubernetes_cluster", "this"])
            .body();
        let entra = block(aks, "azure_active_directory_role_based_access_control").body();
        assert!(boolean(must(entra, "azure_rbac_enabled")), "{}", r.label);
        let admin = r
            .block("resource", &["azurerm_role_assignment", "cluster_admin"])
            .body();
        assert_eq!(
            string(must(admin, "role_definition_name")),
            "Azure Kubernetes Service RBAC Cluster Admin"
        );
        assert_eq!(
            source(must(admin, "principal_id")),
            "data.azurerm_client_config.current.object_id"
        );
    }
}

#[test]
fn aks_gpu_pools_are_labelled_and_tainted() {
    let all: Vec<Rendered> = examples().into_iter().chain(variants()).collect();
    let aks: Vec<&Rendered> = all.iter().filter(|r| r.cloud() == "azure").collect();
    assert!(aks.len() >= 2);
    for r in aks {
        let cluster = r.cluster();
        let rg = r.block("data", &["azurerm_resource_group", "this"]);
        assert_eq!(source(must(rg.body(), "name")), "var.resource_group_name");
        assert_eq!(
            string(must(
                r.block("variable", &["resource_group_name"]).body(),
                "default"
            )),
            cluster
                .azure_resource_group
                .as_deref()
                .expect("resource group")
        );
        let aks = r
            .block("resource", &["azurerm_kubernetes_cluster", "this"])
            .body();
        let default_pool = block(aks, "default_node_pool").body();
        let default_name = string(must(default_pool, "name")).to_string();
        let extra = r.blocks("resource", &["azurerm_kubernetes_cluster_node_pool"]);
        // The system pool is a configured pool without GPUs or spot capacity, or an extra one.
        let system = cluster
            .node_pools
            .iter()
            .find(|p| p.gpu.is_none() && !p.spot);
        match system {
            Some(p) => {
                assert_eq!(default_name, p.name.replace('-', ""), "{}", r.label);
                assert_eq!(extra.len(), cluster.node_pools.len() - 1, "{}", r.label);
            }
            None => {
                assert_eq!(default_name, "system", "{}", r.label);
                assert_eq!(extra.len(), cluster.node_pools.len(), "{}", r.label);
            }
        }
        for pool in cluster
            .node_pools
            .iter()
            .filter(|p| system.is_none_or(|s| s.name != p.name))
        {
            let name = pool.name.replace('-', "");
            let body = extra
                .iter()
                .find(|b| string(must(b.body(), "name")) == name)
                .unwrap_or_else(|| panic!("{}: no node pool {name}", r.label))
                .body();
            assert!(name.len() <= 12 && name.chars().all(|c| c.is_ascii_alphanumeric()));
            assert_eq!(string(must(body, "vm_size")), pool.machine_type);
            assert!(boolean(must(body, "auto_scaling_enabled")));
            assert_eq!(number(must(body, "min_count")), pool.min);
            assert_eq!(number(must(body, "max_count")), pool.max);
            let taints: Vec<&str> = attr(body, "node_taints")
                .map(|t| array(t).iter().map(string).collect())
                .unwrap_or_default();
            match &pool.gpu {
                Some(gpu) => {
                    let labels = must(body, "node_labels");
                    assert_eq!(
                        get(labels, "mldeploy.io/accelerator").map(string),
                        gpu.accelerator,
                        "{}: {name}",
                        r.label
                    );
                    // The taint is keyed by the vendor's GPU resource.
                    let resource = gpu.vendor.spec().resource;
                    assert!(
                        taints.contains(&format!("{resource}=true:NoSchedule").as_str()),
                        "{}: {name}: {taints:?}",
                        r.label
                    );
                }
                None => assert!(attr(body, "node_labels").is_none()),
            }
            if pool.spot {
                assert_eq!(string(must(body, "priority")), "Spot");
                assert_eq!(string(must(body, "eviction_policy")), "Delete");
                assert!(taints.contains(&"kubernetes.azure.com/scalesetpriority=spot:NoSchedule"));
            } else {
                assert!(attr(body, "priority").is_none());
            }
        }
    }
}

#[test]
fn onprem_has_no_cluster_resource_and_k3s_gets_the_nvidia_runtime_class() {
    let all: Vec<Rendered> = examples().into_iter().chain(variants()).collect();
    let onprem: Vec<&Rendered> = all.iter().filter(|r| r.cloud() == "onprem").collect();
    assert!(onprem.len() >= 2);
    for r in onprem {
        for (_, body) in &r.bodies {
            for b in body.blocks().filter(|b| b.identifier() == "resource") {
                let kind = label_str(&b.labels()[0]);
                assert!(
                    kind.starts_with("helm_")
                        || kind.starts_with("kubernetes_")
                        || kind == "terraform_data",
                    "{}: on-prem renders no infrastructure, found {kind}",
                    r.label
                );
            }
        }
        assert!(!r.has("module", &[]), "{}", r.label);
        let k3s = r.cluster().distribution == Some(mldeploy::config::Distribution::K3s);
        let runtime_class = r.blocks("resource", &["kubernetes_runtime_class_v1", "nvidia"]);
        if k3s {
            assert_eq!(runtime_class.len(), 1, "{}", r.label);
            let body = runtime_class[0].body();
            assert_eq!(string(must(body, "handler")), "nvidia");
            assert_eq!(
                string(must(block(body, "metadata").body(), "name")),
                "nvidia"
            );
            // k3s runs GPU containers with the nvidia runtime: the standalone device plugin
            // asks for it; the GPU operator (time-slicing, MIG) is told k3s's containerd.
            let sliced = r
                .cluster()
                .gpus
                .iter()
                .any(|g| g.share.is_some() || g.mig.is_some());
            if sliced {
                let operator = r.block("resource", &["helm_release", "gpu_operator"]);
                let text = show(operator.body());
                assert!(
                    text.contains("/run/k3s/containerd/containerd.sock"),
                    "{text}"
                );
                assert!(text.contains("replicas = 4"), "{text}");
            } else {
                let plugin = r.block("resource", &["helm_release", "nvidia_device_plugin"]);
                assert!(show(plugin.body()).contains("runtimeClassName = \"nvidia\""));
            }
        } else {
            assert!(runtime_class.is_empty(), "{}", r.label);
        }
        let context = r.block("variable", &["kube_context"]);
        match &r.cluster().context {
            Some(c) => assert_eq!(string(must(context.body(), "default")), c),
            None => assert!(matches!(must(context.body(), "default"), Expression::Null)),
        }
    }
}

#[test]
fn operators_are_installed_only_for_runtimes_in_use() {
    for r in examples().iter().chain(&variants()) {
        let release = |name: &str| r.has("resource", &["helm_release", name]);
        let kserve = r.cluster_uses(Runtime::Kserve);
        assert_eq!(release("kserve"), kserve, "{}: kserve", r.label);
        assert_eq!(release("kserve_crd"), kserve, "{}: kserve-crd", r.label);
        assert_eq!(
            release("kserve_runtimes"),
            kserve,
            "{}: kserve-runtime-configs",
            r.label
        );
        assert_eq!(release("cert_manager"), kserve, "{}: cert-manager", r.label);
        assert_eq!(
            release("seldon_core_operator"),
            r.cluster_uses(Runtime::Seldon),
            "{}: seldon",
            r.label
        );
        let v2 = r.cluster_uses(Runtime::SeldonV2);
        for name in [
            "seldon_core_v2_crds",
            "seldon_core_v2_setup",
            "seldon_core_v2_runtime",
            "seldon_core_v2_servers",
        ] {
            assert_eq!(release(name), v2, "{}: {name}", r.label);
        }
        assert_eq!(
            release("kube_prometheus_stack"),
            r.project.monitoring.prometheus,
            "{}: prometheus",
            r.label
        );
        // Every GPU the cluster's nodes have or its models ask for.
        let gpus: Vec<&mldeploy::model::GpuUse> = r
            .cluster()
            .node_pools
            .iter()
            .filter_map(|p| p.gpu.as_ref())
            .chain(&r.cluster().gpus)
            .chain(
                r.project
                    .environments
                    .values()
                    .filter(|e| e.cluster == r.cluster().name)
                    .flat_map(|e| e.models.iter().filter_map(|m| m.gpu.as_ref())),
            )
            .collect();
        let nvidia = gpus.iter().any(|g| g.vendor == Vendor::Nvidia);
        let amd = gpus.iter().any(|g| g.vendor == Vendor::Amd);
        // Outside GKE, time-slicing and MIG need the GPU operator, whose device plugin replaces
        // the standalone one.
        let operator = r.cloud() != "gcp"
            && r.cluster()
                .node_pools
                .iter()
                .filter_map(|p| p.gpu.as_ref())
                .chain(&r.cluster().gpus)
                .any(|g| g.share.is_some() || g.mig.is_some());
        assert_eq!(
            release("gpu_operator"),
            operator,
            "{}: gpu operator",
            r.label
        );
        assert_eq!(
            release("nvidia_device_plugin"),
            nvidia && r.cloud() != "gcp" && !operator,
            "{}: device plugin (GKE brings its own)",
            r.label
        );
        assert_eq!(
            release("amd_gpu_device_plugin"),
            amd,
            "{}: AMD device plugin",
            r.label
        );

        if kserve {
            let body = r.block("resource", &["helm_release", "kserve"]).body();
            assert_eq!(
                string(must(body, "repository")),
                "oci://ghcr.io/kserve/charts"
            );
            assert_eq!(string(must(body, "chart")), "kserve-resources");
            assert!(show(body).contains("deploymentMode = \"Standard\""));
            // The runtimes prepackaged models name, at the controller's version.
            let runtimes = r.block("resource", &["helm_release", "kserve_runtimes"]);
            assert_eq!(
                string(must(runtimes.body(), "chart")),
                "kserve-runtime-configs"
            );
            assert_eq!(
                string(must(runtimes.body(), "version")),
                string(must(body, "version"))
            );
        }
        if v2 {
            let runtime = r.block("resource", &["helm_release", "seldon_core_v2_runtime"]);
            let text = show(must(runtime.body(), "for_each"));
            for env in r.project.environments.values().filter(|e| {
                e.cluster == r.cluster().name
                    && e.models.iter().any(|m| m.runtime == Runtime::SeldonV2)
            }) {
                assert!(text.contains(&format!("\"{}\"", env.namespace)), "{text}");
            }
        }
    }
}

#[test]
fn add_ons_are_pinned_and_wait_for_the_cluster() {
    for r in examples().iter().chain(&variants()) {
        assert!(
            r.has("resource", &["terraform_data", "cluster_ready"]),
            "{}",
            r.label
        );
        for release in r.blocks("resource", &["helm_release"]) {
            let body = release.body();
            let name = label_str(&release.labels()[1]);
            let version = string(must(body, "version"));
            assert!(
                version.trim_start_matches('v').split('.').count() == 3,
                "{}: {name} is not pinned to an exact chart version: {version}",
                r.label
            );
            // Ordered after the cluster: directly, or through another release.
            let after = attr(body, "depends_on")
                .map(source)
                .or_else(|| attr(body, "for_each").map(source))
                .unwrap_or_default();
            assert!(
                after.contains("terraform_data.cluster_ready") || after.contains("helm_release."),
                "{}: {name} does not wait for the cluster",
                r.label
            );
            if attr(body, "create_namespace").is_some() {
                assert!(boolean(must(body, "create_namespace")));
            }
        }
    }
}

#[test]
fn outputs_name_the_cluster_and_how_to_get_credentials() {
    for r in examples().iter().chain(&variants()) {
        assert!(r.has("output", &["cluster_name"]), "{}", r.label);
        let creds = r.block("output", &["get_credentials"]).body();
        let value = source(must(creds, "value"));
        let expected = match r.cloud() {
            "gcp" => "gcloud container clusters get-credentials",
            "aws" => "aws eks update-kubeconfig",
            "azure" => "az aks get-credentials",
            _ => "var.kube_context",
        };
        assert!(value.contains(expected), "{}: {value}", r.label);
        if r.cloud() != "onprem" {
            let endpoint = r.block("output", &["cluster_endpoint"]).body();
            assert!(boolean(must(endpoint, "sensitive")), "{}", r.label);
            // What `mldeploy infra kubeconfig` reads.
            let ca = r.block("output", &["cluster_ca_certificate"]).body();
            assert!(boolean(must(ca, "sensitive")), "{}", r.label);
            let extra: &[&str] = match r.cloud() {
                "gcp" => &["location", "project_id"],
                "aws" => &["region"],
                _ => &["resource_group_name"],
            };
            for name in extra {
                assert!(r.has("output", &[name]), "{}: output {name}", r.label);
            }
        }
        for v in r.blocks("variable", &[]) {
            let description = attr(v.body(), "description").map(string).unwrap_or("");
            assert!(
                !description.is_empty(),
                "{}: variable without description",
                r.label
            );
        }
    }
}

/// A cluster context full of characters that would end a string or start an interpolation in
/// careless HCL: (the context, the render).
fn hostile() -> (&'static str, Rendered) {
    // Values that would end a string or start an interpolation in careless HCL.
    let hostile = r#"ctx"${path.root}%{ if true }x\n"#;
    let text = format!(
        r#"
version: 1
project: shop
models:
  - {{name: ranker, runtime: deployment, image: r.example.com/ranker:1}}
clusters:
  lab:
    cloud: onprem
    distribution: k3s
    context: '{hostile}'
environments:
  prod: {{cluster: lab}}
"#
    );
    (
        hostile,
        render_env("hostile".into(), project_from_str(&text), "prod"),
    )
}

#[test]
fn user_strings_stay_string_literals() {
    let (hostile, r) = hostile();
    let context = r.block("variable", &["kube_context"]);
    assert_eq!(string(must(context.body(), "default")), hostile);
    let terraform = r.block("terraform", &[]);
    let backend = blocks(terraform.body(), "backend", &["kubernetes"]);
    assert_eq!(string(must(backend[0].body(), "config_context")), hostile);
}

/// One cluster per cloud with every hardening switch off and a private endpoint.
const OPTED_OUT: &str = r#"
version: 1
project: open
models:
  - {name: m, image: registry.example.com/m:1}
clusters:
  g:
    cloud: gcp
    region: europe-west4
    gcp: {project: p}
    controlPlane: {authorizedNetworks: ["203.0.113.0/24"], privateEndpoint: true}
    hardening: {privateNodes: false, networkPolicy: false, secureBoot: false, cloudLogging: false}
    nodePools: [{name: system, machine: {cpu: 4, memory: 16Gi}}]
  a:
    cloud: aws
    region: eu-central-1
    controlPlane: {authorizedNetworks: ["203.0.113.0/24"], privateEndpoint: true}
    hardening: {networkPolicy: false, cloudLogging: false}
    nodePools: [{name: system, machine: {cpu: 4, memory: 16Gi}}]
  z:
    cloud: azure
    region: westeurope
    azure: {resourceGroup: rg}
    controlPlane: {authorizedNetworks: ["203.0.113.0/24"], privateEndpoint: true}
    hardening: {networkPolicy: false, cloudLogging: false, ephemeralOsDisk: false, encryptionAtHost: false}
    nodePools: [{name: system, machineType: Standard_D4ds_v5}]
environments:
  g: {cluster: g}
  a: {cluster: a}
  z: {cluster: z}
"#;

#[test]
fn clusters_are_hardened_by_default_and_each_opt_out_is_a_config_switch() {
    let hardened: Vec<Rendered> = examples().into_iter().chain(variants()).collect();
    let project = project_from_str(OPTED_OUT);
    let open: Vec<Rendered> = ["g", "a", "z"]
        .iter()
        .map(|e| render_env(format!("opted-out-{e}"), project.clone(), e))
        .collect();
    for (r, on) in hardened
        .iter()
        .map(|r| (r, true))
        .chain(open.iter().map(|r| (r, false)))
    {
        let h = &r.cluster().hardening;
        let networks = r.cluster().control_plane.authorized_networks.clone();
        let vars = |name: &str| {
            let v = r.block("variable", &[name]).body();
            show(must(v, "default"))
        };
        match r.cloud() {
            "gcp" => {
                let gke = r
                    .block("resource", &["google_container_cluster", "this"])
                    .body();
                assert_eq!(h.private_nodes, on, "{}", r.label);
                assert_eq!(has_block(gke, "private_cluster_config"), on, "{}", r.label);
                assert_eq!(r.has("resource", &["google_compute_router_nat"]), on);
                assert_eq!(attr(gke, "datapath_provider").is_some(), on, "{}", r.label);
                assert_eq!(has_block(gke, "logging_config"), on, "{}", r.label);
                assert!(has_block(gke, "master_authorized_networks_config"));
                let cert = block(
                    block(gke, "master_auth").body(),
                    "client_certificate_config",
                );
                assert!(!boolean(must(cert.body(), "issue_client_certificate")));
                for pool in r.blocks("resource", &["google_container_node_pool"]) {
                    let node = block(pool.body(), "node_config").body();
                    let shielded = block(node, "shielded_instance_config").body();
                    assert_eq!(boolean(must(shielded, "enable_secure_boot")), on);
                }
            }
            "aws" => {
                let eks = r.block("module", &["eks"]).body();
                assert_eq!(
                    !array(must(eks, "cluster_enabled_log_types")).is_empty(),
                    on,
                    "{}",
                    r.label
                );
                assert!(boolean(must(eks, "cluster_endpoint_private_access")));
                assert_eq!(
                    boolean(must(eks, "cluster_endpoint_public_access")),
                    !r.cluster().control_plane.private_endpoint
                );
                let cni = show(must(eks, "cluster_addons"));
                assert_eq!(cni.contains("enableNetworkPolicy"), on, "{}", r.label);
            }
            "azure" => {
                let aks = r
                    .block("resource", &["azurerm_kubernetes_cluster", "this"])
                    .body();
                let net = block(aks, "network_profile").body();
                assert_eq!(attr(net, "network_policy").is_some(), on, "{}", r.label);
                assert_eq!(has_block(aks, "oms_agent"), on, "{}", r.label);
                assert_eq!(
                    has_block(aks, "api_server_access_profile"),
                    !r.cluster().control_plane.private_endpoint
                );
                let pool = block(aks, "default_node_pool").body();
                assert_eq!(boolean(must(pool, "host_encryption_enabled")), on);
                assert_eq!(number(must(pool, "max_pods")), 110);
                if !on {
                    // Standard_D4ds_v5 has a local disk; the switch alone keeps it Managed.
                    assert_eq!(string(must(pool, "os_disk_type")), "Managed");
                }
            }
            _ => continue,
        }
        let listed = if r.cloud() == "aws" {
            vars("endpoint_public_access_cidrs")
        } else {
            vars("authorized_networks")
        };
        for n in &networks {
            assert!(listed.contains(n.as_str()), "{}: {listed}", r.label);
        }
    }
    // The default is open, and says so; a configured range replaces it.
    assert_eq!(
        hardened[0].cluster().control_plane.authorized_networks,
        ["0.0.0.0/0"]
    );
    assert_eq!(
        open[0].cluster().control_plane.authorized_networks,
        ["203.0.113.0/24"]
    );
}

#[test]
fn aks_pools_with_a_local_disk_get_ephemeral_os_disks() {
    let text = OPTED_OUT.replace(
        "hardening: {networkPolicy: false, cloudLogging: false, ephemeralOsDisk: false, encryptionAtHost: false}",
        "hardening: {}",
    );
    let r = render_env("ephemeral".into(), project_from_str(&text), "z");
    let aks = r
        .block("resource", &["azurerm_kubernetes_cluster", "this"])
        .body();
    let pool = block(aks, "default_node_pool").body();
    assert_eq!(string(must(pool, "os_disk_type")), "Ephemeral");
}

fn has_block(body: &Body, ident: &str) -> bool {
    !blocks(body, ident, &[]).is_empty()
}
