//! Property tests over the parser: arbitrary input never panics, and a valid config mangled line
//! by line either still validates or fails with located problems.

use std::path::Path;

use mldeploy::config::load_bytes;
use mldeploy::model;
use proptest::prelude::*;

const BASE: &str = include_str!("../examples/gcp.yaml");

fn run(bytes: &[u8]) {
    if let Ok(loaded) = load_bytes(Path::new("fuzz.yaml"), bytes) {
        let _ = model::resolve(&loaded).map_err(|r| r.render(false));
    } else if let Err(r) = load_bytes(Path::new("fuzz.yaml"), bytes) {
        assert!(!r.problems.is_empty());
        let _ = r.render(false);
        let _ = r.to_json();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        run(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[ -~\n\t\u{80}-\u{10ff}]{0,1024}") {
        run(text.as_bytes());
    }

    #[test]
    fn yaml_shaped_text_never_panics(text in "([a-zA-Z:\\-\\[\\]{},&*!|>'\"#0-9. ]{0,40}\n){0,40}") {
        run(text.as_bytes());
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
        match load_bytes(Path::new("fuzz.yaml"), text.as_bytes()) {
            Ok(loaded) => {
                if let Err(r) = model::resolve(&loaded) {
                    prop_assert!(!r.problems.is_empty());
                    let _ = r.render(false);
                }
            }
            Err(r) => {
                prop_assert!(!r.problems.is_empty());
                let _ = r.render(false);
            }
        }
    }
}
