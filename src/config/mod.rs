//! The project config: read the file, parse it strictly (every node keeps its location), and
//! check it against the typed contract. Semantic checks live in [`crate::model`].

pub mod de;
pub mod types;
pub mod yaml;

use std::path::Path;

pub use types::*;

use crate::diag::{Problem, Report, Source};
use de::{DeError, from_node};
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
    /// The typed config.
    pub config: Config,
}

/// Reads and parses a config file.
pub fn load_file(path: &Path) -> Result<Loaded, Report> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "create one with `mldeploy init`, or pass -f/--config PATH"
            } else {
                "check the path and its permissions"
            };
            return Err(Report::new(
                Source::new(path, ""),
                vec![Problem::new(None, "", format!("cannot read the config: {e}")).hint(hint)],
            ));
        }
    };
    load_bytes(path, &bytes)
}

/// Parses config bytes (checks size and encoding first).
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Loaded, Report> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(Report::new(
            Source::new(path, ""),
            vec![
                Problem::new(
                    None,
                    "",
                    format!(
                        "the config is {:.1} MiB; the limit is {} MiB",
                        bytes.len() as f64 / 1024.0 / 1024.0,
                        MAX_CONFIG_BYTES / 1024 / 1024
                    ),
                )
                .hint("is this the right file? a config with a thousand models is under 1 MiB"),
            ],
        ));
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
            let hint = if text.contains('\t') && e.message.to_lowercase().contains("tab") {
                "YAML indents with spaces, not tabs"
            } else {
                "check the YAML syntax at this point"
            };
            return fail(vec![
                Problem::new(e.loc, "", format!("invalid YAML: {}", e.message)).hint(hint),
            ]);
        }
    };
    let dups = root.duplicate_keys();
    if !dups.is_empty() {
        return fail(
            dups.into_iter()
                .map(|(path, first, second)| {
                    Problem::new(Some(second), path_string(&path), "duplicate key").hint(format!(
                        "first defined at line {}; keep one",
                        first.line
                    ))
                })
                .collect(),
        );
    }
    match &root.value {
        Value::Map(_) => {}
        Value::Null => {
            return fail(vec![
                Problem::new(None, "", "the config is empty")
                    .hint("start with `mldeploy init`; a config begins with `version: 1`"),
            ]);
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
    match from_node::<Config>(&root) {
        Ok(config) => Ok(Loaded {
            source,
            root,
            config,
        }),
        Err(first) => {
            let mut errors = collect_errors(&root);
            if errors.is_empty() {
                errors.push(first);
            }
            fail(errors.into_iter().map(to_problem).collect())
        }
    }
}

/// Turns a type error into a problem.
pub fn to_problem(e: DeError) -> Problem {
    Problem::new(e.loc, path_string(&e.path), e.message).maybe_hint(e.hint)
}

/// serde stops at the first error; to report every error at once, read each model, cluster and
/// environment on its own, then the rest of the document without them.
fn collect_errors(root: &Node) -> Vec<DeError> {
    fn prefix(mut e: DeError, segs: &[Seg]) -> DeError {
        let mut path = segs.to_vec();
        path.append(&mut e.path);
        e.path = path;
        e
    }
    let mut errors = Vec::new();
    let mut rest = root.clone();
    if let Value::Map(entries) = &mut rest.value {
        entries.retain(|(k, v)| {
            let key = k.as_key().unwrap_or_default();
            match (key.as_str(), &v.value) {
                ("models", Value::Seq(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Err(e) = from_node::<ModelSpec>(item) {
                            errors.push(prefix(e, &[Seg::Key(key.clone()), Seg::Index(i)]));
                        }
                    }
                    false
                }
                ("clusters", Value::Map(items)) | ("environments", Value::Map(items)) => {
                    for (name, item) in items {
                        let segs = [Seg::Key(key.clone()), Seg::Key(name.as_key().unwrap_or_default())];
                        let result = if key == "clusters" {
                            from_node::<Cluster>(item).map(drop)
                        } else {
                            from_node::<Environment>(item).map(drop)
                        };
                        if let Err(e) = result {
                            errors.push(prefix(e, &segs));
                        }
                    }
                    false
                }
                _ => true,
            }
        });
    }
    if let Err(e) = from_node::<Config>(&rest) {
        errors.push(e);
    }
    errors
}
