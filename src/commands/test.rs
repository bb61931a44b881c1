//! `test`: smoke- and load-test the models of an environment — through the API server's service
//! proxy, a port-forward (`--port-forward`), or at `--url` — and gate on their SLO. Exit 0 pass,
//! 1 error, 3 SLO breached, 130 interrupted.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Ctx, Error, exit, load_project};
use crate::cli::{LoadArgs, TestArgs};
use crate::config::Protocol;
use crate::model::slo::Slo;
use crate::model::{Env, Model, Project};
use crate::verify::endpoint::{self, Endpoint};
use crate::verify::forward;
use crate::verify::{self, ModelRun, Target, load, protocol, report};

/// Largest request body file read.
const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

pub(super) fn run(ctx: &Ctx, args: &TestArgs) -> Result<i32, Error> {
    let project = load_project(ctx)?;
    let env = crate::render::pick_env(&project, ctx.global.env.as_deref())?.clone();
    let models = select(&env, &args.models)?;
    if args.url.is_some() && models.len() != 1 {
        return Err(Error::msg(
            format!(
                "--url tests one model, but environment {} has {}",
                env.name,
                models.len()
            ),
            Some("name it with --model"),
        ));
    }
    let runtime = runtime()?;
    let stop = Arc::new(AtomicBool::new(false));
    let runs = runtime.block_on(async {
        watch_ctrl_c(stop.clone());
        let client = match &args.url {
            Some(_) => None,
            None => Some(connect(ctx, &project, &env).await?),
        };
        let mut runs = Vec::new();
        for m in &models {
            let target = target(ctx, m, &env, args, client.clone()).await?;
            runs.push(test_one(ctx, &target, &args.load, stop.clone()).await);
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        Ok::<_, Error>(runs)
    })?;
    if let Some(url) = &args.push {
        runtime.block_on(push(url, &project.name, &env.name, &runs))?;
    }
    if let Some(path) = &args.junit {
        write_report(path, &report::junit("mldeploy test", &runs))?;
    }
    print(ctx, &runs);
    if stop.load(Ordering::Relaxed) {
        return Ok(exit::INTERRUPTED);
    }
    Ok(verdict(&runs))
}

/// The exit code of a set of runs: any error 1, else any breach 3, else 0.
pub(super) fn verdict(runs: &[ModelRun]) -> i32 {
    if runs.iter().any(|r| r.error.is_some()) {
        exit::ERROR
    } else if runs.iter().any(ModelRun::breached) {
        exit::SLO_BREACHED
    } else {
        exit::OK
    }
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::msg(format!("cannot start the async runtime: {e}"), None))
}

/// Sets `stop` on Ctrl-C, so the work in hand ends cleanly (what was measured is reported;
/// promote restores the last good split); a second Ctrl-C exits at once.
pub(super) fn watch_ctrl_c(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            errln!("\ninterrupted: stopping the load test (Ctrl-C again exits at once)");
            stop.store(true, Ordering::SeqCst);
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            errln!("interrupted again: exiting at once");
            std::process::exit(exit::INTERRUPTED);
        }
    });
}

fn select(env: &Env, names: &[String]) -> Result<Vec<Model>, Error> {
    if names.is_empty() {
        if env.models.is_empty() {
            return Err(Error::msg(
                format!("environment {} has no models to test", env.name),
                None,
            ));
        }
        return Ok(env.models.clone());
    }
    names.iter().map(|n| find_model(env, n).cloned()).collect()
}

pub(super) fn find_model<'a>(env: &'a Env, name: &str) -> Result<&'a Model, Error> {
    env.models.iter().find(|m| m.name == name).ok_or_else(|| {
        let known: Vec<&str> = env.models.iter().map(|m| m.name.as_str()).collect();
        let hint = match crate::suggest::closest(name, known.iter().copied()) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("models of {}: {}", env.name, known.join(", ")),
        };
        Error::Message {
            message: format!("environment {} has no model `{name}`", env.name),
            hint: Some(hint),
        }
    })
}

