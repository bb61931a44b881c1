//! Quoting for values that reach YAML or HCL. Templates autoescape through these, so every
//! string a user supplied arrives as one double-quoted scalar: it can never add a field, a
//! document or an interpolation, and it reads back byte for byte.

use std::io::Write;

/// Writes `s` as a double-quoted string valid in YAML 1.1 and 1.2 (and JSON): quotes,
/// backslashes, control characters, and the characters YAML 1.1 treats as line breaks
/// (U+0085, U+2028, U+2029) or forbids are escaped.
pub fn yaml(s: &str, out: &mut dyn Write) -> std::io::Result<()> {
    quoted(s, out, false)
}

/// Writes `s` as an HCL string literal: as [`yaml`], and `${` / `%{` are doubled so that no value
/// can start a Terraform interpolation or directive.
pub fn hcl(s: &str, out: &mut dyn Write) -> std::io::Result<()> {
    quoted(s, out, true)
}

/// The quoted form as a String.
pub fn yaml_string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    let _ = yaml(s, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && c != '\u{2028}'
        && c != '\u{2029}'
        && c != '\u{feff}'
}

fn quoted(s: &str, out: &mut dyn Write, hcl: bool) -> std::io::Result<()> {
    out.write_all(b"\"")?;
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let plain = match c {
            '"' | '\\' => false,
            '$' | '%' => !(hcl && bytes.get(i + 1) == Some(&b'{')),
            c => printable(c),
        };
        if plain {
            continue;
        }
        out.write_all(&bytes[start..i])?;
        start = i + c.len_utf8();
        match c {
            '"' => out.write_all(b"\\\"")?,
            '\\' => out.write_all(b"\\\\")?,
            '\n' => out.write_all(b"\\n")?,
            '\r' => out.write_all(b"\\r")?,
            '\t' => out.write_all(b"\\t")?,
            '$' => out.write_all(b"$$")?,
            '%' => out.write_all(b"%%")?,
            c if (c as u32) <= 0xffff => write!(out, "\\u{:04x}", c as u32)?,
            c => write!(out, "\\U{:08x}", c as u32)?,
        }
    }
    out.write_all(&bytes[start..])?;
    out.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hcl_string(s: &str) -> String {
        let mut out = Vec::new();
        hcl(s, &mut out).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn quotes_the_dangerous_ones() {
        assert_eq!(yaml_string("plain"), "\"plain\"");
        assert_eq!(yaml_string("key: value # x"), "\"key: value # x\"");
        assert_eq!(yaml_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(
            yaml_string("\u{2028}\u{85}\u{1}"),
            "\"\\u2028\\u0085\\u0001\""
        );
        assert_eq!(yaml_string("ü 🚀"), "\"ü 🚀\"");
        assert_eq!(
            hcl_string("${var.x} %{if} $5 %d"),
            "\"$${var.x} %%{if} $5 %d\""
        );
    }
}
