//! `mldeploy render`: an environment's Terraform and manifests, to a folder or stdout.

use super::{Ctx, Error, exit, load_project};
use crate::cli::RenderArgs;
use crate::render::{self, Templates, templates::user_dir};

pub(super) fn run(ctx: &Ctx, args: &RenderArgs) -> Result<i32, Error> {
    let project = load_project(ctx)?;
    let env = render::pick_env(&project, ctx.global.env.as_deref())?;
    let dir = user_dir(&ctx.global.config, args.templates.as_deref());
    let templates = Templates::load(dir.as_deref())?;
    let bundle = render::render_env(&project, env, &templates)?;
    match &args.out {
        Some(out) => {
            let files = bundle.write_to(out)?;
            if ctx.json() {
                let doc = serde_json::json!({
                    "ok": true,
                    "env": env.name,
                    "out": out.display().to_string(),
                    "files": files,
                });
                outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                errln!(
                    "rendered env {} ({} objects, {} Terraform files) into {}",
                    env.name,
                    bundle.manifests.len(),
                    bundle.terraform.len(),
                    out.display()
                );
            }
        }
        None if ctx.json() => {
            let objects: Vec<serde_json::Value> =
                bundle.manifests.iter().map(|m| m.object()).collect();
            outln!(
                "{}",
                serde_json::to_string_pretty(&objects).unwrap_or_default()
            );
        }
        None => out!("{}", bundle.to_stream()),
    }
    Ok(exit::OK)
}
