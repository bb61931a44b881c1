//! `diff`, `apply`, `status` and `delete`: render the environment, connect to its cluster, plan,
//! and (for apply/delete) execute. One plan serves both diff and apply, so they cannot disagree.

use std::io::{IsTerminal, Write as _};
use std::time::Duration;

use super::{Ctx, Error, exit, print_json};
use crate::bundle::Bundle;
use crate::cli::{ApplyArgs, DeleteArgs, DiffArgs, TemplatesArg};
use crate::cluster::api::Api;
use crate::cluster::applyset::ApplySet;
use crate::cluster::connect::Options;
use crate::cluster::plan::{self, Action, Compare, Plan};
use crate::cluster::progress::{Mode, Progress};
use crate::cluster::{ClusterError, apply, status, wait};
use crate::model::{Env, Project};

impl From<ClusterError> for Error {
    fn from(e: ClusterError) -> Self {
        let mut message = e.to_string();
        if let ClusterError::NotReady { not_ready, .. } = &e {
            for n in not_ready {
                message.push_str(&format!("\n  - {}: {}", n.object, n.reason));
                for c in &n.conditions {
                    message.push_str(&format!("\n      condition {c}"));
                }
                for ev in &n.events {
                    message.push_str(&format!("\n      event {ev}"));
                }
            }
        }
        Error::Message {
            message,
            hint: e.hint(),
        }
    }
}

/// Everything a cluster command works from.
struct Session {
    project: Project,
    env: Env,
    bundle: Bundle,
    runtime: tokio::runtime::Runtime,
}

fn session(ctx: &Ctx, templates: &TemplatesArg) -> Result<Session, Error> {
    let rendered = ctx.render(templates)?;
    let env = rendered.env().clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::msg(format!("cannot start the async runtime: {e}"), None))?;
    Ok(Session {
        project: rendered.project,
        env,
        bundle: rendered.bundle,
        runtime,
    })
}

/// Connects to an environment's cluster: `--context`, else the cluster's `context`, else the
/// context `infra kubeconfig` writes for it (if the kubeconfig has one), else the current one;
/// with `--request-timeout` and `-v`. Every command that talks to a cluster connects here.
pub(super) async fn connect(ctx: &Ctx, project: &Project, env: &Env) -> Result<Api, Error> {
    connect_cluster(ctx, project, &project.clusters[&env.cluster]).await
}

/// [`connect`] by cluster rather than environment (`infra` works on clusters).
pub(super) async fn connect_cluster(
    ctx: &Ctx,
    project: &Project,
    cluster: &crate::model::ClusterModel,
) -> Result<Api, Error> {
    let context = ctx.global.context.as_deref().or(cluster.context.as_deref());
    let current = crate::infra::default_context(&project.name, &cluster.name);
    let legacy = crate::infra::legacy_context(&project.name, &cluster.name);
    let fallback = crate::cluster::connect::Fallback {
        current: &current,
        legacy: &legacy,
    };
    let opts = Options {
        request_timeout: ctx.global.request_timeout,
        verbosity: ctx.global.verbose,
    };
    Ok(Api::connect(
        ctx.global.kubeconfig.as_deref(),
        context,
        Some(fallback),
        opts,
    )
    .await?)
}

impl Session {
    async fn connect(&self, ctx: &Ctx) -> Result<Api, Error> {
        connect(ctx, &self.project, &self.env).await
    }

    fn applyset(&self) -> ApplySet {
        ApplySet::new(&self.project.name, &self.env.name, &self.env.namespace)
    }

    async fn plan(&self, api: &Api, opts: plan::Options) -> Result<Plan, Error> {
        Ok(plan::plan(api, &self.bundle, &self.env.name, self.applyset(), opts).await?)
    }

