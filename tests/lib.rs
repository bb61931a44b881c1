//! Integration tests, in one binary so they link once (as `just` does).

mod cli;
mod config;
mod fuzz;
mod render;
mod terraform;

use std::path::{Path, PathBuf};

/// The built `mldeploy` binary, with colour and CI detection neutralised.
pub fn mldeploy() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("mldeploy").expect("binary builds");
    cmd.env_remove("MLDEPLOY_CONFIG")
        .env_remove("MLDEPLOY_ENV")
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(60));
    cmd
}

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `*.yaml` directly in `dir` (relative to the root), sorted.
pub fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .expect("fixture folder exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.strip_prefix(root()).expect("under root").to_path_buf())
        .collect();
    files.sort();
    files
}
