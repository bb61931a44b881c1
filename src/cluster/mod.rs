//! The cluster layer: the only code that talks to a Kubernetes API server. Everything above it
//! is pure; here a rendered [`crate::bundle::Bundle`] becomes a [`plan::Plan`] (compare with live
//! state), the plan is executed ([`apply`]) and waited on ([`wait`]).

pub mod api;
pub mod apply;
pub mod applyset;
pub mod connect;
#[cfg(test)]
pub mod memory;
pub mod plan;
pub mod progress;
pub mod status;
pub mod wait;

#[cfg(test)]
mod tests;

use std::time::Duration;

/// The field manager every mldeploy write uses.
pub const FIELD_MANAGER: &str = "mldeploy";

/// Why a cluster operation failed. Each variant says which cluster/context and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable kubeconfig or context.
    #[error("cannot connect to {target}: {message}")]
    Connect {
        /// Context or kubeconfig.
        target: String,
        /// What went wrong.
        message: String,
        /// What to do.
        hint: String,
    },
    /// A kind the bundle needs is not served by the cluster (its CRD is missing).
    #[error("{} not installed on context {context}", kinds.join(", ") + if kinds.len() == 1 { " is" } else { " are" })]
    NotInstalled {
        /// `Kind (group/version)` for each missing kind.
        kinds: Vec<String>,
        /// Context.
        context: String,
        /// What to do.
        hint: String,
    },
    /// The API server refused a request.
    #[error("{what}: {message} (HTTP {code}{})", reason.as_deref().map(|r| format!(" {r}")).unwrap_or_default())]
    Api {
        /// The request, e.g. `apply Deployment visual-qc/ocr`.
        what: String,
        /// HTTP status.
        code: u16,
        /// Kubernetes reason.
        reason: Option<String>,
        /// Message.
        message: String,
    },
    /// Another field manager owns fields this apply sets.
    #[error("{object}: fields are owned by another manager: {}", conflicts.iter().map(|(f, m)| format!("{f} (owned by {m})")).collect::<Vec<_>>().join(", "))]
    Conflict {
        /// The object.
        object: String,
        /// (field, manager) pairs.
        conflicts: Vec<(String, String)>,
    },
    /// Objects did not become ready in time.
    #[error("{} object(s) not ready after {}s", not_ready.len(), timeout.as_secs())]
    NotReady {
        /// Each object and why.
        not_ready: Vec<wait::NotReady>,
        /// The timeout.
        timeout: Duration,
    },
    /// The network failed (after retries).
    #[error("{what}: {message}")]
    Transport {
        /// The request.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// A request did not finish within its deadline (retries included).
    #[error("{what}: no answer within {}s", after.as_secs())]
    Timeout {
        /// The request.
        what: String,
        /// The deadline.
        after: Duration,
    },
    /// The server answered 2xx with something that is not what was asked for.
    #[error("{what}: unexpected answer: {message}")]
    BadResponse {
        /// The request.
        what: String,
        /// What was wrong with it.
        message: String,
    },
    /// Rendered objects exist on the cluster but are not members of this environment's ApplySet.
    #[error("{} object(s) exist but were not created by this environment, so they are not mldeploy's to change:\n{}", objects.len(), objects.iter().map(|o| format!("  - {o}")).collect::<Vec<_>>().join("\n"))]
    NotOurs {
        /// `Kind namespace/name (why)` for each.
        objects: Vec<String>,
    },
    /// Several objects failed in one apply group.
    #[error("{} object(s) failed to apply:\n{}", errors.len(), errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Many {
        /// The failures.
        errors: Vec<ClusterError>,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl ClusterError {
    /// What a person should do about it, if there is something specific.
    pub fn hint(&self) -> Option<String> {
        match self {
            ClusterError::Connect { hint, .. } | ClusterError::NotInstalled { hint, .. } => Some(hint.clone()),
            ClusterError::Conflict { .. } => Some(
                "another tool manages these fields; change them there, or take them over with --force-conflicts".into(),
            ),
            ClusterError::NotReady { .. } => Some("see each object's conditions and events above; raise --timeout if it is only slow".into()),
            ClusterError::Api { code: 401 | 403, .. } => {
                Some("check your credentials and RBAC for this context (kubectl auth can-i)".into())
            }
            ClusterError::Transport { .. } => Some("is the cluster reachable from here? (kubectl cluster-info)".into()),
            ClusterError::Timeout { .. } => Some("is the API server overloaded or unreachable? raise --request-timeout if it is only slow".into()),
            ClusterError::NotOurs { .. } => Some("rename the model, remove the objects, or take them over with --adopt (they then belong to this environment and `delete` removes them)".into()),
            _ => None,
        }
    }
}

/// `text` on one line, safe to print on a terminal ([`crate::diag::escape`]) and cut to `max`
/// characters with an ellipsis: for what a server or a plugin said.
pub fn escape(text: &str, max: usize) -> String {
    let line: String = text
        .chars()
        .take(max)
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    let mut out = crate::diag::escape(&line);
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}
