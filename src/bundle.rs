//! The bundle: everything one environment renders to — Kubernetes objects in apply order and
//! Terraform files — each parsed back and checked, ready to write, diff or apply.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::render::RenderError;

/// First line of every file mldeploy writes, so a later run knows which files are its own.
pub const HEADER: &str = "# Rendered by mldeploy";

/// A Kubernetes object.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Apply group (0 CRDs … 7 monitoring); lower groups go first.
    pub group: u8,
    /// apiVersion.
    pub api_version: String,
    /// kind.
    pub kind: String,
    /// metadata.name.
    pub name: String,
    /// metadata.namespace, if set.
    pub namespace: Option<String>,
    /// Template it came from.
    pub template: String,
    /// The document as rendered.
    pub text: String,
}

impl Manifest {
    /// The object as JSON. Parsed on demand: render only checks documents (keeping every parsed
    /// tree would cost ten times the text in memory), later stages parse what they use.
    pub fn object(&self) -> Value {
        parse_object(&self.text)
    }
}

/// A rendered document as JSON (`null` if it does not parse, which the render check rules out).
pub fn parse_object(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or(Value::Null)
}

/// What a rendered document says about itself: its identity, read in one pass over the parser's
/// events without building a tree.
#[derive(Debug, Default, PartialEq, Eq)]
struct Header {
    api_version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
}

/// Checks that `doc` is one valid YAML document whose root is a mapping without duplicate keys,
/// and reads its identity fields.
fn inspect(doc: &str) -> Result<Header, String> {
    use serde_saphyr::granit_parser::{Event, Parser};

    /// A container being read: for a mapping, its keys so far and whether a key comes next.
    enum Frame {
        Map {
            keys: Vec<String>,
            want_key: bool,
            key: Option<String>,
        },
        Seq,
    }
    let mut header = Header::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut documents = 0;
    let mut root_is_map = None;
    let mut parser = Parser::new_from_str(doc);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| e.to_string())?;
        // Which field a value at this point fills: only top-level and metadata-level keys matter.
        let slot = |stack: &[Frame]| -> Option<(usize, String)> {
            match stack.last() {
                Some(Frame::Map {
                    want_key: false,
                    key: Some(k),
                    ..
                }) if stack.len() <= 2 => {
                    let parent = match stack.first() {
                        Some(Frame::Map { key: Some(p), .. }) if stack.len() == 2 => {
                            Some(p.as_str())
                        }
                        _ => None,
                    };
                    match (stack.len(), parent) {
                        (1, _) => Some((1, k.clone())),
                        (2, Some("metadata")) => Some((2, k.clone())),
                        _ => None,
                    }
                }
                _ => None,
            }
        };
        let after_value = |stack: &mut Vec<Frame>| {
            if let Some(Frame::Map { want_key, .. }) = stack.last_mut() {
                *want_key = true;
            }
        };
        match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(format!(
                        "more than one document (line {})",
                        span.start.line()
                    ));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                if stack.is_empty() && root_is_map.is_none() {
                    root_is_map = Some(is_map);
                }
                if let Some(Frame::Map { want_key: true, .. }) = stack.last() {
                    return Err(format!(
                        "a mapping or list used as a key (line {})",
                        span.start.line()
                    ));
                }
                stack.push(if is_map {
                    Frame::Map {
                        keys: Vec::new(),
                        want_key: true,
                        key: None,
                    }
                } else {
                    Frame::Seq
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                after_value(&mut stack);
            }
            Event::Scalar(value, ..) => {
                if stack.is_empty() && root_is_map.is_none() {
                    root_is_map = Some(false);
                }
                if let Some(Frame::Map {
                    keys,
                    want_key: want_key @ true,
                    key,
                }) = stack.last_mut()
                {
                    if keys.iter().any(|k| *k == value) {
                        return Err(format!(
                            "duplicate key `{value}` (line {})",
                            span.start.line()
                        ));
                    }
                    keys.push(value.to_string());
                    *key = Some(value.into_owned());
                    *want_key = false;
                    continue;
                }
                match slot(&stack).as_ref().map(|(depth, k)| (*depth, k.as_str())) {
                    Some((1, "apiVersion")) => header.api_version = Some(value.into_owned()),
                    Some((1, "kind")) => header.kind = Some(value.into_owned()),
                    Some((2, "name")) => header.name = Some(value.into_owned()),
                    Some((2, "namespace")) => header.namespace = Some(value.into_owned()),
                    _ => {}
                }
                after_value(&mut stack);
            }
            Event::Alias(..) => after_value(&mut stack),
            _ => {}
        }
    }
    if root_is_map != Some(true) {
        return Err("the document is not a mapping".into());
    }
    Ok(header)
}

