//! The project config: read the file, parse it strictly (every node keeps its location), and
//! check it against the typed contract. Semantic checks live in [`crate::model`].

pub mod de;
pub mod rewrite;
pub mod types;
pub mod yaml;

use std::path::Path;

pub use types::*;

use crate::diag::{Problem, Report, Source};
use de::{DeError, all_errors, from_node};
use yaml::{Node, Seg, Value, path_string};

/// Largest config file accepted. A real config with a thousand models is well under 1 MiB.
pub const MAX_CONFIG_BYTES: usize = 8 * 1024 * 1024;

/// A config that parsed and matched the contract, with the tree it came from (for locations).
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The file.
    pub source: Source,
    /// The YAML tree, for locations of semantic errors and for merging override layers.
    pub root: Node,
    /// The typed config (without the parts that had type errors).
    pub config: Config,
    /// Type errors found while reading; semantic checks add theirs and report all together.
    pub problems: Vec<Problem>,
}

/// Reads and parses a config file.
pub fn load_file(path: &Path) -> Result<Loaded, Report> {
    // The limit applies while reading: `-f /dev/zero` or an endless FIFO stop there.
    let bytes = match crate::fsx::read_input(path, MAX_CONFIG_BYTES) {
        Ok(b) => b,
        Err(crate::fsx::FileError::TooLarge { .. }) => return Err(too_large(path)),
        Err(e) => {
            let hint = if e.is_not_found() {
                "create one with `mldeploy init`, or pass -f/--config PATH"
            } else if matches!(e, crate::fsx::FileError::Kind { .. }) {
                "pass the config file itself with -f/--config PATH"
            } else {
                "check the path and its permissions"
            };
            let message = match e {
                crate::fsx::FileError::Io { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            return Err(Report::new(
                Source::new(path, ""),
                vec![
                    Problem::new(None, "", format!("cannot read the config: {message}")).hint(hint),
                ],
            ));
        }
    };
    load_bytes(path, &bytes)
}

/// Parses config bytes (checks size and encoding first).
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Loaded, Report> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(too_large(path));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => load_str(path, text),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
            let last_line = good.rsplit(|&b| b == b'\n').next().unwrap_or(good);
            let column = String::from_utf8_lossy(last_line).chars().count() as u32 + 1;
            let bad = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
            let text = String::from_utf8_lossy(bytes).into_owned();
            let loc = yaml::Loc {
                line,
                column,
                offset: e.valid_up_to(),
                len: 1,
            };
            Err(Report::new(
                Source::new(path, text),
                vec![
                    Problem::new(
                        Some(loc),
                        "",
                        format!("the config is not UTF-8 text (byte 0x{bad:02x})"),
                    )
                    .hint("save the file as UTF-8; is it a binary file?"),
                ],
            ))
        }
    }
}

/// The report for a config over [`MAX_CONFIG_BYTES`] (reading stopped there).
fn too_large(path: &Path) -> Report {
    Report::new(
        Source::new(path, ""),
        vec![
            Problem::new(
                None,
                "",
                format!(
                    "the config is larger than {} MiB",
                    MAX_CONFIG_BYTES / 1024 / 1024
                ),
            )
            .hint("is this the right file? a config with a thousand models is under 1 MiB"),
        ],
    )
}