/// Connects to the environment's cluster as the cluster commands do.
pub(super) async fn connect(
    ctx: &Ctx,
    project: &Project,
    env: &Env,
) -> Result<kube::Client, Error> {
    Ok(super::cluster::connect(ctx, project, env).await?.client())
}

/// Reads `test.payload` (relative to the config's folder).
fn payload(config: &Path, m: &Model) -> Result<Option<Vec<u8>>, Error> {
    let Some(rel) = &m.test.payload else {
        return Ok(None);
    };
    let path = config.parent().unwrap_or(Path::new(".")).join(rel);
    let bytes = crate::fsx::read_input(&path, MAX_PAYLOAD_BYTES).map_err(|e| {
        Error::msg(
            format!(
                "models.{}.test.payload: cannot read {}: {e}",
                m.name,
                path.display()
            ),
            Some("the path is relative to the config's folder"),
        )
    })?;
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        return Err(Error::msg(
            format!(
                "models.{}.test.payload: {} is not JSON: {e}",
                m.name,
                path.display()
            ),
            Some("the payload is the request body, as JSON"),
        ));
    }
    Ok(Some(bytes))
}

/// The SLO flags as an SLO.
pub(super) fn flag_slo(l: &LoadArgs) -> Slo {
    Slo {
        p50: l.p50,
        p90: l.p90,
        p95: l.p95,
        p99: l.p99,
        error_rate: l.error_rate,
        ttft_p95: l.ttft_p95,
    }
}

/// The load plan of the flags, or `None` for a smoke test only.
pub(super) fn plan(l: &LoadArgs) -> Option<load::Plan> {
    (!l.smoke_only).then_some(load::Plan {
        concurrency: usize::from(l.concurrency),
        rate: l.rate,
        duration: match (l.duration, l.requests) {
            (None, None) => Some(Duration::from_secs(10)),
            (d, _) => d,
        },
        requests: l.requests,
        warmup: l.warmup,
        timeout: l.timeout,
    })
}

/// How to reach a model: the protocol flag, `--url` or a cluster connection, and whether its
/// canary is meant.
pub(super) struct Reach<'a> {
    /// `--protocol`.
    pub protocol: Option<Protocol>,
    /// `--url`.
    pub url: Option<&'a str>,
    /// A connection for the service proxy or the port-forward.
    pub client: Option<kube::Client>,
    /// Through a port-forward rather than the service proxy.
    pub port_forward: bool,
    /// Accept any certificate of an https:// `url`.
    pub skip_verify: bool,
    /// Test the canary.
    pub canary: bool,
}

/// What to test for model `m`.
pub(super) async fn build_target(
    ctx: &Ctx,
    m: &Model,
    env: &Env,
    reach: Reach<'_>,
    l: &LoadArgs,
) -> Result<Target, Error> {
    let (flags, timeout) = (flag_slo(l), l.timeout);
    let protocol = reach
        .protocol
        .or(m.test.protocol)
        .unwrap_or_else(|| protocol::default_for(m));
    let prefix = protocol::prefix_for(m, protocol);
    let svc =
        endpoint::service_for(&env.namespace, m, reach.canary).map_err(|e| Error::msg(e, None))?;
    let endpoint = match (reach.url, reach.client) {
        (Some(url), _) => {
            Endpoint::direct(url, prefix, &svc.model, &svc.headers, reach.skip_verify)
        }
        (None, Some(client)) if reach.port_forward => {
            let target = forward::pick_pod(&client, &svc).await.map_err(|e| {
                Error::msg(
                    e,
                    Some("leave out --port-forward to go through the API server's service proxy"),
                )
            })?;
            let fwd = forward::start(client, &svc.namespace, target)
                .await
                .map_err(|e| Error::msg(e, None))?;
            Endpoint::forwarded(fwd, &svc, prefix)
        }
        (None, Some(client)) => Endpoint::proxy(client, &svc, prefix),
        (None, None) => Err("no endpoint: neither --url nor a cluster connection".into()),
    }
    .map_err(|e| Error::msg(e, None))?;
    Ok(Target {
        name: if reach.canary {
            format!("{}-canary", m.name)
        } else {
            m.name.clone()
        },
        runtime: m.runtime,
        protocol,
        endpoint,
        payload: payload(&ctx.global.config, m)?,
        slo: m.slo.overridden_by(flags),
        timeout,
    })
}

