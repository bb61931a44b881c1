//! Property tests over the parser: arbitrary input never panics, and a valid config mangled line
//! by line either still validates or fails with located problems.

use std::path::Path;

use mldeploy::config::load_bytes;
use mldeploy::diag::Report;
use mldeploy::model;
use proptest::prelude::*;

const BASE: &str = include_str!("../examples/gcp.yaml");

/// Loads and resolves `bytes`; whatever fails must fail with at least one renderable problem,
/// which is returned.
fn run(bytes: &[u8]) -> Option<Report> {
    let report = match load_bytes(Path::new("fuzz.yaml"), bytes) {
        Ok(loaded) => model::resolve(&loaded).err()?,
        Err(r) => r,
    };
    assert!(!report.problems.is_empty());
    let _ = report.render(false);
    let _ = report.to_json();
    Some(report)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = run(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[ -~\n\t\u{80}-\u{10ff}]{0,1024}") {
        let _ = run(text.as_bytes());
    }

    #[test]
    fn yaml_shaped_text_never_panics(text in "([a-zA-Z:\\-\\[\\]{},&*!|>'\"#0-9. ]{0,40}\n){0,40}") {
        let _ = run(text.as_bytes());
    }

    #[test]
    fn mangled_configs_fail_with_located_problems(
        edits in proptest::collection::vec((0usize..60, 0u8..4, "[a-z0-9:{} -]{0,12}"), 1..6)
    ) {
        let mut lines: Vec<String> = BASE.lines().map(str::to_string).collect();
        for (at, op, text) in edits {
            let i = at % lines.len().max(1);
            match op {
                0 => { lines.remove(i); }
                1 => { let l = lines[i].clone(); lines.insert(i, l); }
                2 => lines[i].push_str(&text),
                _ => lines.insert(i, text),
            }
            if lines.is_empty() { lines.push(String::new()); }
        }
        let text = lines.join("\n");
        if let Some(report) = run(text.as_bytes()) {
            // A mangled config is still YAML text: every problem but an empty file is located.
            for p in &report.problems {
                prop_assert!(p.loc.is_some() || p.message == "the config is empty", "unlocated: {p:?}");
            }
        }
    }
}
