//! Problems found in a user's input, and how they are shown: with file:line:column, the field
//! path, a source snippet and a hint (text), or as structured records (JSON).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{
    GraphicalReportHandler, GraphicalTheme, MietteError, SourceCode, SourceSpan, SpanContents,
};
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
        let name = escape(&self.source.path.display().to_string());
        let mut out = String::new();
        for p in self.problems.iter().take(MAX_SHOWN) {
            let title = escape(&if p.path.is_empty() {
                p.message.clone()
            } else {
                format!("{}: {}", p.path, p.message)
            });
            match p.loc {
                Some(loc) => {
                    let (src, span) = Window::around(&name, &self.source.text, loc);
                    let diag = Snippet {
                        title,
                        src,
                        span,
                        help: p.hint.as_deref().map(escape),
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
                        let _ = writeln!(out, "  help: {}", escape(h));
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

/// Longest part of a source line shown in a snippet, in characters: a 7 MB line is cut to this
/// much around the error, with `…` where it was cut.
const SNIPPET_WIDTH: usize = 120;

/// How a character is shown to a terminal: control characters (C0 but newline and tab, DEL, C1)
/// and bidirectional overrides as escapes, so that a config value cannot move the cursor, rewrite
/// a line (`\r`), change colours or reorder text.
fn escape_char(c: char, out: &mut String) {
    match c {
        '\n' | '\t' => out.push(c),
        '\r' => out.push_str("\\r"),
        '\0'..='\x1f' | '\x7f' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// `s` with control characters escaped (`\x1b`, `\r`, `\u{9b}`) and every line longer than a
/// screenful cut with `…`: for anything mldeploy echoes from its input to a terminal.
pub fn escape(s: &str) -> String {
    const MAX_LINE: usize = 1000;
    let mut out = String::with_capacity(s.len().min(64 * 1024));
    let mut on_line = 0;
    let mut skipping = false;
    for c in s.chars() {
        if c == '\n' {
            on_line = 0;
            skipping = false;
            out.push(c);
            continue;
        }
        if skipping {
            continue;
        }
        if on_line == MAX_LINE {
            out.push('…');
            skipping = true;
            continue;
        }
        on_line += 1;
        escape_char(c, &mut out);
    }
    out
}

/// The few source lines a snippet shows, escaped and cut to [`SNIPPET_WIDTH`] around the error,
/// with the line numbers of the file.
#[derive(Debug)]
struct Window {
    name: String,
    /// The lines, escaped and cut, joined with `\n`.
    text: String,
    /// 0-based line number of the first line in the file.
    first_line: usize,
    /// 0-based line of the error within `text`.
    error_line: usize,
    /// 0-based column of the error in the file, for the `[file:line:col]` header.
    column: usize,
}

impl Window {
    /// The window around `loc` and the error's span in it.
    fn around(name: &str, text: &str, loc: Loc) -> (Window, SourceSpan) {
        let line0 = (loc.line as usize).saturating_sub(1);
        let first_line = line0.saturating_sub(1);
        let offset = offset_of(text, loc);
        let mut window = String::new();
        let mut span = (0, 0);
        let mut error_line = 0;
        let mut line_start = 0;
        for (i, line) in text.split('\n').enumerate() {
            let next = line_start + line.len() + 1;
            if i < first_line {
                line_start = next;
                continue;
            }
            if i > line0 + 1 {
                break;
            }
            let n = i - first_line;
            if n > 0 {
                window.push('\n');
            }
            let line = line.strip_suffix('\r').unwrap_or(line);
            let chars: Vec<char> = line.chars().collect();
            let (col, label) = if i == line0 {
                let col = (loc.column as usize).saturating_sub(1).min(chars.len());
                let label_end = (offset + loc.len).min(line_start + line.len());
                let label = text.get(offset..label_end).map_or(0, |t| t.chars().count());
                (col, label.max(1))
            } else {
                (0, 0)
            };
            // A line that fits is shown whole; a longer one around the error column.
            let start = col
                .saturating_sub(SNIPPET_WIDTH / 2)
                .min(chars.len().saturating_sub(SNIPPET_WIDTH));
            let end = (start + SNIPPET_WIDTH).min(chars.len());
            if start > 0 {
                window.push('…');
            }
            let piece = |from: usize, to: usize, window: &mut String| {
                for &c in &chars[from.min(to)..to] {
                    escape_char(c, window);
                }
            };
            if i == line0 {
                error_line = n;
                piece(start, col.min(end), &mut window);
                let label_start = window.len();
                piece(col.min(end), (col + label).min(end), &mut window);
                span = (label_start, (window.len() - label_start).max(1));
                piece((col + label).min(end), end, &mut window);
            } else {
                piece(start, end, &mut window);
            }
            if end < chars.len() {
                window.push('…');
            }
            line_start = next;
        }
        let span_len = span.1.min(window.len().saturating_sub(span.0));
        (
            Window {
                name: name.to_string(),
                text: window,
                first_line,
                error_line,
                column: (loc.column as usize).saturating_sub(1),
            },
            (span.0, span_len).into(),
        )
    }
}

/// Span contents of a [`Window`], numbered as lines of the file.
struct Shifted<'a> {
    inner: Box<dyn SpanContents<'a> + 'a>,
    window: &'a Window,
}

impl<'a> SpanContents<'a> for Shifted<'a> {
    fn data(&self) -> &'a [u8] {
        self.inner.data()
    }
    fn span(&self) -> &SourceSpan {
        self.inner.span()
    }
    fn name(&self) -> Option<&str> {
        Some(&self.window.name)
    }
    fn line(&self) -> usize {
        self.inner.line() + self.window.first_line
    }
    fn column(&self) -> usize {
        // The label's own contents start mid-line: report the column in the file, not in the
        // escaped, cut line.
        if self.inner.line() == self.window.error_line && self.inner.column() != 0 {
            self.window.column
        } else {
            self.inner.column()
        }
    }
    fn line_count(&self) -> usize {
        self.inner.line_count()
    }
}

impl SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.as_str().read_span(span, before, after)?;
        Ok(Box::new(Shifted {
            inner,
            window: self,
        }))
    }
}

#[derive(Debug)]
struct Snippet {
    title: String,
    src: Window,
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
