//! `mldeploy infra` against a stand-in `terraform`: a shell script that records its working
//! directory and arguments and answers as Terraform would (exit codes, errors, a stale lock,
//! `output -json`), so that no provider registry or cloud is needed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hcl::Body;
use kube::config::Kubeconfig;
use mldeploy::render::{self, Templates};
use predicates::prelude::*;

use crate::mldeploy;

/// The stand-in. `STANDIN_LOG` receives one line per run: program, working directory and
/// arguments, tab-separated; `init` also lists the directory into `$STANDIN_LOG.files`. Shell
/// built-ins only, so that PATH can hold nothing but the test's folder.
const TERRAFORM: &str = r#"#!/bin/sh
{ printf '%s\t%s' "${0##*/}" "$PWD"; for a in "$@"; do printf '\t%s' "$a"; done; printf '\n'; } >> "$STANDIN_LOG"
if [ "$1" = init ]; then
  for f in .[!.]* ..?* *; do if [ -e "$f" ]; then printf '%s\n' "$f"; fi; done > "$STANDIN_LOG.files"
fi
if [ "$STANDIN_FAIL" = "$1" ]; then
  echo "stand-in stdout before failing"
  echo "Error: the stand-in failed on purpose" >&2
  exit 1
fi
case "$1" in
  init)
    echo "Terraform has been successfully initialized!"
    ;;
  plan)
    if [ -n "$STANDIN_LOCK" ]; then
      printf '\033[31m╷\033[0m\n\033[31m│\033[0m \033[1m\033[31mError: \033[0m\033[0m\033[1mError acquiring the state lock\033[0m\n│ \n│ Error message: ConditionalCheckFailedException: The conditional request failed\n│ Lock Info:\n│   ID:        8d6c4ad8-77d2-2b8d-4a53-0a9c7c0fa2b1\n│   Path:      shop-tfstate/shop/gke/default.tflock\n│   Operation: OperationTypeApply\n│   Who:       ci@runner\n╵\n' >&2
      exit 1
    fi
    echo "Plan: 3 to add, 0 to change, 0 to destroy."
    exit "${STANDIN_PLAN_EXIT:-0}"
    ;;
  apply|destroy)
    echo "Apply complete!"
    ;;
  output)
    if [ -n "$STANDIN_OUTPUTS" ]; then
      while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; done < "$STANDIN_OUTPUTS"
    else
      echo '{}'
    fi
    ;;
esac
exit 0
"#;

/// A credential plugin that is only looked for, never run.
const PLUGIN: &str = "#!/bin/sh\nexit 0\n";

/// Folders of executables: `full` has the stand-in as `terraform` and `tofu` plus the cloud
/// plugins; `bare` only `terraform`; `empty` nothing. Written once per test run (and kept between
/// runs), so no test executes a file another thread still has open for writing.
struct Bins {
    full: PathBuf,
    bare: PathBuf,
    empty: PathBuf,
}

fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("infra-standin");
        let bins = Bins {
            full: root.join("full"),
            bare: root.join("bare"),
            empty: root.join("empty"),
        };
        let put = |dir: &Path, name: &str, text: &str| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::create_dir_all(dir).expect("mkdir");
            let path = dir.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
                std::fs::write(&path, text).expect("write stand-in");
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        };
        for name in ["terraform", "tofu"] {
            put(&bins.full, name, TERRAFORM);
        }
        for name in ["gke-gcloud-auth-plugin", "aws", "kubelogin"] {
            put(&bins.full, name, PLUGIN);
        }
        put(&bins.bare, "terraform", TERRAFORM);
        std::fs::create_dir_all(&bins.empty).expect("mkdir");
        bins
    })
}

const CONFIG: &str = r#"
version: 1
project: shop
models:
  - {name: ranker, runtime: deployment, image: r.example.com/ranker:1}
clusters:
  gke:
    cloud: gcp
    region: europe-west4
    gcp: {project: shop-ml}
    state: {gcs: {bucket: shop-tfstate}}
    nodePools: [{name: cpu, machine: {cpu: 2, memory: 8Gi}}]
  eks:
    cloud: aws
    region: eu-central-1
    state: {s3: {bucket: shop-tfstate, dynamodbTable: tfstate-lock}}
    nodePools: [{name: cpu, machine: {cpu: 2, memory: 8Gi}}]
  aks:
    cloud: azure
    region: westeurope
    azure: {resourceGroup: shop-rg}
    state: {azurerm: {storageAccount: shoptfstate, container: tfstate}}
    nodePools: [{name: cpu, machine: {cpu: 2, memory: 8Gi}}]
  lab:
    cloud: onprem
    distribution: k3s
  nostate:
    cloud: gcp
    region: europe-west4
    gcp: {project: shop-ml}
    nodePools: [{name: cpu, machine: {cpu: 2, memory: 8Gi}}]