    /// Runs cluster work to its end, to `deadline`, or to Ctrl-C — which drops the requests in
    /// flight at once (nothing is pruned: prune only follows a complete apply).
    fn run<T>(
        &self,
        deadline: Option<Duration>,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        self.runtime.block_on(async {
            let bounded = async {
                match deadline {
                    Some(d) => tokio::time::timeout(d, work).await.unwrap_or_else(|_| {
                        Err(Error::msg(
                            format!("stopped after --timeout {}s", d.as_secs()),
                            Some("nothing was pruned; raise --timeout, or check the cluster (-v logs each request)"),
                        ))
                    }),
                    None => work.await,
                }
            };
            tokio::select! {
                result = bounded => result,
                _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
            }
        })
    }
}

fn colorize(diff: &str, color: bool) -> String {
    if !color {
        return diff.to_string();
    }
    diff.lines()
        .map(|l| match l.as_bytes().first() {
            Some(b'+') if !l.starts_with("+++") => format!("\x1b[32m{l}\x1b[0m\n"),
            Some(b'-') if !l.starts_with("---") => format!("\x1b[31m{l}\x1b[0m\n"),
            Some(b'@') => format!("\x1b[36m{l}\x1b[0m\n"),
            _ => format!("{l}\n"),
        })
        .collect()
}

fn summary(plan: &Plan) -> String {
    format!(
        "{} to create, {} to update, {} unchanged, {} to prune (env {}, context {})",
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Unchanged),
        plan.count(Action::Prune),
        plan.env,
        plan.context
    )
}

pub(super) fn diff(ctx: &Ctx, args: &DiffArgs) -> Result<i32, Error> {
    let s = session(ctx, &args.templates)?;
    let opts = plan::Options {
        compare: Compare::DryRun,
        adopt: false,
        concurrency: usize::from(args.concurrency),
    };
    let plan = s.run(Some(args.timeout), async {
        let api = s.connect(ctx).await?;
        s.plan(&api, opts).await
    })?;
    if ctx.json() {
        print_json(&plan.to_json());
    } else {
        let color = ctx.color;
        let mut out = String::new();
        for c in plan
            .changes
            .iter()
            .filter(|c| !matches!(c.action, Action::Unchanged | Action::Used))
        {
            let sign = match c.action {
                Action::Create => "+ create",
                Action::Update => "~ update",
                Action::Prune => "- prune ",
                Action::Foreign => "! not ours",
                Action::Unchanged | Action::Used => "",
            };
            match &c.why {
                Some(why) => out.push_str(&format!(
                    "{sign} {}: {why}; apply refuses it unless --adopt\n",
                    c.label()
                )),
                None => out.push_str(&format!("{sign} {}\n", c.label())),
            }
            out.push_str(&colorize(&c.diff_text(), color));
        }
        out.push_str(&summary(&plan));
        out.push('\n');
        out!("{out}");
        for note in apply::orphan_notes(&plan) {
            errln!("note: {note}");
        }
    }
    Ok(if plan.has_changes() {
        exit::CHANGES
    } else {
        exit::OK
    })
}

pub(super) fn apply(ctx: &Ctx, args: &ApplyArgs) -> Result<i32, Error> {
    let s = session(ctx, &args.templates)?;
    let mode = Mode::new(ctx.json(), ctx.progress);
    let concurrency = usize::from(args.concurrency);
    let plan_opts = plan::Options {
        compare: Compare::DryRun,
        adopt: args.adopt,
        concurrency,
    };
    let outcome = s.run(None, async {
        let api = s.connect(ctx).await?;
        let plan = s.plan(&api, plan_opts).await?;
        if !ctx.json() {
            errln!("{}", summary(&plan));
        }
        let steps = plan
            .changes
            .iter()
            .filter(|c| {
                matches!(
                    c.action,
                    Action::Create | Action::Update | Action::Unchanged
                )
            })
            .count() as u64;
        let progress = Progress::new(mode, "apply", steps);
        let opts = apply::Options {
            force_conflicts: args.force_conflicts,
            dry_run: args.dry_run,
            prune: args.prune,
            concurrency,
        };
        let result = apply::execute(&api, &plan, opts, &progress).await;
        progress.finish();
        let outcome = result?;
        if !args.dry_run && !args.no_wait {
            wait::wait_for_plan(&api, &plan, args.timeout, mode).await?;
        }
        Ok::<_, Error>(outcome)
    })?;
    if ctx.json() {
        outln!(
            "{}",
            serde_json::json!({"event": "done", "ok": true, "outcome": outcome})
        );
    } else {
        let verb = if args.dry_run { "dry run:" } else { "applied:" };
        errln!(
            "{verb} {} created, {} updated, {} unchanged, {} pruned",
            outcome.created.len(),
            outcome.updated.len(),
            outcome.unchanged,
            outcome.pruned.len()
        );
    }
    Ok(exit::OK)
}