/// The fast path of [`inspect`], for the block YAML templates lay out: block mappings and
/// sequences indented with spaces; keys that are plain words or double-quoted strings without
/// escapes; values that are double-quoted strings, plain words, `[]`, `{}`, one-line flow lists
/// of such scalars, or block scalars (`|`, `>`). It answers only when it is certain: `Some`
/// means the document is one valid YAML mapping without duplicate keys, with that identity.
/// Anything else (another construct, a tab, a duplicate key, a bad indent) is `None`, and the
/// full parser decides and words the error. Running the full parser over every rendered
/// document was most of render's time.
fn fast_inspect(doc: &str) -> Option<Header> {
    /// An open block: its indent; for a mapping, its keys and whether it is the root's
    /// `metadata`.
    struct Block<'a> {
        indent: usize,
        map: bool,
        keys: Vec<&'a str>,
        metadata: bool,
    }
    let block = |indent, map, metadata| Block {
        indent,
        map,
        keys: Vec::new(),
        metadata,
    };
    // Only characters every YAML parser reads alike: no tab, CR, NEL, line separator or BOM.
    let plain_char = |c: char| {
        matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{2027}' | '\u{202a}'..='\u{d7ff}'
            | '\u{e000}'..='\u{fefe}' | '\u{ff00}'..='\u{fffd}' | '\u{10000}'..)
    };
    // Printable ASCII and newlines, decided on bytes (in chunks the compiler vectorizes)
    // before the character-by-character check.
    let ascii = doc.as_bytes().chunks(64).all(|chunk| {
        chunk.iter().fold(true, |ok, &b| {
            ok & ((b == b'\n') | (b.wrapping_sub(0x20) < 0x5f))
        })
    });
    if !ascii && !doc.chars().all(plain_char) {
        return None;
    }
    let mut header = Header::default();
    let mut stack: Vec<Block> = Vec::new();
    // A key whose value starts on a later line: its column, and whether it is the root's
    // `metadata`.
    let mut pending: Option<(usize, bool)> = None;
    // Inside a block scalar: its parent's indent, its content indent once seen, and the most
    // spaces of a blank line before that.
    let mut scalar: Option<(usize, Option<usize>, usize)> = None;
    for line in doc.split('\n') {
        let text = line.trim_start_matches(' ');
        let indent = line.len() - text.len();
        let text = text.trim_end_matches(' ');
        if let Some((parent, content, blank)) = scalar {
            match content {
                _ if text.is_empty() => {
                    scalar = Some((parent, content, blank.max(indent)));
                    continue;
                }
                None if indent > parent => {
                    if blank > indent {
                        return None;
                    }
                    scalar = Some((parent, Some(indent), 0));
                    continue;
                }
                Some(c) if indent >= c => continue,
                Some(_) if indent > parent => return None,
                _ => scalar = None,
            }
        }
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let entry = text == "-" || text.starts_with("- ");
        match pending.take() {
            Some((col, metadata)) if indent > col => {
                stack.push(block(indent, !entry, metadata && !entry))
            }
            // A list at its key's column (`key:`, then `- x` below it).
            Some((col, _)) if indent == col && entry => stack.push(block(indent, false, false)),
            // Otherwise the pending value was null, and this line belongs to an open block.
            _ => {
                while stack.last().is_some_and(|b| b.indent > indent) {
                    stack.pop();
                }
                if stack.is_empty() {
                    if indent != 0 || entry {
                        return None;
                    }
                    stack.push(block(0, true, false));
                }
                let top = stack.last()?;
                if top.indent != indent {
                    return None;
                }
                // A list at its key's column ends where the mapping's next key starts.
                if !top.map && !entry {
                    stack.pop();
                    let below = stack.last()?;
                    if below.indent != indent || !below.map {
                        return None;
                    }
                }
            }
        }
        let (mut col, mut rest) = (indent, text);
        if !stack.last()?.map {
            if !entry {
                return None;
            }
            let after = rest[1..].trim_start_matches(' ');
            if after.is_empty() || after.starts_with('-') {
                return None;
            }
            col += rest.len() - after.len();
            rest = after;
            if key_token(rest).is_none() {
                if scalar_value(rest)? == Scalar::Block {
                    scalar = Some((indent, None, 0));
                }
                continue;
            }
            // `- key: value` opens a mapping at the key's column.
            stack.push(block(col, true, false));
        } else if entry {
            return None;
        }
        let depth = stack.len();
        let top = stack.last_mut()?;
        let (key, value) = key_token(rest)?;
        if top.keys.contains(&key) {
            return None;
        }
        top.keys.push(key);
        let field = match (depth, top.metadata, key) {
            (1, _, "apiVersion") => Some(&mut header.api_version),
            (1, _, "kind") => Some(&mut header.kind),
            (2, true, "name") => Some(&mut header.name),
            (2, true, "namespace") => Some(&mut header.namespace),
            _ => None,
        };
        if value.is_empty() || value.starts_with('#') {
            if field.is_some() {
                // An identity field laid out over several lines: the full parser reads it.
                return None;
            }
            pending = Some((col, depth == 1 && key == "metadata"));
            continue;
        }
        match (scalar_value(value)?, field) {
            (Scalar::Str(v), Some(f)) => *f = Some(v.to_string()),
            (_, Some(_)) => return None,
            (Scalar::Block, None) => scalar = Some((col, None, 0)),
            (_, None) => {}
        }
    }
    Some(header)
}

