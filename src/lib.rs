//! mldeploy: deploy ML models to GPU Kubernetes clusters from one project config.
//!
//! The pipeline reads top to bottom: [`config`] (parse, strict, spans) → [`model`] (resolve
//! defaults and overrides, check everything, GPU [`catalog`]) → [`render`] (templates) →
//! [`bundle`] (objects in apply order, Terraform files) → gitops | cluster.
//! [`commands`] holds one module per verb; [`cli`] the argument types.

pub mod bundle;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diag;
pub mod model;
pub mod render;
pub mod suggest;

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
