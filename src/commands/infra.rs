//! `mldeploy infra plan|apply|destroy|kubeconfig`: render one cluster's Terraform into its working
//! directory and run Terraform there, streaming its output; build a kubeconfig from its outputs.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{Ctx, Error, emit, exit, print_json};
use crate::cli::{InfraAction, InfraArgs, InfraKubeconfigArgs, InfraTarget};
use crate::config::Cloud;
use crate::infra::{self, Action, Approval, Diagnosis, InitSettings};
use crate::model::{ClusterModel, Project};
use crate::render;

/// Largest kubeconfig file read (they are kilobytes; a FIFO or a device stops here).
const MAX_KUBECONFIG_BYTES: usize = 16 * 1024 * 1024;

/// How much of Terraform's error output is kept to read after it exits (the end matters).
const STDERR_KEPT: usize = 256 * 1024;

const INSTALL_HINT: &str = "install Terraform ≥ 1.5 (https://developer.hashicorp.com/terraform/install) or OpenTofu; set MLDEPLOY_TERRAFORM (or pass --terraform) to its path if it is not on PATH";

pub(super) fn run(ctx: &Ctx, args: &InfraArgs) -> Result<i32, Error> {
    match &args.action {
        InfraAction::Plan(a) => terraform(ctx, &a.target, Action::Plan, &a.vars, false),
        InfraAction::Apply(a) => terraform(ctx, &a.target, Action::Apply, &a.vars, a.auto_approve),
        InfraAction::Destroy(a) => {
            terraform(ctx, &a.target, Action::Destroy, &a.vars, a.auto_approve)
        }
        InfraAction::Kubeconfig(a) => kubeconfig(ctx, a),
    }
}

/// The cluster named by `--cluster`, else the cluster of `--env`, else the only one.
fn pick_cluster<'a>(
    ctx: &Ctx,
    project: &'a Project,
    flag: Option<&str>,
) -> Result<&'a ClusterModel, Error> {
    let names = || {
        project
            .clusters
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = flag {
        return project.clusters.get(name).ok_or_else(|| {
            let hint =
                match crate::suggest::closest(name, project.clusters.keys().map(String::as_str)) {
                    Some(c) => format!("did you mean `{c}`? clusters: {}", names()),
                    None => format!("clusters: {}", names()),
                };
            Error::msg(format!("unknown cluster `{name}`"), Some(&hint))
        });
    }
    if let Some(env) = ctx.global.env.as_deref() {
        let env = render::pick_env(project, Some(env))?;
        return Ok(&project.clusters[&env.cluster]);
    }
    let mut all = project.clusters.values();
    match (all.next(), all.next()) {
        (Some(only), None) => Ok(only),
        (None, _) => Err(Error::msg(
            "the config has no clusters",
            Some("add one under `clusters:`"),
        )),
        _ => Err(Error::msg(
            "the config has several clusters; choose one with --cluster (or --env)",
            Some(&format!("clusters: {}", names())),
        )),
    }
}

/// The Terraform binary: `--terraform` / `MLDEPLOY_TERRAFORM` (a path, or a name on PATH), else
/// `terraform`, else `tofu`, on PATH.
fn find_terraform(flag: Option<&Path>) -> Result<PathBuf, Error> {
    let path_var = std::env::var_os("PATH");
    match flag {
        Some(name) => infra::which(name, path_var.as_deref()).ok_or_else(|| {
            let place = if name.components().count() > 1 {
                "is not an executable file"
            } else {
                "is not on PATH"
            };
            Error::msg(
                format!("the Terraform binary `{}` {place}", name.display()),
                Some(INSTALL_HINT),
            )
        }),
        None => ["terraform", "tofu"]
            .iter()
            .find_map(|n| infra::which(Path::new(n), path_var.as_deref()))
            .ok_or_else(|| {
                Error::msg(
                    "Terraform is not installed: neither `terraform` nor `tofu` is on PATH",
                    Some(INSTALL_HINT),
                )
            }),
    }
}

