//! `mldeploy gpus`: the GPU catalog as a table (or JSON).

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{Ctx, Error, exit, print_json};
use crate::catalog::{GPUS, MACHINES};
use crate::config::Cloud;
use crate::platform::PLATFORMS;

pub(super) fn run(ctx: &Ctx) -> Result<i32, Error> {
    if ctx.json() {
        let machines: serde_json::Map<String, serde_json::Value> = MACHINES
            .iter()
            .map(|(c, list)| (c.name().to_string(), serde_json::json!(list)))
            .collect();
        let scheduling: Vec<_> = PLATFORMS.iter().map(|p| p.scheduling).collect();
        let doc = serde_json::json!({"gpus": GPUS, "scheduling": scheduling, "machines": machines});
        print_json(&doc);
        return Ok(exit::OK);
    }
    outln!("{}", table());
    outln!();
    outln!("Scheduling (GPUs are requested in limits: nvidia.com/gpu, amd.com/gpu for AMD):");
    for s in PLATFORMS.iter().map(|p| &p.scheduling) {
        let taint = s
            .taint
            .as_ref()
            .map(|t| format!("taint {}={}:{} (tolerated)", t.key, t.value, t.effect))
            .unwrap_or_else(|| "no taint".into());
        let plugin = if s.needs_device_plugin {
            "NVIDIA device plugin required"
        } else {
            "driver and device plugin managed by the platform"
        };
        let extra = match s.cloud {
            Cloud::Onprem => "; k3s adds runtimeClassName: nvidia",
            Cloud::Azure => "; AKS also labels kubernetes.azure.com/accelerator: nvidia",
            _ => "",
        };
        outln!(
            "  {:<7} nodeSelector {}=<accelerator>; {taint}; {plugin}{extra}",
            s.cloud.name(),
            s.node_label
        );
    }
    outln!();
    outln!(
        "Cutting GPUs up (on a node pool, or `gpus` of an onprem cluster; a model asks to match):"
    );
    outln!(
        "  share: N     time-slicing, N shares per GPU (2 to 48); a model asks `shared: true`, count 1. No memory or"
    );
    outln!(
        "               fault isolation. GKE: gpu_sharing_config; elsewhere the GPU operator's device-plugin config"
    );
    outln!(
        "               (node label nvidia.com/device-plugin.config), pods select nvidia.com/gpu.product <product>-SHARED."
    );
    outln!(
        "  mig: PROFILE MIG slices (A100, H100; profiles in the table). GKE: gpu_partition_size, one nvidia.com/gpu per"
    );
    outln!(
        "               slice; elsewhere the GPU operator's MIG manager (node label nvidia.com/mig.config: all-PROFILE),"
    );
    outln!("               mixed strategy, pods request nvidia.com/mig-PROFILE.");
    outln!(
        "  claim: true  (models) whole NVIDIA GPUs through DRA: a resource.k8s.io/v1 ResourceClaimTemplate with"
    );
    outln!("               deviceClassName gpu.nvidia.com; Kubernetes 1.34 or later.");
    outln!();
    outln!(
        "Edge (jetson-orin, or `arch: arm64` on an onprem k3s cluster): kubernetes.io/arch selectors, runtimeClassName"
    );
    outln!(
        "nvidia, the standalone NVIDIA device plugin, small default resources; runtimes that fit: {}.",
        crate::runtime::names_where(|r| r.edge)
    );
    outln!(
        "AMD (mi300x): amd.com/gpu, the AMD GPU device plugin; prepackaged servers have no ROCm build, use an image."
    );
    Ok(exit::OK)
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    let mut header = vec![
        "type".to_string(),
        "GPU".into(),
        "memory".into(),
        "MIG profiles".into(),
    ];
    header.extend(Cloud::ALL.iter().map(|c| c.name().to_string()));
    t.set_header(header);
    for g in GPUS {
        let mut row = vec![
            g.name.to_string(),
            g.product.to_string(),
            format!(
                "{} GB\n{} {}",
                g.memory_gb,
                g.vendor.spec().name,
                g.arch.name()
            ),
            if g.mig.is_empty() {
                "—".to_string()
            } else {
                g.mig
                    .iter()
                    .map(|p| format!("{} ×{}", p.name, p.per_gpu))
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        ];
        for cloud in Cloud::ALL {
            row.push(match g.offer(cloud) {
                None => "— not offered".into(),
                Some(o) if o.machines.is_empty() => o.accelerator.to_string(),
                Some(o) => {
                    let machines: Vec<String> = o
                        .machines
                        .iter()
                        .map(|(n, m)| format!("{m} ({n})"))
                        .collect();
                    format!("{}\n{}", o.accelerator, machines.join("\n"))
                }
            });
        }
        t.add_row(row);
    }
    t
}
