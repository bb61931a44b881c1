//! Platforms (clouds) as data: one [`Platform`] row per cloud says where Terraform keeps state,
//! how a kubeconfig authenticates, which Terraform outputs it needs, what the node pool names may
//! be, and how accelerators are scheduled. Validation, rendering, `infra` and `gpus` read these
//! rows, so a new cloud is a row here plus a Terraform folder `templates/terraform/<name>/`.

use serde::Serialize;

use crate::catalog::Scheduling;
use crate::config::Cloud;

/// The kubeconfig exec credential plugin of a managed cloud.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecPluginSpec {
    /// Program.
    pub command: &'static str,
    /// Arguments; `{cluster}` and `{region}` are filled in.
    pub args: &'static [&'static str],
    /// How to install it.
    pub install_hint: &'static str,
    /// Whether the plugin reads the cluster's endpoint from the exec info (GKE's does).
    pub provide_cluster_info: bool,
}

/// What node pool names a cloud accepts beyond DNS-1123 labels.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolNames {
    /// Longest name.
    pub max_len: usize,
    /// Whether `-` is allowed.
    pub hyphens: bool,
    /// The rule as the error message says it.
    pub rule: &'static str,
}

impl PoolNames {
    /// Whether `name` (already a DNS label) is accepted.
    pub fn accepts(&self, name: &str) -> bool {
        name.len() <= self.max_len
            && (self.hyphens || !name.contains('-'))
            && name.starts_with(|c: char| c.is_ascii_lowercase())
    }

    /// A name that is accepted, close to `name`.
    pub fn fix(&self, name: &str) -> String {
        let mut fix: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || (self.hyphens && *c == '-'))
            .collect();
        if !fix.starts_with(|c: char| c.is_ascii_lowercase()) {
            fix.insert(0, 'p');
        }
        fix.truncate(self.max_len);
        fix.trim_end_matches('-').to_string()
    }
}

/// How a platform partitions a GPU with MIG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MigSupport {
    /// GKE partitions the GPUs itself (`gpu_partition_size`): each slice is an `nvidia.com/gpu`
    /// on nodes labelled with the partition size.
    GkePartition {
        /// Node label whose value is the profile.
        node_label: &'static str,
    },
    /// The NVIDIA GPU operator's MIG manager cuts the GPUs as the pool's `nvidia.com/mig.config`
    /// label says; slices are `nvidia.com/mig-<profile>` (mixed strategy).
    GpuOperator,
}

/// How a platform time-slices (shares) a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SharingSupport {
    /// GKE's own time-sharing (`gpu_sharing_config`); nodes are labelled with the strategy and
    /// the clients per GPU.
    GkeTimeSharing,
    /// The GPU operator's device-plugin config (a ConfigMap entry per share count, picked by the
    /// node label `nvidia.com/device-plugin.config`); GPU feature discovery adds `-SHARED` to the
    /// product label.
    GpuOperator,
}

/// One platform.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    /// The cloud.
    pub cloud: Cloud,
    /// Product name for messages (`Google Cloud`).
    pub title: &'static str,
    /// Its Kubernetes product (`GKE`).
    pub product: &'static str,
    /// Whether mldeploy creates the cluster (region, node pools, Terraform for the cluster).
    pub managed: bool,
    /// Field of the cloud's own settings block (`gcp:`), if it has one.
    pub settings: Option<&'static str>,
    /// When the settings block is required: the message and a hint.
    pub settings_required: Option<(&'static str, &'static str)>,
    /// Terraform backend that keeps state in the cloud's own storage.
    pub state_backend: &'static str,
    /// The storage product of that backend, for messages.
    pub state_storage: &'static str,
    /// An example `state` block.
    pub state_example: &'static str,
    /// Kubeconfig exec plugin (None: an existing context's credentials are used).
    pub exec_plugin: Option<ExecPluginSpec>,
    /// Terraform outputs the kubeconfig is built from.
    pub kubeconfig_outputs: &'static [&'static str],
    /// Node pool name rules (None: DNS labels are enough).
    pub pool_names: Option<PoolNames>,
    /// How GPU pods are scheduled.
    pub scheduling: Scheduling,
    /// MIG partitioning.
    pub mig: MigSupport,
    /// GPU time-slicing.
    pub sharing: SharingSupport,
    /// Region example for hints.
    pub region_example: &'static str,
    /// How pods take on a cloud identity (None: the platform has none).
    pub workload_identity: Option<WorkloadIdentity>,
}

