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
    outln!("Scheduling (GPUs are requested in limits: nvidia.com/gpu):");
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
    Ok(exit::OK)
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    let mut header = vec!["type".to_string(), "GPU".into(), "memory".into()];
    header.extend(Cloud::ALL.iter().map(|c| c.name().to_string()));
    t.set_header(header);
    for g in GPUS {
        let mut row = vec![
            g.name.to_string(),
            g.product.to_string(),
            format!("{} GB", g.memory_gb),
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