/// A value [`scalar_value`] read.
#[derive(Debug, PartialEq, Eq)]
enum Scalar<'a> {
    /// A string as written: a plain word, or a double-quoted string without escapes.
    Str(&'a str),
    /// A valid value of another form (escapes, a flow list).
    Other,
    /// A block scalar's header: its content follows on more indented lines.
    Block,
}

/// A plain word: safe in block and flow context, not a number-like or indicator start that
/// could read differently (`-1`, `.5` go to the full parser).
fn plain_word(s: &str) -> usize {
    let b = s.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_alphanumeric) {
        return 0;
    }
    b.iter()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'+' | b'-')))
        .unwrap_or(b.len())
}

/// A double-quoted string at the start of `s`: (its length with the quotes, the string when
/// it has no escapes). Only the escapes [`crate::render::quote`] writes are accepted.
fn quoted(s: &str) -> Option<(usize, Option<&str>)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    let mut escaped = false;
    while i < b.len() {
        match b[i] {
            b'"' => return Some((i + 1, (!escaped).then(|| &s[1..i]))),
            b'\\' => {
                escaped = true;
                let hex = match b.get(i + 1)? {
                    b'"' | b'\\' | b'n' | b'r' | b't' => 0,
                    b'u' => 4,
                    b'U' => 8,
                    _ => return None,
                };
                let digits = s.get(i + 2..i + 2 + hex)?;
                if hex > 0 {
                    if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
                        return None;
                    }
                    char::from_u32(u32::from_str_radix(digits, 16).ok()?)?;
                }
                i += 2 + hex;
            }
            _ => i += 1,
        }
    }
    None
}

/// A mapping key at the start of `s` followed by `:` and a space or the end: (the key, the rest
/// after the spaces).
fn key_token(s: &str) -> Option<(&str, &str)> {
    let (len, key) = match quoted(s) {
        Some((len, key)) => (len, key?),
        None => {
            let len = plain_word(s);
            (len, &s[..len])
        }
    };
    if len == 0 {
        return None;
    }
    let rest = s[len..].strip_prefix(':')?;
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some((key, rest.trim_start_matches(' ')))
}

