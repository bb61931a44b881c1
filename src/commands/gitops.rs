//! `mldeploy gitops`: write the GitOps tree for every environment, or (`--check`) tell CI whether
//! the committed tree is stale.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Ctx, Error, emit, exit, print_json};
use crate::cli::GitopsArgs;
use crate::gitops::{self, Plan};

pub(super) fn run(ctx: &Ctx, args: &GitopsArgs) -> Result<i32, Error> {
    let project = ctx.project()?;
    if ctx.global.env.is_some() {
        errln!("note: gitops writes every environment; --env (MLDEPLOY_ENV) is ignored");
    }
    let templates = ctx.templates(&args.templates)?;
    let tree = gitops::generate(&project, &templates)?;
    let repo_base = project.gitops.as_ref().map(gitops::repo_base);
    // `gitops.path` and the default are folders of the repository the config lives in: they
    // are resolved against the config's folder, wherever mldeploy runs from (`--out` is the
    // user's own path, relative to the working directory).
    let config_dir = ctx
        .global
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty());
    let beside_config = |p: &str| config_dir.map_or_else(|| PathBuf::from(p), |d: &Path| d.join(p));
    let out = match (&args.out, &repo_base) {
        (Some(out), _) => out.clone(),
        (None, Some(base)) if !base.is_empty() => beside_config(base),
        (None, Some(_)) => beside_config("."),
        (None, None) => beside_config("deploy"),
    };
    match &repo_base {
        None => errln!(
            "note: the config has no `gitops:` block, so only clusters/ and apps/ are written \
             (add one for Argo CD or Flux objects)"
        ),
        Some(base) if !base.is_empty() && !out.ends_with(base) => errln!(
            "note: Argo CD/Flux read `{base}/apps/<env>` of the repository (gitops.path); \
             {} should be that folder",
            out.display()
        ),
        Some(_) => {}
    }

    let current = gitops::read_current(&out, &tree)?;
    let plan = gitops::plan(&tree, &current, args.force);
    let (add, remove, change) = plan.paths();
    let shown = out.display().to_string();

    if args.check {
        let up_to_date = plan.up_to_date();
        let diff = plan.diff(&current, &tree);
        if ctx.json() {
            let doc = serde_json::json!({
                "upToDate": up_to_date,
                "out": shown,
                "add": add,
                "remove": remove,
                "change": change,
                "conflicts": plan.conflicts,
                "diff": diff,
            });
            print_json(&doc);
        } else {
            emit(&diff);
            if up_to_date {
                errln!(
                    "gitops: {shown} is up to date ({} files)",
                    tree.files.len() + 1
                );
            } else {
                err!("gitops: {shown} is stale: {}", listing(&plan, false));
                errln!(
                    "  help: run `mldeploy gitops --out {shown}` and commit the result{}",
                    if plan.conflicts.is_empty() {
                        ""
                    } else {
                        " (files marked ! need --force, or your edits moved into mldeploy.yaml)"
                    }
                );
            }
        }
        return Ok(if up_to_date { exit::OK } else { exit::CHANGES });
    }

    if !plan.conflicts.is_empty() {
        let message = format!(
            "{} generated file{} changed by hand or not written by mldeploy; nothing was written",
            plan.conflicts.len(),
            if plan.conflicts.len() == 1 {
                " was"
            } else {
                "s were"
            }
        );
        let hint = "move the edits into mldeploy.yaml (or a template override), or rerun with \
                    --force to overwrite them";
        if ctx.json() {
            let doc = serde_json::json!({
                "ok": false,
                "out": shown,
                "add": add,
                "remove": remove,
                "change": change,
                "conflicts": plan.conflicts,
                "errors": [{"message": message, "hint": hint}],
            });
            print_json(&doc);
        }
        errln!("error: {message}");
        for c in &plan.conflicts {
            errln!("  ! {} ({})", c.path, c.reason.describe());
        }
        errln!("  help: {hint}");
        return Ok(exit::ERROR);
    }

    gitops::write(&out, &plan)?;
    if ctx.json() {
        let doc = serde_json::json!({
            "ok": true,
            "out": shown,
            "add": add,
            "remove": remove,
            "change": change,
            "conflicts": [],
            "unchanged": plan.unchanged,
        });
        print_json(&doc);
    } else if plan.up_to_date() {
        errln!(
            "gitops: {shown} is up to date ({} files); nothing written",
            tree.files.len() + 1
        );
    } else {
        err!("gitops: wrote {shown}: {}", listing(&plan, true));
    }
    Ok(exit::OK)
}

/// A count line, then a line per file: `+` add, `~` change, `-` remove, `!` conflict.
fn listing(plan: &Plan, done: bool) -> String {
    let (add, remove, change) = plan.paths();
    let [a, c, r] = if done {
        ["added", "changed", "removed"]
    } else {
        ["to add", "to change", "to remove"]
    };
    let mut out = format!(
        "{} {a}, {} {c}, {} {r}, {} conflicting, {} unchanged\n",
        add.len(),
        change.len(),
        remove.len(),
        plan.conflicts.len(),
        plan.unchanged
    );
    for (mark, list) in [("+", &add), ("~", &change), ("-", &remove)] {
        for p in list {
            let _ = writeln!(out, "  {mark} {p}");
        }
    }
    for c in &plan.conflicts {
        let _ = writeln!(out, "  ! {} ({})", c.path, c.reason.describe());
    }
    out
}

impl From<gitops::GitopsError> for Error {
    fn from(e: gitops::GitopsError) -> Self {
        use gitops::GitopsError as G;
        match e {
            G::Render(r) => r.into(),
            G::Manifest { ref path, .. } => {
                let hint = format!(
                    "restore it (`git checkout -- {}`) or delete it; without it, existing files \
                     count as not written by mldeploy",
                    path.display()
                );
                Error::msg(e.to_string(), Some(&hint))
            }
            G::UnsafePath { .. } => Error::msg(
                e.to_string(),
                Some("a template renders a kind or metadata.name with `/` or `..`; fix it"),
            ),
            G::File(f) => f.into(),
            G::Io { .. } => Error::msg(e.to_string(), None),
        }
    }
}
