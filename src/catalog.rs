//! The GPU catalog and general-purpose machine sizes, as data: a new GPU type or cloud is a row
//! here (plus a snapshot review), not a code branch.

use serde::Serialize;

use crate::config::{Arch, Cloud};

/// Who makes a GPU: decides the extended resource, the taint, the device plugin and the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Vendor {
    /// NVIDIA (CUDA).
    Nvidia,
    /// AMD (ROCm).
    Amd,
}

/// What a vendor's GPUs need on Kubernetes.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorSpec {
    /// The vendor.
    pub vendor: Vendor,
    /// Name for messages.
    pub name: &'static str,
    /// Extended resource of a whole GPU (also the key of the GPU node taint).
    pub resource: &'static str,
    /// Node label its GPU discovery sets to the product name (on-prem node selection).
    pub product_label: &'static str,
    /// Whether its device plugin can time-slice GPUs.
    pub sharing: bool,
    /// Add-on that makes its GPUs schedulable (`addons.<key>` in the Terraform templates).
    pub device_plugin: &'static str,
}

/// Every vendor.
pub const VENDORS: &[VendorSpec] = &[
    VendorSpec {
        vendor: Vendor::Nvidia,
        name: "NVIDIA",
        resource: "nvidia.com/gpu",
        product_label: "nvidia.com/gpu.product",
        sharing: true,
        device_plugin: "devicePlugin",
    },
    VendorSpec {
        vendor: Vendor::Amd,
        name: "AMD",
        resource: "amd.com/gpu",
        product_label: "amd.com/gpu.product-name",
        sharing: false,
        device_plugin: "amdDevicePlugin",
    },
];

impl Vendor {
    /// The vendor's row.
    pub fn spec(self) -> &'static VendorSpec {
        VENDORS
            .iter()
            .find(|v| v.vendor == self)
            .unwrap_or(&VENDORS[0])
    }
}

/// A MIG (Multi-Instance GPU) profile: a slice of a GPU.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigProfile {
    /// Profile name (`1g.10gb`): compute slices and memory.
    pub name: &'static str,
    /// How many of this profile one GPU holds.
    pub per_gpu: u32,
}

const fn mig(name: &'static str, per_gpu: u32) -> MigProfile {
    MigProfile { name, per_gpu }
}

/// MIG profiles of the A100 40GB.
const MIG_A100_40: &[MigProfile] = &[
    mig("1g.5gb", 7),
    mig("1g.10gb", 4),
    mig("2g.10gb", 3),
    mig("3g.20gb", 2),
    mig("4g.20gb", 1),
    mig("7g.40gb", 1),
];

/// MIG profiles of 80GB A100s and H100s.
const MIG_80: &[MigProfile] = &[
    mig("1g.10gb", 7),
    mig("1g.20gb", 4),
    mig("2g.20gb", 3),
    mig("3g.40gb", 2),
    mig("4g.40gb", 1),
    mig("7g.80gb", 1),
];

/// A GPU type that models and node pools can ask for.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gpu {
    /// Catalog name used in configs (`t4`).
    pub name: &'static str,
    /// Product name.
    pub product: &'static str,
    /// Who makes it.
    pub vendor: Vendor,
    /// CPU architecture of the machines it comes in.
    pub arch: Arch,
    /// Memory per GPU in GB.
    pub memory_gb: u32,
    /// MIG profiles (empty: no MIG).
    pub mig: &'static [MigProfile],
    /// An edge module (only on onprem clusters; standalone device plugin, no GPU operator).
    pub edge: bool,
    /// What each platform offers for it.
    pub offers: &'static [Offer],
}

/// How one platform provides a GPU type.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    /// The platform.
    pub cloud: Cloud,
    /// Accelerator name on the platform (GKE accelerator type, node label value).
    pub accelerator: &'static str,
    /// Node label whose value is `accelerator`, when not the platform's (None: the platform's).
    pub node_label: Option<&'static str>,
    /// Machine types by GPUs per node, smallest first (empty on-prem).
    pub machines: &'static [(u32, &'static str)],
    /// What a user must know (driver install, limits).
    pub note: &'static str,
}

