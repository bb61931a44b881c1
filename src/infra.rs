//! Terraform for one cluster: its working directory, the command lines, what Terraform's error
//! output means, and the kubeconfig built from its outputs. `commands::infra` runs the processes.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::bundle::{HEADER, TfFile};
use crate::config::Cloud;
use crate::model::ClusterModel;
use crate::render::context::Backend;

/// The backend settings `terraform init` reads, in the working directory.
pub const BACKEND_FILE: &str = "backend.tfbackend";

/// Entra ID application of the AKS API server: the audience of the tokens kubelogin fetches.
pub const AKS_SERVER_ID: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

/// API version of the exec credential plugins.
const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1beta1";

/// The working directory of a cluster by default, beside the config:
/// `.mldeploy/infra/<project>.<cluster>/`. The project is part of the name because two configs
/// in one folder may name their clusters alike, and the working directory can hold local state;
/// names are DNS labels, so the `.` keeps `a-b` + `c` apart from `a` + `b-c`.
pub fn work_dir(config_dir: &Path, project: &str, cluster: &str) -> PathBuf {
    config_dir.join(work_dir_rel(project, cluster))
}

/// [`work_dir`] relative to the config's folder, with `/`.
pub fn work_dir_rel(project: &str, cluster: &str) -> String {
    format!(".mldeploy/infra/{project}.{cluster}")
}

/// The working directory earlier versions used (`.mldeploy/infra/<cluster>/`), shared by every
/// config in the folder: found only to tell the user how to move it.
pub fn legacy_work_dir_rel(cluster: &str) -> String {
    format!(".mldeploy/infra/{cluster}")
}

/// The kubeconfig context of a cluster that has no `context` in the config:
/// `mldeploy.<project>.<cluster>`. Project and cluster names are DNS labels, which never hold a
/// `.`, so two projects whose names differ only in where a dash falls (`a-b` + `c`, `a` + `b-c`)
/// get different contexts.
pub fn default_context(project: &str, cluster: &str) -> String {
    format!("mldeploy.{project}.{cluster}")
}

/// The context name earlier mldeploy versions wrote (`mldeploy-<project>-<cluster>`), which
/// collides across projects: found only to tell the user what to do with it.
pub fn legacy_context(project: &str, cluster: &str) -> String {
    format!("mldeploy-{project}-{cluster}")
}

/// The kubeconfig context `infra kubeconfig` writes for a cluster: its `context`, else
/// [`default_context`].
pub fn context_name(project: &str, cluster: &ClusterModel) -> String {
    cluster
        .context
        .clone()
        .unwrap_or_else(|| default_context(project, &cluster.name))
}

/// The kubeconfig file: `--kubeconfig`, else the first file of `$KUBECONFIG`, else
/// `~/.kube/config`.
pub fn kubeconfig_path(
    flag: Option<&Path>,
    kubeconfig_var: Option<&OsStr>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    if let Some(path) = flag {
        return Some(path.to_path_buf());
    }
    if let Some(first) =
        kubeconfig_var.and_then(|v| std::env::split_paths(v).find(|p| !p.as_os_str().is_empty()))
    {
        return Some(first);
    }
    home.map(|h| h.join(".kube").join("config"))
}

/// The `secret_suffix` a working directory was last initialised with (Terraform records the
/// backend settings in `.terraform/terraform.tfstate`), if its backend is `kubernetes`.
pub fn initialised_secret_suffix(dir: &Path) -> Option<String> {
    let bytes = crate::fsx::read_existing(dir, ".terraform/terraform.tfstate").ok()??;
    let doc: Value = serde_json::from_slice(&bytes).ok()?;
    let backend = doc.get("backend")?;
    (backend.get("type")?.as_str()? == "kubernetes")
        .then(|| {
            backend
                .get("config")?
                .get("secret_suffix")?
                .as_str()
                .map(str::to_string)
        })
        .flatten()
}

