//! `promote`: step a canary's share of traffic (10 → 25 → 50 → 100 by default), re-rendering and
//! applying each split and load-testing the canary against the model's SLO; roll back (traffic
//! 0) on a breach or a failing canary and exit 3; at 100% make the canary the model by rewriting
//! `mldeploy.yaml` in place. In GitOps mode nothing is applied: the canary is tested at its
//! current split and the config and tree are rewritten for the pipeline to commit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::test::{self as t, Reach};
use super::{Ctx, Error, exit};
use crate::cli::PromoteArgs;
use crate::cluster::api::Api;
use crate::cluster::applyset::ApplySet;
use crate::cluster::plan::{self, Compare};
use crate::cluster::progress::{Mode, Progress};
use crate::cluster::{apply, wait};
use crate::config::Runtime;
use crate::model::{Env, Project};
use crate::render::{self, Templates};
use crate::verify::{self, ModelRun, report};

/// What promote works from.
struct Promotion {
    project: Project,
    env: Env,
    templates: Templates,
    model: String,
    source: String,
}

impl Promotion {
    /// The environment with the canary's traffic set to `traffic`.
    fn env_at(&self, traffic: u32) -> Env {
        let mut env = self.env.clone();
        for m in &mut env.models {
            if m.name == self.model
                && let Some(c) = &mut m.canary
            {
                c.traffic = traffic;
            }
        }
        env
    }
}

fn emit_event(ctx: &Ctx, v: serde_json::Value) {
    if ctx.json() {
        outln!("{v}");
    }
}

pub(super) fn run(ctx: &Ctx, args: &PromoteArgs) -> Result<i32, Error> {
    let loaded = crate::config::load_file(&ctx.global.config)?;
    let project = crate::model::resolve(&loaded)?;
    let env = render::pick_env(&project, ctx.global.env.as_deref())?.clone();
    let m = t::find_model(&env, &args.model)?.clone();
    let Some(canary) = &m.canary else {
        return Err(Error::msg(
            format!(
                "model `{}` has no canary in environment {}",
                m.name, env.name
            ),
            Some(
                "add `canary: {image: …, traffic: 0}` (or modelUri) to the model, apply, then promote",
            ),
        ));
    };
    if m.runtime == Runtime::Deployment {
        return Err(Error::msg(
            format!("runtime `deployment` of `{}` cannot split traffic", m.name),
            Some("use seldon, seldon-v2 or kserve for canaries"),
        ));
    }
    let steps = steps(&args.steps)?;
    // Fail before touching anything when the config cannot be rewritten at the end.
    crate::config::rewrite::promote_canary(&loaded.source.text, &loaded.root, &m.name, &env.name)
        .map_err(|e| {
        Error::msg(
            format!("cannot promote `{}` in the config: {e}", m.name),
            None,
        )
    })?;
    let templates = ctx.templates(&args.templates)?;
    let p = Promotion {
        project,
        env,
        templates,
        model: m.name.clone(),
        source: loaded.source.text.to_string(),
    };
    let runtime = t::runtime()?;
    let stop = Arc::new(AtomicBool::new(false));
    match &args.gitops {
        Some(out) => runtime.block_on(gitops_mode(ctx, args, &p, out, canary.traffic, stop)),
        None => runtime.block_on(cluster_mode(ctx, args, &p, &steps, canary.traffic, stop)),
    }
}

/// Parses and checks `--steps`: percentages rising strictly, 1 to 100.
fn steps(raw: &[u32]) -> Result<Vec<u32>, Error> {
    let bad = raw.is_empty()
        || raw.iter().any(|s| !(1..=100).contains(s))
        || raw.windows(2).any(|w| w[0] >= w[1]);
    if bad {
        return Err(Error::msg(
            format!(
                "--steps {} is not a rising list of percentages (1 to 100)",
                raw.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            ),
            Some("e.g. --steps 10,25,50,100"),
        ));
    }
    Ok(raw.to_vec())
}

/// Renders the environment with the canary at `traffic` and applies it (with `prune` after a
/// promotion, to remove a Seldon v2 canary Model and its Experiment), then waits.
async fn apply_env(
    ctx: &Ctx,
    api: &Api,
    project: &Project,
    env: &Env,
    templates: &Templates,
    prune: bool,
    timeout: Duration,
) -> Result<(), Error> {
    let bundle = render::render_env(project, env, templates)?;
    let applyset = ApplySet::new(&project.name, &env.name, &env.namespace);
    let opts = plan::Options {
        compare: Compare::DryRun,
        adopt: false,
        concurrency: 16,
    };
    let plan = plan::plan(api, &bundle, &env.name, applyset, opts).await?;
    let mode = Mode::new(ctx.json(), ctx.progress);
    let progress = Progress::new(mode, "apply", plan.changes.len() as u64);
    let opts = apply::Options {
        prune,
        ..apply::Options::default()
    };
    let result = apply::execute(api, &plan, opts, &progress).await;
    progress.finish();
    result?;
    Ok(wait::wait_for_plan(api, &plan, timeout, mode).await?)
}

