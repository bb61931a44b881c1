//! Problems found in a user's input, and how they are shown: with file:line:column, the field
//! path, a source snippet and a hint (text), or as structured records (JSON).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource, SourceSpan};
use serde::Serialize;

use crate::config::yaml::Loc;

/// How many problems are printed in full before the rest are only counted.
const MAX_SHOWN: usize = 50;

/// A source file as read, shared by every problem found in it.
#[derive(Clone, Debug)]
pub struct Source {
    /// The path as the user gave it (used in messages).
    pub path: PathBuf,
    /// The text (lossily decoded if the file was not UTF-8).
    pub text: Arc<str>,
}

impl Source {
    /// A source from a path and its text.
    pub fn new(path: impl AsRef<Path>, text: impl Into<Arc<str>>) -> Self {
        Source {
            path: path.as_ref().to_path_buf(),
            text: text.into(),
        }
    }
}

/// One thing wrong with the input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Problem {
    /// Where it is; `None` for problems about the file as a whole.
    #[serde(skip)]
    pub loc: Option<Loc>,
    /// Field path such as `models[0].gpu.type` (empty for the document itself).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Problem {
    /// A problem at a location.
    pub fn new(loc: Option<Loc>, path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            loc: loc.filter(|l| l.line > 0),
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a hint if there is one.
    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

/// Every problem found in one source. Reported all at once; the command exits 1.
#[derive(Clone, Debug)]
pub struct Report {
    /// The file the problems are in.
    pub source: Source,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

/// A problem as a JSON record.
#[derive(Serialize)]
struct JsonProblem<'a> {
    file: String,
    line: Option<u32>,
    column: Option<u32>,
    #[serde(flatten)]
    problem: &'a Problem,
}

impl Report {
    /// A report; problems are sorted by position (then path) and exact duplicates dropped, so a
    /// value inherited by many models is reported once.
    pub fn new(source: Source, mut problems: Vec<Problem>) -> Self {
        problems.sort_by(|a, b| {
            let ka = a.loc.map(|l| (l.line, l.column)).unwrap_or((0, 0));
            let kb = b.loc.map(|l| (l.line, l.column)).unwrap_or((0, 0));
            ka.cmp(&kb)
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.message.cmp(&b.message))
        });
        problems.dedup_by(|a, b| a.loc == b.loc && a.message == b.message && a.path == b.path);
        Report { source, problems }
    }

    /// The problems as JSON records.
    pub fn to_json(&self) -> serde_json::Value {
        let file = self.source.path.display().to_string();
        let list: Vec<JsonProblem<'_>> = self
            .problems
            .iter()
            .map(|p| JsonProblem {
                file: file.clone(),
                line: p.loc.map(|l| l.line),
                column: p.loc.map(|l| l.column),
                problem: p,
            })
            .collect();
        serde_json::to_value(list).unwrap_or_default()
    }

    /// The problems for people: each with its snippet, then a count.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false);
        let name = self.source.path.display().to_string();
        let mut out = String::new();
        for p in self.problems.iter().take(MAX_SHOWN) {
            let title = if p.path.is_empty() {
                p.message.clone()
            } else {
                format!("{}: {}", p.path, p.message)
            };
            match p.loc {
                Some(loc) => {
                    let diag = Snippet {
                        title,
                        src: NamedSource::new(name.clone(), Arc::clone(&self.source.text)),
                        span: span_of(&self.source.text, loc),
                        help: p.hint.clone(),
                    };
                    let mut buf = String::new();
                    if handler.render_report(&mut buf, &diag).is_err() {
                        buf = format!(
                            "error: {name}:{}:{}: {}\n",
                            loc.line, loc.column, diag.title
                        );
                    }
                    out.push_str(&buf);
                }
                None => {
                    let _ = writeln!(out, "  × {name}: {title}");
                    if let Some(h) = &p.hint {
                        let _ = writeln!(out, "  help: {h}");
                    }
                }
            }
            out.push('\n');
        }
        if self.problems.len() > MAX_SHOWN {
            let _ = writeln!(out, "… and {} more\n", self.problems.len() - MAX_SHOWN);
        }
        let n = self.problems.len();
        let _ = writeln!(
            out,
            "error: {name}: {n} problem{} found",
            if n == 1 { "" } else { "s" }
        );
        out
    }
}

/// The span a label covers: the node itself, or the first character when its length is unknown.
fn span_of(text: &str, loc: Loc) -> SourceSpan {
    // Line and column are authoritative; byte offsets are not known for every node.
    let offset = offset_of(text, loc);
    let rest = &text[offset.min(text.len())..];
    let mut len = if loc.len > 0 { loc.len } else { 0 };
    if len == 0 {
        len = rest.chars().next().map_or(0, char::len_utf8);
    }
    // Keep the label on one line so snippets stay short.
    if let Some(nl) = rest.get(..len.min(rest.len())).and_then(|s| s.find('\n')) {
        len = nl.max(1);
    }
    (offset, len.min(rest.len())).into()
}

/// Byte offset of a 1-based line and column (columns counted in characters).
fn offset_of(text: &str, loc: Loc) -> usize {
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i + 1 == loc.line as usize {
            let col = (loc.column as usize).saturating_sub(1);
            return offset + line.char_indices().nth(col).map_or(line.len(), |(b, _)| b);
        }
        offset += line.len();
    }
    text.len()
}

#[derive(Debug)]
struct Snippet {
    title: String,
    src: NamedSource<Arc<str>>,
    span: SourceSpan,
    help: Option<String>,
}

impl std::fmt::Display for Snippet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.title)
    }
}

impl std::error::Error for Snippet {}

impl miette::Diagnostic for Snippet {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(
            miette::LabeledSpan::new_primary_with_span(Some("here".to_string()), self.span),
        )))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
}