/// What differs between machines and so is given at `terraform init` rather than rendered.
#[derive(Debug, Clone, Default)]
pub struct InitSettings {
    /// The folder of mldeploy.yaml, absolute: relative local state paths start there.
    pub config_dir: PathBuf,
    /// kubeconfig of an on-prem cluster (its state lives in a Secret there).
    pub kubeconfig: Option<PathBuf>,
    /// A kubeconfig context chosen on the command line, over the cluster's own.
    pub context: Option<String>,
}

/// The backend settings file for `terraform init -backend-config=backend.tfbackend`: the
/// cluster's state settings, with paths made absolute and the kubeconfig of this machine.
pub fn backend_file(backend: &Backend, init: &InitSettings) -> String {
    let mut settings: Vec<(&str, Value)> = backend
        .settings
        .iter()
        .map(|s| (s.name, s.value.clone()))
        .collect();
    let set = |settings: &mut Vec<(&str, Value)>, name: &'static str, value: String| {
        settings.retain(|(n, _)| *n != name);
        settings.push((name, value.into()));
    };
    match backend.kind {
        "local" => {
            if let Some((_, Value::String(path))) = settings.iter().find(|(n, _)| *n == "path") {
                let path = Path::new(path);
                // Without a path the state stays in the working directory, which is kept.
                if path.is_relative() && path != Path::new("terraform.tfstate") {
                    let absolute = init.config_dir.join(path).display().to_string();
                    set(&mut settings, "path", absolute);
                }
            }
        }
        "kubernetes" => {
            if let Some(kubeconfig) = &init.kubeconfig {
                set(
                    &mut settings,
                    "config_path",
                    kubeconfig.display().to_string(),
                );
            }
            if let Some(context) = &init.context {
                set(&mut settings, "config_context", context.clone());
            }
        }
        _ => {}
    }
    let width = settings.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = format!(
        "{HEADER}: the `state` of this cluster in mldeploy.yaml, for `terraform init -backend-config={BACKEND_FILE}`.\n"
    );
    for (name, value) in settings {
        let value = match value {
            Value::String(s) => hcl_string(&s),
            other => other.to_string(),
        };
        out.push_str(&format!("{name:width$} = {value}\n"));
    }
    out
}

fn hcl_string(s: &str) -> String {
    let mut out = Vec::new();
    let _ = crate::render::quote::hcl(s, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Variables for on-prem clusters: their providers use a kubeconfig context, which must be the
/// one this machine uses (user `--var`s come later and win).
pub fn cluster_vars(cluster: &ClusterModel, init: &InitSettings) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    if cluster.cloud == Cloud::Onprem {
        if let Some(path) = &init.kubeconfig {
            vars.push(("kubeconfig_path".into(), path.display().to_string()));
        }
        if let Some(context) = &init.context {
            vars.push(("kube_context".into(), context.clone()));
        }
    }
    vars
}

/// What `infra` asks Terraform to do after `init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `terraform plan -detailed-exitcode`.
    Plan,
    /// `terraform apply`.
    Apply,
    /// `terraform destroy`.
    Destroy,
}

impl Action {
    /// The Terraform subcommand.
    pub fn name(self) -> &'static str {
        match self {
            Action::Plan => "plan",
            Action::Apply => "apply",
            Action::Destroy => "destroy",
        }
    }
}

/// `terraform init` arguments.
pub fn init_args(color: bool, backend_file: bool) -> Vec<String> {
    let mut args = vec!["init".to_string(), "-input=false".to_string()];
    if !color {
        args.push("-no-color".into());
    }
    if backend_file {
        args.push(format!("-backend-config={BACKEND_FILE}"));
    }
    args
}

/// How `apply` and `destroy` are confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// `--auto-approve`: Terraform does not ask.
    Auto,
    /// Terraform shows the plan and asks on the terminal.
    Ask,
}