async fn test_canary(
    ctx: &Ctx,
    args: &PromoteArgs,
    p: &Promotion,
    client: kube::Client,
    stop: Arc<AtomicBool>,
) -> Result<ModelRun, Error> {
    let m = t::find_model(&p.env, &p.model)?;
    let reach = Reach {
        protocol: None,
        url: None,
        client: Some(client),
        port_forward: args.port_forward,
        skip_verify: false,
        canary: true,
    };
    let target = t::build_target(ctx, m, &p.env, reach, &args.load).await?;
    let run = t::test_one(ctx, &target, &args.load, stop).await;
    if !ctx.json() {
        out!("{}", report::text(&run));
    }
    Ok(run)
}

async fn cluster_mode(
    ctx: &Ctx,
    args: &PromoteArgs,
    p: &Promotion,
    steps: &[u32],
    start_traffic: u32,
    stop: Arc<AtomicBool>,
) -> Result<i32, Error> {
    let api = super::cluster::connect(ctx, &p.project, &p.env).await?;
    t::watch_ctrl_c(stop.clone());
    let mut good = start_traffic;
    for (i, &step) in steps.iter().enumerate() {
        errln!("promote {}: canary at {step}% of traffic", p.model);
        let split = p.env_at(step);
        let apply = apply_env(
            ctx,
            &api,
            &p.project,
            &split,
            &p.templates,
            false,
            args.wait_timeout,
        );
        let run = match verify::unless_stopped(&stop, apply).await {
            Some(applied) => {
                applied?;
                let run = test_canary(ctx, args, p, api.client(), stop.clone()).await?;
                emit_event(
                    ctx,
                    serde_json::json!({"event": "step", "traffic": step, "run": run}),
                );
                Some(run)
            }
            None => None,
        };
        let Some(run) = run.filter(|_| !stop.load(Ordering::Relaxed)) else {
            return interrupted(ctx, &api, args, p, good, &steps[i..]).await;
        };
        if !run.passed() {
            apply_env(
                ctx,
                &api,
                &p.project,
                &p.env_at(0),
                &p.templates,
                false,
                args.wait_timeout,
            )
            .await?;
            let why = if run.breached() {
                "breached its SLO"
            } else {
                "failed"
            };
            errln!(
                "promote {}: the canary {why} at {step}%; rolled back to 0% (mldeploy.yaml is unchanged: set canary.traffic to 0 there, or fix the canary and promote again)",
                p.model
            );
            emit_event(
                ctx,
                serde_json::json!({"event": "done", "ok": false, "rolledBack": true, "failedAt": step}),
            );
            return Ok(exit::SLO_BREACHED);
        }
        good = step;
    }
    if good < 100 {
        errln!(
            "promote {}: the canary serves {good}% and met its SLO; promote with a last step of 100 to make it the model",
            p.model
        );
        emit_event(
            ctx,
            serde_json::json!({"event": "done", "ok": true, "traffic": good, "promoted": false}),
        );
        return Ok(exit::OK);
    }
    let promoted = rewrite_config(ctx, p)?;
    let env = render::pick_env(&promoted, Some(&p.env.name))?.clone();
    apply_env(
        ctx,
        &api,
        &promoted,
        &env,
        &p.templates,
        true,
        args.wait_timeout,
    )
    .await?;
    errln!(
        "promote {}: the canary is now the model; {} rewritten and applied",
        p.model,
        ctx.global.config.display()
    );
    emit_event(
        ctx,
        serde_json::json!({"event": "done", "ok": true, "traffic": 100, "promoted": true}),
    );
    Ok(exit::OK)
}

