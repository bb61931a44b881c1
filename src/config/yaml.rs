//! A YAML document as a tree of nodes that remember where they came from.
//!
//! serde-saphyr parses (with its resource budget: depth, aliases, node count) and hands every node
//! over as a `Spanned` value; we keep the tree so that later stages can merge layers (defaults,
//! environment overrides) and still point each error at the line and column the user wrote.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Where a node starts in the source text, and how long it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Loc {
    /// 1-based line; 0 when unknown.
    pub line: u32,
    /// 1-based column (in characters); 0 when unknown.
    pub column: u32,
    /// Byte offset into the source.
    pub offset: usize,
    /// Length in bytes (0 when unknown).
    pub len: usize,
}

impl Loc {
    fn from_saphyr(l: &serde_saphyr::Location) -> Self {
        let span = l.span();
        Loc {
            line: u32::try_from(l.line()).unwrap_or(u32::MAX),
            column: u32::try_from(l.column()).unwrap_or(u32::MAX),
            offset: span
                .byte_offset()
                .and_then(|o| usize::try_from(o).ok())
                .unwrap_or(0),
            len: span
                .byte_len()
                .and_then(|o| usize::try_from(o).ok())
                .unwrap_or(0),
        }
    }
}

/// The value of a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in i64.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// A string (quoted, or plain and not another type).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

/// A YAML node with its location and, for plain non-string scalars, the text as written
/// (`1.30` stays `1.30` when a field wants a string).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the node is in the source.
    pub loc: Loc,
    /// Source text of a plain scalar that parsed as null, bool or number.
    pub text: Option<String>,
    /// Set on a node already reported as wrong, so that reading the tree again skips it and
    /// finds the next problem (see [`crate::config::de::all_errors`]).
    pub(crate) skip: bool,
}

/// One element of a path into the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

impl fmt::Display for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seg::Key(k) => f.write_str(k),
            Seg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Writes a path as `models[0].gpu.type`.
pub fn path_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A YAML syntax or resource-limit error, with its location when known.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    /// What went wrong, in the parser's words.
    pub message: String,
    /// Where.
    pub loc: Option<Loc>,
}

/// Parses one YAML document into a node tree.
///
/// Empty input (or only comments) gives a `Null` node. Resource limits (nesting depth, aliases,
/// node count) come from serde-saphyr's budget, so hostile input fails fast instead of hanging.
pub fn parse(src: &str) -> Result<Node, SyntaxError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
    };
    let mut node: Node = serde_saphyr::from_str_with_options(src, options).map_err(|e| {
        let loc = e.location().map(|l| Loc::from_saphyr(&l));
        SyntaxError {
            message: clean_message(&e.to_string()),
            loc,
        }
    })?;
    node.fill_text(src);
    Ok(node)
}

/// serde-saphyr appends " at line X column Y" to some messages; we print the location ourselves.
fn clean_message(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg).trim();
    let first = match first.find(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    // "duplicate mapping key: image, set DuplicateKeyPolicy in Options if acceptable"
    if let Some(rest) = first.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(", set ").next().unwrap_or(rest);
        return format!("duplicate key `{key}`");
    }
    first.to_string()
}

impl Node {
    /// A node with no location (used for values mldeploy adds itself).
    pub fn synthetic(value: Value) -> Node {
        Node {
            value,
            loc: Loc::default(),
            text: None,
            skip: false,
        }
    }