/// How GPU pods are scheduled on a platform (DESIGN.md, "Scheduling per platform").
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scheduling {
    /// The platform.
    pub cloud: Cloud,
    /// Node label that selects a GPU type; its value is the offer's `accelerator`.
    pub node_label: &'static str,
    /// Taint on GPU nodes that GPU pods tolerate.
    pub taint: Option<Taint>,
    /// Whether the NVIDIA device plugin must be installed as an add-on.
    pub needs_device_plugin: bool,
}

/// A node taint (`key=value:effect`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Taint {
    /// Key.
    pub key: &'static str,
    /// Value.
    pub value: &'static str,
    /// Effect (`NoSchedule`).
    pub effect: &'static str,
}

/// The GPU catalog.
pub const GPUS: &[Gpu] = &[
    Gpu {
        name: "t4",
        product: "NVIDIA T4",
        memory_gb: 16,
        vendor: Vendor::Nvidia,
        arch: Arch::Amd64,
        mig: &[],
        edge: false,
        offers: &[
            Offer {
                node_label: None,
                cloud: Cloud::Gcp,
                accelerator: "nvidia-tesla-t4",
                machines: &[
                    (1, "n1-standard-4"),
                    (2, "n1-standard-8"),
                    (4, "n1-standard-16"),
                ],
                note: "driver installed by GKE (gpu_driver_installation_config)",
            },
            Offer {
                node_label: None,
                cloud: Cloud::Aws,
                accelerator: "nvidia-tesla-t4",
                machines: &[(1, "g4dn.xlarge"), (4, "g4dn.12xlarge"), (8, "g4dn.metal")],
                note: "EKS GPU AMI; NVIDIA device plugin add-on",
            },
            Offer {
                node_label: None,
                cloud: Cloud::Azure,
                accelerator: "nvidia-tesla-t4",
                machines: &[(1, "Standard_NC4as_T4_v3"), (4, "Standard_NC64as_T4_v3")],
                note: "NVIDIA device plugin add-on",
            },
            Offer {
                node_label: Some("nvidia.com/gpu.product"),
                cloud: Cloud::Onprem,
                accelerator: "Tesla-T4",
                machines: &[],
                note: "GPU feature discovery labels the node",
            },
        ],
    },
    Gpu {
        name: "l4",
        product: "NVIDIA L4",
        memory_gb: 24,
        vendor: Vendor::Nvidia,
        arch: Arch::Amd64,
        mig: &[],
        edge: false,
        offers: &[
            Offer {
                node_label: None,
                cloud: Cloud::Gcp,
                accelerator: "nvidia-l4",
                machines: &[
                    (1, "g2-standard-4"),
                    (2, "g2-standard-24"),
                    (4, "g2-standard-48"),
                    (8, "g2-standard-96"),
                ],
                note: "driver installed by GKE (gpu_driver_installation_config)",
            },
            Offer {
                node_label: None,
                cloud: Cloud::Aws,
                accelerator: "nvidia-l4",
                machines: &[(1, "g6.xlarge"), (4, "g6.12xlarge"), (8, "g6.48xlarge")],
                note: "EKS GPU AMI; NVIDIA device plugin add-on",
            },
            Offer {
                node_label: Some("nvidia.com/gpu.product"),
                cloud: Cloud::Onprem,
                accelerator: "NVIDIA-L4",
                machines: &[],
                note: "GPU feature discovery labels the node",
            },
        ],
    },
    Gpu {
        name: "a10g",
        product: "NVIDIA A10G",
        memory_gb: 24,
        vendor: Vendor::Nvidia,
        arch: Arch::Amd64,
        mig: &[],
        edge: false,
        offers: &[
            Offer {
                node_label: None,
                cloud: Cloud::Aws,
                accelerator: "nvidia-a10g",
                machines: &[(1, "g5.xlarge"), (4, "g5.12xlarge"), (8, "g5.48xlarge")],
                note: "EKS GPU AMI; NVIDIA device plugin add-on",
            },
            Offer {
                node_label: Some("nvidia.com/gpu.product"),
                cloud: Cloud::Onprem,
                accelerator: "NVIDIA-A10G",
                machines: &[],
                note: "GPU feature discovery labels the node",
            },
        ],
    },
    Gpu {
        name: "a100-40gb",
        product: "NVIDIA A100 40GB",
        memory_gb: 40,
        vendor: Vendor::Nvidia,
        arch: Arch::Amd64,
        mig: MIG_A100_40,
        edge: false,
        offers: &[
            Offer {
                node_label: None,
                cloud: Cloud::Gcp,
                accelerator: "nvidia-tesla-a100",
                machines: &[
                    (1, "a2-highgpu-1g"),
                    (2, "a2-highgpu-2g"),
                    (4, "a2-highgpu-4g"),
                    (8, "a2-highgpu-8g"),
                ],
                note: "driver installed by GKE (gpu_driver_installation_config)",
            },
            Offer {
                node_label: None,
                cloud: Cloud::Aws,
                accelerator: "nvidia-tesla-a100",
                machines: &[(8, "p4d.24xlarge")],
                note: "8 GPUs per node only; NVIDIA device plugin add-on",
            },
            Offer {
                node_label: None,
                cloud: Cloud::Azure,
                accelerator: "nvidia-tesla-a100",
                machines: &[(8, "Standard_ND96asr_v4")],
                note: "8 GPUs per node only; NVIDIA device plugin add-on",
            },
            Offer {
                node_label: Some("nvidia.com/gpu.product"),
                cloud: Cloud::Onprem,
                accelerator: "NVIDIA-A100-SXM4-40GB",
                machines: &[],
                note: "GPU feature discovery labels the node",
            },
        ],
    },
    Gpu {
        name: "a100-80gb",
        product: "NVIDIA A100 80GB",
        memory_gb: 80,
        vendor: Vendor::Nvidia,
        arch: Arch::Amd64,
        mig: MIG_80,
        edge: false,
        offers: &[
            Offer {
                node_label: None,
                cloud: Cloud::Gcp,
                accelerator: "nvidia-a100-80gb",
                machines: &[
                    (1, "a2-ultragpu-1g"),
                    (2, "a2-ultragpu-2g"),
                    (4, "a2-ultragpu-4g"),
                    (8, "a2-ultragpu-8g"),
                ],
                note: "driver installed by GKE (gpu_driver_installation_config)",
            },
            Offer {
                node_label: None,
                cloud: Cloud::Aws,
                accelerator: "nvidia-a100-80gb",
                machines: &[(8, "p4de.24xlarge")],
                note: "8 GPUs per node only; NVIDIA device plugin add-on",
            },
            Offer {
                node_label: None,
                cloud: Cloud::Azure,
                accelerator: "nvidia-a100-80gb",
                machines: &[
                    (1, "Standard_NC24ads_A100_v4"),
                    (2, "Standard_NC48ads_A100_v4"),
                    (4, "Standard_NC96ads_A100_v4"),
                ],
                note: "NVIDIA device plugin add-on",
            },
            Offer {
                node_label: Some("nvidia.com/gpu.product"),
                cloud: Cloud::Onprem,
                accelerator: "NVIDIA-A100-SXM4-80GB",
                machines: &[],
                note: "GPU feature discovery labels the node",
            },
        ],
    },
    Gpu {
        name: "h100-80gb",
        product: "NVIDIA H100 80GB",
        memory_gb: 80,
        vendor: Vendor::Nvidia,
        arch: Arch::Amd64,
        mig: MIG_80,
        edge: false,
        offers: &[
            Offer {
                node_label: None,
                cloud: Cloud::Gcp,
                accelerator: "nvidia-h100-80gb",
                machines: &[
                    (1, "a3-highgpu-1g"),
                    (2, "a3-highgpu-2g"),
                    (4, "a3-highgpu-4g"),
                    (8, "a3-highgpu-8g"),
                ],
                note: "driver installed by GKE (gpu_driver_installation_config)",
            },
            Offer {
                node_label: None,
                cloud: Cloud::Aws,
                accelerator: "nvidia-h100-80gb",
                machines: &[(8, "p5.48xlarge")],
                note: "8 GPUs per node only; NVIDIA device plugin add-on",
            },
            Offer {
                node_label: None,
                cloud: Cloud::Azure,
                accelerator: "nvidia-h100-80gb",
                machines: &[
                    (1, "Standard_NC40ads_H100_v5"),
                    (8, "Standard_ND96isr_H100_v5"),
                ],
                note: "NVIDIA device plugin add-on",
            },
            Offer {
                node_label: Some("nvidia.com/gpu.product"),
                cloud: Cloud::Onprem,
                accelerator: "NVIDIA-H100-80GB-HBM3",
                machines: &[],
                note: "GPU feature discovery labels the node",
            },
        ],
    },
    Gpu {
        name: "mi300x",
        product: "AMD Instinct MI300X",
        memory_gb: 192,
        vendor: Vendor::Amd,
        arch: Arch::Amd64,
        mig: &[],
        edge: false,
        offers: &[
            Offer {
                node_label: None,
                cloud: Cloud::Azure,
                accelerator: "amd-instinct-mi300x",
                machines: &[(8, "Standard_ND96isr_MI300X_v5")],
                note: "8 GPUs per node only; AMD GPU device plugin add-on; ROCm images",
            },
            Offer {
                node_label: Some("amd.com/gpu.product-name"),
                cloud: Cloud::Onprem,
                accelerator: "AMD_Instinct_MI300X_OAM",
                machines: &[],
                note: "the AMD GPU device plugin's node labeller labels the node; ROCm images",
            },
        ],
    },
    Gpu {
        name: "jetson-orin",
        product: "NVIDIA Jetson AGX Orin",
        memory_gb: 64,
        vendor: Vendor::Nvidia,
        arch: Arch::Arm64,
        mig: &[],
        edge: true,
        offers: &[Offer {
            node_label: Some("kubernetes.io/arch"),
            cloud: Cloud::Onprem,
            accelerator: "arm64",
            machines: &[],
            note: "k3s with the NVIDIA container runtime (runtimeClassName: nvidia); standalone NVIDIA device plugin; memory shared with the CPU",
        }],
    },
];