/// Parses config text.
pub fn load_str(path: &Path, text: &str) -> Result<Loaded, Report> {
    let source = Source::new(path, text);
    let fail = |problems: Vec<Problem>| Err(Report::new(source.clone(), problems));
    if text.contains('\0') {
        let offset = text.find('\0').unwrap_or(0);
        let line = text[..offset].matches('\n').count() as u32 + 1;
        return fail(vec![
            Problem::new(
                Some(yaml::Loc {
                    line,
                    column: 1,
                    offset,
                    len: 1,
                }),
                "",
                "the config contains a NUL byte",
            )
            .hint("is it a binary file?"),
        ]);
    }
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let (message, hint) = if let Some(limit) = e.message.strip_prefix("budget breached: ") {
                (
                    format!("invalid YAML: the document exceeds the parser's limits ({limit})"),
                    "configs this deep or this large are not hand-written: is it an alias bomb or a generated file?",
                )
            } else if e.message.starts_with("duplicate key") {
                (
                    format!("invalid YAML: {}", e.message),
                    "a key may appear once in a mapping; keep one",
                )
            } else if text.contains('\t') && e.message.to_lowercase().contains("tab") {
                (
                    format!("invalid YAML: {}", e.message),
                    "YAML indents with spaces, not tabs",
                )
            } else {
                (
                    format!("invalid YAML: {}", e.message),
                    "check the YAML syntax at this point",
                )
            };
            return fail(vec![Problem::new(e.loc, "", message).hint(hint)]);
        }
    };
    match &root.value {
        Value::Map(_) => {}
        Value::Null => {
            return fail(vec![Problem::new(None, "", "the config is empty").hint(
                "start with `mldeploy init`; a config begins with `version: 1`",
            )]);
        }
        _ => {
            return fail(vec![
                Problem::new(
                    Some(root.loc),
                    "",
                    format!("expected a mapping at the top level, found {}", root.kind()),
                )
                .hint("a config begins with `version: 1` and `project: NAME`"),
            ]);
        }
    }
    // The version decides what everything else means, so it is checked before the rest.
    if let Some(v) = root.get("version")
        && v.value != Value::Int(1)
    {
        let shown = v.text.clone().unwrap_or_else(|| format!("{:?}", v.value));
        return fail(vec![
            Problem::new(
                Some(v.loc),
                "version",
                format!("unsupported config version `{shown}`"),
            )
            .hint("this mldeploy reads `version: 1`"),
        ]);
    }
    let mut root = root;
    // Top-level `x-…` keys hold YAML anchors to reuse (as in Compose files); they are not config.
    if let Value::Map(entries) = &mut root.value {
        entries.retain(|(k, _)| !k.as_key().is_some_and(|k| k.starts_with("x-")));
    }
    let problems: Vec<Problem> = match from_node::<Config>(&root) {
        Ok(_) => Vec::new(),
        Err(_) => collect_errors(&mut root)
            .into_iter()
            .map(to_problem)
            .collect(),
    };
    match from_node::<Config>(&root) {
        Ok(config) => Ok(Loaded {
            source,
            root,
            config,
            problems,
        }),
        Err(last) => {
            let mut problems = problems;
            if problems.is_empty() {
                problems.push(to_problem(last));
            }
            fail(problems)
        }
    }
}

/// Turns a type error into a problem.
pub fn to_problem(e: DeError) -> Problem {
    Problem::new(e.loc, path_string(&e.path), e.message).maybe_hint(e.hint)
}

/// serde stops at the first error; to report every error at once, read each model, cluster and
/// environment on its own (skipping each bad node and reading again), then the whole document.
/// Bad nodes stay marked, so the repaired tree reads as a config for the semantic checks.
fn collect_errors(root: &mut Node) -> Vec<DeError> {
    fn prefix(mut e: DeError, segs: &[Seg]) -> DeError {
        let mut path = segs.to_vec();
        path.append(&mut e.path);
        e.path = path;
        e
    }
    let mut errors = Vec::new();
    if let Value::Map(entries) = &mut root.value {
        for (k, v) in entries.iter_mut() {
            let key = k.as_key().unwrap_or_default();
            match (key.as_str(), &mut v.value) {
                ("models", Value::Seq(items)) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        for e in all_errors::<ModelSpec>(item) {
                            errors.push(prefix(e, &[Seg::Key(key.clone()), Seg::Index(i)]));
                        }
                    }
                }
                ("clusters" | "environments", Value::Map(items)) => {
                    for (name, item) in items.iter_mut() {
                        let segs = [
                            Seg::Key(key.clone()),
                            Seg::Key(name.as_key().unwrap_or_default()),
                        ];
                        let found = if key == "clusters" {
                            all_errors::<Cluster>(item)
                        } else {
                            all_errors::<Environment>(item)
                        };
                        errors.extend(found.into_iter().map(|e| prefix(e, &segs)));
                    }
                }
                _ => {}
            }
        }
    }
    errors.extend(all_errors::<Config>(root));
    errors
}