/// Arguments of the action: `plan -detailed-exitcode`, `apply`, `destroy`, with `-var`s.
pub fn action_args(
    action: Action,
    approval: Approval,
    color: bool,
    vars: &[(String, String)],
) -> Vec<String> {
    let mut args = vec![action.name().to_string()];
    // Asking needs input; everything else must never wait for it.
    if action == Action::Plan || approval == Approval::Auto {
        args.push("-input=false".into());
    }
    if action == Action::Plan {
        args.push("-detailed-exitcode".into());
    } else if approval == Approval::Auto {
        args.push("-auto-approve".into());
    }
    if !color {
        args.push("-no-color".into());
    }
    args.extend(vars.iter().map(|(k, v)| format!("-var={k}={v}")));
    args
}

/// Our exit code for Terraform's: plan's `-detailed-exitcode` 2 (changes) stays 2; any other
/// failure is 1.
pub fn exit_code(action: Action, terraform: Option<i32>) -> i32 {
    match (action, terraform) {
        (_, Some(0)) => 0,
        (Action::Plan, Some(2)) => 2,
        _ => 1,
    }
}

/// A failure in Terraform's error output that mldeploy can say more about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    /// Another run holds the state lock, or a crashed one left it behind.
    Locked {
        /// The lock's ID, for `terraform force-unlock`.
        id: Option<String>,
    },
    /// The backend settings differ from those the working directory was initialised with.
    BackendChanged,
}