    fn fill_text(&mut self, src: &str) {
        match &mut self.value {
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                let (start, end) = (self.loc.offset, self.loc.offset + self.loc.len);
                if self.loc.len > 0
                    && let Some(t) = src.get(start..end)
                {
                    self.text = Some(t.trim().to_string());
                }
            }
            Value::Str(_) => {}
            Value::Seq(items) => items.iter_mut().for_each(|n| n.fill_text(src)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.fill_text(src);
                v.fill_text(src);
            }),
        }
    }

    /// A short name for the node's type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The string value of a key node (`Some` for string keys and plain scalars).
    pub fn as_key(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            _ => self.text.clone(),
        }
    }

    /// The value under `key` in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_key().as_deref() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The key node for `key` in a mapping node.
    pub fn key_node(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_key().as_deref() == Some(key))
                .map(|(k, _)| k),
            _ => None,
        }
    }

    /// The node at exactly `path`, if there is one.
    pub fn find(&self, path: &[Seg]) -> Option<&Node> {
        path.iter()
            .try_fold(self, |node, seg| match (seg, &node.value) {
                (Seg::Key(k), Value::Map(_)) => node.get(k),
                (Seg::Index(i), Value::Seq(items)) => items.get(*i),
                _ => None,
            })
    }

    /// Follows a path; stops at the deepest node that exists.
    pub fn lookup(&self, path: &[Seg]) -> &Node {
        (0..=path.len())
            .rev()
            .find_map(|n| self.find(&path[..n]))
            .unwrap_or(self)
    }

    /// Whether the node at exactly `path` exists.
    pub fn exists(&self, path: &[Seg]) -> bool {
        self.find(path).is_some()
    }

    /// Marks the node at exactly `path` to be skipped; false if there is no such node.
    pub(crate) fn mark_skip(&mut self, path: &[Seg]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        let next = match (first, &mut self.value) {
            (Seg::Key(k), Value::Map(entries)) => entries
                .iter_mut()
                .find(|(key, _)| key.as_key().as_deref() == Some(k.as_str()))
                .map(|(_, v)| v),
            (Seg::Index(i), Value::Seq(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) if rest.is_empty() => {
                let fresh = !n.skip;
                n.skip = true;
                fresh
            }
            Some(n) => n.mark_skip(rest),
            None => false,
        }
    }

    /// Whether the node at exactly `path` exists and was marked to be skipped.
    pub(crate) fn is_skipped(&self, path: &[Seg]) -> bool {
        self.find(path).is_some_and(|n| n.skip)
    }

    /// Merges `patch` over `self` with JSON merge-patch rules (RFC 7386): mappings merge key by
    /// key, `null` removes a key, anything else replaces. Nodes keep their own locations, so an
    /// error in the merged result points at the layer the value came from.
    pub fn merge(&mut self, patch: &Node) {
        match (&mut self.value, &patch.value) {
            (Value::Map(base), Value::Map(over)) => {
                for (k, v) in over {
                    let key = k.as_key();
                    let pos = base.iter().position(|(bk, _)| bk.as_key() == key);
                    match (pos, &v.value) {
                        (Some(i), Value::Null) => {
                            base.remove(i);
                        }
                        (None, Value::Null) => {}
                        (Some(i), _) => base[i].1.merge(v),
                        (None, _) => {
                            let mut fresh = Node::synthetic(Value::Null);
                            fresh.loc = v.loc;
                            fresh.merge(v);
                            base.push((k.clone(), fresh));
                        }
                    }
                }
                self.loc = patch.loc;
            }
            (_, Value::Map(over)) => {
                // A mapping replacing a non-mapping: strip nulls as merge-patch does.
                let mut fresh = Node::synthetic(Value::Map(Vec::new()));
                fresh.loc = patch.loc;
                let mut whole = Node::synthetic(Value::Map(over.clone()));
                whole.loc = patch.loc;
                fresh.merge(&whole);
                *self = fresh;
            }
            _ => *self = patch.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(d)?;
        Ok(Node {
            value: spanned.value,
            loc: Loc::from_saphyr(&spanned.referenced),
            text: None,
            skip: false,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Value, E> {
        Err(E::custom("binary values are not supported"))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Node, Node>()? {
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_locations_and_plain_text() {
        let n = parse("a: 1.30\nb:\n  - x\n  - \"y\"\nc: yes\n").expect("parses");
        let a = n.get("a").expect("a");
        assert_eq!(a.value, Value::Float(1.3));
        assert_eq!(a.text.as_deref(), Some("1.30"));
        assert_eq!((a.loc.line, a.loc.column), (1, 4));
        let b1 = n.lookup(&[Seg::Key("b".into()), Seg::Index(1)]);
        assert_eq!(b1.value, Value::Str("y".into()));
        assert_eq!(b1.loc.line, 4);
        assert_eq!(n.get("c").expect("c").value, Value::Str("yes".into()));
    }

    #[test]
    fn empty_is_null() {
        assert_eq!(parse("").expect("parses").value, Value::Null);
        assert_eq!(
            parse("# only a comment\n").expect("parses").value,
            Value::Null
        );
    }

    #[test]
    fn merge_patch_semantics() {
        let mut base = parse("a: 1\nb: {x: 1, y: 2}\nc: [1]\n").expect("parses");
        let patch = parse("a: null\nb: {y: 3, z: 4}\nc: [2, 3]\nd: {e: null, f: 1}\n").expect("p");
        base.merge(&patch);
        assert!(base.get("a").is_none());
        let b = base.get("b").expect("b");
        assert_eq!(b.get("x").expect("x").value, Value::Int(1));
        assert_eq!(b.get("y").expect("y").value, Value::Int(3));
        assert_eq!(b.get("z").expect("z").value, Value::Int(4));
        assert_eq!(
            b.get("y").expect("y").loc.line,
            2,
            "merged value keeps the patch's location"
        );
        let d = base.get("d").expect("d");
        assert!(d.get("e").is_none());
    }

    #[test]
    fn rejects_hostile_input_quickly() {
        let deep = "[".repeat(10_000);
        assert!(parse(&deep).is_err());
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\ni: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
        assert!(parse(bomb).is_err());
        assert!(parse("a:\n\tb: 1\n").is_err());
    }

    #[test]
    fn rejects_duplicate_keys_with_a_location() {
        let e = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert_eq!(e.loc.map(|l| l.line), Some(3));
        assert!(e.message.contains("duplicate key `a`"), "{}", e.message);
    }
}
