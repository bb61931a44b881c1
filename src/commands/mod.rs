//! One module per command (as helm's `pkg/action`): each takes parsed arguments and the shared
//! context, does its work through the pipeline stages, and returns an exit code or an error.

mod gpus;
mod init;
mod render;
mod schema;
mod templates;
mod validate;

use std::io::IsTerminal;

use crate::cli::{Cli, Command, Global, Output};
use crate::diag::Report;

/// Exit codes are interface: 0 ok, 1 error, 2 changes found (`diff`, `gitops --check`).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Any error.
    pub const ERROR: i32 = 1;
    /// `diff` / `gitops --check` found changes.
    pub const CHANGES: i32 = 2;
}

/// What every command gets.
pub struct Ctx {
    /// Global options.
    pub global: Global,
    /// Whether stderr/stdout may use colour.
    pub color: bool,
}

impl Ctx {
    fn new(global: Global) -> Self {
        let color = !global.no_color
            && std::env::var_os("NO_COLOR").is_none()
            && std::env::var_os("CI").is_none()
            && global.output == Output::Text
            && std::io::stderr().is_terminal();
        Ctx { global, color }
    }

    /// Whether JSON was asked for.
    pub fn json(&self) -> bool {
        self.global.output == Output::Json
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config (or another input file) has problems.
    #[error("the config has problems")]
    Report(Report),
    /// The command belongs to a later milestone.
    #[error("`mldeploy {command}` is not implemented yet")]
    NotImplemented {
        /// Command name.
        command: &'static str,
    },
    /// Anything else, with what to do about it.
    #[error("{message}")]
    Message {
        /// What went wrong.
        message: String,
        /// What to do.
        hint: Option<String>,
    },
}

impl Error {
    /// An error with a hint.
    pub fn msg(message: impl Into<String>, hint: Option<&str>) -> Self {
        Error::Message {
            message: message.into(),
            hint: hint.map(str::to_string),
        }
    }
}

impl From<crate::render::RenderError> for Error {
    fn from(e: crate::render::RenderError) -> Self {
        use crate::render::RenderError as R;
        let hint = match &e {
            R::Env { hint, .. } => Some(hint.clone()),
            R::Template {
                location: Some(_), ..
            } => Some("fix the template, or delete it to use the built-in again".into()),
            R::Template { .. } | R::InvalidYaml { .. } | R::NotAnObject { .. } => {
                Some("a built-in template failed: please report this".into())
            }
            R::Duplicate { .. } => Some("rename or remove one of the templates".into()),
            R::Io { .. } => None,
        };
        Error::Message {
            message: e.to_string(),
            hint,
        }
    }
}

impl From<Report> for Error {
    fn from(r: Report) -> Self {
        Error::Report(r)
    }
}

/// Runs a parsed command line and returns the exit code.
pub fn run(cli: Cli) -> i32 {
    let ctx = Ctx::new(cli.global);
    let result = match &cli.command {
        Command::Init(args) => init::run(&ctx, args),
        Command::Validate => validate::run(&ctx),
        Command::Gpus => gpus::run(&ctx),
        Command::Schema => schema::run(&ctx),
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "mldeploy", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Render(args) => render::run(&ctx, args),
        Command::Diff => Err(Error::NotImplemented { command: "diff" }),
        Command::Apply(_) => Err(Error::NotImplemented { command: "apply" }),
        Command::Status => Err(Error::NotImplemented { command: "status" }),
        Command::Delete(_) => Err(Error::NotImplemented { command: "delete" }),
        Command::Gitops(_) => Err(Error::NotImplemented { command: "gitops" }),
        Command::Infra(_) => Err(Error::NotImplemented { command: "infra" }),
        Command::Templates(args) => templates::run(&ctx, &args.action),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&ctx, &e);
            exit::ERROR
        }
    }
}

fn report_error(ctx: &Ctx, e: &Error) {
    if ctx.json() {
        let body = match e {
            Error::Report(r) => serde_json::json!({"ok": false, "errors": r.to_json()}),
            Error::Message { message, hint } => {
                serde_json::json!({"ok": false, "errors": [{"message": message, "hint": hint}]})
            }
            other => serde_json::json!({"ok": false, "errors": [{"message": other.to_string()}]}),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    }
    match e {
        Error::Report(r) => eprint!("{}", r.render(ctx.color)),
        Error::NotImplemented { command } => eprintln!(
            "error: `mldeploy {command}` is not implemented yet\n  help: `init`, `validate`, `render`, `templates`, `gpus`, `schema` and `completions` work today"
        ),
        Error::Message { message, hint } => {
            eprintln!("error: {message}");
            if let Some(h) = hint {
                eprintln!("  help: {h}");
            }
        }
    }
}

/// Loads and resolves the config named by `-f`.
pub fn load_project(ctx: &Ctx) -> Result<crate::model::Project, Error> {
    let loaded = crate::config::load_file(&ctx.global.config)?;
    Ok(crate::model::resolve(&loaded)?)
}
