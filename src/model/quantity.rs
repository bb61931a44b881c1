//! Kubernetes resource quantities (`500m`, `2`, `1.5Gi`, `1e3`), parsed the way the API server does.

/// A parsed quantity: its value in base units and the text as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    /// Value in base units (cores, bytes).
    pub value: f64,
    /// The text as written (rendered unchanged).
    pub text: String,
}

const SUFFIXES: &[(&str, f64)] = &[
    ("Ki", 1024.0),
    ("Mi", 1024.0 * 1024.0),
    ("Gi", 1024.0 * 1024.0 * 1024.0),
    ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("Pi", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("Ei", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("n", 1e-9),
    ("u", 1e-6),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
];

/// What a quantity looks like, for hints.
pub const QUANTITY_HINT: &str =
    "a Kubernetes quantity: a number with an optional suffix, e.g. 500m, 2, 1.5, 512Mi, 8Gi";

impl Quantity {
    /// Parses a quantity; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Quantity> {
        let s = text;
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1.0, &s[1..]),
            Some(b'-') => (-1.0, &s[1..]),
            _ => (1.0, s),
        };
        let digits_end = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
            .map_or(rest.len(), |(i, _)| i);
        let (number, suffix) = rest.split_at(digits_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let base: f64 = number.parse().ok()?;
        let multiplier = if suffix.is_empty() {
            1.0
        } else if let Some((_, m)) = SUFFIXES.iter().find(|(name, _)| *name == suffix) {
            *m
        } else if let Some(exp) = suffix.strip_prefix(['e', 'E']) {
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            10f64.powi(exp.parse::<i32>().ok()?)
        } else {
            return None;
        };
        let value = sign * base * multiplier;
        value.is_finite().then(|| Quantity {
            value,
            text: text.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_forms() {
        let v = |s: &str| Quantity::parse(s).map(|q| q.value);
        assert_eq!(v("500m"), Some(0.5));
        assert_eq!(v("2"), Some(2.0));
        assert_eq!(v("1.5"), Some(1.5));
        assert_eq!(v("1Gi"), Some(1024.0 * 1024.0 * 1024.0));
        assert_eq!(v("1G"), Some(1e9));
        assert_eq!(v("1e3"), Some(1000.0));
        assert_eq!(v("1E"), Some(1e18));
        assert_eq!(v("-1"), Some(-1.0));
        assert_eq!(v(".5"), Some(0.5));
        for bad in [
            "", "m", "1gb", "1 Gi", "abc", "1..2", "1e", "Gi", "1GiB", "0x10",
        ] {
            assert_eq!(v(bad), None, "{bad:?}");
        }
    }
}
