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
    /// More detail (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
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
    Diff,
    /// Apply an environment to its cluster (server-side apply, ordered, waited on).
    Apply(ApplyArgs),
    /// Show the models of an environment as the cluster sees them.
    Status,
    /// Delete everything mldeploy applied to an environment.
    Delete(DeleteArgs),
    /// Write a GitOps repository tree (Argo CD or Flux).
    Gitops(GitopsArgs),
    /// Run Terraform for a cluster.
    Infra(InfraArgs),
    /// List or eject the built-in templates.
    Templates(TemplatesArgs),
    /// Show the GPU catalog: types, clouds, machines, scheduling.
    Gpus,
    /// Print the JSON Schema of the config.
    Schema,
    /// Print a shell completion script.
    Completions(CompletionsArgs),
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

/// `render` options.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Write files here instead of printing manifests to stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Template folder that overrides built-ins (default: templates/ next to the config).
    #[arg(long)]
    pub templates: Option<PathBuf>,
}

/// `apply` options.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Server-side dry-run only.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete objects this project applied before and no longer renders.
    #[arg(long)]
    pub prune: bool,
    /// Do not wait for readiness.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for readiness.
    #[arg(long, default_value = "5m")]
    pub timeout: String,
    /// Take ownership of fields other managers own.
    #[arg(long)]
    pub force_conflicts: bool,
}

/// `delete` options.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Do not ask.
    #[arg(long)]
    pub yes: bool,
}

/// `gitops` options.
#[derive(Debug, Args)]
pub struct GitopsArgs {
    /// Repository folder to write.
    #[arg(long, default_value = "deploy")]
    pub out: PathBuf,
    /// Write nothing; exit 2 with a diff when the tree is stale.
    #[arg(long)]
    pub check: bool,
    /// Overwrite generated files that were edited by hand.
    #[arg(long)]
    pub force: bool,
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
    /// terraform plan.
    Plan(InfraTarget),
    /// terraform apply.
    Apply(InfraTarget),
    /// terraform destroy.
    Destroy(InfraTarget),
    /// Print or merge a kubeconfig context for the created cluster.
    Kubeconfig(InfraTarget),
}

/// Which cluster `infra` works on.
#[derive(Debug, Args)]
pub struct InfraTarget {
    /// Cluster name (or use --env).
    #[arg(long)]
    pub cluster: Option<String>,
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