environments:
  prod: {cluster: gke}
  dev: {cluster: eks}
  factory: {cluster: lab}
"#;

/// One run of Terraform as the stand-in saw it.
#[derive(Debug)]
struct Run {
    program: String,
    dir: PathBuf,
    args: Vec<String>,
}

/// A project folder with mldeploy.yaml, a HOME, and the stand-in's log.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("mldeploy.yaml"), CONFIG).expect("write config");
        std::fs::create_dir(dir.path().join("home")).expect("mkdir home");
        Case { dir }
    }

    fn path(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).expect("canonical")
    }

    fn log(&self) -> PathBuf {
        self.path().join("terraform.log")
    }

    /// `mldeploy` in the project folder, with `bin` as the whole PATH.
    fn cmd_with(&self, bin: &Path) -> assert_cmd::Command {
        let mut cmd = mldeploy();
        cmd.current_dir(self.path())
            .env("PATH", bin)
            .env("HOME", self.path().join("home"))
            .env("STANDIN_LOG", self.log())
            .env_remove("MLDEPLOY_TERRAFORM")
            .env_remove("KUBECONFIG")
            .env_remove("KUBE_CONFIG_PATH")
            .env_remove("TF_CLI_ARGS")
            .env_remove("TF_CLI_ARGS_init")
            .env_remove("STANDIN_FAIL")
            .env_remove("STANDIN_LOCK")
            .env_remove("STANDIN_PLAN_EXIT")
            .env_remove("STANDIN_OUTPUTS");
        cmd
    }

    fn cmd(&self) -> assert_cmd::Command {
        self.cmd_with(&bins().full)
    }

    fn runs(&self) -> Vec<Run> {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        text.lines()
            .map(|l| {
                let mut parts = l.split('\t').map(str::to_string);
                Run {
                    program: parts.next().expect("program"),
                    dir: PathBuf::from(parts.next().expect("dir")),
                    args: parts.collect(),
                }
            })
            .collect()
    }

    /// What the working directory held when `init` ran.
    fn files_at_init(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.path().join("terraform.log.files"))
            .expect("init listed the directory");
        let mut files: Vec<String> = text.lines().map(str::to_string).collect();
        files.sort();
        files
    }

    fn work_dir(&self, cluster: &str) -> PathBuf {
        self.path()
            .join(".mldeploy/infra")
            .join(format!("shop.{cluster}"))
    }
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The cluster's Terraform as the library renders it: (file name, contents with the header).
fn rendered(cluster: &str) -> Vec<(String, String)> {
    let loaded = mldeploy::config::load_str(Path::new("mldeploy.yaml"), CONFIG).expect("parses");
    let project =
        mldeploy::model::resolve(&loaded).unwrap_or_else(|r| panic!("{}", r.render(false)));
    let templates = Templates::builtin().expect("built-ins");
    render::render_cluster(&project, &project.clusters[cluster], &templates)
        .expect("renders")
        .iter()
        .map(|f| (f.file.clone(), f.contents()))
        .collect()
}

fn attr_string(body: &Body, key: &str) -> Option<String> {
    body.attributes()
        .find(|a| a.key() == key)
        .and_then(|a| match a.expr() {
            hcl::Expression::String(s) => Some(s.clone()),
            hcl::Expression::Bool(b) => Some(b.to_string()),
            _ => None,
        })
}

