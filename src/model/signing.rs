//! Image signature policy: the cosign public key the config names (PEM text or a file next to
//! the config), resolved once so that rendering stays pure.

use std::path::Path;

use serde::Serialize;

use crate::config::{ImageSignatures, SignatureAction};

/// Largest key file read (a PEM public key is a few hundred bytes).
const MAX_KEY_BYTES: usize = 64 * 1024;

/// A resolved signature policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignaturePolicy {
    /// The cosign public key, PEM.
    pub public_key: String,
    /// `Enforce` or `Audit`.
    pub action: &'static str,
    /// Whether `mldeploy infra` installs Kyverno.
    pub install_kyverno: bool,
}

/// The policy of `security.imageSignatures`; Err is a message and a hint.
pub fn resolve(
    sig: &ImageSignatures,
    config_dir: &Path,
) -> Result<SignaturePolicy, (String, String)> {
    let Some(key) = sig.cosign_key.as_deref() else {
        return Err((
            "`imageSignatures` needs `cosignKey`".into(),
            "the PEM public key (`cosign generate-key-pair` writes cosign.pub), or its file name"
                .into(),
        ));
    };
    let pem = if key.trim_start().starts_with("-----BEGIN") {
        key.to_string()
    } else {
        let path = config_dir.join(key);
        let bytes = crate::fsx::read_input(&path, MAX_KEY_BYTES).map_err(|e| {
            (
                format!("cannot read the cosign key `{key}`: {e}"),
                "a file relative to this config, or the PEM text itself".to_string(),
            )
        })?;
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let pem = pem.trim().to_string();
    if !(pem.starts_with("-----BEGIN PUBLIC KEY-----") && pem.ends_with("-----END PUBLIC KEY-----"))
    {
        return Err((
            "the cosign key is not a PEM public key".into(),
            "`-----BEGIN PUBLIC KEY-----` … `-----END PUBLIC KEY-----` (cosign.pub, never the private key)".into(),
        ));
    }
    Ok(SignaturePolicy {
        public_key: pem,
        action: match sig.action.unwrap_or(SignatureAction::Enforce) {
            SignatureAction::Enforce => "Enforce",
            SignatureAction::Audit => "Audit",
        },
        install_kyverno: sig.install_kyverno,
    })
}
