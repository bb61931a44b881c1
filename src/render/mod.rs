//! Render: the resolved project + templates → a [`Bundle`] of Terraform files and Kubernetes
//! objects. Pure and deterministic: the same config renders the same bytes.

pub mod context;
pub mod quote;
pub mod templates;

use std::path::PathBuf;

use crate::bundle::{Bundle, Manifest, TfFile};
use crate::model::Project;
pub use templates::{Origin, Template, Templates};

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template failed to compile or render.
    #[error("template {name}{}: {message}", location.as_ref().map(|l| format!(" ({l})")).unwrap_or_default())]
    Template {
        /// Template name.
        name: String,
        /// The user's file, for overrides.
        location: Option<String>,
        /// Tera's own report.
        message: String,
    },
    /// A template produced something that is not valid YAML.
    #[error("template {name} rendered invalid YAML: {message}")]
    InvalidYaml {
        /// Template name.
        name: String,
        /// Parser message with the rendered line.
        message: String,
    },
    /// A rendered document is not a Kubernetes object.
    #[error("template {name} rendered a document that is not a Kubernetes object: {message}")]
    NotAnObject {
        /// Template name.
        name: String,
        /// What is missing.
        message: String,
    },
    /// Two templates rendered the same object.
    #[error("{kind} {name} is rendered twice (by {first} and {second})")]
    Duplicate {
        /// Kind.
        kind: String,
        /// Name.
        name: String,
        /// First template.
        first: String,
        /// Second template.
        second: String,
    },
    /// The environment does not exist or cannot be chosen.
    #[error("{message}")]
    Env {
        /// What is wrong.
        message: String,
        /// The environments there are.
        hint: String,
    },
    /// Reading or writing files.
    #[error("{}: {message}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl RenderError {
    fn template(t: &Template, e: &tera::Error) -> Self {
        let location = match &t.origin {
            Origin::Builtin => None,
            Origin::Override(p) | Origin::Added(p) => {
                let line = match e.kind() {
                    tera::ErrorKind::SyntaxError(r) | tera::ErrorKind::RenderingError(r) => {
                        format!(":{}", r.span().start_line)
                    }
                    _ => String::new(),
                };
                Some(format!("{}{line}", p.display()))
            }
        };
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        RenderError::Template {
            name: t.name.clone(),
            location,
            message,
        }
    }
}

/// Picks the environment: the one named, or the only one.
pub fn pick_env<'a>(
    project: &'a Project,
    name: Option<&str>,
) -> Result<&'a crate::model::Env, RenderError> {
    let names = || {
        project
            .environments
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(n) => project.environments.get(n).ok_or_else(|| RenderError::Env {
            message: format!("unknown environment `{n}`"),
            hint: match crate::suggest::closest(n, project.environments.keys().map(String::as_str))
            {
                Some(c) => format!("did you mean `{c}`? environments: {}", names()),
                None => format!("environments: {}", names()),
            },
        }),
        None if project.environments.len() == 1 => Ok(project
            .environments
            .values()
            .next()
            .expect("one environment")),
        None if project.environments.is_empty() => Err(RenderError::Env {
            message: "the config has no environments".into(),
            hint: "add one under `environments:` (a cluster and a namespace)".into(),
        }),
        None => Err(RenderError::Env {
            message: "the config has several environments; choose one with --env".into(),
            hint: format!("environments: {}", names()),
        }),
    }
}

/// Renders one environment: its cluster's Terraform and its Kubernetes objects.
pub fn render_env(
    project: &Project,
    env: &crate::model::Env,
    templates: &Templates,
) -> Result<Bundle, RenderError> {
    let ctx = context::env_context(project, env);
    let mut manifests: Vec<Manifest> = Vec::new();
    let base = tera::Context::from_serialize(&ctx).map_err(|e| RenderError::Template {
        name: "(context)".into(),
        location: None,
        message: e.to_string(),
    })?;

    for t in templates.in_folder("env") {
        let text = templates.render(t, &base)?;
        manifests.extend(crate::bundle::parse_objects(&t.name, &text)?);
    }
    for model in &ctx.models {
        let mut mctx = base.clone();
        mctx.insert("model", model);
        for folder in ["model".to_string(), format!("runtimes/{}", model.runtime)] {
            for t in templates.in_folder(&folder) {
                let text = templates.render(t, &mctx)?;
                manifests.extend(crate::bundle::parse_objects(&t.name, &text)?);
            }
        }
    }

    let cluster = &project.clusters[&env.cluster];
    let cctx = context::cluster_context(project, cluster);
    let cbase = tera::Context::from_serialize(&cctx).map_err(|e| RenderError::Template {
        name: "(context)".into(),
        location: None,
        message: e.to_string(),
    })?;
    let mut terraform = Vec::new();
    for folder in [
        "terraform/common".to_string(),
        format!("terraform/{}", cluster.cloud.name()),
    ] {
        for t in templates.in_folder(&folder) {
            let text = templates.render(t, &cbase)?;
            if text.trim().is_empty() {
                continue;
            }
            let file = t.name.rsplit('/').next().unwrap_or(&t.name).to_string();
            terraform.push(TfFile {
                file,
                template: t.name.clone(),
                text,
            });
        }
    }
    Bundle::new(manifests, terraform)
}