/// A general-purpose machine type.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineType {
    /// Cloud name of the type.
    pub name: &'static str,
    /// vCPUs.
    pub cpu: u32,
    /// Memory in GiB.
    pub memory_gib: u32,
}

const fn m(name: &'static str, cpu: u32, memory_gib: u32) -> MachineType {
    MachineType {
        name,
        cpu,
        memory_gib,
    }
}

/// General-purpose machine types per cloud, smallest first.
pub const MACHINES: &[(Cloud, &[MachineType])] = &[
    (
        Cloud::Gcp,
        &[
            m("e2-standard-2", 2, 8),
            m("e2-standard-4", 4, 16),
            m("e2-standard-8", 8, 32),
            m("e2-standard-16", 16, 64),
            m("e2-standard-32", 32, 128),
            m("n2-standard-48", 48, 192),
            m("n2-standard-64", 64, 256),
            m("n2-standard-80", 80, 320),
            m("n2-standard-96", 96, 384),
            m("n2-standard-128", 128, 512),
        ],
    ),
    (
        Cloud::Aws,
        &[
            m("m6i.large", 2, 8),
            m("m6i.xlarge", 4, 16),
            m("m6i.2xlarge", 8, 32),
            m("m6i.4xlarge", 16, 64),
            m("m6i.8xlarge", 32, 128),
            m("m6i.12xlarge", 48, 192),
            m("m6i.16xlarge", 64, 256),
            m("m6i.24xlarge", 96, 384),
            m("m6i.32xlarge", 128, 512),
        ],
    ),
    (
        Cloud::Azure,
        &[
            m("Standard_D2s_v5", 2, 8),
            m("Standard_D4s_v5", 4, 16),
            m("Standard_D8s_v5", 8, 32),
            m("Standard_D16s_v5", 16, 64),
            m("Standard_D32s_v5", 32, 128),
            m("Standard_D48s_v5", 48, 192),
            m("Standard_D64s_v5", 64, 256),
            m("Standard_D96s_v5", 96, 384),
        ],
    ),
];