/// Reads Terraform's error output (colours and box drawing included).
pub fn diagnose(stderr: &str) -> Option<Diagnosis> {
    let text = strip_ansi(stderr);
    if text.contains("Error acquiring the state lock") {
        let id = text
            .lines()
            .skip_while(|l| !l.contains("Lock Info:"))
            .find_map(|l| {
                let l = l.trim_start_matches(|c: char| c == '│' || c.is_whitespace());
                l.strip_prefix("ID:").map(|id| id.trim().to_string())
            })
            .filter(|id| !id.is_empty());
        return Some(Diagnosis::Locked { id });
    }
    if text.contains("Backend configuration changed") {
        return Some(Diagnosis::BackendChanged);
    }
    None
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Finds an executable: a path as given, or a bare name in the folders of `path_var` (PATH).
pub fn which(name: &Path, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if name.components().count() > 1 {
        return is_executable(name).then(|| name.to_path_buf());
    }
    std::env::split_paths(path_var?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// Writes the cluster's Terraform into `dir`: replaces the files mldeploy wrote there before
/// (recognised by their header) and leaves everything else — Terraform's `.terraform/`, lock
/// file and local state, and files a person added. A hand-written file at a name mldeploy
/// renders, a link or a FIFO there is an error ([`crate::fsx`]). Returns the names written.
pub fn write_work_dir(
    dir: &Path,
    files: &[TfFile],
    backend: Option<&str>,
) -> Result<Vec<String>, crate::fsx::FileError> {
    let mut wanted: BTreeMap<String, String> = files
        .iter()
        .map(|f| (f.file.clone(), f.contents()))
        .collect();
    if let Some(text) = backend {
        wanted.insert(BACKEND_FILE.to_string(), text.to_string());
    }
    crate::fsx::sync_folder(dir, "", &wanted, |name| {
        name.ends_with(".tf") || name == BACKEND_FILE
    })?;
    Ok(wanted.into_keys().collect())
}

/// The exec credential plugin a managed cluster's kubeconfig uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecPlugin {
    /// Program.
    pub command: &'static str,
    /// Its arguments.
    pub args: Vec<String>,
    /// How to install it.
    pub install_hint: &'static str,
}

/// The plugin of a cloud (its [`crate::platform::Platform`] row): `gke-gcloud-auth-plugin`,
/// `aws eks get-token`, `kubelogin`. None on onprem, whose credentials are those of an existing
/// context.
pub fn exec_plugin(cloud: Cloud, cluster_name: &str, region: &str) -> Option<ExecPlugin> {
    let spec = crate::platform::of(cloud).exec_plugin?;
    Some(ExecPlugin {
        command: spec.command,
        args: spec
            .args
            .iter()
            .map(|a| {
                a.replace("{cluster}", cluster_name)
                    .replace("{region}", region)
            })
            .collect(),
        install_hint: spec.install_hint,
    })
}

/// Terraform's outputs (`terraform output -json`): their values by name.
pub fn parse_outputs(json: &str) -> Result<BTreeMap<String, Value>, String> {
    let all: BTreeMap<String, Value> =
        serde_json::from_str(json).map_err(|e| format!("`output -json` is not JSON: {e}"))?;
    Ok(all
        .into_iter()
        .map(|(k, v)| (k, v.get("value").cloned().unwrap_or(Value::Null)))
        .collect())
}

/// What to set in mldeploy.yaml for each workload identity whose ServiceAccount annotation is
/// only known after `apply` (AKS client ids): `(identity, value)` from the `storage_identities`
/// output, sorted.
pub fn storage_identities(outputs: &BTreeMap<String, Value>) -> Vec<(String, String)> {
    outputs
        .get("storage_identities")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

/// A kubeconfig (as JSON, which is YAML too) for a managed cluster from Terraform's outputs, with
/// one cluster, user and context, all called `name`. Err lists the outputs that are missing.
pub fn managed_kubeconfig(
    cloud: Cloud,
    name: &str,
    outputs: &BTreeMap<String, Value>,
) -> Result<Value, Vec<&'static str>> {
    let get = |k: &str| {
        outputs
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let missing: Vec<&'static str> = crate::platform::of(cloud)
        .kubeconfig_outputs
        .iter()
        .copied()
        .filter(|k| get(k).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    let cluster_name = get("cluster_name").unwrap_or_default();
    let plugin =
        exec_plugin(cloud, cluster_name, get("region").unwrap_or_default()).ok_or_else(Vec::new)?;
    let mut exec = json!({
        "apiVersion": EXEC_API_VERSION,
        "command": plugin.command,
        "args": plugin.args,
        "installHint": plugin.install_hint,
        "provideClusterInfo": crate::platform::of(cloud).exec_plugin.is_some_and(|p| p.provide_cluster_info),
    });
    if plugin.args.is_empty() {
        exec.as_object_mut().map(|e| e.remove("args"));
    }
    Ok(single(
        name,
        json!({
            "server": get("cluster_endpoint"),
            "certificate-authority-data": get("cluster_ca_certificate"),
        }),
        json!({ "exec": exec }),
        None,
    ))
}

/// A kubeconfig with one cluster, user and context named `name`, which is current.
fn single(name: &str, cluster: Value, user: Value, namespace: Option<&Value>) -> Value {
    let mut context = json!({"cluster": name, "user": name});
    if let Some(ns) = namespace {
        context["namespace"] = ns.clone();
    }
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    })
}

/// The named entry of a kubeconfig list (`clusters`, `users`, `contexts`) in the first file that
/// has it, as kubectl merges files.
fn find<'a>(files: &'a [Value], list: &str, name: &str) -> Option<&'a Value> {
    files.iter().find_map(|f| {
        f.get(list)?
            .as_array()?
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
    })
}

/// The current context of kubeconfig files (the first file that sets one).
pub fn current_context(files: &[Value]) -> Option<&str> {
    files.iter().find_map(|f| {
        f.get("current-context")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    })
}

/// Of kubeconfig files (path, document), the one to read for `context`: the first that has it;
/// without a context, the first that sets a current one.
pub fn file_for_context(files: &[(PathBuf, Value)], context: Option<&str>) -> Option<PathBuf> {
    files
        .iter()
        .find(|(_, doc)| match context {
            Some(name) => has_context(std::slice::from_ref(doc), name),
            None => current_context(std::slice::from_ref(doc)).is_some(),
        })
        .map(|(path, _)| path.clone())
}

/// Whether kubeconfig files have a context.
pub fn has_context(files: &[Value], name: &str) -> bool {
    find(files, "contexts", name).is_some()
}

