//! The command line: clap types whose doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Deploy ML models to GPU Kubernetes clusters — on-prem, GCP, AWS or Azure — from one config.
#[derive(Debug, Parser)]
#[command(
    name = "mldeploy",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Project config file.
    #[arg(
        short = 'f',
        long = "config",
        global = true,
        default_value = "mldeploy.yaml",
        env = "MLDEPLOY_CONFIG"
    )]
    pub config: PathBuf,
    /// Environment to work on (may be omitted when the config has exactly one).
    #[arg(long, global = true, env = "MLDEPLOY_ENV")]
    pub env: Option<String>,
    /// kubeconfig context (default: the cluster's `context`, else the current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// More detail: `-v` logs each API request (method, path, status, duration), `-vv` adds
    /// retry decisions. Never headers or bodies.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Deadline of one API request, retries included (`30s`, `2m`).
    #[arg(long, global = true, default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: std::time::Duration,
    /// No colour (also when NO_COLOR is set or output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// One JSON document on stdout; messages on stderr.
    Json,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter mldeploy.yaml.
    Init(InitArgs),
    /// Check the config: syntax, contract, names, GPUs, clusters. Exit 0 valid, 1 problems.
    Validate,
    /// Render Terraform and Kubernetes manifests for an environment.
    Render(RenderArgs),
    /// Show what `apply` would change. Exit 0 no changes, 2 changes, 1 error.
    Diff(DiffArgs),
    /// Apply an environment to its cluster (server-side apply, ordered, waited on).
    Apply(ApplyArgs),
    /// Show the models of an environment as the cluster sees them.
    Status(StatusArgs),
    /// Delete everything mldeploy applied to an environment.
    Delete(DeleteArgs),
    /// Write a GitOps repository tree (Argo CD or Flux).
    Gitops(GitopsArgs),
    /// Run Terraform for a cluster.
    Infra(InfraArgs),
    /// Smoke- and load-test the deployed models against their SLO. Exit 0 pass, 1 error, 3 SLO
    /// breached.
    Test(TestArgs),
    /// Step a canary's traffic (10 → 25 → 50 → 100), load-testing it at each step; roll back and
    /// exit 3 on an SLO breach; at 100% make it the model in mldeploy.yaml.
    Promote(PromoteArgs),
    /// List or eject the built-in templates.
    Templates(TemplatesArgs),
    /// Show the GPU catalog: types, clouds, machines, scheduling.
    Gpus,
    /// Print the JSON Schema of the config.
    Schema,
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one per command into a folder.
    Man(ManArgs),
}

/// `init` options.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Project name (default: the current folder's name).
    #[arg(long)]
    pub project: Option<String>,
    /// Where the first cluster runs.
    #[arg(long, value_enum, default_value_t = InitCloud::Onprem)]
    pub cloud: InitCloud,
    /// Overwrite an existing config.
    #[arg(long)]
    pub force: bool,
}

/// Clouds `init` can scaffold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitCloud {
    /// Google Kubernetes Engine.
    Gcp,
    /// Amazon EKS.
    Aws,
    /// Azure AKS.
    Azure,
    /// An existing cluster (k3s).
    Onprem,
}

/// `--templates`, shared by every command that renders.
#[derive(Debug, Clone, Default, Args)]
pub struct TemplatesArg {
    /// Template folder that overrides built-ins (default: templates/ next to the config).
    #[arg(long = "templates", id = "templates", value_name = "TEMPLATES")]
    pub folder: Option<PathBuf>,
}

impl TemplatesArg {
    /// The folder given, if any.
    pub fn as_deref(&self) -> Option<&std::path::Path> {
        self.folder.as_deref()
    }
}

/// `render` options.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Write files here instead of printing manifests to stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Template folder.
    #[command(flatten)]
    pub templates: TemplatesArg,
}

/// `diff` options.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Template folder.
    #[command(flatten)]
    pub templates: TemplatesArg,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Deadline of the whole diff (`90s`, `5m`).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

/// `apply` options.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Server-side dry-run only: the API server validates and admits, nothing is stored.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete objects this environment applied before and no longer renders.
    #[arg(long)]
    pub prune: bool,
    /// Wait for readiness (the default).
    #[arg(long, conflicts_with = "no_wait")]
    pub wait: bool,
    /// Do not wait for readiness.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for readiness (`90s`, `5m`, `1h`).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Take ownership of fields other managers own.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Take over rendered objects that exist but were not created by this environment (they
    /// then belong to it: `delete` and `--prune` may remove them).
    #[arg(long)]
    pub adopt: bool,
    /// Template folder.
    #[command(flatten)]
    pub templates: TemplatesArg,
    /// Requests in flight at once (one pool for every apply group).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

/// `status` options.
#[derive(Debug, Args)]
pub struct StatusArgs {}