/// Looks up a GPU type by catalog name.
pub fn gpu(name: &str) -> Option<&'static Gpu> {
    GPUS.iter().find(|g| g.name == name)
}

/// All GPU type names.
pub fn gpu_names() -> impl Iterator<Item = &'static str> {
    GPUS.iter().map(|g| g.name)
}

impl Gpu {
    /// A MIG profile of this GPU by name.
    pub fn mig_profile(&self, name: &str) -> Option<&'static MigProfile> {
        self.mig.iter().find(|p| p.name == name)
    }

    /// Its MIG profile names, for hints.
    pub fn mig_names(&self) -> Vec<&'static str> {
        self.mig.iter().map(|p| p.name).collect()
    }

    /// What `cloud` offers for this GPU, if anything.
    pub fn offer(&self, cloud: Cloud) -> Option<&'static Offer> {
        self.offers.iter().find(|o| o.cloud == cloud)
    }

    /// Clouds that offer this GPU, by name.
    pub fn clouds(&self) -> Vec<&'static str> {
        self.offers.iter().map(|o| o.cloud.name()).collect()
    }
}

impl Offer {
    /// The machine type for `count` GPUs per node (the smallest that has at least that many).
    pub fn machine_for(&self, count: u32) -> Option<&'static str> {
        self.machines
            .iter()
            .find(|(n, _)| *n >= count)
            .map(|(_, name)| *name)
    }

    /// GPUs-per-node counts the platform offers, for hints.
    pub fn counts(&self) -> Vec<u32> {
        self.machines.iter().map(|(n, _)| *n).collect()
    }
}