/// A kubeconfig whose context `name` reaches the cluster of the existing context `source` (an
/// on-prem cluster mldeploy did not create): a context only, naming the cluster and user entries
/// `source` names. Credentials are never copied, so neither printing nor writing it puts a
/// token or client key anywhere new; the entries must stay in the kubeconfig it is merged into.
pub fn alias_kubeconfig(files: &[Value], source: &str, name: &str) -> Result<Value, String> {
    let context = find(files, "contexts", source)
        .and_then(|c| c.get("context"))
        .ok_or_else(|| format!("no context `{source}` in the kubeconfig"))?;
    let entry = |list: &str, body: &str| -> Result<String, String> {
        let entry_name = context
            .get(body)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("context `{source}` names no {body}"))?;
        find(files, list, entry_name)
            .map(|_| entry_name.to_string())
            .ok_or_else(|| {
                format!(
                    "context `{source}` names the {body} `{entry_name}`, which the kubeconfig lacks"
                )
            })
    };
    let mut alias =
        json!({"cluster": entry("clusters", "cluster")?, "user": entry("users", "user")?});
    if let Some(ns) = context.get("namespace") {
        alias["namespace"] = ns.clone();
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Config",
        "contexts": [{"name": name, "context": alias}],
        "current-context": name,
    }))
}

/// Whether a kubeconfig (a document as printed or written) holds a static credential: a token,
/// a password or a client key. `infra kubeconfig` never prints or writes one.
pub fn has_static_credential(kubeconfig: &Value) -> bool {
    kubeconfig
        .get("users")
        .and_then(Value::as_array)
        .is_some_and(|users| {
            users.iter().any(|u| {
                u.get("user")
                    .and_then(Value::as_object)
                    .is_some_and(|user| {
                        [
                            "token",
                            "tokenFile",
                            "password",
                            "client-key",
                            "client-key-data",
                        ]
                        .iter()
                        .any(|k| user.contains_key(*k))
                    })
            })
        })
}

/// Merges `new` into the kubeconfig `existing`: entries of the same name are replaced, everything
/// else is kept, and the current context is set only when there was none.
pub fn merge(existing: Value, new: &Value) -> Value {
    let mut out = match existing {
        Value::Object(map) => Value::Object(map),
        _ => json!({"apiVersion": "v1", "kind": "Config"}),
    };
    for list in ["clusters", "users", "contexts"] {
        let incoming: Vec<Value> = new
            .get(list)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let names: Vec<&str> = incoming
            .iter()
            .filter_map(|e| e.get("name").and_then(Value::as_str))
            .collect();
        let mut entries: Vec<Value> = out
            .get(list)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        entries.retain(|e| {
            !e.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| names.contains(&n))
        });
        entries.extend(incoming.iter().cloned());
        out[list] = Value::Array(entries);
    }
    let current = out
        .get("current-context")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !current && let Some(c) = new.get("current-context") {
        out["current-context"] = c.clone();
    }
    for (key, default) in [("apiVersion", "v1"), ("kind", "Config")] {
        if out.get(key).is_none() {
            out[key] = default.into();
        }
    }
    out
}