#[test]
fn plan_runs_init_then_plan_in_a_directory_with_exactly_the_clusters_files() {
    let case = Case::new();
    case.cmd()
        .args(["infra", "plan", "--cluster", "gke", "--no-color"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Plan: 3 to add"));
    let runs = case.runs();
    let dir = case.work_dir("gke");
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        runs.iter()
            .all(|r| r.dir == dir && r.program == "terraform")
    );
    assert_eq!(
        runs[0].args,
        [
            "init",
            "-input=false",
            "-no-color",
            "-backend-config=backend.tfbackend"
        ]
    );
    assert_eq!(
        runs[1].args,
        ["plan", "-input=false", "-detailed-exitcode", "-no-color"]
    );

    let expected = rendered("gke");
    let mut names: Vec<String> = expected.iter().map(|(f, _)| f.clone()).collect();
    names.push("backend.tfbackend".into());
    names.sort();
    assert_eq!(case.files_at_init(), names);
    for (file, text) in &expected {
        let written = std::fs::read_to_string(dir.join(file)).expect("written");
        assert_eq!(&written, text, "{file}");
    }
    let backend: Body = hcl::from_str(
        &std::fs::read_to_string(dir.join("backend.tfbackend")).expect("backend file"),
    )
    .expect("backend file is HCL");
    assert_eq!(
        attr_string(&backend, "bucket").as_deref(),
        Some("shop-tfstate")
    );
    assert_eq!(attr_string(&backend, "prefix").as_deref(), Some("shop/gke"));
    // Never for git: provider plugins and maybe state.
    let ignore = std::fs::read_to_string(case.path().join(".mldeploy/.gitignore")).expect("ignore");
    assert!(ignore.lines().any(|l| l == "*"));
}

#[test]
fn the_working_directory_keeps_terraforms_files_and_drops_stale_ones_of_ours() {
    let case = Case::new();
    let dir = case.work_dir("eks");
    std::fs::create_dir_all(dir.join(".terraform/providers")).expect("mkdir");
    for (file, text) in [
        (".terraform.lock.hcl", "# lock\n"),
        ("terraform.tfstate", "{}\n"),
        (
            "gone.tf",
            "# Rendered by mldeploy from terraform/aws/gone.tf.\n",
        ),
        ("mine.tf", "# written by a person\n"),
    ] {
        std::fs::write(dir.join(file), text).expect("write");
    }
    // --env picks the environment's cluster.
    case.cmd()
        .args(["infra", "plan", "--env", "dev"])
        .assert()
        .code(0);
    for kept in [
        ".terraform/providers",
        ".terraform.lock.hcl",
        "terraform.tfstate",
        "mine.tf",
        "main.tf",
    ] {
        assert!(dir.join(kept).exists(), "{kept} should be there");
    }
    assert!(
        !dir.join("gone.tf").exists(),
        "a stale file of ours is removed"
    );
    let backend: Body =
        hcl::from_str(&std::fs::read_to_string(dir.join("backend.tfbackend")).expect("read"))
            .expect("HCL");
    assert_eq!(
        attr_string(&backend, "key").as_deref(),
        Some("shop/eks/terraform.tfstate")
    );
    assert_eq!(
        attr_string(&backend, "region").as_deref(),
        Some("eu-central-1")
    );
    assert_eq!(
        attr_string(&backend, "dynamodb_table").as_deref(),
        Some("tfstate-lock")
    );

    // --dir elsewhere.
    let elsewhere = case.path().join("tf");
    case.cmd()
        .args(["infra", "plan", "--cluster", "aks", "--dir"])
        .arg(&elsewhere)
        .assert()
        .code(0);
    assert!(elsewhere.join("main.tf").exists());
    assert_eq!(case.runs().last().expect("ran").dir, elsewhere);
}

#[test]
fn plan_exit_2_means_changes_and_json_says_so() {
    let case = Case::new();
    case.cmd()
        .args(["infra", "plan", "--cluster", "gke"])
        .env("STANDIN_PLAN_EXIT", "2")
        .assert()
        .code(2);
    let out = case
        .cmd()
        .args(["infra", "plan", "--cluster", "gke", "--output", "json"])
        .env("STANDIN_PLAN_EXIT", "2")
        .assert()
        .code(2)
        .get_output()
        .clone();
    // Terraform's own output goes to stderr, so stdout is one JSON document.
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(doc["changes"], true);
    assert_eq!(doc["cluster"], "gke");
    assert!(stderr_of(&out).contains("Plan: 3 to add"));
}

#[test]
fn apply_and_destroy_auto_approve_only_when_asked() {
    let case = Case::new();
    for action in ["apply", "destroy"] {
        case.cmd()
            .args(["infra", action, "--cluster", "gke", "--auto-approve"])
            .args(["--var", "deletion_protection=false", "--var", "x=a=b"])
            .assert()
            .code(0);
        let runs = case.runs();
        let last = &runs.last().expect("ran").args;
        assert_eq!(
            last,
            &[
                action,
                "-input=false",
                "-auto-approve",
                "-no-color",
                "-var=deletion_protection=false",
                "-var=x=a=b"
            ],
            "{action}"
        );
        let before = runs.len();
        // Not a terminal and no --auto-approve: refused before Terraform runs at all.
        case.cmd()
            .args(["infra", action, "--cluster", "gke"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("nobody is at a terminal"))
            .stderr(predicate::str::contains("--auto-approve"));
        assert_eq!(case.runs().len(), before, "{action} without approval ran");
    }
    assert!(
        case.runs()
            .iter()
            .filter(|r| r.args[0] != "init")
            .all(|r| r.args.contains(&"-auto-approve".to_string()))
    );
}

#[test]
fn a_failing_terraform_makes_us_exit_1_with_its_output_shown() {
    let case = Case::new();
    for step in ["init", "plan"] {
        let out = case
            .cmd()
            .args(["infra", "plan", "--cluster", "gke"])
            .env("STANDIN_FAIL", step)
            .assert()
            .code(1)
            .get_output()
            .clone();
        let stderr = stderr_of(&out);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("stand-in stdout before failing"),
            "{step}"
        );
        assert!(
            stderr.contains("Error: the stand-in failed on purpose"),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("terraform {step} failed (exit 1)")),
            "{stderr}"
        );
    }
    // A failed init stops there.
    let runs = case.runs();
    assert_eq!(runs[0].args[0], "init");
    assert_eq!(runs[1].args[0], "init");
    assert_eq!(runs.len(), 3);
}

