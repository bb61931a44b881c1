//! One module per command (as helm's `pkg/action`): each takes parsed arguments and the shared
//! context, does its work through the pipeline stages, and returns an exit code or an error.

mod cluster;
mod gitops;
mod gpus;
mod infra;
mod init;
mod man;
mod promote;
mod render;
mod schema;
mod templates;
mod test;
mod validate;

use std::io::IsTerminal;

use crate::cli::{Cli, Command, Global, Output, TemplatesArg};
use crate::diag::Report;
use crate::render::{Templates, templates::user_dir};

/// Exit codes are interface: 0 ok, 1 error, 2 changes found (`diff`, `gitops --check`), 3 SLO
/// breached (`test`, `promote`).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Any error.
    pub const ERROR: i32 = 1;
    /// `diff` / `gitops --check` found changes.
    pub const CHANGES: i32 = 2;
    /// `test` / `promote`: a load test breached the SLO.
    pub const SLO_BREACHED: i32 = 3;
    /// Interrupted (Ctrl-C): stopped at once, nothing pruned.
    pub const INTERRUPTED: i32 = 130;
}

/// What every command gets.
pub struct Ctx {
    /// Global options.
    pub global: Global,
    /// Whether stderr/stdout may use colour.
    pub color: bool,
    /// Whether spinners and progress bars may be drawn (on stderr).
    pub progress: bool,
}

/// What the terminal allows, decided once: colour and progress only for a person at a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Terminal {
    color: bool,
    progress: bool,
}

impl Terminal {
    /// `var` reads the environment; the flags say whether stdout and stderr are terminals. A
    /// pipeline (either stream redirected), `CI`, JSON output or `TERM=dumb` turn both off, as
    /// `--no-color` and `NO_COLOR` turn colour off.
    fn detect(
        global: &Global,
        var: impl Fn(&str) -> Option<std::ffi::OsString>,
        stdout_tty: bool,
        stderr_tty: bool,
    ) -> Self {
        let interactive = stdout_tty
            && stderr_tty
            && global.output == Output::Text
            && var("CI").is_none()
            && var("TERM").is_none_or(|t| t != "dumb");
        Terminal {
            color: interactive && !global.no_color && var("NO_COLOR").is_none(),
            progress: interactive,
        }
    }
}

impl Ctx {
    fn new(global: Global) -> Self {
        let t = Terminal::detect(
            &global,
            |k| std::env::var_os(k),
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        );
        Ctx {
            global,
            color: t.color,
            progress: t.progress,
        }
    }

    /// Whether JSON was asked for.
    pub fn json(&self) -> bool {
        self.global.output == Output::Json
    }

    /// Loads and resolves the config named by `-f`.
    pub fn project(&self) -> Result<crate::model::Project, Error> {
        load_project(self)
    }

    /// The template set: built-ins under `--templates` (or `templates/` next to the config).
    pub fn templates(&self, arg: &TemplatesArg) -> Result<Templates, Error> {
        let dir = user_dir(&self.global.config, arg.as_deref());
        Ok(Templates::load(dir.as_deref())?)
    }

    /// Load → pick the environment (`--env`, or the only one) → render: what every command that
    /// works on an environment starts with.
    pub fn render(&self, arg: &TemplatesArg) -> Result<Rendered, Error> {
        let project = self.project()?;
        let env = crate::render::pick_env(&project, self.global.env.as_deref())?
            .name
            .clone();
        // Only the templates this environment renders are compiled (and every user template).
        let dir = user_dir(&self.global.config, arg.as_deref());
        let folders = crate::render::folders(&project, &project.environments[&env]);
        let templates = Templates::load_for(dir.as_deref(), &folders)?;
        let bundle = crate::render::render_env(&project, &project.environments[&env], &templates)?;
        Ok(Rendered {
            project,
            env,
            templates,
            bundle,
        })
    }
}

/// An environment rendered: the project it came from and its bundle.
pub struct Rendered {
    /// The resolved project.
    pub project: crate::model::Project,
    /// Name of the environment.
    pub env: String,
    /// The templates it was rendered with.
    pub templates: Templates,
    /// Terraform files and manifests.
    pub bundle: crate::bundle::Bundle,
}

impl Rendered {
    /// The environment.
    pub fn env(&self) -> &crate::model::Env {
        &self.project.environments[&self.env]
    }
}

/// Prints `value` as pretty JSON (one document, newline-terminated) on stdout.
pub fn print_json(value: &impl serde::Serialize) {
    emit(&(serde_json::to_string_pretty(value).unwrap_or_default() + "\n"));
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config (or another input file) has problems.
    #[error("the config has problems")]
    Report(Report),
    /// Ctrl-C: stopped at once.
    #[error("interrupted")]
    Interrupted,
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
            R::File(f) => f.hint(),
            R::Io { .. } => None,
        };
        Error::Message {
            message: e.to_string(),
            hint,
        }
    }
}

