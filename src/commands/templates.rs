//! `mldeploy templates list|eject`: see which templates are built in or overridden, and copy
//! built-ins out to edit them.

use super::{Ctx, Error, exit};
use crate::cli::TemplatesAction;
use crate::render::{Origin, Templates, templates::user_dir};

pub(super) fn run(ctx: &Ctx, action: &TemplatesAction) -> Result<i32, Error> {
    let config_dir = ctx
        .global
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty());
    let dir = user_dir(&ctx.global.config, None);
    match action {
        TemplatesAction::List => {
            let templates = Templates::load(dir.as_deref())?;
            if ctx.json() {
                let list: Vec<serde_json::Value> = templates
                    .iter()
                    .map(|t| {
                        let (origin, path) = origin(&t.origin);
                        serde_json::json!({"name": t.name, "origin": origin, "path": path})
                    })
                    .collect();
                super::print_json(&list);
            } else {
                for t in templates.iter() {
                    let (origin, path) = origin(&t.origin);
                    match path {
                        Some(p) => outln!("{:<48} {origin:<10} {p}", t.name),
                        None => outln!("{:<48} {origin}", t.name),
                    }
                }
            }
        }
        TemplatesAction::Eject { name, all } => {
            let target = config_dir.map_or_else(
                || std::path::PathBuf::from("templates"),
                |d| d.join("templates"),
            );
            let names: Vec<&str> = match (name, all) {
                (_, true) => Templates::builtin_names().collect(),
                (Some(n), false) => {
                    if Templates::builtin_text(n).is_none() {
                        let names: Vec<&str> = Templates::builtin_names().collect();
                        let hint = crate::suggest::closest(n, names.iter().copied())
                            .map(|c| {
                                format!("did you mean `{c}`? `mldeploy templates list` shows all")
                            })
                            .unwrap_or_else(|| "`mldeploy templates list` shows all".into());
                        return Err(Error::msg(
                            format!("no built-in template `{n}`"),
                            Some(&hint),
                        ));
                    }
                    vec![n.as_str()]
                }
                (None, false) => {
                    return Err(Error::msg(
                        "name a template to eject, or pass --all",
                        Some("`mldeploy templates list` shows them"),
                    ));
                }
            };
            // Checked first, so that a link or a FIFO stops the run before anything is written.
            let mut todo = Vec::new();
            for n in names {
                if crate::fsx::existing_file(&target, n)?.is_some() {
                    errln!("kept {} (already there)", target.join(n).display());
                } else {
                    todo.push(n);
                }
            }
            for n in &todo {
                let text = Templates::builtin_text(n).unwrap_or_default();
                crate::fsx::write(
                    &target,
                    n,
                    text.as_bytes(),
                    crate::fsx::WriteOptions::default(),
                )?;
                errln!("ejected {}", target.join(n).display());
            }
            let written = todo.len();
            errln!("{written} template(s) written; files there now override the built-ins");
        }
    }
    Ok(exit::OK)
}

fn origin(o: &Origin) -> (&'static str, Option<String>) {
    match o {
        Origin::Builtin => ("built-in", None),
        Origin::Override(p) => ("overridden", Some(p.display().to_string())),
        Origin::Added(p) => ("added", Some(p.display().to_string())),
    }
}
