//! Render: the resolved project + templates → a [`Bundle`] of Terraform files and Kubernetes
//! objects. Pure and deterministic: the same config renders the same bytes.

pub mod context;
pub mod llm;
pub mod quote;
pub mod templates;

use std::path::PathBuf;

use crate::bundle::{Bundle, Manifest, TfFile};
use crate::model::Project;
pub use templates::{Origin, Template, Templates};

/// Below this many models, rendering on one thread is faster than starting more.
const PARALLEL_FROM: usize = 64;

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
    /// Writing a file would break a rule of [`crate::fsx`] (a link, a FIFO, a file mldeploy did
    /// not write), or the system refused.
    #[error(transparent)]
    File(#[from] crate::fsx::FileError),
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

/// The template folders [`render_env`] renders `env` from: `env`, `model`, the runtimes of its
/// models and its cluster's Terraform (`terraform/common` and its cloud's).
pub fn folders(project: &Project, env: &crate::model::Env) -> Vec<String> {
    let mut folders = vec!["env".to_string(), "model".to_string()];
    for model in &env.models {
        let folder = format!("runtimes/{}", model.runtime.name());
        if !folders.contains(&folder) {
            folders.push(folder);
        }
    }
    folders.push("terraform/common".into());
    if let Some(cluster) = project.clusters.get(&env.cluster) {
        folders.push(format!("terraform/{}", cluster.cloud.name()));
    }
    folders
}

/// Renders one environment: its cluster's Terraform and its Kubernetes objects.
pub fn render_env(
    project: &Project,
    env: &crate::model::Env,
    templates: &Templates,
) -> Result<Bundle, RenderError> {
    let ctx = context::env_context(project, env);
    let mut manifests: Vec<Manifest> = Vec::new();
    let context_error = |e: tera::Error| RenderError::Template {
        name: "(context)".into(),
        location: None,
        message: e.to_string(),
    };
    // Everything but the models, converted once. Model templates see everything but the list
    // of all models (cloning that list into every model's context would make rendering
    // quadratic in the number of models); environment templates see it all.
    let mut whole = tera::Context::from_serialize(&ctx).map_err(context_error)?;
    let mut shared = tera::Context::new();
    for key in [
        "project",
        "env",
        "cluster",
        "labels",
        "monitoring",
        "seldonV2Servers",
    ] {
        if let Some(value) = whole.get(key) {
            // Values share their contents: this copies a pointer, not the tree.
            shared.insert_value(key, value.clone());
        }
    }
    // Each model becomes a template value once, for its own templates and the environment's.
    let to_values = |models: &[context::ModelCtx]| -> Result<Vec<tera::Value>, RenderError> {
        models
            .iter()
            .map(|m| tera::Value::try_from_serializable(m).map_err(context_error))
            .collect()
    };

    let model_templates: Vec<(&str, Vec<&Template>)> = crate::config::Runtime::ALL
        .iter()
        .map(|r| {
            let mut list = templates.in_folder("model");
            list.extend(templates.in_folder(&format!("runtimes/{}", r.name())));
            (r.name(), list)
        })
        .collect();
    // Each model's value is dropped once its templates are rendered (peak memory).
    let render_models = |models: &[context::ModelCtx],
                         values: Vec<tera::Value>|
     -> Result<Vec<Manifest>, RenderError> {
        let mut out = Vec::new();
        for (model, value) in models.iter().zip(values) {
            let mut mctx = shared.clone();
            mctx.insert_value("model", value);
            let list = model_templates
                .iter()
                .find(|(runtime, _)| *runtime == model.runtime)
                .map(|(_, list)| list.as_slice())
                .unwrap_or_default();
            for t in list {
                let text = templates.render(t, &mctx)?;
                out.extend(crate::bundle::parse_objects(&t.name, &text)?);
            }
        }
        Ok(out)
    };
    // Environment templates see the whole context (the dashboard has a row per model).
    let render_env_templates = |whole: &tera::Context| -> Result<Vec<Manifest>, RenderError> {
        let mut out = Vec::new();
        for t in templates.in_folder("env") {
            let text = templates.render(t, whole)?;
            out.extend(crate::bundle::parse_objects(&t.name, &text)?);
        }
        Ok(out)
    };
    // Models render independently; large environments use every core, and the environment's
    // templates render on this thread meanwhile, once every chunk has sent its models' values.
    // Results are joined in order (environment, then models in model order; an environment
    // error first) and sorted afterwards, so the output does not depend on scheduling.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads > 1 && ctx.models.len() >= PARALLEL_FROM {
        let chunk = ctx.models.len().div_ceil(threads);
        let chunks: Vec<&[context::ModelCtx]> = ctx.models.chunks(chunk).collect();
        let (sender, values) = std::sync::mpsc::channel::<(usize, Option<Vec<tera::Value>>)>();
        let (env_part, parts) = std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .iter()
                .enumerate()
                .map(|(i, models)| {
                    let sender = sender.clone();
                    let (to_values, render_models) = (&to_values, &render_models);
                    scope.spawn(move || {
                        let converted = to_values(models);
                        let _ = sender.send((i, converted.as_ref().ok().cloned()));
                        drop(sender);
                        render_models(models, converted?)
                    })
                })
                .collect();
            drop(sender);
            let mut received: Vec<Option<Vec<tera::Value>>> = vec![None; chunks.len()];
            for (i, part) in values.iter().take(chunks.len()) {
                received[i] = part;
            }
            // A chunk that could not convert its models reports that error itself.
            let env_part = match received.into_iter().collect::<Option<Vec<_>>>() {
                Some(parts) => {
                    let all: Vec<tera::Value> = parts.into_iter().flatten().collect();
                    whole.insert_value("models", tera::Value::from(all));
                    let env_part = render_env_templates(&whole);
                    // The models' values go as soon as the chunks are done with them too.
                    drop(whole);
                    env_part
                }
                None => Ok(Vec::new()),
            };
            let parts: Vec<Result<Vec<Manifest>, RenderError>> = handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect();
            (env_part, parts)
        });
        manifests.extend(env_part?);
        for part in parts {
            manifests.extend(part?);
        }
    } else {
        let values = to_values(&ctx.models)?;
        whole.insert_value("models", tera::Value::from(values.clone()));
        manifests.extend(render_env_templates(&whole)?);
        drop(whole);
        manifests.extend(render_models(&ctx.models, values)?);
    }

    let terraform = render_cluster(project, &project.clusters[&env.cluster], templates)?;
    Bundle::new(manifests, terraform)
}

/// Renders one cluster's Terraform: the common templates and those of its cloud.
pub fn render_cluster(
    project: &Project,
    cluster: &crate::model::ClusterModel,
    templates: &Templates,
) -> Result<Vec<TfFile>, RenderError> {
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
    Ok(terraform)
}
