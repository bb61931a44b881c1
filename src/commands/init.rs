//! `mldeploy init`: a commented starter config that validates as written.

use std::path::Path;

use super::{Ctx, Error, exit, schema::schema_json};
use crate::cli::{InitArgs, InitCloud};
use crate::model::names;

/// File name of the schema written next to the config for editor completion.
pub const SCHEMA_FILE: &str = "mldeploy.schema.json";

pub(super) fn run(ctx: &Ctx, args: &InitArgs) -> Result<i32, Error> {
    let path = &ctx.global.config;
    // `symlink_metadata`: a dangling link counts as there (writing would follow it).
    if std::fs::symlink_metadata(path).is_ok() && !args.force {
        return Err(Error::msg(
            format!("{} already exists", path.display()),
            Some("pass --force to overwrite it, or -f OTHER.yaml"),
        ));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let project = match &args.project {
        Some(p) => p.clone(),
        None => {
            let folder = std::fs::canonicalize(dir)
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            match names::suggest_label(&folder) {
                s if s.is_empty() => "my-project".to_string(),
                s => s,
            }
        }
    };
    if let Err(e) = names::dns_label(&project) {
        return Err(Error::msg(
            format!("project name `{project}` {e}"),
            Some(&format!("try --project {}", names::suggest_label(&project))),
        ));
    }
    let text = starter(&project, args.cloud);
    // Through fsx: never through a link, never into a FIFO, atomically.
    let write = |name: &str, body: &str| -> Result<(), Error> {
        crate::fsx::write(
            dir,
            name,
            body.as_bytes(),
            crate::fsx::WriteOptions::default(),
        )?;
        Ok(())
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    write(&file_name, &text)?;
    let schema = schema_json() + "\n";
    // The schema has no room for a header: an existing one that differs is replaced only with
    // --force.
    match crate::fsx::read_existing(dir, SCHEMA_FILE)? {
        Some(old) if old != schema.as_bytes() && !args.force => {
            errln!(
                "kept {} (it differs; --force replaces it)",
                dir.join(SCHEMA_FILE).display()
            );
        }
        _ => write(SCHEMA_FILE, &schema)?,
    }
    if !ctx.json() {
        errln!(
            "wrote {} (project {project}, {} cluster) and {SCHEMA_FILE}\nnext: edit it, then `mldeploy validate -f {}`",
            path.display(),
            cloud_name(args.cloud),
            path.display()
        );
    } else {
        outln!(
            "{}",
            serde_json::json!({"ok": true, "config": path.display().to_string(), "schema": dir.join(SCHEMA_FILE).display().to_string()})
        );
    }
    Ok(exit::OK)
}

fn cloud_name(c: InitCloud) -> &'static str {
    match c {
        InitCloud::Gcp => "gcp",
        InitCloud::Aws => "aws",
        InitCloud::Azure => "azure",
        InitCloud::Onprem => "onprem",
    }
}

/// The starter config for a project on a cloud.
pub fn starter(project: &str, cloud: InitCloud) -> String {
    let (cluster_name, cluster, gpu) = match cloud {
        InitCloud::Gcp => (
            "gke",
            "  gke:\n    cloud: gcp\n    region: europe-west4\n    gcp: {project: my-gcp-project}   # your GCP project id\n    kubernetesVersion: \"1.30\"\n    # state: {gcs: {bucket: my-tfstate}}   # where `mldeploy infra` keeps Terraform state\n    nodePools:\n      - {name: system, machine: {cpu: 4, memory: 16Gi}, min: 1, max: 3}\n      - {name: gpu-t4, gpu: {type: t4, count: 1}, min: 0, max: 4, spot: true}\n",
            "t4",
        ),
        InitCloud::Aws => (
            "eks",
            "  eks:\n    cloud: aws\n    region: eu-central-1\n    kubernetesVersion: \"1.30\"\n    # state: {s3: {bucket: my-tfstate, dynamodbTable: tfstate-lock}}   # for `mldeploy infra`\n    nodePools:\n      - {name: system, machine: {cpu: 4, memory: 16Gi}, min: 1, max: 3}\n      - {name: gpu-a10g, gpu: {type: a10g, count: 1}, min: 0, max: 2}\n",
            "a10g",
        ),
        InitCloud::Azure => (
            "aks",
            "  aks:\n    cloud: azure\n    region: westeurope\n    azure: {resourceGroup: ml-rg}     # resource group for the cluster\n    kubernetesVersion: \"1.30\"\n    # state: {azurerm: {storageAccount: mytfstate, container: tfstate}}   # for `mldeploy infra`\n    nodePools:\n      - {name: system, machine: {cpu: 4, memory: 16Gi}, min: 1, max: 3}\n      - {name: gput4, gpu: {type: t4, count: 1}, min: 0, max: 2}\n",
            "t4",
        ),
        InitCloud::Onprem => (
            "onprem",
            "  onprem:\n    cloud: onprem                    # an existing cluster; Terraform installs add-ons only\n    context: default                 # kubeconfig context of the cluster\n    distribution: k3s                # k3s | kubeadm | other\n    # arch: arm64                    # an edge box (a Jetson: gpus: [{type: jetson-orin}])\n    # gpus: [{type: t4, share: 4}]   # its GPUs: time-sliced (share), MIG (mig: 1g.10gb)\n",
            "t4",
        ),
    };
    format!(
        r#"# yaml-language-server: $schema=./{SCHEMA_FILE}
# mldeploy project config. Check it with `mldeploy validate`; list GPU types with `mldeploy gpus`.
version: 1
project: {project}                 # DNS-1123 label: default namespace and name prefix
labels: {{team: ml}}                # added to every rendered object

defaults:                          # every model inherits these; a model overrides them
  runtime: kserve                  # seldon | seldon-v2 | kserve | deployment
  replicas: 1
  resources: {{cpu: 500m, memory: 1Gi}}

models:
  # A prepackaged server: the runtime loads the artifact at modelUri.
  - name: classifier
    server: sklearn                # sklearn | xgboost | mlflow | tensorflow | triton | huggingface | vllm
    modelUri: gs://my-bucket/models/classifier/v1
  # A custom container image (the "ship a Docker" case), on a GPU.
  - name: detector
    runtime: deployment
    image: registry.example.com/team/detector:1.0.0
    port: 8080
    resources: {{cpu: "2", memory: 8Gi}}
    gpu: {{type: {gpu}, count: 1}}   # also shared: true, mig: 1g.10gb, claim: true (`mldeploy gpus`)
    env: {{LOG_LEVEL: info}}
    # secretEnv: [{{name: API_KEY, secret: detector-secrets, key: api-key}}]
    # autoscale: {{min: 1, max: 4, cpuUtilization: 70}}
  # A language model from Hugging Face, served by vLLM with an OpenAI-compatible API (docs/llm.md).
  # - name: chat
  #   server: vllm
  #   modelUri: hf://Qwen/Qwen2.5-7B-Instruct      # hf://org/name[:revision], s3://, gs://, pvc://
  #   gpu: {{type: {gpu}, count: 1}}
  #   hfTokenSecret: {{name: hf-token, key: HF_TOKEN}}   # gated models: a Secret you create
  #   llm: {{params: 7b, maxModelLen: 8192}}           # also dtype, quantization, tensorParallel,
  #                                                  # gpuMemoryUtilization, extraArgs, kind: llmisvc
  #   cache: {{size: 40Gi}}                          # a claim that keeps the weights across restarts

clusters:
{cluster}
environments:                      # an environment = a cluster + a namespace + overrides
  prod:
    cluster: {cluster_name}
    namespace: {project}
    # overrides:
    #   models:
    #     detector: {{replicas: 2}}   # `null` removes a field

monitoring: {{prometheus: false, grafanaDashboard: false}}
# gitops: {{engine: argocd, repoURL: https://git.example.com/ml/deploy.git, revision: main, path: deploy}}
"#
    )
}
