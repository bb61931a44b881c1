//! The template set: built-ins compiled into the binary, with a project folder layered over them
//! so that a file of the same name overrides the built-in (as zola does).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{RenderError, quote};

include!(concat!(env!("OUT_DIR"), "/builtin_templates.rs"));

/// Where a template comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into mldeploy.
    Builtin,
    /// A user file that overrides the built-in of the same name.
    Override(PathBuf),
    /// A user file with no built-in counterpart (an addition).
    Added(PathBuf),
}

/// One template.
#[derive(Debug, Clone)]
pub struct Template {
    /// Name relative to the template root (`runtimes/kserve/inferenceservice.yaml`).
    pub name: String,
    /// Its text.
    pub text: String,
    /// Where it came from.
    pub origin: Origin,
}

/// The template set, compiled.
pub struct Templates {
    list: BTreeMap<String, Template>,
    yaml: tera::Tera,
    hcl: tera::Tera,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("list", &self.list.keys())
            .finish()
    }
}

/// The folder of user templates for a config: `--templates DIR`, else `templates/` beside it.
pub fn user_dir(config: &Path, flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = flag {
        return Some(dir.to_path_buf());
    }
    let dir = config.parent().unwrap_or(Path::new(".")).join("templates");
    dir.is_dir().then_some(dir)
}