/// A whole value (`s` has no leading spaces): one scalar, flow list or block scalar header,
/// then at most a comment.
fn scalar_value(s: &str) -> Option<Scalar<'_>> {
    let b = s.as_bytes();
    let (len, value) = match b.first()? {
        b'"' => {
            let (len, text) = quoted(s)?;
            (len, text.map_or(Scalar::Other, Scalar::Str))
        }
        b'|' | b'>' => {
            let len = if matches!(b.get(1), Some(b'-' | b'+')) {
                2
            } else {
                1
            };
            (len, Scalar::Block)
        }
        b'{' => (s.starts_with("{}").then_some(2)?, Scalar::Other),
        b'[' => {
            let mut i = 1;
            let mut first = true;
            loop {
                i += s[i..].len() - s[i..].trim_start_matches(' ').len();
                if b.get(i) == Some(&b']') && first {
                    break (i + 1, Scalar::Other);
                }
                let len = match b.get(i)? {
                    b'"' => quoted(&s[i..])?.0,
                    _ => plain_word(&s[i..]),
                };
                if len == 0 {
                    return None;
                }
                i += len;
                i += s[i..].len() - s[i..].trim_start_matches(' ').len();
                match b.get(i)? {
                    b',' => i += 1,
                    b']' => break (i + 1, Scalar::Other),
                    _ => return None,
                }
                first = false;
            }
        }
        _ => {
            let len = plain_word(s);
            (len, Scalar::Str(&s[..len]))
        }
    };
    if len == 0 {
        return None;
    }
    let tail = &s[len..];
    let comment = tail.trim_start_matches(' ');
    (tail.is_empty() || (comment.len() < tail.len() && comment.starts_with('#'))).then_some(value)
}

/// A Terraform file.
#[derive(Debug, Clone)]
pub struct TfFile {
    /// File name (`main.tf`).
    pub file: String,
    /// Template it came from.
    pub template: String,
    /// Contents.
    pub text: String,
}

impl TfFile {
    /// The file as written: mldeploy's header, then the text.
    pub fn contents(&self) -> String {
        format!(
            "{HEADER} from {}. Edit mldeploy.yaml, not this file.\n{}",
            self.template, self.text
        )
    }
}

/// One environment's rendered output.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Objects in apply order.
    pub manifests: Vec<Manifest>,
    /// Terraform files by name.
    pub terraform: Vec<TfFile>,
}

/// Apply order by kind (DESIGN.md): CRDs → Namespaces → ServiceAccounts/RBAC/NetworkPolicies →
/// ConfigMaps/Secrets
/// → Services → workloads → custom resources → monitoring.
pub fn group(kind: &str) -> u8 {
    match kind {
        "CustomResourceDefinition" => 0,
        "Namespace" => 1,
        // NetworkPolicies exist before the pods they protect.
        "ServiceAccount" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding"
        | "NetworkPolicy" => 2,
        // A ResourceClaimTemplate exists before the pods whose claims are made from it, and a
        // PersistentVolumeClaim (a model's weight cache) before the pods that mount it.
        "ConfigMap" | "Secret" | "ResourceClaimTemplate" | "PersistentVolumeClaim" => 3,
        "Service" => 4,
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "HorizontalPodAutoscaler"
        | "PodDisruptionBudget" => 5,
        // After the Deployment it scales (KEDA reads the target when the object is created).
        "ScaledObject" => 6,
        "ServiceMonitor" | "PodMonitor" | "PrometheusRule" => 7,
        _ => 6,
    }
}