impl From<crate::fsx::FileError> for Error {
    fn from(e: crate::fsx::FileError) -> Self {
        Error::Message {
            message: e.to_string(),
            hint: e.hint(),
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
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut cmd, "mldeploy", &mut script);
            emit(&String::from_utf8_lossy(&script));
            Ok(exit::OK)
        }
        Command::Render(args) => render::run(&ctx, args),
        Command::Diff(args) => cluster::diff(&ctx, args),
        Command::Apply(args) => cluster::apply(&ctx, args),
        Command::Status(_) => cluster::status(&ctx),
        Command::Delete(args) => cluster::delete(&ctx, args),
        Command::Gitops(args) => gitops::run(&ctx, args),
        Command::Infra(args) => infra::run(&ctx, args),
        Command::Templates(args) => templates::run(&ctx, &args.action),
        Command::Man(args) => man::run(args),
        Command::Test(args) => test::run(&ctx, args),
        Command::Promote(args) => promote::run(&ctx, args),
    };
    let code = match result {
        Ok(code) => code,
        Err(Error::Interrupted) => {
            errln!(
                "\ninterrupted: stopped at once (requests in flight were dropped, nothing was pruned); \
                 run the same command again to converge"
            );
            exit::INTERRUPTED
        }
        Err(e) => {
            report_error(&ctx, &e);
            exit::ERROR
        }
    };
    if code == exit::OK && output_failed() {
        exit::ERROR
    } else {
        code
    }
}

fn report_error(ctx: &Ctx, e: &Error) {
    if ctx.json() {
        let body = match e {
            Error::Report(r) => serde_json::json!({"ok": false, "errors": r.to_json()}),
            Error::Message { message, hint } => {
                serde_json::json!({"ok": false, "errors": [{"message": message, "hint": hint}]})
            }
            Error::Interrupted => {
                serde_json::json!({"ok": false, "errors": [{"message": "interrupted"}]})
            }
        };
        print_json(&body);
    }
    match e {
        Error::Report(r) => err!("{}", r.render(ctx.color)),
        Error::Message { message, hint } => {
            errln!("error: {}", crate::diag::escape(message));
            if let Some(h) = hint {
                errln!("  help: {}", crate::diag::escape(h));
            }
        }
        Error::Interrupted => {}
    }
}

/// Set when writing to stdout or stderr failed (the reader went away, the disk is full): the
/// command goes on to a safe stopping point and exits non-zero.
static OUTPUT_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether writing to stdout or stderr has failed in this run. A long-running command (apply)
/// checks it at a safe boundary; `run` turns a success into exit 1 when it is set.
pub fn output_failed() -> bool {
    OUTPUT_FAILED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Records a failed write; the first one that is not a closed pipe is reported on stderr (if
/// stderr still works).
fn output_error(stream: &str, e: &std::io::Error) {
    use std::io::Write as _;
    let first = !OUTPUT_FAILED.swap(true, std::sync::atomic::Ordering::Relaxed);
    if first && e.kind() != std::io::ErrorKind::BrokenPipe && stream == "stdout" {
        let _ = writeln!(std::io::stderr(), "error: writing to {stream}: {e}");
    }
}

/// Writes a command's output to stdout. A reader that went away (`mldeploy … | head`) does not
/// panic, as `outln!` would: the failure is recorded and the command exits non-zero.
pub fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        output_error("stdout", &e);
    }
}

/// Writes messages to stderr (`errln!`); a closed stderr is recorded, never a
/// panic.
pub fn emit_err(text: &str) {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    if let Err(e) = err.write_all(text.as_bytes()).and_then(|()| err.flush()) {
        output_error("stderr", &e);
    }
}

/// Loads and resolves the config named by `-f`.
pub fn load_project(ctx: &Ctx) -> Result<crate::model::Project, Error> {
    let loaded = crate::config::load_file(&ctx.global.config)?;
    Ok(crate::model::resolve(&loaded)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn detect(args: &[&str], vars: &[(&str, &str)], stdout: bool, stderr: bool) -> Terminal {
        let cli =
            Cli::try_parse_from(["mldeploy"].iter().chain(args).chain(&["gpus"])).expect("parses");
        let var = |k: &str| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| std::ffi::OsString::from(v))
        };
        Terminal::detect(&cli.global, var, stdout, stderr)
    }

    #[test]
    fn colour_and_progress_only_for_a_person_at_a_terminal() {
        let on = Terminal {
            color: true,
            progress: true,
        };
        let off = Terminal {
            color: false,
            progress: false,
        };
        assert_eq!(detect(&[], &[], true, true), on);
        assert_eq!(detect(&[], &[], false, true), off, "stdout piped");
        assert_eq!(detect(&[], &[], true, false), off, "stderr piped");
        assert_eq!(detect(&[], &[("CI", "true")], true, true), off);
        assert_eq!(detect(&[], &[("TERM", "dumb")], true, true), off);
        assert_eq!(detect(&["--output", "json"], &[], true, true), off);
        let no_colour = Terminal {
            color: false,
            progress: true,
        };
        assert_eq!(detect(&["--no-color"], &[], true, true), no_colour);
        assert_eq!(detect(&[], &[("NO_COLOR", "1")], true, true), no_colour);
    }
}