/// A cluster's Terraform, written to its working directory, and the binary to run there.
struct Workspace {
    cluster: ClusterModel,
    dir: PathBuf,
    terraform: PathBuf,
    backend_file: bool,
    vars: Vec<(String, String)>,
}

impl Workspace {
    /// The name to show in hints (`terraform`, `tofu`).
    fn program(&self) -> String {
        self.terraform
            .file_name()
            .map_or_else(|| "terraform".into(), |n| n.to_string_lossy().into_owned())
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// The kubeconfig this run uses: `--kubeconfig`, else the first file of $KUBECONFIG, else
/// ~/.kube/config.
fn kubeconfig_file(ctx: &Ctx) -> Option<PathBuf> {
    infra::kubeconfig_path(
        ctx.global.kubeconfig.as_deref(),
        std::env::var_os("KUBECONFIG").as_deref(),
        home().as_deref(),
    )
}

/// The kubeconfig file Terraform reads for an on-prem cluster (its state and providers take one
/// file): `--kubeconfig`, else the file of $KUBECONFIG that has the cluster's context, else the
/// usual one.
fn onprem_kubeconfig_file(ctx: &Ctx, cluster: &ClusterModel) -> Option<PathBuf> {
    if let Some(path) = &ctx.global.kubeconfig {
        return Some(path.clone());
    }
    let context = ctx.global.context.as_deref().or(cluster.context.as_deref());
    // An unreadable file is Terraform's to report, with the usual path.
    let files = read_kubeconfigs(ctx).unwrap_or_default();
    infra::file_for_context(&files, context).or_else(|| kubeconfig_file(ctx))
}

fn config_dir(ctx: &Ctx) -> PathBuf {
    let dir = ctx
        .global
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

fn workspace(
    ctx: &Ctx,
    project: &Project,
    cluster: &ClusterModel,
    target: &InfraTarget,
) -> Result<Workspace, Error> {
    let cluster = cluster.clone();
    let backend = render::context::backend(&cluster);
    // Without state settings Terraform would stop at init asking for the bucket; unless the
    // person gives them through TF_CLI_ARGS, say so now.
    let given_by_env =
        std::env::var_os("TF_CLI_ARGS_init").is_some() || std::env::var_os("TF_CLI_ARGS").is_some();
    if backend.is_none() && !given_by_env {
        return Err(Error::msg(
            format!(
                "cluster `{}` does not say where Terraform keeps its state",
                cluster.name
            ),
            Some(&format!(
                "add {} to clusters.{} in {} (see docs/infra.md), or `state: {{local: {{}}}}` for a file on this machine",
                crate::model::state_example(cluster.cloud),
                cluster.name,
                ctx.global.config.display()
            )),
        ));
    }
    let terraform = find_terraform(target.terraform.as_deref())?;
    let templates = ctx.templates(&target.templates)?;
    let files = render::render_cluster(project, &cluster, &templates)?;

    let config_dir = config_dir(ctx);
    let init = InitSettings {
        config_dir: config_dir.clone(),
        kubeconfig: (cluster.cloud == Cloud::Onprem)
            .then(|| onprem_kubeconfig_file(ctx, &cluster))
            .flatten(),
        context: ctx.global.context.clone(),
    };
    let dir = match &target.dir {
        Some(d) => d.clone(),
        None => {
            let rel = infra::work_dir_rel(&project.name, &cluster.name);
            check_legacy_work_dir(&config_dir, &rel, &cluster.name)?;
            // Every folder on the way is checked: a linked `.mldeploy` is not written through.
            let dir = crate::fsx::ensure_dir(&config_dir, &rel)?;
            // Provider plugins and maybe local state (which can hold secrets): never for git.
            if crate::fsx::existing_file(&config_dir, ".mldeploy/.gitignore")?.is_none() {
                crate::fsx::write(
                    &config_dir,
                    ".mldeploy/.gitignore",
                    b"# Written by mldeploy: Terraform working directories.\n*\n",
                    crate::fsx::WriteOptions::default(),
                )?;
            }
            dir
        }
    };
    let backend_text = backend.as_ref().map(|b| infra::backend_file(b, &init));
    infra::write_work_dir(&dir, &files, backend_text.as_deref()).map_err(|e| {
        let hint = e.hint().map_or_else(
            || "pass --dir to use another folder".to_string(),
            |h| format!("{h}; or pass --dir to use another folder"),
        );
        Error::msg(
            format!(
                "cannot write the Terraform working directory {}: {e}",
                dir.display()
            ),
            Some(&hint),
        )
    })?;
    check_legacy_state(ctx, project, &cluster, &dir, &terraform)?;
    Ok(Workspace {
        vars: infra::cluster_vars(&cluster, &init),
        cluster,
        dir,
        terraform,
        backend_file: backend_text.is_some(),
    })
}

/// Earlier versions kept a cluster's working directory in `.mldeploy/infra/<cluster>/`, which
/// every config in the folder shared. If that one holds Terraform's files (an initialised
/// backend, maybe local state) and the new one does not exist yet, starting afresh would plan
/// from empty state: stop and say how to move it.
fn check_legacy_work_dir(config_dir: &Path, rel: &str, cluster: &str) -> Result<(), Error> {
    let legacy = infra::legacy_work_dir_rel(cluster);
    let exists = |p: &str| std::fs::symlink_metadata(config_dir.join(p)).is_ok();
    if exists(rel)
        || !(exists(&format!("{legacy}/.terraform"))
            || exists(&format!("{legacy}/terraform.tfstate")))
    {
        return Ok(());
    }
    Err(Error::msg(
        format!(
            "cluster `{cluster}` has a Terraform working directory at {} (where earlier versions \
             kept it); it is now {}, so that two configs in one folder cannot share one",
            config_dir.join(&legacy).display(),
            config_dir.join(rel).display()
        ),
        Some(&format!(
            "if it is this config's, move it (it may hold the local state): cd {} && mv {legacy} \
             {rel}; if it belongs to another config in this folder, create the new one instead: \
             mkdir -p {rel}",
            config_dir.display()
        )),
    ))
}

/// A working directory initialised with the Kubernetes state Secret name of earlier versions
/// (`<project>-<cluster>`, which collides across projects) would make `init` fail with "backend
/// configuration changed", or, answered wrongly, start from empty state. Say what to do instead.
fn check_legacy_state(
    ctx: &Ctx,
    project: &Project,
    cluster: &ClusterModel,
    dir: &Path,
    terraform: &Path,
) -> Result<(), Error> {
    let defaults = crate::model::names::StateDefaults::new(&project.name, &cluster.name);
    let Some(crate::model::StateBackend::Kubernetes { secret_suffix, .. }) = &cluster.state else {
        return Ok(());
    };
    // Only the default moved; a suffix from the config is the user's choice.
    if *secret_suffix != defaults.secret_suffix {
        return Ok(());
    }
    let legacy =
        crate::model::names::StateDefaults::legacy_secret_suffix(&project.name, &cluster.name);
    let Some(initialised) = infra::initialised_secret_suffix(dir) else {
        // A working directory never initialised (a fresh machine, a CI runner) cannot tell; the
        // cluster can: the old Secret there, and none under the new name, is this cluster's
        // state, and starting from empty state would install everything a second time.
        return check_legacy_state_secret(ctx, project, cluster, &legacy, secret_suffix);
    };
    if initialised != legacy {
        return Ok(());
    }
    let program = terraform
        .file_name()
        .map_or_else(|| "terraform".into(), |n| n.to_string_lossy().into_owned());
    Err(Error::msg(
        format!(
            "the Terraform state of cluster `{}` is in the Secret `tfstate-default-{legacy}`, the \
             name earlier mldeploy versions used; it is now `tfstate-default-{secret_suffix}`, \
             which another project's cannot collide with",
            cluster.name
        ),
        Some(&format!(
            "move it (Terraform copies the state, then uses the new name): cd {} && {program} \
             init -migrate-state -backend-config={}; or keep the old name: add `state: \
             {{kubernetes: {{secretSuffix: {legacy}}}}}` to clusters.{} in {}",
            dir.display(),
            infra::BACKEND_FILE,
            cluster.name,
            ctx.global.config.display()
        )),
    ))
}

/// Looks in the cluster for the state Secret under the name of earlier versions. A cluster that
/// cannot be asked is a warning: Terraform's own init reaches the same cluster and fails loudly.
fn check_legacy_state_secret(
    ctx: &Ctx,
    project: &Project,
    cluster: &ClusterModel,
    legacy: &str,
    current: &str,
) -> Result<(), Error> {
    let Some(crate::model::StateBackend::Kubernetes { namespace, .. }) = &cluster.state else {
        return Ok(());
    };
    let found = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::msg(format!("cannot start the async runtime: {e}"), None))?
        .block_on(async {
            let api = super::cluster::connect_cluster(ctx, project, cluster).await?;
            let Some(secret) = api.resource("v1", "Secret").await? else {
                return Ok::<_, Error>((false, false));
            };
            let old = api
                .get(
                    &secret,
                    Some(namespace),
                    &format!("tfstate-default-{legacy}"),
                )
                .await?;
            let new = api
                .get(
                    &secret,
                    Some(namespace),
                    &format!("tfstate-default-{current}"),
                )
                .await?;
            Ok((old.is_some(), new.is_some()))
        });
    match found {
        Ok((true, false)) => Err(Error::msg(
            format!(
                "the Terraform state of cluster `{}` is in the Secret `tfstate-default-{legacy}` \
                 (namespace {namespace}), the name earlier mldeploy versions used; under the new \
                 name `tfstate-default-{current}` Terraform would start from empty state and \
                 install the platform a second time",
                cluster.name
            ),
            Some(&format!(
                "keep the old name: add `state: {{kubernetes: {{secretSuffix: {legacy}}}}}` to \
                 clusters.{} in {}; to move to the new name, run `mldeploy infra plan` once with \
                 that setting, then remove it: the next run prints the `terraform init \
                 -migrate-state` command",
                cluster.name,
                ctx.global.config.display()
            )),
        )),
        Ok(_) => Ok(()),
        Err(e) => {
            errln!(
                "warning: could not check cluster `{}` for Terraform state under the old Secret \
                 name `tfstate-default-{legacy}`: {e}",
                cluster.name
            );
            Ok(())
        }
    }
}

/// Where a Terraform process's standard output goes.
enum Out {
    /// Our stdout: people watch it live.
    Inherit,
    /// Our stderr, when our stdout carries a document (JSON, a kubeconfig).
    Stderr,
    /// Captured and returned.
    Capture,
}

/// How a Terraform process ended.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs Terraform in the working directory. Its error output is shown as it comes and kept, so
/// that a known failure (a stale lock) can be explained afterwards.
fn run_terraform(ws: &Workspace, args: &[String], out: Out, ask: bool) -> Result<Ran, Error> {
    let mut cmd = Command::new(&ws.terraform);
    cmd.args(args)
        .current_dir(&ws.dir)
        // Terraform's advice to run `terraform apply` and the like is not for mldeploy's users.
        .env("TF_IN_AUTOMATION", "1")
        .stdin(if ask { Stdio::inherit() } else { Stdio::null() })
        .stderr(Stdio::piped());
    match out {
        Out::Inherit => cmd.stdout(Stdio::inherit()),
        Out::Stderr => cmd.stdout(std::io::stderr()),
        Out::Capture => cmd.stdout(Stdio::piped()),
    };
    let mut child = cmd.spawn().map_err(|e| {
        Error::msg(
            format!("cannot run {}: {e}", ws.terraform.display()),
            Some(INSTALL_HINT),
        )
    })?;
    let pipe = child.stderr.take();
    let tee = std::thread::spawn(move || {
        let mut kept: Vec<u8> = Vec::new();
        let Some(mut pipe) = pipe else {
            return kept;
        };
        let mut buf = [0u8; 8192];
        let mut err = std::io::stderr();
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let _ = err.write_all(&buf[..n]);
                    let _ = err.flush();
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > 2 * STDERR_KEPT {
                        kept.drain(..kept.len() - STDERR_KEPT);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        kept
    });
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_string(&mut stdout);
    }
    let status = child
        .wait()
        .map_err(|e| Error::msg(format!("waiting for {}: {e}", ws.program()), None))?;
    let stderr = tee.join().unwrap_or_default();
    Ok(Ran {
        code: status.code(),
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// The error for a failed Terraform step, explained when mldeploy knows the failure.
fn failed(ws: &Workspace, step: &str, ran: &Ran) -> Error {
    let program = ws.program();
    let dir = ws.dir.display();
    match infra::diagnose(&ran.stderr) {
        Some(Diagnosis::Locked { id }) => {
            let id_text = id.as_deref().unwrap_or("<lock ID>");
            Error::msg(
                format!(
                    "the Terraform state of cluster `{}` is locked{}",
                    ws.cluster.name,
                    id.as_deref()
                        .map(|i| format!(" (lock ID {i})"))
                        .unwrap_or_default()
                ),
                Some(&format!(
                    "another run holds the lock, or one that crashed left it behind; when no other run is active, release it: cd {dir} && {program} force-unlock {id_text}"
                )),
            )
        }
        Some(Diagnosis::BackendChanged) => Error::msg(
            format!(
                "the state settings of cluster `{}` changed since its working directory was initialised",
                ws.cluster.name
            ),
            Some(&format!(
                "to move the state to the new place: cd {dir} && {program} init -migrate-state -backend-config={}; to use the new place without moving it, run `init -reconfigure -backend-config={}` there instead",
                infra::BACKEND_FILE,
                infra::BACKEND_FILE
            )),
        ),
        None => Error::msg(
            match ran.code {
                Some(code) => format!("{program} {step} failed (exit {code}); its output is above"),
                None => format!("{program} {step} was interrupted"),
            },
            None,
        ),
    }
}

/// SIGINT goes to the whole foreground process group: Terraform stops cleanly by itself (and
/// releases its lock), and mldeploy waits for it rather than dying first and leaving it running.
/// Holding the returned value keeps mldeploy from exiting on Ctrl-C.
#[cfg(unix)]
fn wait_out_interrupts() -> Option<(tokio::runtime::Runtime, tokio::signal::unix::Signal)> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let handler = rt
        .block_on(async { signal(SignalKind::interrupt()) })
        .ok()?;
    Some((rt, handler))
}

#[cfg(not(unix))]
fn wait_out_interrupts() -> Option<()> {
    None
}

fn terraform(
    ctx: &Ctx,
    target: &InfraTarget,
    action: Action,
    vars: &[(String, String)],
    auto_approve: bool,
) -> Result<i32, Error> {
    let approval = if auto_approve || action == Action::Plan {
        Approval::Auto
    } else if std::io::stdin().is_terminal() && !ctx.json() {
        Approval::Ask
    } else {
        return Err(Error::msg(
            format!(
                "`infra {}` changes real infrastructure and nobody is at a terminal to confirm it",
                action.name()
            ),
            Some(&format!(
                "review with `mldeploy infra plan`, then pass --auto-approve (as in CI) to {} without asking",
                action.name()
            )),
        ));
    };
    let project = ctx.project()?;
    let cluster = pick_cluster(ctx, &project, target.cluster.as_deref())?;
    let ws = workspace(ctx, &project, cluster, target)?;
    let _interrupts = wait_out_interrupts();
    let out = || {
        if ctx.json() {
            Out::Stderr
        } else {
            Out::Inherit
        }
    };
    if !ctx.json() {
        errln!(
            "cluster {}: {} {} in {}",
            ws.cluster.name,
            ws.program(),
            action.name(),
            ws.dir.display()
        );
    }
    let init = run_terraform(
        &ws,
        &infra::init_args(ctx.color, ws.backend_file),
        out(),
        false,
    )?;
    if init.code != Some(0) {
        return Err(failed(&ws, "init", &init));
    }
    let mut all_vars = ws.vars.clone();
    all_vars.extend(vars.iter().cloned());
    let args = infra::action_args(action, approval, ctx.color, &all_vars);
    let ran = run_terraform(&ws, &args, out(), approval == Approval::Ask)?;
    let code = infra::exit_code(action, ran.code);
    if code == exit::ERROR {
        return Err(failed(&ws, action.name(), &ran));
    }
    let identities = if action == Action::Apply {
        client_ids_after_apply(&ws, cluster)
    } else {
        Vec::new()
    };
    if ctx.json() {
        print_json(&json!({
            "ok": true,
            "cluster": ws.cluster.name,
            "action": action.name(),
            "changes": code == exit::CHANGES,
            "dir": ws.dir.display().to_string(),
            "storageIdentities": identities
                .iter()
                .map(|(name, id)| json!({"name": name, "clientId": id}))
                .collect::<Vec<_>>(),
        }));
    } else if !identities.is_empty() {
        errln!(
            "workload identities of cluster {}: set `storage.clientId` of the models that use each",
            cluster.name
        );
        for (name, id) in &identities {
            errln!("  {name}: clientId: {id}");
        }
    }
    Ok(code)
}

/// After `apply` on a cloud whose ServiceAccounts need a value Terraform creates (AKS client
/// ids), that value per identity from `terraform output`; empty elsewhere, or when the output
/// cannot be read (the apply itself succeeded, so this only costs the hint).
fn client_ids_after_apply(ws: &Workspace, cluster: &ClusterModel) -> Vec<(String, String)> {
    let after = crate::platform::of(cluster.cloud)
        .workload_identity
        .is_some_and(|w| w.annotation_after_infra);
    if !after {
        return Vec::new();
    }
    let Ok(ran) = run_terraform(
        ws,
        &["output".into(), "-json".into(), "-no-color".into()],
        Out::Capture,
        false,
    ) else {
        return Vec::new();
    };
    if ran.code != Some(0) {
        return Vec::new();
    }
    infra::parse_outputs(&ran.stdout)
        .map(|o| infra::storage_identities(&o))
        .unwrap_or_default()
}

/// Reads kubeconfig files as YAML documents: `--kubeconfig`, else every file of $KUBECONFIG,
/// else ~/.kube/config. Missing files are skipped, as kubectl does.
fn read_kubeconfigs(ctx: &Ctx) -> Result<Vec<(PathBuf, Value)>, Error> {
    let paths: Vec<PathBuf> = match (&ctx.global.kubeconfig, std::env::var_os("KUBECONFIG")) {
        (Some(p), _) => vec![p.clone()],
        (None, Some(v)) if !v.is_empty() => std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        _ => home()
            .map(|h| vec![h.join(".kube").join("config")])
            .unwrap_or_default(),
    };
    let mut files = Vec::new();
    for path in paths {
        if let Some(doc) = read_kubeconfig(&path)? {
            files.push((path, doc));
        }
    }
    Ok(files)
}

/// One kubeconfig file, None when it does not exist.
fn read_kubeconfig(path: &Path) -> Result<Option<Value>, Error> {
    let text = crate::fsx::read_input(path, MAX_KUBECONFIG_BYTES)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    match text {
        Ok(text) if text.trim().is_empty() => Ok(Some(Value::Null)),
        Ok(text) => serde_saphyr::from_str::<Value>(&text)
            .map(Some)
            .map_err(|e| {
                Error::msg(
                    format!("{} is not a valid kubeconfig: {e}", path.display()),
                    Some("fix or move the file, or pass --kubeconfig OTHER"),
                )
            }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn kubeconfig(ctx: &Ctx, args: &InfraKubeconfigArgs) -> Result<i32, Error> {
    let project = ctx.project()?;
    let cluster = pick_cluster(ctx, &project, args.target.cluster.as_deref())?;
    let name = infra::context_name(&project.name, cluster);
    let kubeconfig = if cluster.cloud == Cloud::Onprem {
        onprem_kubeconfig(ctx, cluster, &name)?
    } else {
        managed_kubeconfig(ctx, &project, &args.target, cluster, &name)?
    };
    let envs: Vec<&str> = project
        .environments
        .values()
        .filter(|e| e.cluster == cluster.name)
        .map(|e| e.name.as_str())
        .collect();
    // The promise: contexts with exec plugins or references to existing entries, never a
    // static credential (checked here so that a future path cannot break it silently).
    if infra::has_static_credential(&kubeconfig) {
        return Err(Error::msg(
            format!(
                "the kubeconfig for cluster `{}` would hold a static credential",
                cluster.name
            ),
            Some("mldeploy writes exec-plugin contexts only; please report this"),
        ));
    }
    if !args.write {
        let text = if ctx.json() {
            serde_json::to_string_pretty(&kubeconfig).unwrap_or_default() + "\n"
        } else {
            to_yaml(&kubeconfig)?
        };
        emit(&text);
        return Ok(exit::OK);
    }
    let path = kubeconfig_file(ctx).ok_or_else(|| {
        Error::msg(
            "no kubeconfig file to write: HOME is not set",
            Some("pass --kubeconfig PATH"),
        )
    })?;
    let existing = read_kubeconfig(&path)?.unwrap_or(Value::Null);
    let legacy = infra::legacy_context(&project.name, &cluster.name);
    let legacy_note = (cluster.context.is_none()
        && legacy != name
        && infra::has_context(std::slice::from_ref(&existing), &legacy))
    .then(|| legacy_context_note(&existing, &kubeconfig, &legacy, &path));
    let merged = infra::merge(existing.clone(), &kubeconfig);
    let changed = merged != existing;
    if changed {
        infra::write_kubeconfig(&path, &to_yaml(&merged)?)?;
    }
    if ctx.json() {
        print_json(&json!({
            "ok": true,
            "context": name,
            "kubeconfig": path.display().to_string(),
            "changed": changed,
            "legacyContext": legacy_note.as_ref().map(|_| legacy.clone()),
        }));
    } else {
        if changed {
            errln!("wrote context `{name}` to {}", path.display());
        } else {
            errln!("context `{name}` in {} is up to date", path.display());
        }
        if let Some(note) = &legacy_note {
            errln!("{note}");
        }
        if !envs.is_empty() {
            errln!(
                "next: mldeploy apply -f {} --env {}",
                ctx.global.config.display(),
                envs[0]
            );
        }
    }
    Ok(exit::OK)
}

/// What to do about a context under the name earlier versions wrote (`mldeploy-<project>-<cluster>`,
/// which two projects could share). It is never replaced or removed here: if it reaches the
/// same server as the new context it is this cluster's, and can go; otherwise it is another
/// project's, whose name collided, and must stay.
fn legacy_context_note(existing: &Value, new: &Value, legacy: &str, path: &Path) -> String {
    let server_of = |doc: &Value, context: &str| -> Option<String> {
        let cluster = doc
            .get("contexts")?
            .as_array()?
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(context))?
            .get("context")?
            .get("cluster")?
            .as_str()?
            .to_string();
        doc.get("clusters")?
            .as_array()?
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(&cluster))?
            .get("cluster")?
            .get("server")?
            .as_str()
            .map(str::to_string)
    };
    let new_name = new
        .get("current-context")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let merged = infra::merge(existing.clone(), new);
    let file = path.display();
    match (server_of(existing, legacy), server_of(&merged, new_name)) {
        (Some(old), Some(now)) if old == now => format!(
            "note: `{legacy}` is the name earlier mldeploy versions gave this context; it reaches \
             the same server and is now unused. Remove it when nothing else uses it: kubectl \
             --kubeconfig {file} config delete-context {legacy} (and `delete-cluster {legacy}`, \
             `delete-user {legacy}` if only it used them)"
        ),
        _ => format!(
            "note: the context `{legacy}` (the name earlier mldeploy versions used) reaches \
             another server: it may belong to another project whose name collided under that \
             scheme, so it was left alone; mldeploy now uses `{new_name}`"
        ),
    }
}

fn to_yaml(value: &Value) -> Result<String, Error> {
    serde_saphyr::to_string(value)
        .map_err(|e| Error::msg(format!("cannot write the kubeconfig as YAML: {e}"), None))
}

/// A managed cluster's kubeconfig from `terraform output -json` in its working directory.
fn managed_kubeconfig(
    ctx: &Ctx,
    project: &Project,
    target: &InfraTarget,
    cluster: &ClusterModel,
    name: &str,
) -> Result<Value, Error> {
    // Checked first: without it the kubeconfig would not connect, however right it is.
    let region = cluster.region.as_deref().unwrap_or_default();
    if let Some(plugin) = infra::exec_plugin(cluster.cloud, &cluster.name, region)
        && infra::which(
            Path::new(plugin.command),
            std::env::var_os("PATH").as_deref(),
        )
        .is_none()
    {
        return Err(Error::msg(
            format!(
                "`{}` is not on PATH: kubeconfigs of {} clusters get their credentials from it",
                plugin.command,
                cluster.cloud.name()
            ),
            Some(plugin.install_hint),
        ));
    }
    let ws = workspace(ctx, project, cluster, target)?;
    let _interrupts = wait_out_interrupts();
    let init = run_terraform(
        &ws,
        &infra::init_args(ctx.color, ws.backend_file),
        Out::Stderr,
        false,
    )?;
    if init.code != Some(0) {
        return Err(failed(&ws, "init", &init));
    }
    let ran = run_terraform(
        &ws,
        &["output".into(), "-json".into(), "-no-color".into()],
        Out::Capture,
        false,
    )?;
    if ran.code != Some(0) {
        return Err(failed(&ws, "output", &ran));
    }
    let outputs = infra::parse_outputs(&ran.stdout).map_err(|e| Error::msg(e, None))?;
    infra::managed_kubeconfig(cluster.cloud, name, &outputs).map_err(|missing| {
        Error::msg(
            format!(
                "Terraform has no {} for cluster `{}`",
                missing.join(", "),
                cluster.name
            ),
            Some(&if outputs.is_empty() {
                format!(
                    "create the cluster first: mldeploy infra apply --cluster {}",
                    cluster.name
                )
            } else {
                format!(
                    "apply again so the outputs exist: mldeploy infra apply --cluster {}",
                    cluster.name
                )
            }),
        )
    })
}

/// An on-prem cluster exists already, with a context: `name` reaches the same cluster as the
/// context given by --context, else the cluster's `context`, else the current one.
fn onprem_kubeconfig(ctx: &Ctx, cluster: &ClusterModel, name: &str) -> Result<Value, Error> {
    let files: Vec<Value> = read_kubeconfigs(ctx)?
        .into_iter()
        .map(|(_, doc)| doc)
        .collect();
    let source = ctx
        .global
        .context
        .clone()
        .or_else(|| cluster.context.clone())
        .or_else(|| infra::current_context(&files).map(str::to_string))
        .ok_or_else(|| {
            Error::msg(
                format!(
                    "no kubeconfig context to reach on-prem cluster `{}`",
                    cluster.name
                ),
                Some("k3s writes its kubeconfig to /etc/rancher/k3s/k3s.yaml (context `default`): copy it to ~/.kube/config (with the address the server has on your network), or pass --kubeconfig"),
            )
        })?;
    if !infra::has_context(&files, &source) {
        return Err(Error::msg(
            format!(
                "the kubeconfig has no context `{source}` for on-prem cluster `{}`",
                cluster.name
            ),
            Some(&format!(
                "k3s writes its kubeconfig to /etc/rancher/k3s/k3s.yaml with the context `default`: merge it into your kubeconfig, then `mldeploy infra kubeconfig --cluster {} --context default --write` adds `{name}` pointing at it",
                cluster.name
            )),
        ));
    }
    infra::alias_kubeconfig(&files, &source, name)
        .map_err(|e| Error::msg(e, Some("check the kubeconfig: kubectl config view")))
}
