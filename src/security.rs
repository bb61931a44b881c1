//! Security facts of a serving runtime: the Pod Security level its pods pass, the user its model
//! container runs as, the paths it writes under a read-only root filesystem, and the traffic its
//! pods need (NetworkPolicies). Each runtime row (`crate::runtime::RUNTIMES`) holds one.

use serde::Serialize;

use crate::config::Runtime;

/// A Pod Security Standard level (`pod-security.kubernetes.io/enforce`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurity {
    /// Privileged pods are refused; anything else passes.
    Baseline,
    /// Hardened pods only (non-root, no privilege escalation, capabilities dropped, seccomp).
    Restricted,
}

impl PodSecurity {
    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            PodSecurity::Baseline => "baseline",
            PodSecurity::Restricted => "restricted",
        }
    }
}

/// What one runtime needs and allows, security-wise.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Security {
    /// The strictest Pod Security level every pod of the runtime passes, including the
    /// containers its operator injects.
    pub pod_security: PodSecurity,
    /// Why, in one line (docs/security.md quotes it).
    pub pod_security_reason: &'static str,
    /// UID and GID of the model container; `None` keeps the image's own (non-root) user because
    /// its files belong to that user.
    pub run_as_user: Option<u32>,
    /// Paths the model container writes: `emptyDir` volumes under a read-only root filesystem.
    pub writable_paths: &'static [&'static str],
    /// Ports of the model pods that clients reach through the runtime's Service (besides the
    /// model's own `port` for a custom image); empty: any port (the runtime's own pods route).
    pub serving_ports: &'static [u16],
    /// Label (key) whose value is the model name on every pod of the model; `None`: the
    /// model's own selector labels reach its pods.
    pub pod_label: Option<&'static str>,
    /// Namespaces whose pods call the model pods: gateways, activators, operators.
    pub control_namespaces: &'static [&'static str],
    /// Whether the runtime's own pods in the namespace talk to each other on any port (Seldon
    /// Core v2's scheduler, agents, Envoy and servers).
    pub intra_namespace: bool,
    /// Whether the model pods fetch the artifact themselves (a storage initializer): their
    /// egress is limited to DNS, the namespace, HTTPS and the cloud's identity endpoint.
    pub fetches_artifact: bool,
    /// How the pods that read the artifact run as a workload identity's ServiceAccount.
    pub identity: IdentityWiring,
    /// How `secretEnv` reaches the model container.
    pub secrets: SecretDelivery,
}

/// How a runtime's pods take on a workload identity (`storage.identity: workload`).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityWiring {
    /// Where mldeploy sets the ServiceAccount, for docs and messages.
    pub how: &'static str,
    /// Whether mldeploy can label the pods (AKS workload identity needs
    /// `azure.workload.identity/use: "true"` on them).
    pub pod_labels: bool,
    /// Whether the artifact is fetched by rclone, which needs a remote configured to take its
    /// credentials from the environment (`env_auth`) instead of keys: Seldon's initializers.
    pub rclone: Option<RcloneConfig>,
    /// Whether models with an identity get a Server of their own, whose pods run as it (Seldon
    /// Core v2 fetches artifacts in the Server's agent, not in the model's pods).
    pub own_server: bool,
}

/// Where a runtime's rclone reads its remote's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RcloneConfig {
    /// `RCLONE_CONFIG_<REMOTE>_<OPTION>` variables from the Secret named by the predictor's
    /// `envSecretRefName` (Seldon Core v1).
    EnvSecret,
    /// A Secret holding the remote as JSON, named by the Model's `secretName` (Seldon Core v2,
    /// whose agent reads it through the API).
    ModelSecret,
}

/// How Secrets reach a runtime's model container.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretDelivery {
    /// `secretEnv` entries with `file: true` can be mounted as files (the runtime lets
    /// mldeploy add volumes to the model container).
    pub files: bool,
    /// Why the rest (or all) stay environment variables.
    pub reason: &'static str,
}

/// The security facts of a runtime (from its row).
pub fn runtime(r: Runtime) -> &'static Security {
    &crate::runtime::spec(r).security
}

/// The Pod Security level a namespace can enforce: the weakest of its runtimes' levels
/// (`restricted` for a namespace without models).
pub fn namespace_level(runtimes: impl IntoIterator<Item = Runtime>) -> PodSecurity {
    runtimes
        .into_iter()
        .map(|r| runtime(r).pod_security)
        .min()
        .unwrap_or(PodSecurity::Restricted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_is_as_strict_as_its_weakest_runtime() {
        assert_eq!(
            namespace_level([Runtime::Deployment]),
            PodSecurity::Restricted
        );
        assert_eq!(
            namespace_level([Runtime::Deployment, Runtime::Kserve]),
            PodSecurity::Baseline
        );
        assert_eq!(namespace_level([]), PodSecurity::Restricted);
    }
}
