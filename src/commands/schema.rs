//! `mldeploy schema`: the config's JSON Schema.

use super::{Ctx, Error, exit};

/// The JSON Schema of the config, as pretty JSON.
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(crate::config::Config);
    schema.insert("title".into(), "mldeploy project config".into());
    // Top-level `x-…` keys are free, for YAML anchors (see config::load_str).
    schema.insert("patternProperties".into(), serde_json::json!({"^x-": {}}));
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

pub(super) fn run(_: &Ctx) -> Result<i32, Error> {
    outln!("{}", schema_json());
    Ok(exit::OK)
}
