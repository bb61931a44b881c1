//! `mldeploy validate`: check everything, say what was checked, or list every problem.

use super::{Ctx, Error, exit};
use crate::model::{Project, Source};

/// What `validate` checks, in the order a user would read it.
const CHECKED: &[&str] = &[
    "YAML syntax, config version and fields (unknown fields are errors)",
    "names (DNS-1123), unique model names, label keys and values",
    "image vs server + modelUri, runtimes, canaries, replicas, autoscaling, quantities",
    "GPU types against the catalog and each cluster's cloud",
    "a node pool for every GPU model in its environment's cluster",
    "workload identity: the cloud has one, buckets of the environment's cloud, names it accepts",
    "language models: the runtime serves vLLM and fetches the model URI, tensor parallelism, \
     whether the weights fit the GPUs",
    "security (warnings): static storage keys on clouds, mutable image tags in production, \
     an API server open to the internet, \
     an AKS identity without its client id, a bucket of another cloud, Kyverno for signatures",
];

pub(super) fn run(ctx: &Ctx) -> Result<i32, Error> {
    let project = ctx.project()?;
    if let Some(env) = &ctx.global.env {
        crate::render::pick_env(&project, Some(env))?;
    }
    let file = ctx.global.config.display().to_string();
    if ctx.json() {
        let doc = serde_json::json!({
            "ok": true,
            "file": file,
            "checked": CHECKED,
            "warnings": project.warnings,
            "project": project,
        });
        super::print_json(&doc);
        return Ok(exit::OK);
    }
    out!("{}", summary(&file, &project));
    for w in &project.warnings {
        let at = w
            .loc
            .map(|l| format!("{file}:{}:{}: ", l.line, l.column))
            .unwrap_or_default();
        errln!("warning: {at}{}: {}", w.path, w.message);
        if let Some(hint) = &w.hint {
            errln!("  help: {hint}");
        }
    }
    Ok(exit::OK)
}

fn summary(file: &str, p: &Project) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let models = p.environments.values().next().map_or(0, |e| e.models.len());
    let _ = writeln!(
        out,
        "✓ {file} is valid: project {}, {} model{}, {} cluster{}, {} environment{}",
        p.name,
        models,
        plural(models),
        p.clusters.len(),
        plural(p.clusters.len()),
        p.environments.len(),
        plural(p.environments.len()),
    );
    out.push_str("checked:\n");
    for c in CHECKED {
        let _ = writeln!(out, "  - {c}");
    }
    for env in p.environments.values() {
        let cloud = p.clusters.get(&env.cluster).map_or("?", |c| c.cloud.name());
        let _ = writeln!(
            out,
            "env {} → cluster {} ({cloud}), namespace {}",
            env.name, env.cluster, env.namespace
        );
        for m in &env.models {
            let what = match &m.source {
                Source::Image { image, .. } => image.clone(),
                Source::Prepackaged {
                    server, model_uri, ..
                } => {
                    format!("{} {model_uri}", server.name())
                }
            };
            let scale = match &m.autoscale {
                Some(a) => format!(
                    "{}–{} replicas{}",
                    a.min,
                    a.max,
                    match a.metric.as_ref().map(|x| x.preset) {
                        Some(Some(p)) => format!(" on {} (KEDA)", p.name()),
                        Some(None) => " on a query (KEDA)".to_string(),
                        None => String::new(),
                    }
                ),
                None => format!("{} replica{}", m.replicas, plural(m.replicas as usize)),
            };
            let gpu = m
                .gpu
                .as_ref()
                .map(|g| format!(", {}×{}", g.count, g.kind))
                .unwrap_or_default();
            let canary = m
                .canary
                .as_ref()
                .map(|c| format!(", canary {}%", c.traffic))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<24} {:<10} {scale}{gpu}{canary}  {what}",
                m.name,
                m.runtime.name()
            );
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