/// Splits a template's output into documents and parses each back. Values are quoted by the
/// templates' autoescape, so a line that is exactly `---` can only come from the template itself.
pub fn parse_objects(template: &str, text: &str) -> Result<Vec<Manifest>, RenderError> {
    let mut out = Vec::new();
    let mut docs: Vec<std::borrow::Cow<'_, str>> = Vec::new();
    if text.contains('\r') {
        // `lines()` drops a `\r` before each `\n`: documents are rebuilt line by line.
        let mut doc = String::new();
        for line in text.lines() {
            if line.trim_end() == "---" {
                docs.push(std::mem::take(&mut doc).into());
            } else {
                doc.push_str(line);
                doc.push('\n');
            }
        }
        docs.push(doc.into());
    } else {
        // Documents are borrowed from `text` (each up to and with the `\n` before its `---`);
        // only the last may lack its final newline.
        // A separator is a line that is `---` and trailing whitespace: found by searching for
        // `---` rather than by looking at every line of a 200 KB dashboard.
        let mut start = 0;
        let mut from = 0;
        let dashes = memchr::memmem::Finder::new("---");
        while let Some(found) = dashes.find(&text.as_bytes()[from..]) {
            let at = from + found;
            from = at + 3;
            if at > 0 && text.as_bytes()[at - 1] != b'\n' {
                continue;
            }
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
            if text[at..end].trim_end() == "---" {
                docs.push(text[start..at].into());
                start = end;
                from = end;
            }
        }
        let last = &text[start..];
        docs.push(if last.is_empty() || last.ends_with('\n') {
            last.into()
        } else {
            format!("{last}\n").into()
        });
    }
    for doc in docs {
        if doc
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        let header = fast_inspect(&doc).map_or_else(|| inspect(&doc), Ok);
        let header = header.map_err(|message| RenderError::InvalidYaml {
            name: template.to_string(),
            message: format!("{message}\n--- rendered document ---\n{doc}"),
        })?;
        let missing = |what: &str| RenderError::NotAnObject {
            name: template.to_string(),
            message: format!("it has no {what}\n--- rendered document ---\n{doc}"),
        };
        let api_version = header.api_version.ok_or_else(|| missing("apiVersion"))?;
        let kind = header.kind.ok_or_else(|| missing("kind"))?;
        let name = header.name.ok_or_else(|| missing("metadata.name"))?;
        let namespace = header.namespace;
        // Allocated at its final size: `to_string() + "\n"` doubled every text's capacity,
        // which was a fifth of a large render's peak memory.
        let trimmed = doc.trim_matches('\n');
        let mut text = String::with_capacity(trimmed.len() + 1);
        text.push_str(trimmed);
        text.push('\n');
        out.push(Manifest {
            group: group(&kind),
            api_version,
            kind,
            name,
            namespace,
            template: template.to_string(),
            text,
        });
    }
    Ok(out)
}