/// After Ctrl-C: puts the canary back at the last split that passed (`good`), says how to
/// resume with the steps not done, and exits 130.
async fn interrupted(
    ctx: &Ctx,
    api: &Api,
    args: &PromoteArgs,
    p: &Promotion,
    good: u32,
    rest: &[u32],
) -> Result<i32, Error> {
    errln!(
        "interrupted: setting the canary of {} back to the last good split, {good}% (Ctrl-C again stops at once)",
        p.model
    );
    apply_env(
        ctx,
        api,
        &p.project,
        &p.env_at(good),
        &p.templates,
        false,
        args.wait_timeout,
    )
    .await?;
    let rest: Vec<String> = rest.iter().map(u32::to_string).collect();
    errln!(
        "interrupted: the canary of {} is back at the last good split, {good}%; resume with\n  mldeploy promote --env {} --model {} --steps {}",
        p.model,
        p.env.name,
        p.model,
        rest.join(",")
    );
    emit_event(
        ctx,
        serde_json::json!({"event": "done", "ok": false, "interrupted": true, "traffic": good, "resumeSteps": rest}),
    );
    Ok(exit::INTERRUPTED)
}

/// Writes the promoted config over mldeploy.yaml (atomically, never through a link) and returns
/// it resolved.
fn rewrite_config(ctx: &Ctx, p: &Promotion) -> Result<Project, Error> {
    let root = crate::config::yaml::parse(&p.source).map_err(|e| {
        Error::msg(
            format!("the config changed while promoting: {}", e.message),
            None,
        )
    })?;
    let text = crate::config::rewrite::promote_canary(&p.source, &root, &p.model, &p.env.name)
        .map_err(|e| Error::msg(e, None))?;
    write_config(&ctx.global.config, &text, &p.source)?;
    let loaded = crate::config::load_file(&ctx.global.config)?;
    Ok(crate::model::resolve(&loaded)?)
}

fn write_config(path: &Path, text: &str, was: &str) -> Result<(), Error> {
    // Someone may have edited the file since it was read: never overwrite their change.
    let now = crate::fsx::read_input(path, crate::config::MAX_CONFIG_BYTES)?;
    if now != was.as_bytes() {
        return Err(Error::msg(
            format!(
                "{} changed while promoting; it was not rewritten",
                path.display()
            ),
            Some("promote again, or make the canary the model by hand"),
        ));
    }
    t::write_report(path, text)
}

async fn gitops_mode(
    ctx: &Ctx,
    args: &PromoteArgs,
    p: &Promotion,
    out: &Path,
    traffic: u32,
    stop: Arc<AtomicBool>,
) -> Result<i32, Error> {
    errln!(
        "promote {} (GitOps): testing the canary at its current {traffic}%; nothing is applied",
        p.model
    );
    let api = super::cluster::connect(ctx, &p.project, &p.env).await?;
    t::watch_ctrl_c(stop.clone());
    let run = test_canary(ctx, args, p, api.client(), stop.clone()).await?;
    if stop.load(Ordering::Relaxed) {
        errln!("interrupted: nothing was written");
        return Ok(exit::INTERRUPTED);
    }
    let root = crate::config::yaml::parse(&p.source).map_err(|e| Error::msg(e.message, None))?;
    let (text, code) = if run.passed() {
        let text = crate::config::rewrite::promote_canary(&p.source, &root, &p.model, &p.env.name)
            .map_err(|e| Error::msg(e, None))?;
        (text, exit::OK)
    } else {
        let text =
            crate::config::rewrite::set_canary_traffic(&p.source, &root, &p.model, &p.env.name, 0)
                .map_err(|e| Error::msg(e, None))?;
        (text, exit::SLO_BREACHED)
    };
    write_config(&ctx.global.config, &text, &p.source)?;
    let loaded = crate::config::load_file(&ctx.global.config)?;
    let project = crate::model::resolve(&loaded)?;
    let tree = crate::gitops::generate(&project, &p.templates)?;
    let current = crate::gitops::read_current(out, &tree)?;
    let plan = crate::gitops::plan(&tree, &current, false);
    if !plan.conflicts.is_empty() {
        return Err(Error::msg(
            format!(
                "{} was rewritten, but {} has files changed by hand; the tree was not written",
                ctx.global.config.display(),
                out.display()
            ),
            Some("run `mldeploy gitops` to see them"),
        ));
    }
    crate::gitops::write(out, &plan)?;
    let what = if code == exit::OK {
        "the canary is now the model"
    } else {
        "the canary failed; its traffic is set to 0"
    };
    errln!(
        "promote {}: {what}; rewrote {} and {}: commit both",
        p.model,
        ctx.global.config.display(),
        out.display()
    );
    emit_event(
        ctx,
        serde_json::json!({"event": "done", "ok": code == exit::OK, "promoted": code == exit::OK, "tree": PathBuf::from(out)}),
    );
    Ok(code)
}
