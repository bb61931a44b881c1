//! What mldeploy echoes from its input cannot drive the terminal: control characters are
//! escaped, and a huge line is cut around the error.

use std::path::Path;

use mldeploy::diag::Report;

fn report(text: &str) -> Report {
    let path = Path::new("mldeploy.yaml");
    match mldeploy::config::load_str(path, text) {
        Err(r) => r,
        Ok(loaded) => match mldeploy::model::resolve(&loaded) {
            Err(r) => r,
            Ok(_) => panic!("the config should be invalid"),
        },
    }
}

#[test]
fn control_characters_in_values_are_escaped_in_reports() {
    // A double-quoted YAML string can hold any character: ESC sequences that clear the screen
    // or set the title, a CR that would rewrite the line, a C1 CSI.
    let text = "version: 1\nproject: \"a\\e[2J\\e]0;pwned\\ab\\rc\\u009bd\"\nmodels:\n  - name: m\n    image: r.example.com/m:1\n    runtime: \"tr\\eiton\\r\"\n";
    let r = report(text);
    let shown = r.render(false);
    for bad in ['\u{1b}', '\r', '\u{7}', '\u{9b}'] {
        assert!(
            !shown.contains(bad),
            "{bad:?} reached the terminal:\n{shown}"
        );
    }
    insta::assert_snapshot!("control-characters", shown);
    // JSON carries the value itself (JSON escapes it).
    let json = serde_json::to_string(&r.to_json()).expect("json");
    assert!(json.contains("\\u001b"), "{json}");
}

#[test]
fn raw_control_characters_in_the_source_line_are_escaped_in_the_snippet() {
    let text = "version: 1\nproject: p\x1b[31m\nmodels: [\x1b]0;x\x07\n";
    let shown = report(text).render(false);
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown}"
    );
    assert!(shown.contains("\\x1b"), "{shown}");
}

#[test]
fn a_huge_invalid_line_prints_a_bounded_snippet() {
    // 7.5 MB on one line, invalid at its end.
    let mut text = String::from("version: 1\nproject: p\nmodels: [");
    while text.len() < 7_500_000 {
        text.push_str("{name: m, image: r.example.com/m:1}, ");
    }
    text.push_str("]]\n");
    let r = report(&text);
    let shown = r.render(false);
    assert!(
        shown.len() < 4_000,
        "{} bytes:\n{}",
        shown.len(),
        &shown[..4_000.min(shown.len())]
    );
    assert!(shown.contains('…'), "{shown}");
    let loc = r.problems[0].loc.expect("located");
    assert!(
        shown.contains(&format!("mldeploy.yaml:{}:{}", loc.line, loc.column)),
        "the header names the real column:\n{shown}"
    );
}