async fn target(
    ctx: &Ctx,
    m: &Model,
    env: &Env,
    args: &TestArgs,
    client: Option<kube::Client>,
) -> Result<Target, Error> {
    let reach = Reach {
        protocol: args.protocol,
        url: args.url.as_deref(),
        client,
        port_forward: args.port_forward,
        skip_verify: args.insecure_skip_tls_verify,
        canary: args.canary,
    };
    build_target(ctx, m, env, reach, &args.load).await
}

/// Runs one model's test with a progress bar on a terminal.
pub(super) async fn test_one(
    ctx: &Ctx,
    target: &Target,
    l: &LoadArgs,
    stop: Arc<AtomicBool>,
) -> ModelRun {
    let plan = plan(l);
    let counters = Arc::new(load::Counters::default());
    let bar = match (&plan, ctx.progress) {
        (Some(p), true) => Some(progress_bar(&target.name, p, counters.clone())),
        _ => None,
    };
    let run = verify::run_model(target, plan, counters, stop).await;
    if let Some((bar, task)) = bar {
        task.abort();
        bar.finish_and_clear();
    }
    run
}

fn progress_bar(
    name: &str,
    plan: &load::Plan,
    counters: Arc<load::Counters>,
) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    let bar = match plan.requests {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new(plan.duration.map_or(0, |d| d.as_secs())),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(name.to_string());
    bar.set_message("warming up");
    let by_requests = plan.requests.is_some();
    let b = bar.clone();
    let task = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut measuring_since = None;
        loop {
            tick.tick().await;
            if !counters.measuring.load(Ordering::Relaxed) {
                continue;
            }
            let since = *measuring_since.get_or_insert_with(tokio::time::Instant::now);
            let ok = counters.ok.load(Ordering::Relaxed);
            let failed = counters.failed.load(Ordering::Relaxed);
            let secs = since.elapsed().as_secs_f64().max(0.001);
            if by_requests {
                b.set_position(ok + failed);
            } else {
                b.set_position(since.elapsed().as_secs());
            }
            b.set_message(format!(
                "{:.0}/s, {failed} failed ({}s)",
                (ok + failed) as f64 / secs,
                start.elapsed().as_secs()
            ));
        }
    });
    (bar, task)
}

pub(super) fn print(ctx: &Ctx, runs: &[ModelRun]) {
    if ctx.json() {
        let code = verdict(runs);
        super::print_json(
            &serde_json::json!({"ok": code == exit::OK, "exitCode": code, "models": runs}),
        );
    } else {
        for r in runs {
            out!("{}", report::text(r));
        }
    }
}

async fn push(url: &str, project: &str, env: &str, runs: &[ModelRun]) -> Result<(), Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for r in runs {
        let endpoint = Endpoint::direct(url, "", &r.model, &[], false).map_err(|e| {
            Error::msg(
                format!("--push: {e}"),
                Some("the Pushgateway's base URL, e.g. http://pushgateway:9091"),
            )
        })?;
        let call = protocol::Call {
            method: http::Method::PUT,
            path: report::push_path(project, env, &r.model),
            body: Some(report::prometheus(r, now).into_bytes()),
            streaming: false,
        };
        endpoint
            .call(&call, Duration::from_secs(10))
            .await
            .map_err(|f| {
                Error::msg(
                    format!("pushing to {url}: {} {}", f.detail, f.body.trim()),
                    Some("check the Pushgateway URL; the test itself ran (see above)"),
                )
            })?;
    }
    Ok(())
}

/// Writes a report file atomically, never through a symlink (see `fsx`).
pub(super) fn write_report(path: &Path, text: &str) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::msg(format!("{} is not a file name", path.display()), None))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Ok(crate::fsx::write(
        dir,
        &name,
        text.as_bytes(),
        crate::fsx::WriteOptions::default(),
    )?)
}
