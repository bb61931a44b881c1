//! Name rules of Kubernetes that the config's names must follow.

/// Longest model name: rendered objects append suffixes such as `-predictor` and `-canary`, and
/// runtimes prefix pods further, so the name must leave room under the 63-character limit.
pub const MAX_MODEL_NAME: usize = 40;

/// Where Terraform keeps a cluster's state unless the config says otherwise, for each backend.
/// Project and cluster names are DNS labels, which hold `-` but never `/` or `.`: joining them
/// with `/` or `.` keeps two projects apart whose names differ only in where a dash falls
/// (`a-b` + `c` and `a` + `b-c`), where a `-` would not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDefaults {
    /// GCS object prefix (a folder): `<project>/<cluster>`.
    pub gcs_prefix: String,
    /// S3 object key: `<project>/<cluster>/terraform.tfstate`.
    pub s3_key: String,
    /// Azure blob name: `<project>/<cluster>.tfstate`.
    pub azurerm_key: String,
    /// Suffix of the Kubernetes Secret `tfstate-default-<suffix>`, also a label value (at most
    /// 63 characters, `.` allowed, no `/`): `<project>.<cluster>.state`. The fixed tail keeps it
    /// from ending in `-<number>`, which the backend reserves for its chunks.
    pub secret_suffix: String,
}

impl StateDefaults {
    /// The defaults for a cluster of a project.
    pub fn new(project: &str, cluster: &str) -> Self {
        StateDefaults {
            gcs_prefix: format!("{project}/{cluster}"),
            s3_key: format!("{project}/{cluster}/terraform.tfstate"),
            azurerm_key: format!("{project}/{cluster}.tfstate"),
            secret_suffix: format!("{project}.{cluster}.state"),
        }
    }

    /// The Secret suffix before mldeploy kept names apart (`<project>-<cluster>`), to find state
    /// kept under it.
    pub fn legacy_secret_suffix(project: &str, cluster: &str) -> String {
        format!("{project}-{cluster}")
    }
}

/// Checks a Kubernetes backend `secret_suffix`: part of a Secret name and a label value, so
/// lowercase letters, digits, `-` and `.`, at most 63 characters, starting and ending with a
/// letter or digit, and not ending in `-<number>` (the backend's chunk suffix).
pub fn secret_suffix(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err("must be 1 to 63 characters".into());
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err("may hold only lowercase letters, digits, '-' and '.'".into());
    }
    if dns_subdomain(s).is_err() {
        return Err("each '.'-separated part must start and end with a letter or digit".into());
    }
    if let Some((_, tail)) = s.rsplit_once('-')
        && !tail.is_empty()
        && tail.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("must not end in '-<number>' (the backend numbers its chunks so)".into());
    }
    Ok(())
}

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