/// How a cloud binds a Kubernetes ServiceAccount to a cloud identity.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadIdentity {
    /// The product (`GKE Workload Identity`).
    pub product: &'static str,
    /// Annotation of the ServiceAccount and its value: `{name}` (the identity), `{project}`
    /// (the GCP project) and `{clientId}` are filled in. None: the binding lives in the cloud
    /// only (an EKS Pod Identity association).
    pub annotation: Option<(&'static str, &'static str)>,
    /// Whether the annotation's value is only known after `mldeploy infra apply` (AKS client id).
    pub annotation_after_infra: bool,
    /// Label the pods need for the cloud's webhook to give them a token.
    pub pod_label: Option<(&'static str, &'static str)>,
}

const GPU_TAINT: crate::catalog::Taint = crate::catalog::Taint {
    key: "nvidia.com/gpu",
    value: "true",
    effect: "NoSchedule",
};

/// Every platform, in catalog order.
pub const PLATFORMS: &[Platform] = &[
    Platform {
        cloud: Cloud::Gcp,
        product: "GKE",
        title: "Google Cloud",
        managed: true,
        settings: Some("gcp"),
        settings_required: Some((
            "a gcp cluster needs `gcp: {project: ...}`",
            "the GCP project id",
        )),
        state_backend: "gcs",
        state_storage: "Google Cloud Storage",
        state_example: "`state: {gcs: {bucket: my-tfstate}}`",
        exec_plugin: Some(ExecPluginSpec {
            command: "gke-gcloud-auth-plugin",
            args: &[],
            install_hint: "install it: `gcloud components install gke-gcloud-auth-plugin` (or the google-cloud-cli-gke-gcloud-auth-plugin package), then `gcloud auth login`",
            provide_cluster_info: true,
        }),
        kubeconfig_outputs: &["cluster_name", "cluster_endpoint", "cluster_ca_certificate"],
        pool_names: Some(PoolNames {
            max_len: 40,
            hyphens: true,
            rule: "at most 40 characters, starting with a letter",
        }),
        scheduling: Scheduling {
            cloud: Cloud::Gcp,
            node_label: "cloud.google.com/gke-accelerator",
            taint: Some(crate::catalog::Taint {
                value: "present",
                ..GPU_TAINT
            }),
            needs_device_plugin: false,
        },
        mig: MigSupport::GkePartition {
            node_label: "cloud.google.com/gke-gpu-partition-size",
        },
        sharing: SharingSupport::GkeTimeSharing,
        region_example: "europe-west4",
        workload_identity: Some(WorkloadIdentity {
            product: "GKE Workload Identity",
            annotation: Some((
                "iam.gke.io/gcp-service-account",
                "{name}@{project}.iam.gserviceaccount.com",
            )),
            annotation_after_infra: false,
            pod_label: None,
        }),
    },
    Platform {
        cloud: Cloud::Aws,
        product: "EKS",
        title: "AWS",
        managed: true,
        settings: Some("aws"),
        settings_required: None,
        state_backend: "s3",
        state_storage: "Amazon S3",
        state_example: "`state: {s3: {bucket: my-tfstate, dynamodbTable: tfstate-lock}}`",
        exec_plugin: Some(ExecPluginSpec {
            command: "aws",
            args: &[
                "eks",
                "get-token",
                "--cluster-name",
                "{cluster}",
                "--region",
                "{region}",
            ],
            install_hint: "install the AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html), then `aws configure` or `aws sso login`",
            provide_cluster_info: false,
        }),
        kubeconfig_outputs: &[
            "cluster_name",
            "cluster_endpoint",
            "cluster_ca_certificate",
            "region",
        ],
        pool_names: None,
        scheduling: Scheduling {
            cloud: Cloud::Aws,
            node_label: "k8s.amazonaws.com/accelerator",
            taint: Some(GPU_TAINT),
            needs_device_plugin: true,
        },
        mig: MigSupport::GpuOperator,
        sharing: SharingSupport::GpuOperator,
        region_example: "eu-central-1",
        // EKS Pod Identity rather than IRSA: the association lives in EKS (no annotation, no
        // OIDC provider per cluster, no role trust policy naming the cluster's issuer).
        workload_identity: Some(WorkloadIdentity {
            product: "EKS Pod Identity",
            annotation: None,
            annotation_after_infra: false,
            pod_label: None,
        }),
    },
    Platform {
        cloud: Cloud::Azure,
        product: "AKS",
        title: "Azure",
        managed: true,
        settings: Some("azure"),
        settings_required: Some((
            "an azure cluster needs `azure: {resourceGroup: ...}`",
            "the resource group that holds the cluster",
        )),
        state_backend: "azurerm",
        state_storage: "Azure Storage",
        state_example: "`state: {azurerm: {storageAccount: mytfstate, container: tfstate}}`",
        exec_plugin: Some(ExecPluginSpec {
            command: "kubelogin",
            args: &[
                "get-token",
                "--login",
                "azurecli",
                "--server-id",
                crate::infra::AKS_SERVER_ID,
            ],
            install_hint: "install it: `az aks install-cli` (or https://azure.github.io/kubelogin/install.html), then `az login`",
            provide_cluster_info: false,
        }),
        kubeconfig_outputs: &["cluster_name", "cluster_endpoint", "cluster_ca_certificate"],
        pool_names: Some(PoolNames {
            max_len: 12,
            hyphens: false,
            rule: "1 to 12 lowercase letters and digits, starting with a letter",
        }),
        scheduling: Scheduling {
            cloud: Cloud::Azure,
            node_label: "mldeploy.io/accelerator",
            taint: Some(GPU_TAINT),
            needs_device_plugin: true,
        },
        mig: MigSupport::GpuOperator,
        sharing: SharingSupport::GpuOperator,
        region_example: "westeurope",
        workload_identity: Some(WorkloadIdentity {
            product: "AKS Workload Identity",
            annotation: Some(("azure.workload.identity/client-id", "{clientId}")),
            annotation_after_infra: true,
            pod_label: Some(("azure.workload.identity/use", "true")),
        }),
    },
    Platform {
        cloud: Cloud::Onprem,
        product: "Kubernetes",
        title: "kubeconfig",
        managed: false,
        settings: None,
        settings_required: None,
        state_backend: "kubernetes",
        state_storage: "a Secret in the cluster",
        state_example: "`state: {kubernetes: {}}`",
        exec_plugin: None,
        kubeconfig_outputs: &[],
        pool_names: None,
        scheduling: Scheduling {
            cloud: Cloud::Onprem,
            node_label: "nvidia.com/gpu.product",
            taint: None,
            needs_device_plugin: true,
        },
        mig: MigSupport::GpuOperator,
        sharing: SharingSupport::GpuOperator,
        region_example: "",
        workload_identity: None,
    },
];

/// The row of `cloud`.
pub fn of(cloud: Cloud) -> &'static Platform {
    PLATFORMS
        .iter()
        .find(|p| p.cloud == cloud)
        .unwrap_or(&PLATFORMS[PLATFORMS.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cloud_has_one_row_and_a_terraform_folder() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/terraform");
        for c in Cloud::ALL {
            assert_eq!(PLATFORMS.iter().filter(|p| p.cloud == c).count(), 1);
            assert_eq!(of(c).scheduling.cloud, c);
            assert!(root.join(c.name()).is_dir(), "{}", c.name());
            assert_eq!(of(c).exec_plugin.is_some(), of(c).managed);
        }
    }

    #[test]
    fn pool_name_rules() {
        let aks = of(Cloud::Azure).pool_names.expect("aks rules");
        assert!(aks.accepts("gput4"));
        assert!(!aks.accepts("gpu-t4"));
        assert_eq!(aks.fix("gpu-t4-pool-large"), "gput4poollar");
        assert_eq!(aks.fix("1gpu"), "p1gpu");
        let gke = of(Cloud::Gcp).pool_names.expect("gke rules");
        assert!(gke.accepts("gpu-t4"));
        assert!(!gke.accepts(&"a".repeat(41)));
    }
}