#[test]
fn no_terraform_on_path_is_a_clear_error() {
    let case = Case::new();
    case.cmd_with(&bins().empty)
        .args(["infra", "plan", "--cluster", "gke"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("Terraform is not installed"))
        .stderr(predicate::str::contains(
            "install Terraform ≥ 1.5 (https://developer.hashicorp.com/terraform/install) or OpenTofu",
        ))
        .stderr(predicate::str::contains("MLDEPLOY_TERRAFORM"))
        .stderr(predicate::str::contains("panicked").not());
    case.cmd()
        .args([
            "infra",
            "plan",
            "--cluster",
            "gke",
            "--terraform",
            "/nowhere/terraform",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`/nowhere/terraform` is not an executable file",
        ));
    // MLDEPLOY_TERRAFORM names it when it is not on PATH.
    case.cmd_with(&bins().empty)
        .args(["infra", "plan", "--cluster", "gke"])
        .env("MLDEPLOY_TERRAFORM", bins().bare.join("terraform"))
        .assert()
        .code(0);
    assert_eq!(case.runs().len(), 2);
}

#[test]
fn a_stale_lock_gets_the_force_unlock_hint() {
    let case = Case::new();
    case.cmd()
        .args(["infra", "plan", "--cluster", "gke"])
        .env("STANDIN_LOCK", "1")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("Error acquiring the state lock"))
        .stderr(predicate::str::contains(
            "the Terraform state of cluster `gke` is locked (lock ID 8d6c4ad8-77d2-2b8d-4a53-0a9c7c0fa2b1)",
        ))
        .stderr(predicate::str::contains(
            "terraform force-unlock 8d6c4ad8-77d2-2b8d-4a53-0a9c7c0fa2b1",
        ));
}

#[test]
fn opentofu_works_when_named() {
    let case = Case::new();
    case.cmd()
        .args(["infra", "plan", "--cluster", "gke", "--terraform", "tofu"])
        .assert()
        .code(0);
    assert!(case.runs().iter().all(|r| r.program == "tofu"));
    case.cmd()
        .args(["infra", "plan", "--cluster", "gke", "--terraform", "tofu"])
        .env("STANDIN_LOCK", "1")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("tofu force-unlock"));
}