/// Parses `90s`, `5m`, `1h` or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; use e.g. 90s, 5m, 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("unknown unit `{unit}`; use s, m or h")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// `delete` options.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Do not ask (required when not on a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Delete what an environment that is no longer in the config left on the cluster (its
    /// ApplySet in this environment's namespace), instead of this environment.
    #[arg(long, value_name = "OLD_ENV")]
    pub orphan: Option<String>,
    /// Template folder.
    #[command(flatten)]
    pub templates: TemplatesArg,
}

/// `gitops` options.
#[derive(Debug, Args)]
pub struct GitopsArgs {
    /// Repository folder to write (default: the config's `gitops.path`, else `deploy`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write nothing; exit 0 when the tree is up to date, 2 with a diff when it is stale.
    #[arg(long)]
    pub check: bool,
    /// Overwrite (or delete) generated files that were edited by hand or not written by mldeploy.
    #[arg(long)]
    pub force: bool,
    /// Template folder.
    #[command(flatten)]
    pub templates: TemplatesArg,
}

/// `infra` options.
#[derive(Debug, Args)]
pub struct InfraArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: InfraAction,
}

/// Terraform actions.
#[derive(Debug, Subcommand)]
pub enum InfraAction {
    /// terraform init + plan. Exit 0 no changes, 2 changes, 1 error.
    Plan(InfraPlanArgs),
    /// terraform init + apply: create or update the cluster and its add-ons.
    Apply(InfraChangeArgs),
    /// terraform init + destroy: delete the cluster and everything Terraform made for it.
    Destroy(InfraChangeArgs),
    /// Print (or --write into the kubeconfig) a context for the cluster, from Terraform's outputs.
    Kubeconfig(InfraKubeconfigArgs),
}

/// Which cluster `infra` works on, and where.
#[derive(Debug, Args)]
pub struct InfraTarget {
    /// Cluster name (default: the cluster of --env, or the only cluster).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Terraform working directory (default: .mldeploy/infra/<project>.<cluster>/ next to the config).
    /// Kept between runs: Terraform's lock file, plugins and any local state stay there.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Terraform binary, a path or a name on PATH (`tofu` for OpenTofu). Default: `terraform`,
    /// else `tofu`, on PATH.
    #[arg(long, env = "MLDEPLOY_TERRAFORM")]
    pub terraform: Option<PathBuf>,
    /// Template folder.
    #[command(flatten)]
    pub templates: TemplatesArg,
}

/// `infra plan` options.
#[derive(Debug, Args)]
pub struct InfraPlanArgs {
    /// Cluster and working directory.
    #[command(flatten)]
    pub target: InfraTarget,
    /// A Terraform variable, `NAME=VALUE` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

/// `infra apply` / `infra destroy` options.
#[derive(Debug, Args)]
pub struct InfraChangeArgs {
    /// Cluster and working directory.
    #[command(flatten)]
    pub target: InfraTarget,
    /// A Terraform variable, `NAME=VALUE` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Do not ask (required when stdin is not a terminal, as in CI).
    #[arg(long)]
    pub auto_approve: bool,
}

/// `infra kubeconfig` options.
#[derive(Debug, Args)]
pub struct InfraKubeconfigArgs {
    /// Cluster and working directory.
    #[command(flatten)]
    pub target: InfraTarget,
    /// Merge the context into the kubeconfig (--kubeconfig, else the first file of $KUBECONFIG,
    /// else ~/.kube/config) instead of printing it.
    #[arg(long)]
    pub write: bool,
}

/// Parses `NAME=VALUE` (the value may be empty or hold `=`).
pub fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

/// `templates` options.
#[derive(Debug, Args)]
pub struct TemplatesArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TemplatesAction,
}

/// Template actions.
#[derive(Debug, Subcommand)]
pub enum TemplatesAction {
    /// List built-in templates and which are overridden.
    List,
    /// Copy built-in templates out for editing.
    Eject {
        /// Template name.
        name: Option<String>,
        /// All templates.
        #[arg(long)]
        all: bool,
    },
}

