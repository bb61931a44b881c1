//! mldeploy: deploy ML models to GPU Kubernetes clusters from one project config.
//!
//! The pipeline reads top to bottom: [`config`] (parse, strict, spans) → [`model`] (resolve
//! defaults and overrides, check everything, GPU [`catalog`]) → [`render`] (templates) →
//! [`bundle`] (objects in apply order, Terraform files) → [`gitops`] | cluster | [`infra`]
//! (Terraform for a cluster); [`verify`] tests what was deployed.
//! [`commands`] holds one module per verb; [`cli`] the argument types.

/// `println!` to stdout that does not panic when the reader has gone away (`mldeploy … | head`).
macro_rules! outln {
    () => { $crate::commands::emit("\n") };
    ($($t:tt)*) => { $crate::commands::emit(&format!("{}\n", format_args!($($t)*))) };
}

/// `print!` to stdout that does not panic when the reader has gone away.
macro_rules! out {
    ($($t:tt)*) => { $crate::commands::emit(&format!($($t)*)) };
}

/// `eprintln!` that does not panic when stderr is closed (`mldeploy … 2>&1 | head -1`): the
/// failure is remembered and the command exits non-zero ([`commands::output_failed`]).
macro_rules! errln {
    () => { $crate::commands::emit_err("\n") };
    ($($t:tt)*) => { $crate::commands::emit_err(&format!("{}\n", format_args!($($t)*))) };
}

/// `eprint!` that does not panic when stderr is closed.
macro_rules! err {
    ($($t:tt)*) => { $crate::commands::emit_err(&format!($($t)*)) };
}

pub mod bundle;
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod diag;
pub mod fsx;
pub mod gitops;
pub mod infra;
pub mod model;
pub mod platform;
pub mod render;
pub mod runtime;
pub mod security;
pub mod suggest;
pub mod verify;

use clap::Parser;

/// Parses `args` and runs the command; returns the process exit code (0 ok, 1 error, 2 changes).
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match cli::Cli::try_parse_from(args) {
        Ok(cli) => commands::run(cli),
        Err(e) => {
            let _ = e.print();
            // Help and version are not errors; usage errors exit 1 (2 means "changes found").
            if e.use_stderr() {
                commands::exit::ERROR
            } else {
                commands::exit::OK
            }
        }
    }
}