/// Scheduling rules of a platform (its [`crate::platform::Platform`] row).
pub fn scheduling(cloud: Cloud) -> &'static Scheduling {
    &crate::platform::of(cloud).scheduling
}

/// The smallest general-purpose type on `cloud` with at least `cpu` vCPUs and `memory_gib` GiB.
pub fn machine_for(cloud: Cloud, cpu: f64, memory_gib: f64) -> Option<&'static MachineType> {
    MACHINES
        .iter()
        .find(|(c, _)| *c == cloud)?
        .1
        .iter()
        .find(|t| f64::from(t.cpu) >= cpu && f64::from(t.memory_gib) >= memory_gib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_table_holds() {
        assert!(gpu("a10g").and_then(|g| g.offer(Cloud::Gcp)).is_none());
        assert!(gpu("l4").and_then(|g| g.offer(Cloud::Azure)).is_none());
        let t4 = gpu("t4")
            .and_then(|g| g.offer(Cloud::Aws))
            .expect("t4 on aws");
        assert_eq!(t4.machine_for(1), Some("g4dn.xlarge"));
        assert_eq!(t4.machine_for(2), Some("g4dn.12xlarge"));
        assert_eq!(t4.machine_for(9), None);
    }

    #[test]
    fn smallest_fitting_machine() {
        assert_eq!(
            machine_for(Cloud::Gcp, 4.0, 16.0).map(|t| t.name),
            Some("e2-standard-4")
        );
        assert_eq!(
            machine_for(Cloud::Aws, 3.0, 1.0).map(|t| t.name),
            Some("m6i.xlarge")
        );
        assert_eq!(
            machine_for(Cloud::Azure, 2.0, 9.0).map(|t| t.name),
            Some("Standard_D4s_v5")
        );
        assert!(machine_for(Cloud::Azure, 200.0, 1.0).is_none());
        assert!(machine_for(Cloud::Onprem, 1.0, 1.0).is_none());
    }

    #[test]
    fn every_gpu_runs_on_prem_and_somewhere_managed() {
        for g in GPUS {
            assert!(g.offer(Cloud::Onprem).is_some(), "{}", g.name);
            assert!(g.offers.len() >= 2 || g.edge, "{}", g.name);
            assert_eq!(g.edge, g.offers.len() == 1, "{}", g.name);
        }
    }
}