/// `completions` options.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `man` options.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `mldeploy.1` and a page per subcommand (`mldeploy-render.1`, …) into this folder
    /// instead of printing the main page.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// How a load test runs and what it must meet (shared by `test` and `promote`).
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Only the smoke test (readiness, metadata, one inference): no load.
    #[arg(long)]
    pub smoke_only: bool,
    /// How long to measure after the warm-up (`30s`, `2m`). Default 10s unless --requests.
    #[arg(long, value_parser = parse_slo_duration)]
    pub duration: Option<std::time::Duration>,
    /// Measured requests to send at most (with --duration, whichever ends first).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// Requests in flight at once (closed loop), and connections; with --rate, the most in flight.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// Open loop: requests per second, each timed from when it was due (no coordinated omission).
    #[arg(long, value_parser = parse_rate_arg)]
    pub rate: Option<f64>,
    /// Warm-up before measuring (`0s` for none).
    #[arg(long, default_value = "2s", value_parser = parse_slo_duration)]
    pub warmup: std::time::Duration,
    /// Deadline of every request.
    #[arg(long, default_value = "30s", value_parser = parse_slo_duration)]
    pub timeout: std::time::Duration,
    /// SLO: highest median latency (overrides the config's `slo.p50`).
    #[arg(long, value_parser = parse_slo_duration)]
    pub p50: Option<std::time::Duration>,
    /// SLO: highest 90th-percentile latency.
    #[arg(long, value_parser = parse_slo_duration)]
    pub p90: Option<std::time::Duration>,
    /// SLO: highest 95th-percentile latency.
    #[arg(long, value_parser = parse_slo_duration)]
    pub p95: Option<std::time::Duration>,
    /// SLO: highest 99th-percentile latency.
    #[arg(long, value_parser = parse_slo_duration)]
    pub p99: Option<std::time::Duration>,
    /// SLO: highest share of failed requests (`0.5%`). Default 1% when the config sets none.
    #[arg(long, value_parser = crate::model::slo::parse_rate)]
    pub error_rate: Option<f64>,
    /// SLO: highest 95th-percentile time to first token (streaming LLM endpoints).
    #[arg(long, value_parser = parse_slo_duration)]
    pub ttft_p95: Option<std::time::Duration>,
}

/// `test` options.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Model to test (repeatable; default: every model of the environment).
    #[arg(long = "model", value_name = "MODEL")]
    pub models: Vec<String>,
    /// Test the model's canary instead of the model.
    #[arg(long)]
    pub canary: bool,
    /// Send requests to this base URL (an ingress or load balancer; http:// or https://)
    /// instead of through the API server's service proxy. One model only.
    #[arg(long)]
    pub url: Option<String>,
    /// With an https:// --url: accept any certificate. The traffic is still encrypted but the
    /// server's identity is not checked. Only for --url (the API server's TLS follows the
    /// kubeconfig).
    #[arg(long, requires = "url")]
    pub insecure_skip_tls_verify: bool,
    /// Reach each model through a port-forward to one ready pod behind its Service (kube's
    /// portforward, as `kubectl port-forward`) instead of the API server's service proxy: for
    /// load the proxy should not carry.
    #[arg(long, conflicts_with = "url")]
    pub port_forward: bool,
    /// Protocol to speak: oip-v2, kserve-v1, seldon-v1, openai (default: the config's
    /// `test.protocol`, else what the runtime serves).
    #[arg(long, value_parser = parse_protocol)]
    pub protocol: Option<crate::config::Protocol>,
    /// Load test and SLO.
    #[command(flatten)]
    pub load: LoadArgs,
    /// Also write a JUnit XML report here (for CI test reports).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Push the figures to this Prometheus Pushgateway (http://host:9091).
    #[arg(long, value_name = "URL")]
    pub push: Option<String>,
}

/// Parses a duration with a unit (`250ms`, `1.5s`, `2m`).
pub fn parse_slo_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::model::slo::parse_duration(s)
}

fn parse_rate_arg(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1_000_000.0 => Ok(r),
        _ => Err(format!("`{s}` is not a rate: requests per second, above 0")),
    }
}

/// Parses a protocol name.
pub fn parse_protocol(s: &str) -> Result<crate::config::Protocol, String> {
    crate::config::Protocol::ALL
        .into_iter()
        .find(|p| p.name() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = crate::config::Protocol::ALL
                .iter()
                .map(|p| p.name())
                .collect();
            format!("unknown protocol `{s}`; use one of {}", names.join(", "))
        })
}

/// `promote` options.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The model whose canary to promote.
    #[arg(long)]
    pub model: String,
    /// The canary's share of traffic at each step, in percent, rising.
    #[arg(long, value_delimiter = ',', default_value = "10,25,50,100")]
    pub steps: Vec<u32>,
    /// GitOps mode: apply nothing; test the canary at its current split, then rewrite
    /// mldeploy.yaml (promoted, or canary traffic 0 on a breach) and regenerate this tree.
    #[arg(long, value_name = "DIR")]
    pub gitops: Option<PathBuf>,
    /// Load-test the canary through a port-forward to one of its pods instead of the API
    /// server's service proxy (see `mldeploy test --port-forward`).
    #[arg(long)]
    pub port_forward: bool,
    /// How long to wait for each applied split to become ready.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub wait_timeout: std::time::Duration,
    /// Template folder.
    #[command(flatten)]
    pub templates: TemplatesArg,
    /// Load test and SLO at each step.
    #[command(flatten)]
    pub load: LoadArgs,
}