#[test]
fn a_managed_cluster_without_state_is_refused_with_an_example() {
    let case = Case::new();
    case.cmd()
        .args(["infra", "plan", "--cluster", "nostate"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cluster `nostate` does not say where Terraform keeps its state",
        ))
        .stderr(predicate::str::contains("state: {gcs: {bucket:"));
    assert!(case.runs().is_empty());
    // Unless Terraform gets its backend settings some other way.
    case.cmd()
        .args(["infra", "plan", "--cluster", "nostate"])
        .env("TF_CLI_ARGS_init", "-backend-config=bucket=b")
        .assert()
        .code(0);
    assert_eq!(case.runs()[0].args, ["init", "-input=false", "-no-color"]);
    case.cmd()
        .args(["infra", "plan", "--cluster", "gkee"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("did you mean `gke`?"));
}

#[test]
fn onprem_state_and_providers_use_this_machines_kubeconfig() {
    let case = Case::new();
    let kubeconfig = case.path().join("k3s.yaml");
    case.cmd()
        .args(["infra", "plan", "--env", "factory", "--context", "plant"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .assert()
        .code(0)
        // A fresh working directory asks the cluster for state under the old Secret name; a
        // cluster that cannot be asked is a warning (Terraform's init reaches the same one).
        .stderr(predicate::str::contains(
            "warning: could not check cluster `lab` for Terraform state under the old Secret name",
        ));
    let dir = case.work_dir("lab");
    let backend: Body =
        hcl::from_str(&std::fs::read_to_string(dir.join("backend.tfbackend")).expect("read"))
            .expect("HCL");
    assert_eq!(
        attr_string(&backend, "config_path"),
        Some(kubeconfig.display().to_string())
    );
    assert_eq!(
        attr_string(&backend, "config_context").as_deref(),
        Some("plant")
    );
    assert_eq!(
        attr_string(&backend, "secret_suffix").as_deref(),
        Some("shop.lab.state")
    );
    let plan = &case.runs()[1].args;
    assert!(plan.contains(&format!("-var=kubeconfig_path={}", kubeconfig.display())));
    assert!(plan.contains(&"-var=kube_context=plant".to_string()));

    // With several kubeconfig files, the one that has the context.
    let first = case.path().join("first.yaml");
    let second = case.path().join("second.yaml");
    std::fs::write(&first, "apiVersion: v1\nkind: Config\ncontexts: []\n").expect("write");
    std::fs::write(
        &second,
        "apiVersion: v1\nkind: Config\ncontexts:\n- name: plant\n  context: {cluster: c, user: u}\n",
    )
    .expect("write");
    case.cmd()
        .args(["infra", "plan", "--env", "factory", "--context", "plant"])
        .env(
            "KUBECONFIG",
            std::env::join_paths([&first, &second]).expect("join"),
        )
        .assert()
        .code(0);
    let backend: Body =
        hcl::from_str(&std::fs::read_to_string(dir.join("backend.tfbackend")).expect("read"))
            .expect("HCL");
    assert_eq!(
        attr_string(&backend, "config_path"),
        Some(second.display().to_string())
    );
}

/// `terraform output -json` of each cloud's templates, as Terraform prints it.
fn outputs(cloud: &str) -> serde_json::Value {
    let s = |v: &str| serde_json::json!({"sensitive": false, "type": "string", "value": v});
    let secret = |v: &str| serde_json::json!({"sensitive": true, "type": "string", "value": v});
    let ca = secret("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==");
    match cloud {
        "gke" => serde_json::json!({
            "cluster_name": s("gke"),
            "cluster_endpoint": secret("https://34.1.2.3"),
            "cluster_ca_certificate": ca,
            "get_credentials": s("gcloud container clusters get-credentials gke"),
            "location": s("europe-west4"),
            "project_id": s("shop-ml"),
        }),
        "eks" => serde_json::json!({
            "cluster_name": s("eks"),
            "cluster_endpoint": secret("https://ABC.gr7.eu-central-1.eks.amazonaws.com"),
            "cluster_ca_certificate": ca,
            "region": s("eu-central-1"),
        }),
        _ => serde_json::json!({
            "cluster_name": s("aks"),
            "cluster_endpoint": secret("https://aks-abc.hcp.westeurope.azmk8s.io:443"),
            "cluster_ca_certificate": ca,
            "resource_group_name": s("shop-rg"),
        }),
    }
}

#[test]
fn kubeconfig_for_each_cloud_loads_in_kube_rs_with_the_right_exec_plugin() {
    let case = Case::new();
    for (cluster, command, args) in [
        ("gke", "gke-gcloud-auth-plugin", vec![]),
        (
            "eks",
            "aws",
            vec![
                "eks",
                "get-token",
                "--cluster-name",
                "eks",
                "--region",
                "eu-central-1",
            ],
        ),
        (
            "aks",
            "kubelogin",
            vec![
                "get-token",
                "--login",
                "azurecli",
                "--server-id",
                "6dae42f8-4368-4678-94ff-3960e28e3630",
            ],
        ),
    ] {
        let file = case.path().join(format!("{cluster}-outputs.json"));
        std::fs::write(&file, outputs(cluster).to_string()).expect("write outputs");
        let out = case
            .cmd()
            .args(["infra", "kubeconfig", "--cluster", cluster])
            .env("STANDIN_OUTPUTS", &file)
            .assert()
            .code(0)
            .get_output()
            .clone();
        let yaml = String::from_utf8(out.stdout.clone()).expect("utf-8");
        let kc = Kubeconfig::from_yaml(&yaml).unwrap_or_else(|e| panic!("{cluster}: {e}\n{yaml}"));
        let name = format!("mldeploy.shop.{cluster}");
        assert_eq!(kc.current_context.as_deref(), Some(name.as_str()));
        assert_eq!(kc.contexts.len(), 1);
        assert_eq!(kc.contexts[0].name, name);
        let context = kc.contexts[0].context.as_ref().expect("context");
        assert_eq!(context.cluster, name);
        let c = kc.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(
            c.server.as_deref(),
            outputs(cluster)["cluster_endpoint"]["value"].as_str()
        );
        assert_eq!(
            c.certificate_authority_data.as_deref(),
            Some("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==")
        );
        let exec = kc.auth_infos[0]
            .auth_info
            .as_ref()
            .and_then(|a| a.exec.as_ref())
            .expect("exec plugin");
        assert_eq!(exec.command.as_deref(), Some(command), "{cluster}");
        assert_eq!(
            exec.args.clone().unwrap_or_default(),
            args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "{cluster}"
        );
        assert_eq!(
            exec.api_version.as_deref(),
            Some("client.authentication.k8s.io/v1beta1")
        );
        // kube-rs turns it into a client config (it would run the plugin only to connect).
        let options = kube::config::KubeConfigOptions::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(kube::Config::from_custom_kubeconfig(kc, &options))
            .unwrap_or_else(|e| panic!("{cluster}: {e}"));
        // Terraform's output went to stderr: stdout is the kubeconfig alone.
        assert!(stderr_of(&out).contains("successfully initialized"));
        let runs = case.runs();
        let last_two: Vec<&str> = runs[runs.len() - 2..]
            .iter()
            .map(|r| r.args[0].as_str())
            .collect();
        assert_eq!(last_two, ["init", "output"]);
        assert_eq!(
            runs.last().expect("ran").args,
            ["output", "-json", "-no-color"]
        );
    }
}

#[test]
fn kubeconfig_write_merges_and_keeps_other_entries() {
    let case = Case::new();
    let outputs_file = case.path().join("outputs.json");
    std::fs::write(&outputs_file, outputs("gke").to_string()).expect("write");
    let kubeconfig = case.path().join("home/.kube/config");
    std::fs::create_dir_all(kubeconfig.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &kubeconfig,
        r#"apiVersion: v1
kind: Config
preferences: {}
clusters:
- name: other
  cluster: {server: "https://other.example.com"}
- name: mldeploy.shop.gke
  cluster: {server: "https://stale.example.com"}
users:
- name: other
  user: {token: other-token}
contexts:
- name: other
  context: {cluster: other, user: other, namespace: team}
current-context: other
"#,
    )
    .expect("write kubeconfig");
    // Default: ~/.kube/config.
    case.cmd()
        .args(["infra", "kubeconfig", "--cluster", "gke", "--write"])
        .env("STANDIN_OUTPUTS", &outputs_file)
        .assert()
        .code(0)
        .stdout("")
        .stderr(predicate::str::contains(
            "wrote context `mldeploy.shop.gke`",
        ))
        .stderr(predicate::str::contains(
            "mldeploy apply -f mldeploy.yaml --env prod",
        ));
    let kc = Kubeconfig::read_from(&kubeconfig).expect("kube-rs reads it");
    assert_eq!(kc.current_context.as_deref(), Some("other"), "left alone");
    let names = |v: Vec<&str>| v.into_iter().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        kc.clusters
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>(),
        names(vec!["other", "mldeploy.shop.gke"])
    );
    let ours = kc.clusters[1].cluster.as_ref().expect("cluster");
    assert_eq!(ours.server.as_deref(), Some("https://34.1.2.3"));
    assert_eq!(
        kc.auth_infos
            .iter()
            .map(|u| u.name.clone())
            .collect::<Vec<_>>(),
        names(vec!["other", "mldeploy.shop.gke"])
    );
    let other = kc.contexts[0].context.as_ref().expect("context");
    assert_eq!(other.namespace.as_deref(), Some("team"));
    // Again: nothing changes.
    case.cmd()
        .args(["infra", "kubeconfig", "--cluster", "gke", "--write"])
        .env("STANDIN_OUTPUTS", &outputs_file)
        .assert()
        .code(0)
        .stderr(predicate::str::contains("is up to date"));

    // $KUBECONFIG: its first file, created when missing.
    let first = case.path().join("first.yaml");
    let second = case.path().join("second.yaml");
    case.cmd()
        .args(["infra", "kubeconfig", "--cluster", "gke", "--write"])
        .env("STANDIN_OUTPUTS", &outputs_file)
        .env(
            "KUBECONFIG",
            std::env::join_paths([&first, &second]).expect("join"),
        )
        .assert()
        .code(0);
    let kc = Kubeconfig::read_from(&first).expect("written");
    assert_eq!(kc.current_context.as_deref(), Some("mldeploy.shop.gke"));
    assert!(!second.exists());
    // It holds credentials: a new file is for its owner only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&first)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[test]
fn kubeconfig_needs_the_clouds_credential_plugin() {
    let case = Case::new();
    case.cmd_with(&bins().bare)
        .args(["infra", "kubeconfig", "--cluster", "aks"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("`kubelogin` is not on PATH"))
        .stderr(predicate::str::contains("az aks install-cli"));
    case.cmd_with(&bins().bare)
        .args(["infra", "kubeconfig", "--cluster", "gke"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "gcloud components install gke-gcloud-auth-plugin",
        ));
    assert!(case.runs().is_empty());
}

#[test]
fn kubeconfig_before_the_cluster_exists_says_to_apply_first() {
    let case = Case::new();
    case.cmd()
        .args(["infra", "kubeconfig", "--cluster", "eks"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "Terraform has no cluster_name, cluster_endpoint, cluster_ca_certificate, region for cluster `eks`",
        ))
        .stderr(predicate::str::contains("mldeploy infra apply --cluster eks"));
}

#[test]
fn onprem_kubeconfig_points_a_context_at_the_existing_one() {
    let case = Case::new();
    let kubeconfig = case.path().join("kubeconfig.yaml");
    std::fs::write(
        &kubeconfig,
        r#"apiVersion: v1
kind: Config
clusters:
- name: default
  cluster: {server: "https://10.0.0.5:6443", certificate-authority-data: Q0E=}
users:
- name: default
  user: {client-certificate-data: Y2VydA==, client-key-data: a2V5}
contexts:
- name: default
  context: {cluster: default, user: default}
current-context: default
"#,
    )
    .expect("write");
    // The cluster has no `context`: the current one is the source.
    case.cmd()
        .args(["infra", "kubeconfig", "--cluster", "lab", "--write"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .assert()
        .code(0);
    let kc = Kubeconfig::read_from(&kubeconfig).expect("reads");
    let ours = kc
        .contexts
        .iter()
        .find(|c| c.name == "mldeploy.shop.lab")
        .and_then(|c| c.context.as_ref())
        .expect("added");
    // A reference to the source's entries: its client key is not copied (nor printed).
    assert_eq!(
        (ours.cluster.as_str(), ours.user.as_deref()),
        ("default", Some("default"))
    );
    assert_eq!(kc.clusters.len(), 1);
    assert_eq!(kc.auth_infos.len(), 1);
    let printed = case
        .cmd()
        .args(["infra", "kubeconfig", "--cluster", "lab"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let printed = String::from_utf8(printed).expect("utf-8");
    assert!(
        !printed.contains("a2V5") && !printed.contains("client-key"),
        "{printed}"
    );
    assert_eq!(kc.contexts.len(), 2, "the source context is kept");
    assert_eq!(kc.current_context.as_deref(), Some("default"));
    // No Terraform is needed for a cluster that exists already.
    assert!(case.runs().is_empty());
    // A context that is not there: a hint about k3s's kubeconfig.
    case.cmd()
        .args([
            "infra",
            "kubeconfig",
            "--cluster",
            "lab",
            "--context",
            "factory-k3s",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/etc/rancher/k3s/k3s.yaml"));
}

#[test]
fn state_under_the_old_secret_name_is_reported_with_the_command_to_move_it() {
    let case = Case::new();
    let kubeconfig = case.path().join("k3s.yaml");
    let dir = case.work_dir("lab");
    std::fs::create_dir_all(dir.join(".terraform")).expect("mkdir");
    // What `terraform init` recorded with the old default suffix.
    std::fs::write(
        dir.join(".terraform/terraform.tfstate"),
        r#"{"version": 3, "backend": {"type": "kubernetes", "config": {"secret_suffix": "shop-lab", "namespace": "kube-system"}}}"#,
    )
    .expect("write");
    let out = case
        .cmd()
        .args(["infra", "plan", "--env", "factory", "--context", "plant"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("tfstate-default-shop-lab"), "{err}");
    assert!(err.contains("tfstate-default-shop.lab.state"), "{err}");
    assert!(
        err.contains("init -migrate-state -backend-config=backend.tfbackend"),
        "{err}"
    );
    assert!(err.contains("secretSuffix: shop-lab"), "{err}");
    assert!(case.runs().is_empty(), "Terraform did not run");
}

#[test]
fn kubeconfig_write_reports_a_context_under_the_old_name_and_keeps_it() {
    let case = Case::new();
    let outputs_file = case.path().join("outputs.json");
    std::fs::write(&outputs_file, outputs("gke").to_string()).expect("write");
    let kubeconfig = case.path().join("home/.kube/config");
    std::fs::create_dir_all(kubeconfig.parent().expect("parent")).expect("mkdir");
    let old = r#"apiVersion: v1
kind: Config
clusters:
- name: mldeploy-shop-gke
  cluster: {server: "https://34.1.2.3"}
users:
- name: mldeploy-shop-gke
  user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: gke-gcloud-auth-plugin}}
contexts:
- name: mldeploy-shop-gke
  context: {cluster: mldeploy-shop-gke, user: mldeploy-shop-gke}
current-context: mldeploy-shop-gke
"#;
    std::fs::write(&kubeconfig, old).expect("write kubeconfig");
    case.cmd()
        .args(["infra", "kubeconfig", "--cluster", "gke", "--write"])
        .env("STANDIN_OUTPUTS", &outputs_file)
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "wrote context `mldeploy.shop.gke`",
        ))
        .stderr(predicate::str::contains(
            "config delete-context mldeploy-shop-gke",
        ));
    let kc = Kubeconfig::read_from(&kubeconfig).expect("reads");
    let names: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["mldeploy-shop-gke", "mldeploy.shop.gke"],
        "the old one is kept"
    );
    // Another server under the old name: another project's, left alone and said so.
    std::fs::write(&kubeconfig, old.replace("34.1.2.3", "10.9.9.9")).expect("write");
    case.cmd()
        .args(["infra", "kubeconfig", "--cluster", "gke", "--write"])
        .env("STANDIN_OUTPUTS", &outputs_file)
        .assert()
        .code(0)
        .stderr(predicate::str::contains("reaches another server"));
}

#[test]
fn a_work_dir_where_earlier_versions_kept_it_is_reported_with_the_move() {
    let case = Case::new();
    let kubeconfig = case.path().join("k3s.yaml");
    let legacy = case.path().join(".mldeploy/infra/lab");
    std::fs::create_dir_all(legacy.join(".terraform")).expect("mkdir");
    std::fs::write(legacy.join("terraform.tfstate"), "{}").expect("write");
    let plan = || {
        case.cmd()
            .args(["infra", "plan", "--env", "factory", "--context", "plant"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .assert()
    };
    let out = plan().code(1).get_output().clone();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("mv .mldeploy/infra/lab .mldeploy/infra/shop.lab"),
        "{err}"
    );
    assert!(case.runs().is_empty(), "Terraform did not run");
    // Moved as told: the run goes on there, and the old state moved with it.
    std::fs::rename(&legacy, case.work_dir("lab")).expect("mv");
    plan().code(0);
    assert!(case.work_dir("lab").join("terraform.tfstate").is_file());
}
