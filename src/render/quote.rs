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
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // Printable ASCII, most of what templates quote, is decided on the byte.
        if matches!(b, 0x20..=0x7e) && b != b'"' && b != b'\\' && !(hcl && matches!(b, b'$' | b'%'))
        {
            i += 1;
            continue;
        }
        let c = if b.is_ascii() {
            char::from(b)
        } else {
            s[i..].chars().next().unwrap_or_default()
        };
        let plain = match c {
            '"' | '\\' => false,
            // Reached only for HCL.
            '$' | '%' => bytes.get(i + 1) != Some(&b'{'),
            c => printable(c),
        };
        if plain {
            i += c.len_utf8();
            continue;
        }
        out.write_all(&bytes[start..i])?;
        i += c.len_utf8();
        start = i;
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

    /// The char-by-char definition the byte loop of [`quoted`] must agree with.
    fn reference(s: &str, hcl: bool) -> String {
        let mut out = String::from("\"");
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '$' | '%' if hcl && chars.peek() == Some(&'{') => {
                    out.push(c);
                    out.push(c);
                }
                c if printable(c) => out.push(c),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push_str(&format!("\\U{:08x}", c as u32)),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn the_byte_loop_quotes_as_the_definition_does() {
        let pieces = [
            "a",
            " ",
            "~",
            "\u{7f}",
            "\u{0}",
            "\u{1f}",
            "\"",
            "\\",
            "$",
            "%",
            "{",
            "${",
            "%{",
            "\n",
            "\r",
            "\t",
            "\u{85}",
            "\u{a0}",
            "ü",
            "\u{2028}",
            "\u{2029}",
            "\u{d7ff}",
            "\u{e000}",
            "\u{feff}",
            "\u{fffd}",
            "\u{fffe}",
            "🚀",
            "\u{10ffff}",
        ];
        for a in pieces {
            for b in pieces {
                for c in ["", "x", "{"] {
                    let s = format!("{a}{b}{c}");
                    let mut out = Vec::new();
                    yaml(&s, &mut out).expect("write");
                    assert_eq!(
                        String::from_utf8(out).expect("utf-8"),
                        reference(&s, false),
                        "{s:?}"
                    );
                    let mut out = Vec::new();
                    hcl(&s, &mut out).expect("write");
                    assert_eq!(
                        String::from_utf8(out).expect("utf-8"),
                        reference(&s, true),
                        "{s:?}"
                    );
                }
            }
        }
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
