//! Name rules of Kubernetes that the config's names must follow.

/// Longest model name: rendered objects append suffixes such as `-predictor` and `-canary`, and
/// runtimes prefix pods further, so the name must leave room under the 63-character limit.
pub const MAX_MODEL_NAME: usize = 40;

/// Checks a DNS-1123 label (`my-model-2`); returns what is wrong.
pub fn dns_label(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 63 {
        return Err(format!(
            "is {} characters; at most 63 are allowed",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("may hold only lowercase letters, digits and '-'".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// A lowercase DNS-1123 label made from `name`, for hints.
pub fn suggest_label(name: &str) -> String {
    let mut out: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').chars().take(63).collect()
}

/// Checks a DNS-1123 subdomain (Secret names).
pub fn dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("must be 1 to 253 characters".into());
    }
    if name.split('.').any(|part| dns_label(part).is_err()) {
        return Err("must be lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit".into());
    }
    Ok(())
}

fn label_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err("must be 1 to 63 characters".into());
    }
    let ok = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    let ends = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !ok || !ends(s.as_bytes().first()) || !ends(s.as_bytes().last()) {
        return Err(
            "must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric".into(),
        );
    }
    Ok(())
}

/// Checks a label key (`team`, `example.com/team`).
pub fn label_key(key: &str) -> Result<(), String> {
    match key.split_once('/') {
        Some((prefix, name)) => {
            dns_subdomain(prefix).map_err(|e| format!("prefix {e}"))?;
            label_name(name)
        }
        None => label_name(key),
    }
}

/// Checks a label value (may be empty).
pub fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    label_name(value)
}

/// Checks an environment variable name (printable ASCII, no '=').
pub fn env_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if !name.bytes().all(|b| b.is_ascii_graphic() && b != b'=') {
        return Err("may hold printable ASCII characters except '=' and spaces".into());
    }
    if name.as_bytes()[0].is_ascii_digit() {
        return Err("must not start with a digit".into());
    }
    Ok(())
}

/// Checks a Secret key.
pub fn secret_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 253 {
        return Err("must be 1 to 253 characters".into());
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err("may hold alphanumerics, '-', '_' and '.'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(dns_label("fraud-xgb").is_ok());
        assert!(dns_label("Fraud").is_err());
        assert!(dns_label("-a").is_err());
        assert!(dns_label(&"a".repeat(64)).is_err());
        assert_eq!(suggest_label("My_Model!"), "my-model");
        assert!(label_key("example.com/team").is_ok());
        assert!(label_key("bad key").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("a b").is_err());
        assert!(env_name("LOG_LEVEL").is_ok());
        assert!(env_name("A=B").is_err());
        assert!(dns_subdomain("model-store.v1").is_ok());
    }
}