pub(super) fn status(ctx: &Ctx) -> Result<i32, Error> {
    let s = session(ctx, &TemplatesArg::default())?;
    let (rows, orphans) = s.run(Some(Duration::from_secs(300)), async {
        let api = s.connect(ctx).await?;
        let rows = status::status(&api, &s.env).await?;
        let orphans = plan::orphans(&api, &s.applyset()).await?;
        Ok::<_, Error>((rows, orphans))
    })?;
    for note in apply::orphan_notes_in(&s.env.namespace, &orphans) {
        errln!("note: {note}");
    }
    if ctx.json() {
        print_json(&rows);
        return Ok(exit::OK);
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["model", "runtime", "desired", "ready", "state", "endpoint"]);
    for r in &rows {
        let n = |v: Option<i64>| v.map_or("-".to_string(), |x| x.to_string());
        table.add_row([
            r.name.clone(),
            r.runtime.clone(),
            n(r.desired),
            n(r.ready_replicas),
            r.state.clone(),
            r.endpoint.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    outln!("{table}");
    Ok(exit::OK)
}

pub(super) fn delete(ctx: &Ctx, args: &DeleteArgs) -> Result<i32, Error> {
    let s = session(ctx, &args.templates)?;
    // An orphaned environment: its ApplySet in this environment's namespace, nothing rendered.
    let (set, bundle, what) = match &args.orphan {
        Some(old) => {
            if s.project.environments.contains_key(old) {
                return Err(Error::msg(
                    format!("environment `{old}` is in the config: it is not an orphan"),
                    Some(&format!("to delete it, run `mldeploy delete --env {old}`")),
                ));
            }
            let set = ApplySet::new(&s.project.name, old, &s.env.namespace);
            let empty = Bundle {
                manifests: Vec::new(),
                terraform: Vec::new(),
            };
            (
                set,
                empty,
                format!(
                    "what the removed environment {old} left in namespace {}",
                    s.env.namespace
                ),
            )
        }
        None => (
            s.applyset(),
            s.bundle.clone(),
            format!(
                "everything mldeploy applied to environment {} (namespace {})",
                s.env.name, s.env.namespace
            ),
        ),
    };
    if !args.yes {
        if !std::io::stdin().is_terminal() || std::env::var_os("CI").is_some() {
            return Err(Error::msg(
                format!("refusing to delete {what} without --yes (not a terminal)"),
                Some("pass --yes to delete it"),
            ));
        }
        err!("delete {what}? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            errln!("nothing deleted");
            return Ok(exit::ERROR);
        }
    }
    let mode = Mode::new(ctx.json(), ctx.progress);
    let env_name = set.env.clone();
    let outcome = s.run(None, async {
        let api = s.connect(ctx).await?;
        let opts = plan::Options {
            compare: Compare::Existence,
            adopt: false,
            concurrency: 16,
        };
        let plan = plan::plan(&api, &bundle, &env_name, set, opts).await?;
        let progress = Progress::new(mode, "delete", plan.changes.len() as u64);
        let result = apply::delete_all(&api, &plan, 16, &progress).await;
        progress.finish();
        Ok::<_, Error>(result?)
    })?;
    if ctx.json() {
        outln!(
            "{}",
            serde_json::json!({"event": "done", "ok": true, "deleted": outcome.pruned, "kept": outcome.kept})
        );
    } else {
        errln!("deleted {} object(s)", outcome.pruned.len());
        if !outcome.kept.is_empty() {
            errln!(
                "left {} object(s) that are not this environment's: {}",
                outcome.kept.len(),
                outcome.kept.join(", ")
            );
        }
    }
    Ok(exit::OK)
}