/// Largest user template read.
const MAX_TEMPLATE_BYTES: usize = 8 * 1024 * 1024;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<(PathBuf, bool)> = std::fs::read_dir(dir)?
        .map(|e| e.and_then(|e| Ok((e.path(), e.file_type()?.is_dir()))))
        .collect::<Result<_, _>>()?;
    entries.sort();
    // A linked folder is not entered (a link cycle would never end); linked files are read.
    for (path, is_dir) in entries {
        if is_dir {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "tf")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

impl Templates {
    /// The built-ins only.
    pub fn builtin() -> Result<Self, RenderError> {
        Self::load(None)
    }

    /// Built-ins with `dir` (if any) layered over them.
    pub fn load(dir: Option<&Path>) -> Result<Self, RenderError> {
        Self::load_filtered(dir, |_| true)
    }

    /// [`Templates::load`], compiling of the built-ins only those named in `wanted` folders
    /// (see [`Templates::in_folder`]) and every partial, which any template may include.
    /// Every user template is compiled, so its errors show whatever is rendered; the built-ins
    /// left out are ones the caller will not render. Compiling all of them was two thirds of a
    /// one-model render.
    pub fn load_for(dir: Option<&Path>, wanted: &[String]) -> Result<Self, RenderError> {
        Self::load_filtered(dir, |name| {
            let (folder, file) = name.rsplit_once('/').unwrap_or(("", name));
            file.starts_with('_') || wanted.iter().any(|w| w == folder)
        })
    }

    fn load_filtered(
        dir: Option<&Path>,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Self, RenderError> {
        let mut list: BTreeMap<String, Template> = BUILTIN
            .iter()
            .map(|(name, text)| {
                (
                    name.to_string(),
                    Template {
                        name: name.to_string(),
                        text: text.to_string(),
                        origin: Origin::Builtin,
                    },
                )
            })
            .collect();
        if let Some(dir) = dir {
            if !dir.is_dir() {
                return Err(RenderError::Io {
                    path: dir.to_path_buf(),
                    message: "the template folder does not exist".into(),
                });
            }
            let mut files = Vec::new();
            walk(dir, &mut files).map_err(|e| RenderError::Io {
                path: dir.to_path_buf(),
                message: e.to_string(),
            })?;
            for path in files {
                let name = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                // Bounded, and a folder or FIFO named `*.yaml` is an error rather than a hang.
                let bytes = crate::fsx::read_input(&path, MAX_TEMPLATE_BYTES)?;
                let text = String::from_utf8(bytes).map_err(|_| RenderError::Io {
                    path: path.clone(),
                    message: "not UTF-8 text".into(),
                })?;
                let origin = if list.contains_key(&name) {
                    Origin::Override(path)
                } else {
                    Origin::Added(path)
                };
                list.insert(name.clone(), Template { name, text, origin });
            }
        }
        list.retain(|name, t| t.origin != Origin::Builtin || wanted(name));
        let mut yaml = tera::Tera::new();
        yaml.set_escape_fn(quote::yaml);
        yaml.autoescape_on([".yaml"]);
        let mut hcl = tera::Tera::new();
        hcl.set_escape_fn(quote::hcl);
        hcl.autoescape_on([".tf"]);
        // Each engine gets its templates in one batch, so `{% include %}` can name any of them
        // whatever the order.
        for (engine, hcl_files) in [(&mut yaml, false), (&mut hcl, true)] {
            let batch = list
                .values()
                .filter(|t| t.name.ends_with(".tf") == hcl_files);
            engine
                .add_raw_templates(batch.clone().map(|t| (t.name.as_str(), t.text.as_str())))
                .map_err(|e| {
                    let culprit = match e.kind() {
                        tera::ErrorKind::SyntaxError(r) | tera::ErrorKind::RenderingError(r) => {
                            batch.clone().find(|t| t.name == r.filename())
                        }
                        _ => None,
                    };
                    match culprit.or_else(|| batch.clone().next()) {
                        Some(t) => RenderError::template(t, &e),
                        None => RenderError::Io {
                            path: PathBuf::from("templates"),
                            message: e.to_string(),
                        },
                    }
                })?;
        }
        Ok(Templates { list, yaml, hcl })
    }

    /// Every template, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.list.values()
    }

    /// Templates directly in `folder` (`runtimes/kserve`), sorted by name. Partials (names
    /// starting with `_`) are left out: they are only `{% include %}`d by other templates.
    pub fn in_folder(&self, folder: &str) -> Vec<&Template> {
        self.list
            .values()
            .filter(|t| {
                t.name
                    .strip_prefix(folder)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .is_some_and(|rest| !rest.contains('/') && !rest.starts_with('_'))
            })
            .collect()
    }

    /// Renders a template with a context.
    pub fn render(&self, t: &Template, ctx: &tera::Context) -> Result<String, RenderError> {
        let engine = if t.name.ends_with(".tf") {
            &self.hcl
        } else {
            &self.yaml
        };
        engine
            .render(&t.name, ctx)
            .map_err(|e| RenderError::template(t, &e))
    }

    /// The built-in text of a template.
    pub fn builtin_text(name: &str) -> Option<&'static str> {
        BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// Names of all built-ins.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_load_compiles_the_wanted_folders_and_every_partial() {
        let wanted = ["env".to_string(), "terraform/gcp".to_string()];
        let some = Templates::load_for(None, &wanted).expect("compiles");
        let names: Vec<&str> = some.iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"env/dashboard.yaml"), "{names:?}");
        assert!(names.contains(&"terraform/gcp/main.tf"), "{names:?}");
        // Included by the wanted Terraform files.
        assert!(names.contains(&"terraform/common/_backend.tf"), "{names:?}");
        assert!(!names.contains(&"terraform/aws/main.tf"), "{names:?}");
        assert!(
            !names.iter().any(|n| n.starts_with("runtimes/")),
            "{names:?}"
        );
        let all = Templates::builtin().expect("compiles");
        assert_eq!(
            some.in_folder("terraform/gcp").len(),
            all.in_folder("terraform/gcp").len()
        );
        // User templates are all compiled, wanted or not: a broken one is an error.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("runtimes/kserve")).expect("mkdir");
        std::fs::write(
            dir.path().join("runtimes/kserve/inferenceservice.yaml"),
            "{% if %}",
        )
        .expect("write");
        assert!(Templates::load_for(Some(dir.path()), &wanted).is_err());
    }
}