impl Bundle {
    /// Orders the objects for apply and checks that none is rendered twice.
    pub fn new(
        mut manifests: Vec<Manifest>,
        mut terraform: Vec<TfFile>,
    ) -> Result<Self, RenderError> {
        manifests.sort_by(|a, b| {
            (a.group, &a.kind, &a.namespace, &a.name).cmp(&(
                b.group,
                &b.kind,
                &b.namespace,
                &b.name,
            ))
        });
        for pair in manifests.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.kind == b.kind && a.namespace == b.namespace && a.name == b.name {
                return Err(RenderError::Duplicate {
                    kind: a.kind.clone(),
                    name: a.name.clone(),
                    first: a.template.clone(),
                    second: b.template.clone(),
                });
            }
        }
        terraform.sort_by(|a, b| a.file.cmp(&b.file));
        for pair in terraform.windows(2) {
            if pair[0].file == pair[1].file {
                return Err(RenderError::Duplicate {
                    kind: "Terraform file".into(),
                    name: pair[0].file.clone(),
                    first: pair[0].template.clone(),
                    second: pair[1].template.clone(),
                });
            }
        }
        Ok(Bundle {
            manifests,
            terraform,
        })
    }

    /// The file name of a manifest: sorted names give the apply order.
    pub fn manifest_file(m: &Manifest) -> String {
        format!("{:02}-{}-{}.yaml", m.group, m.kind.to_lowercase(), m.name)
    }

    /// The manifests as one multi-document YAML stream.
    pub fn to_stream(&self) -> String {
        let mut out = String::new();
        for m in &self.manifests {
            out.push_str("---\n# Source: ");
            out.push_str(&m.template);
            out.push('\n');
            out.push_str(&m.text);
        }
        out
    }

    /// Every file of the bundle: (relative path, contents), sorted.
    pub fn files(&self) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = self
            .manifests
            .iter()
            .map(|m| {
                (
                    format!("manifests/{}", Self::manifest_file(m)),
                    format!(
                        "{HEADER} from {}. Edit mldeploy.yaml, not this file.\n{}",
                        m.template, m.text
                    ),
                )
            })
            .chain(
                self.terraform
                    .iter()
                    .map(|t| (format!("terraform/{}", t.file), t.contents())),
            )
            .collect();
        files.sort();
        files
    }

    /// Writes the bundle under `dir` (`manifests/`, `terraform/`) and removes files an earlier
    /// render wrote there that are no longer rendered, by the rules of [`crate::fsx`]: files
    /// without mldeploy's header are never overwritten or deleted, links and FIFOs are never
    /// written through. A folder that does not exist yet is written whole beside it and renamed
    /// into place ([`crate::fsx::create_folder`]). Returns the paths written.
    pub fn write_to<'a>(&'a self, dir: &Path) -> Result<Vec<String>, RenderError> {
        // Each file is (its header line, the rendered text borrowed from the bundle): the
        // bundle is not copied into a second set of strings before it is written.
        let header = |template: &str| {
            format!(
                "{HEADER} from {template}. Edit mldeploy.yaml, not this file.
"
            )
        };
        let mut files = Vec::new();
        let mut folder = |sub: &str, items: Vec<(String, String, &'a str)>| {
            let mut wanted: BTreeMap<String, (String, &str)> = BTreeMap::new();
            for (name, head, text) in items {
                files.push(format!("{sub}/{name}"));
                // Two objects with one file name (same kind and name, two namespaces): the
                // greater contents win, as when the files were sorted and collected.
                match wanted.entry(name) {
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        let (h, t) = e.get();
                        let old = h.bytes().chain(t.bytes());
                        if head.bytes().chain(text.bytes()).cmp(old).is_gt() {
                            e.insert((head, text));
                        }
                    }
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert((head, text));
                    }
                }
            }
            wanted
        };
        let manifests = folder(
            "manifests",
            self.manifests
                .iter()
                .map(|m| (Self::manifest_file(m), header(&m.template), m.text.as_str()))
                .collect(),
        );
        let terraform = folder(
            "terraform",
            self.terraform
                .iter()
                .map(|t| (t.file.clone(), header(&t.template), t.text.as_str()))
                .collect(),
        );
        files.sort();
        // A new folder is written whole, then renamed into place.
        if crate::fsx::create_folder(dir, &[("manifests", &manifests), ("terraform", &terraform)])?
        {
            return Ok(files);
        }
        // Both folders are checked before either is changed: a refusal in terraform/ (a
        // hand-written file, a link) must not leave manifests/ already rewritten.
        let plans = [
            crate::fsx::plan_folder(dir, "manifests", &manifests, |_| true)?,
            crate::fsx::plan_folder(dir, "terraform", &terraform, |_| true)?,
        ];
        for plan in plans {
            plan.commit()?;
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every document the built-in templates render for the examples and a generated config.
    fn rendered_docs() -> Vec<String> {
        let templates = crate::render::Templates::builtin().expect("built-ins compile");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut docs = Vec::new();
        for name in ["aws", "azure", "gcp", "onprem-k3s"] {
            let path = root.join(format!("examples/{name}.yaml"));
            let text = std::fs::read_to_string(&path).expect("example reads");
            let loaded = crate::config::load_str(&path, &text).expect("example parses");
            let project = crate::model::resolve(&loaded).expect("example resolves");
            for env in project.environments.values() {
                let bundle = crate::render::render_env(&project, env, &templates).expect("renders");
                docs.extend(bundle.manifests.into_iter().map(|m| m.text));
            }
        }
        assert!(docs.len() > 20, "{}", docs.len());
        docs
    }

    /// The fast path's answer, when it has one, is the full parser's.
    fn agrees(doc: &str) -> bool {
        match fast_inspect(doc) {
            Some(fast) => {
                assert_eq!(
                    inspect(doc).as_ref(),
                    Ok(&fast),
                    "fast path accepted:\n{doc}"
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn the_fast_check_reads_every_rendered_document_as_the_parser_does() {
        for doc in rendered_docs() {
            assert!(agrees(&doc), "the fast path should read this:\n{doc}");
        }
    }

    #[test]
    fn the_fast_check_never_accepts_what_the_parser_rejects() {
        // Every rendered document, broken line by line in the ways a template can break it.
        let mut checked = 0;
        for doc in rendered_docs() {
            let lines: Vec<&str> = doc.lines().collect();
            for i in 0..lines.len() {
                let l = lines[i];
                let edits = [
                    String::new(),
                    format!(" {l}"),
                    format!("  {l}"),
                    l.strip_prefix(' ').unwrap_or(l).to_string(),
                    l.strip_prefix("  ").unwrap_or(l).to_string(),
                    format!("{l}\n{l}"),
                    format!("{l} x"),
                    format!("{l}:"),
                    l.replacen(": ", ":", 1),
                    l.replacen('"', "", 1),
                    l.replacen("- ", "-", 1),
                    l.replacen(' ', "\t", 1),
                    format!("{l}\n  {l}"),
                ];
                for edit in edits {
                    let mut changed = lines.clone();
                    changed[i] = &edit;
                    let text = changed.join("\n") + "\n";
                    agrees(&text);
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn documents_split_only_at_lines_that_are_three_dashes() {
        let doc = |kind: &str, extra: &str| {
            format!("apiVersion: v1\nkind: {kind}\nmetadata:\n  name: x\n{extra}")
        };
        let text = [
            "---\n".to_string(),
            doc("A", "data:\n  a: \"---\"\n  b: |\n    ---\n    ----\n"),
            "---  \n".into(),
            doc("B", "c: a---b\n"),
            "# --- not a separator\n".into(),
            "---\n---\n".into(),
            doc("C", "d: e"),
        ]
        .concat();
        let kinds: Vec<String> = parse_objects("t", &text)
            .expect("parses")
            .into_iter()
            .map(|m| m.kind)
            .collect();
        assert_eq!(kinds, ["A", "B", "C"], "{text}");
        // `----` is not a separator: it stays in the document (which it makes invalid).
        let err = parse_objects("t", &format!("{}----\n{}", doc("A", ""), doc("B", "")))
            .expect_err("not a split");
        assert!(
            err.to_string().contains("name: x\n----\napiVersion"),
            "{err}"
        );
    }

    #[test]
    fn the_fast_check_leaves_unusual_yaml_to_the_parser() {
        for (doc, fast) in [
            ("apiVersion: v1\nkind: A\nmetadata:\n  name: x\n", true),
            ("a: 1\na: 2\n", false),
            ("a: \"x\\qy\"\n", false),
            ("a: b\n  c\n", false),
            ("a:\n- 1\n- 2\nb: {}\n", true),
            (
                "a:\n  - b: 1\n    c: [\"x\", y]\n  - |\n    text\n\n    more\nd: e\n",
                true,
            ),
            ("a: |\n  x\n y\n", false),
            ("a: |\n   \n  x\n", false),
            ("- a\n", false),
            ("a: &x 1\nb: *x\n", false),
            ("a: [1, ]\n", false),
            ("\"a\": 1\na: 2\n", false),
            ("a: 1 # c\nb: \"2\" # d\n", true),
            ("metadata:\n  name:\n    x: 1\n", false),
            ("a:\n\tb: 1\n", false),
        ] {
            assert_eq!(agrees(doc), fast, "{doc}");
        }
    }
}