/// Writes a kubeconfig to `path` by the rules of [`crate::fsx`] (never through a link,
/// atomically), with the permissions of the file it replaces, or owner-only for a new one:
/// kubeconfigs hold credentials.
pub fn write_kubeconfig(path: &Path, text: &str) -> Result<(), crate::fsx::FileError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::fsx::write(
        dir,
        &name,
        text.as_bytes(),
        crate::fsx::WriteOptions {
            mode: Some(0o600),
            sync: true,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::context::BackendSetting;

    fn cluster(cloud: Cloud, context: Option<&str>) -> ClusterModel {
        ClusterModel {
            name: "c1".into(),
            cloud,
            region: None,
            gcp_project: None,
            gcp_zone: None,
            aws_vpc_id: None,
            aws_subnet_ids: Vec::new(),
            azure_resource_group: None,
            kubernetes_version: None,
            node_pools: Vec::new(),
            context: context.map(str::to_string),
            distribution: None,
            arch: None,
            gpus: Vec::new(),
            state: None,
            control_plane: Default::default(),
            hardening: Default::default(),
        }
    }

    #[test]
    fn contexts_are_the_clusters_own_or_a_default() {
        assert_eq!(
            context_name("shop", &cluster(Cloud::Gcp, None)),
            "mldeploy.shop.c1"
        );
        assert_eq!(
            context_name("shop", &cluster(Cloud::Onprem, Some("k3s"))),
            "k3s"
        );
    }

    #[test]
    fn kubeconfig_path_prefers_the_flag_then_the_first_kubeconfig_file() {
        let home = Path::new("/home/u");
        assert_eq!(
            kubeconfig_path(
                Some(Path::new("k.yaml")),
                Some(OsStr::new("/a:/b")),
                Some(home)
            ),
            Some(PathBuf::from("k.yaml"))
        );
        assert_eq!(
            kubeconfig_path(None, Some(OsStr::new("/a:/b")), Some(home)),
            Some(PathBuf::from("/a"))
        );
        assert_eq!(
            kubeconfig_path(None, Some(OsStr::new("")), Some(home)),
            Some(PathBuf::from("/home/u/.kube/config"))
        );
        assert_eq!(kubeconfig_path(None, None, None), None);
    }

    #[test]
    fn arguments_ask_only_when_not_auto_approved() {
        let vars = vec![("a".to_string(), "1=2".to_string())];
        assert_eq!(
            action_args(Action::Plan, Approval::Ask, false, &vars),
            [
                "plan",
                "-input=false",
                "-detailed-exitcode",
                "-no-color",
                "-var=a=1=2"
            ]
        );
        assert_eq!(
            action_args(Action::Apply, Approval::Auto, true, &[]),
            ["apply", "-input=false", "-auto-approve"]
        );
        assert_eq!(
            action_args(Action::Destroy, Approval::Ask, true, &[]),
            ["destroy"]
        );
        assert_eq!(
            init_args(false, true),
            [
                "init",
                "-input=false",
                "-no-color",
                "-backend-config=backend.tfbackend"
            ]
        );
        assert_eq!(exit_code(Action::Plan, Some(2)), 2);
        assert_eq!(exit_code(Action::Apply, Some(2)), 1);
        assert_eq!(exit_code(Action::Plan, Some(0)), 0);
        assert_eq!(exit_code(Action::Plan, None), 1);
    }

    #[test]
    fn backend_file_resolves_local_paths_and_adds_the_kubeconfig() {
        let local = Backend {
            kind: "local",
            settings: vec![BackendSetting {
                name: "path",
                value: "state/x.tfstate".into(),
            }],
        };
        let init = InitSettings {
            config_dir: PathBuf::from("/work/p"),
            kubeconfig: Some(PathBuf::from("/home/u/.kube/config")),
            context: Some("ctx".into()),
        };
        let text = backend_file(&local, &init);
        assert!(text.starts_with(HEADER), "{text}");
        assert!(
            text.contains("path = \"/work/p/state/x.tfstate\"\n"),
            "{text}"
        );
        let k8s = Backend {
            kind: "kubernetes",
            settings: vec![
                BackendSetting {
                    name: "secret_suffix",
                    value: "shop-lab".into(),
                },
                BackendSetting {
                    name: "config_context",
                    value: "old".into(),
                },
            ],
        };
        let text = backend_file(&k8s, &init);
        assert!(text.contains("secret_suffix  = \"shop-lab\"\n"), "{text}");
        assert!(text.contains("config_path    = \"/home/u/.kube/config\"\n"));
        assert!(text.contains("config_context = \"ctx\"\n") && !text.contains("old"));
        let s3 = Backend {
            kind: "s3",
            settings: vec![
                BackendSetting {
                    name: "bucket",
                    value: "b${x}".into(),
                },
                BackendSetting {
                    name: "encrypt",
                    value: true.into(),
                },
            ],
        };
        let text = backend_file(&s3, &init);
        assert!(text.contains("bucket  = \"b$${x}\"\n") && text.contains("encrypt = true\n"));
    }

    #[test]
    fn a_stale_lock_is_recognised_with_its_id() {
        let stderr = "\u{1b}[31m╷\u{1b}[0m\n\u{1b}[31m│\u{1b}[0m \u{1b}[1m\u{1b}[31mError: \u{1b}[0m\u{1b}[0m\u{1b}[1mError acquiring the state lock\u{1b}[0m\n│ \n│ Error message: ConditionalCheckFailedException\n│ Lock Info:\n│   ID:        8d6c4ad8-77d2-2b8d-4a53-0a9c7c0fa2b1\n│   Path:      b/k\n│   Operation: OperationTypePlan\n╵\n";
        assert_eq!(
            diagnose(stderr),
            Some(Diagnosis::Locked {
                id: Some("8d6c4ad8-77d2-2b8d-4a53-0a9c7c0fa2b1".into())
            })
        );
        assert_eq!(
            diagnose("Error: Backend configuration changed\n"),
            Some(Diagnosis::BackendChanged)
        );
        assert_eq!(diagnose("Error: Invalid provider\n"), None);
    }

    #[test]
    fn storage_identities_come_from_their_output() {
        let outputs = parse_outputs(
            r#"{"storage_identities": {"sensitive": false, "type": ["map", "string"],
                "value": {"b-storage": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "a": "x"}}}"#,
        )
        .expect("json");
        assert_eq!(
            storage_identities(&outputs),
            vec![
                ("a".to_string(), "x".to_string()),
                (
                    "b-storage".to_string(),
                    "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b".to_string()
                )
            ]
        );
        assert!(storage_identities(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn kubeconfigs_for_managed_clusters_need_their_outputs() {
        let outputs: BTreeMap<String, Value> = [
            ("cluster_name", "eks-main"),
            ("cluster_endpoint", "https://x.eks.amazonaws.com"),
            ("cluster_ca_certificate", "Q0E="),
            ("region", "eu-central-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
        let kc = managed_kubeconfig(Cloud::Aws, "ctx", &outputs).expect("complete");
        let exec = &kc["users"][0]["user"]["exec"];
        assert_eq!(exec["command"], "aws");
        assert_eq!(
            exec["args"],
            json!([
                "eks",
                "get-token",
                "--cluster-name",
                "eks-main",
                "--region",
                "eu-central-1"
            ])
        );
        assert_eq!(kc["contexts"][0]["name"], "ctx");
        let empty = BTreeMap::new();
        assert_eq!(
            managed_kubeconfig(Cloud::Gcp, "ctx", &empty),
            Err(vec![
                "cluster_name",
                "cluster_endpoint",
                "cluster_ca_certificate"
            ])
        );
    }

    #[test]
    fn merging_replaces_entries_of_the_same_name_and_keeps_the_rest() {
        let existing = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {"colors": true},
            "clusters": [{"name": "other", "cluster": {"server": "https://o"}},
                         {"name": "ctx", "cluster": {"server": "https://old"}}],
            "users": [{"name": "other", "user": {"token": "t"}}],
            "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
            "current-context": "other",
        });
        let new = single(
            "ctx",
            json!({"server": "https://new"}),
            json!({"token": "n"}),
            None,
        );
        let merged = merge(existing, &new);
        assert_eq!(merged["preferences"], json!({"colors": true}));
        assert_eq!(merged["current-context"], "other");
        let clusters = merged["clusters"].as_array().expect("list");
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[1]["cluster"]["server"], "https://new");
        assert_eq!(merged["contexts"].as_array().map(Vec::len), Some(2));
        let fresh = merge(Value::Null, &new);
        assert_eq!(fresh["current-context"], "ctx");
        assert_eq!(fresh["kind"], "Config");
    }

    #[test]
    fn an_onprem_alias_names_the_source_contexts_cluster_and_user_without_copying_them() {
        let files = vec![json!({
            "clusters": [{"name": "default", "cluster": {"server": "https://10.0.0.5:6443"}}],
            "users": [{"name": "default", "user": {"client-key-data": "a2V5", "token": "t0ken"}}],
            "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default", "namespace": "ml"}}],
            "current-context": "default",
        })];
        assert!(has_static_credential(&files[0]));
        let kc = alias_kubeconfig(&files, "default", "factory-k3s").expect("found");
        assert_eq!(kc["contexts"][0]["name"], "factory-k3s");
        assert_eq!(
            kc["contexts"][0]["context"],
            json!({"cluster": "default", "user": "default", "namespace": "ml"})
        );
        assert!(kc.get("users").is_none() && kc.get("clusters").is_none());
        assert!(!has_static_credential(&kc));
        let text = kc.to_string();
        assert!(!text.contains("a2V5") && !text.contains("t0ken"), "{text}");
        // Merging it adds the context and keeps the entries it names.
        let merged = merge(files[0].clone(), &kc);
        assert_eq!(merged["users"], files[0]["users"]);
        assert_eq!(merged["contexts"].as_array().map(Vec::len), Some(2));
        // The context itself: merging it back changes nothing.
        let same = alias_kubeconfig(&files, "default", "default").expect("found");
        let merged = merge(files[0].clone(), &same);
        assert_eq!(merged["contexts"], files[0]["contexts"]);
        assert_eq!(current_context(&files), Some("default"));
        let paths = vec![
            (PathBuf::from("/a"), json!({"contexts": []})),
            (PathBuf::from("/b"), files[0].clone()),
        ];
        assert_eq!(
            file_for_context(&paths, Some("default")),
            Some(PathBuf::from("/b"))
        );
        assert_eq!(file_for_context(&paths, None), Some(PathBuf::from("/b")));
        assert_eq!(file_for_context(&paths, Some("other")), None);
        assert!(alias_kubeconfig(&files, "nope", "x").is_err());
    }

    #[test]
    fn managed_kubeconfigs_use_exec_plugins_even_when_terraform_outputs_a_token() {
        let outputs: BTreeMap<String, Value> = [
            ("cluster_name", "gke-main"),
            ("cluster_endpoint", "https://34.1.2.3"),
            ("cluster_ca_certificate", "Q0E="),
            ("token", "ya29.secret"),
            ("client_key", "LS0tLS1CRUdJTi"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
        for cloud in [Cloud::Gcp, Cloud::Azure] {
            let kc = managed_kubeconfig(cloud, "ctx", &outputs).expect("complete");
            assert!(!has_static_credential(&kc));
            let text = kc.to_string();
            assert!(
                !text.contains("ya29") && !text.contains("LS0tLS1CRUdJTi"),
                "{text}"
            );
            assert!(kc["users"][0]["user"]["exec"]["command"].is_string());
        }
    }

    #[test]
    fn the_work_dir_keeps_terraforms_files_and_replaces_ours() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join(".terraform")).expect("mkdir");
        std::fs::write(d.join(".terraform.lock.hcl"), "lock").expect("write");
        std::fs::write(d.join("terraform.tfstate"), "{}").expect("write");
        std::fs::write(d.join("old.tf"), format!("{HEADER} from x.\n")).expect("write");
        std::fs::write(d.join("mine.tf"), "# by hand\n").expect("write");
        let files = vec![TfFile {
            file: "main.tf".into(),
            template: "terraform/gcp/main.tf".into(),
            text: "locals {}\n".into(),
        }];
        let written = write_work_dir(d, &files, Some("# backend\n")).expect("writes");
        assert_eq!(written, ["backend.tfbackend", "main.tf"]);
        let mut names: Vec<String> = std::fs::read_dir(d)
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".terraform",
                ".terraform.lock.hcl",
                "backend.tfbackend",
                "main.tf",
                "mine.tf",
                "terraform.tfstate"
            ]
        );
    }

    #[test]
    fn which_finds_executables_on_the_path_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).expect("join");
        assert_eq!(which(Path::new("tool"), Some(&path)), Some(tool.clone()));
        assert_eq!(which(Path::new("nope"), Some(&path)), None);
        assert_eq!(which(&tool, None), Some(tool));
    }
}
