//! GitOps output: the repository tree for every environment, and the plan that updates a folder.
//!
//! The tree (`clusters/<cluster>/`, `apps/<env>/` with a `kustomization.yaml`, `argocd/<env>.yaml`
//! or `flux/<env>.yaml`) is a pure function of the project and the templates. What mldeploy wrote is
//! recorded in [`MANIFEST`] (path → SHA-256 of the bytes), committed with the tree, so that a later
//! run can tell its own stale files (delete), its own files edited by hand (conflict) and files it
//! never wrote (leave alone) apart. As kapp does, the change set is computed first ([`plan`]) and
//! then executed ([`write`]), so `--check` and a real run cannot disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bundle::HEADER;
use crate::config::GitopsEngine;
use crate::fsx::{self, is_plain_relative};
use crate::model::{Env, Gitops, Project};
use crate::render::quote::yaml_string;
use crate::render::{self, RenderError, Templates};

/// The file in the tree's root that records what mldeploy wrote.
pub const MANIFEST: &str = ".mldeploy-manifest.json";

/// Format version of [`MANIFEST`]; bumped only if its shape changes.
const MANIFEST_VERSION: u32 = 1;

/// Namespace Argo CD Applications live in (Argo CD's default install).
const ARGOCD_NAMESPACE: &str = "argocd";
/// Namespace Flux's sources and Kustomizations live in (`flux bootstrap`'s default).
const FLUX_NAMESPACE: &str = "flux-system";

/// Why generating or writing the tree failed.
#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    /// Rendering an environment failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Reading or writing a file failed.
    #[error("{}: {message}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The manifest in the tree cannot be trusted.
    #[error("{}: {message}", path.display())]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A file rule of [`crate::fsx`] was broken (a link, a FIFO), or the system refused.
    #[error(transparent)]
    File(#[from] crate::fsx::FileError),
    /// A template produced a file name that would land outside the tree.
    #[error("a rendered file name is not a plain relative path: `{path}`")]
    UnsafePath {
        /// The offending path.
        path: String,
    },
}

/// A generated tree: relative paths (with `/`) → contents, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// Every file mldeploy generates, without [`MANIFEST`].
    pub files: BTreeMap<String, String>,
}

/// Renders the whole tree: every environment's manifests and its cluster's Terraform, plus the
/// Argo CD or Flux objects when the config has a `gitops` block (without one, only `clusters/`
/// and `apps/` are generated: a plain kustomize tree any tool can sync).
pub fn generate(project: &Project, templates: &Templates) -> Result<Tree, GitopsError> {
    if project.environments.is_empty() {
        return Err(RenderError::Env {
            message: "the config has no environments".into(),
            hint: "add one under `environments:` (a cluster and a namespace)".into(),
        }
        .into());
    }
    let mut files = BTreeMap::new();
    for env in project.environments.values() {
        let bundle = render::render_env(project, env, templates)?;
        let mut resources = Vec::new();
        for (path, text) in bundle.files() {
            if let Some(name) = path.strip_prefix("manifests/") {
                resources.push(name.to_string());
                files.insert(format!("apps/{}/{name}", env.name), text);
            } else if let Some(name) = path.strip_prefix("terraform/") {
                // A cluster's Terraform is rendered from the cluster's context alone, so every
                // environment on it renders the same files; the first one is as good as any.
                files
                    .entry(format!("clusters/{}/{name}", env.cluster))
                    .or_insert(text);
            } else {
                unreachable!("Bundle::files yields manifests/ and terraform/ only: {path}");
            }
        }
        files.insert(
            format!("apps/{}/kustomization.yaml", env.name),
            kustomization(&resources),
        );
        if let Some(g) = &project.gitops {
            let (folder, text) = match g.engine {
                GitopsEngine::Argocd => ("argocd", argocd_application(project, env, g)),
                GitopsEngine::Flux => ("flux", flux_sync(project, env, g)),
            };
            files.insert(format!("{folder}/{}.yaml", env.name), text);
        }
    }
    // Names come from user templates too (metadata.name); none may climb out of the tree.
    if let Some(bad) = files.keys().find(|p| !is_plain_relative(p)) {
        return Err(GitopsError::UnsafePath { path: bad.clone() });
    }
    Ok(Tree { files })
}

fn generated_header() -> String {
    format!("{HEADER}. Edit mldeploy.yaml, not this file.\n")
}

/// `kustomization.yaml` listing an environment's manifests, so `kubectl kustomize apps/<env>`
/// builds exactly what `render --env <env>` renders. No namespace or label transformers: the
/// objects already carry both, and kustomize must not change them.
fn kustomization(resources: &[String]) -> String {
    let mut out = generated_header();
    out.push_str("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
    for r in resources {
        let _ = writeln!(out, "  - {}", yaml_string(r));
    }
    out
}

/// `gitops.path` without `./` and stray slashes: the tree's folder in the repository, empty for
/// the repository root.
pub fn repo_base(gitops: &Gitops) -> &str {
    let base = gitops
        .path
        .trim()
        .trim_start_matches("./")
        .trim_matches('/');
    if base == "." { "" } else { base }
}

/// The folder Argo CD or Flux reads an environment from, relative to the repository root:
/// `<gitops.path>/apps/<env>`.
pub fn repo_path(gitops: &Gitops, env: &str) -> String {
    match repo_base(gitops) {
        "" => format!("apps/{env}"),
        base => format!("{base}/apps/{env}"),
    }
}

/// Labels on the Argo CD / Flux objects: the project's own plus the standard ones.
fn engine_labels(project: &Project, env: &Env) -> BTreeMap<String, String> {
    let mut labels = project.labels.clone();
    labels.insert("app.kubernetes.io/part-of".into(), project.name.clone());
    labels.insert("app.kubernetes.io/managed-by".into(), "mldeploy".into());
    labels.insert("mldeploy.io/environment".into(), env.name.clone());
    labels
}

fn metadata(out: &mut String, name: &str, namespace: &str, labels: &BTreeMap<String, String>) {
    let _ = writeln!(out, "metadata:\n  name: {}", yaml_string(name));
    let _ = writeln!(out, "  namespace: {}", yaml_string(namespace));
    out.push_str("  labels:\n");
    for (k, v) in labels {
        let _ = writeln!(out, "    {}: {}", yaml_string(k), yaml_string(v));
    }
}

/// Workloads mldeploy renders whose replicas an autoscaler (an HPA, or KEDA's) owns:
/// (apiVersion, kind, name). Their manifests leave `replicas` out; the GitOps engine is told
/// too, so that a scaled count is not drift.
pub fn scaled_workloads(env: &Env) -> Vec<(&'static str, &'static str, String)> {
    env.models
        .iter()
        .filter(|m| m.autoscale.is_some())
        .map(|m| (crate::runtime::spec(m.runtime).serving, m))
        .filter(|(w, _)| w.readiness == crate::runtime::Readiness::Rollout)
        .map(|(w, m)| (w.kind.api_version, w.kind.kind, m.name.clone()))
        .collect()
}

/// An Argo CD Application syncing `apps/<env>` into the cluster Argo CD runs in. The namespace
/// is rendered as an object, so Argo CD must not create it; server-side apply matches `apply`.
/// Autoscaled workloads' `/spec/replicas` is ignored in diffs and syncs.
fn argocd_application(project: &Project, env: &Env, g: &Gitops) -> String {
    let mut out = generated_header();
    out.push_str("apiVersion: argoproj.io/v1alpha1\nkind: Application\n");
    metadata(
        &mut out,
        &format!("{}-{}", project.name, env.name),
        ARGOCD_NAMESPACE,
        &engine_labels(project, env),
    );
    let _ = write!(
        out,
        "spec:
  project: default
  source:
    repoURL: {repo}
    targetRevision: {revision}
    path: {path}
  destination:
    server: https://kubernetes.default.svc
    namespace: {namespace}
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
    syncOptions:
      - CreateNamespace=false
      - ServerSideApply=true
",
        repo = yaml_string(&g.repo_url),
        revision = yaml_string(&g.revision),
        path = yaml_string(&repo_path(g, &env.name)),
        namespace = yaml_string(&env.namespace),
    );
    let scaled = scaled_workloads(env);
    if !scaled.is_empty() {
        out.push_str(
            "      - RespectIgnoreDifferences=true
  # An HPA or KEDA owns these workloads' replicas: not drift, and never synced back.
  ignoreDifferences:
",
        );
        for (api_version, kind, name) in scaled {
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            let _ = write!(
                out,
                "    - group: {group}
      kind: {kind}
      name: {name}
      namespace: {namespace}
      jsonPointers:
        - /spec/replicas
",
                group = yaml_string(group),
                kind = yaml_string(kind),
                name = yaml_string(&name),
                namespace = yaml_string(&env.namespace),
            );
        }
    }
    out
}

/// How Flux's GitRepository names a revision: a full commit SHA is a `commit`, a full ref
/// (`refs/tags/v1`) a `name`, anything else a `branch`.
pub fn flux_ref(revision: &str) -> (&'static str, &str) {
    if revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        ("commit", revision)
    } else if revision.starts_with("refs/") {
        ("name", revision)
    } else {
        ("branch", revision)
    }
}

/// A Flux GitRepository and a Kustomization syncing `./apps/<env>` with prune, wait and a
/// health-check timeout. Each environment's file stands alone (its own GitRepository), so one
/// file can be applied to the cluster that environment runs on.
fn flux_sync(project: &Project, env: &Env, g: &Gitops) -> String {
    let name = format!("{}-{}", project.name, env.name);
    let labels = engine_labels(project, env);
    let (ref_kind, ref_value) = flux_ref(&g.revision);
    let mut out = generated_header();
    out.push_str("apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n");
    metadata(&mut out, &name, FLUX_NAMESPACE, &labels);
    let _ = write!(
        out,
        "spec:
  interval: 1m
  url: {url}
  ref:
    {ref_kind}: {ref_value}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
",
        url = yaml_string(&g.repo_url),
        ref_value = yaml_string(ref_value),
    );
    metadata(&mut out, &name, FLUX_NAMESPACE, &labels);
    let _ = write!(
        out,
        "spec:
  interval: 10m
  retryInterval: 1m
  timeout: 5m
  sourceRef:
    kind: GitRepository
    name: {name}
  path: {path}
  prune: true
  wait: true
",
        name = yaml_string(&name),
        path = yaml_string(&format!("./{}", repo_path(g, &env.name))),
    );
    let scaled = scaled_workloads(env);
    if !scaled.is_empty() {
        // Flux applies server-side and owns only the fields it applies: a manifest without
        // `replicas` leaves them to the autoscaler, and drift detection does not see them.
        out.push_str(
            "# Autoscaled (their manifests leave `replicas` to the HPA or KEDA, so Flux's\n\
             # server-side apply never owns or reverts it):\n",
        );
        for (_, kind, name) in scaled {
            let _ = writeln!(out, "#   {kind} {}/{name}", env.namespace);
        }
    }
    out
}

/// SHA-256 of `bytes` in lower-case hex, as `sha256sum` prints it (so a person can check the
/// manifest with standard tools).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// What mldeploy wrote into a tree: the contents of [`MANIFEST`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version (1).
    pub version: u32,
    /// Generated file → SHA-256 (hex) of the bytes mldeploy wrote.
    pub files: BTreeMap<String, String>,
}

impl Manifest {
    /// The manifest of a freshly generated tree.
    pub fn of(tree: &Tree) -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            files: tree
                .files
                .iter()
                .map(|(p, t)| (p.clone(), sha256_hex(t.as_bytes())))
                .collect(),
        }
    }

    /// The manifest as written: pretty JSON, keys sorted, a final newline. No timestamp and no
    /// mldeploy version, so an unchanged tree keeps an unchanged manifest.
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Reads a manifest, refusing anything that names a path outside the tree.
    pub fn parse(text: &str) -> Result<Self, String> {
        let m: Manifest = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if m.version != MANIFEST_VERSION {
            return Err(format!(
                "manifest version {} is not supported (this mldeploy writes {MANIFEST_VERSION})",
                m.version
            ));
        }
        for (path, hash) in &m.files {
            if !is_plain_relative(path) || path == MANIFEST {
                return Err(format!("`{path}` is not a plain relative path in the tree"));
            }
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("the hash of `{path}` is not a SHA-256"));
            }
        }
        Ok(m)
    }
}

/// What is on disk now, for every path the plan looks at.
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// The manifest as read (`None` when there is none).
    pub manifest: Option<Manifest>,
    /// Its exact text, to tell whether it needs rewriting.
    pub manifest_text: Option<String>,
    /// Contents of every generated or previously generated path that exists.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Reads the manifest and every path of `tree` or of the manifest from `dir`. A missing `dir`
/// is an empty tree.
pub fn read_current(dir: &Path, tree: &Tree) -> Result<Current, GitopsError> {
    // Links and special files are errors here, before anything is planned: a FIFO is never
    // opened, a linked folder never read as if it were the tree.
    let read = |rel: &str| fsx::read_existing(dir, rel);
    let manifest_path = dir.join(MANIFEST);
    let manifest_text = match read(MANIFEST)? {
        None => None,
        Some(bytes) => Some(String::from_utf8(bytes).map_err(|_| GitopsError::Manifest {
            path: manifest_path.clone(),
            message: "not UTF-8".into(),
        })?),
    };
    let manifest = match &manifest_text {
        None => None,
        Some(text) => Some(
            Manifest::parse(text).map_err(|message| GitopsError::Manifest {
                path: manifest_path.clone(),
                message,
            })?,
        ),
    };
    let mut paths: BTreeSet<&str> = tree.files.keys().map(String::as_str).collect();
    if let Some(m) = &manifest {
        paths.extend(m.files.keys().map(String::as_str));
    }
    let mut files = BTreeMap::new();
    for p in paths {
        if let Some(bytes) = read(p)? {
            files.insert(p.to_string(), bytes);
        }
    }
    Ok(Current {
        manifest,
        manifest_text,
        files,
    })
}

/// Why a file cannot be written or removed without `--force`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ConflictReason {
    /// mldeploy wrote it, and it was changed since.
    Edited,
    /// It exists, is different, and the manifest does not list it: mldeploy did not write it.
    NotGenerated,
}

impl ConflictReason {
    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            ConflictReason::Edited => "edited by hand since mldeploy wrote it",
            ConflictReason::NotGenerated => "exists, but mldeploy did not write it",
        }
    }
}

/// A file the plan would overwrite or delete but may not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    /// Relative path.
    pub path: String,
    /// Why.
    pub reason: ConflictReason,
    /// Whether the run would delete it (it is no longer generated) rather than overwrite it.
    pub removed: bool,
}

/// One file to write or delete, with both sides for the diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Relative path.
    pub path: String,
    /// What is there now (lossy UTF-8), if anything.
    pub old: Option<String>,
    /// What will be there, or `None` to delete.
    pub new: Option<String>,
}

/// The change set that brings a folder up to date with a tree.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Files to create.
    pub add: Vec<Change>,
    /// Files to overwrite.
    pub change: Vec<Change>,
    /// Files to delete (generated before, no longer rendered).
    pub remove: Vec<Change>,
    /// Files that block the run (empty with `--force`: they are in `change`/`remove` instead).
    pub conflicts: Vec<Conflict>,
    /// Files that are already right.
    pub unchanged: usize,
    /// The manifest to write, when it differs from the one on disk.
    pub manifest: Option<Change>,
}

impl Plan {
    /// Whether the folder already matches the tree.
    pub fn up_to_date(&self) -> bool {
        self.add.is_empty()
            && self.change.is_empty()
            && self.remove.is_empty()
            && self.conflicts.is_empty()
            && self.manifest.is_none()
    }

    /// Paths to add, remove and change, with the manifest counted where it falls.
    pub fn paths(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let names = |v: &[Change]| v.iter().map(|c| c.path.clone()).collect::<Vec<_>>();
        let (mut add, remove, mut change) =
            (names(&self.add), names(&self.remove), names(&self.change));
        if let Some(m) = &self.manifest {
            if m.old.is_some() {
                change.push(m.path.clone());
            } else {
                add.push(m.path.clone());
            }
        }
        (add, remove, change)
    }

    /// A unified diff of everything the plan would write or delete (conflicts included, so the
    /// reader sees what a hand edit would lose), `a/` → `b/` as git prints it.
    pub fn diff(&self, current: &Current, tree: &Tree) -> String {
        let mut out = String::new();
        let conflicts: Vec<Change> = self
            .conflicts
            .iter()
            .map(|c| Change {
                path: c.path.clone(),
                old: current
                    .files
                    .get(&c.path)
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
                new: tree.files.get(&c.path).cloned(),
            })
            .collect();
        let mut all: Vec<&Change> = self
            .add
            .iter()
            .chain(&self.change)
            .chain(&self.remove)
            .chain(&conflicts)
            .chain(&self.manifest)
            .collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        for c in all {
            let old = c.old.as_deref().unwrap_or("");
            let new = c.new.as_deref().unwrap_or("");
            let a = match c.old {
                Some(_) => format!("a/{}", c.path),
                None => "/dev/null".into(),
            };
            let b = match c.new {
                Some(_) => format!("b/{}", c.path),
                None => "/dev/null".into(),
            };
            let _ = write!(
                out,
                "{}",
                similar::TextDiff::from_lines(old, new)
                    .unified_diff()
                    .context_radius(3)
                    .missing_newline_hint(true)
                    .header(&a, &b)
            );
        }
        out
    }
}

/// Computes the change set from the generated tree to what is on disk. Pure: the same inputs
/// give the same plan. With `force`, conflicts become changes and removals.
pub fn plan(tree: &Tree, current: &Current, force: bool) -> Plan {
    let recorded = |p: &str| current.manifest.as_ref().and_then(|m| m.files.get(p));
    let mut plan = Plan::default();
    for (path, text) in &tree.files {
        let Some(on_disk) = current.files.get(path) else {
            plan.add.push(Change {
                path: path.clone(),
                old: None,
                new: Some(text.clone()),
            });
            continue;
        };
        if on_disk == text.as_bytes() {
            plan.unchanged += 1;
            continue;
        }
        let reason = match recorded(path) {
            Some(hash) if *hash == sha256_hex(on_disk) => None,
            Some(_) => Some(ConflictReason::Edited),
            None => Some(ConflictReason::NotGenerated),
        };
        match reason {
            Some(reason) if !force => plan.conflicts.push(Conflict {
                path: path.clone(),
                reason,
                removed: false,
            }),
            _ => plan.change.push(Change {
                path: path.clone(),
                old: Some(String::from_utf8_lossy(on_disk).into_owned()),
                new: Some(text.clone()),
            }),
        }
    }
    if let Some(m) = &current.manifest {
        for (path, hash) in &m.files {
            if tree.files.contains_key(path) {
                continue;
            }
            // Already gone: nothing to do, and the new manifest forgets it.
            let Some(on_disk) = current.files.get(path) else {
                continue;
            };
            if !force && sha256_hex(on_disk) != *hash {
                plan.conflicts.push(Conflict {
                    path: path.clone(),
                    reason: ConflictReason::Edited,
                    removed: true,
                });
            } else {
                plan.remove.push(Change {
                    path: path.clone(),
                    old: Some(String::from_utf8_lossy(on_disk).into_owned()),
                    new: None,
                });
            }
        }
    }
    plan.conflicts.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest::of(tree).to_text();
    if current.manifest_text.as_deref() != Some(manifest.as_str()) {
        plan.manifest = Some(Change {
            path: MANIFEST.into(),
            old: current.manifest_text.clone(),
            new: Some(manifest),
        });
    }
    plan
}

/// Executes a plan without conflicts under `dir`: deletes, then writes, then the manifest last,
/// so an interrupted run converges when run again. Identical files are not in the plan and so
/// are not rewritten (their mtimes stay). Folders left empty by a deletion are removed, up to
/// `dir`.
pub fn write(dir: &Path, plan: &Plan) -> Result<(), GitopsError> {
    assert!(
        plan.conflicts.is_empty(),
        "gitops::write must not run a plan with conflicts"
    );
    for c in &plan.remove {
        fsx::remove(dir, &c.path)?;
    }
    for c in plan.add.iter().chain(&plan.change).chain(&plan.manifest) {
        if let Some(text) = &c.new {
            fsx::write(dir, &c.path, text.as_bytes(), fsx::WriteOptions::default())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Tree {
        Tree {
            files: files
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect(),
        }
    }

    /// The disk state right after writing `t`.
    fn written(t: &Tree) -> Current {
        let manifest = Manifest::of(t);
        Current {
            manifest_text: Some(manifest.to_text()),
            manifest: Some(manifest),
            files: t
                .files
                .iter()
                .map(|(p, s)| (p.clone(), s.as_bytes().to_vec()))
                .collect(),
        }
    }

    fn paths(v: &[Change]) -> Vec<&str> {
        v.iter().map(|c| c.path.as_str()).collect()
    }

    #[test]
    fn a_fresh_folder_gets_everything_and_a_second_run_nothing() {
        let t = tree(&[("apps/a/x.yaml", "x\n"), ("clusters/c/main.tf", "tf\n")]);
        let p = plan(&t, &Current::default(), false);
        assert_eq!(paths(&p.add), ["apps/a/x.yaml", "clusters/c/main.tf"]);
        assert!(p.manifest.is_some());
        assert!(!p.up_to_date());
        let again = plan(&t, &written(&t), false);
        assert!(again.up_to_date(), "{again:?}");
        assert_eq!(again.unchanged, 2);
        assert_eq!(again.diff(&written(&t), &t), "");
    }

    #[test]
    fn stale_files_are_removed_and_edited_ones_are_conflicts() {
        let old = tree(&[
            ("apps/a/x.yaml", "x\n"),
            ("apps/a/y.yaml", "y\n"),
            ("apps/a/z.yaml", "z\n"),
        ]);
        let mut disk = written(&old);
        disk.files
            .insert("apps/a/z.yaml".into(), b"z edited\n".to_vec());
        let new = tree(&[("apps/a/x.yaml", "x2\n")]);
        let p = plan(&new, &disk, false);
        assert_eq!(paths(&p.change), ["apps/a/x.yaml"]);
        assert_eq!(paths(&p.remove), ["apps/a/y.yaml"]);
        assert_eq!(
            p.conflicts,
            [Conflict {
                path: "apps/a/z.yaml".into(),
                reason: ConflictReason::Edited,
                removed: true
            }]
        );
        let forced = plan(&new, &disk, true);
        assert!(forced.conflicts.is_empty());
        assert_eq!(paths(&forced.remove), ["apps/a/y.yaml", "apps/a/z.yaml"]);
        let diff = p.diff(&disk, &new);
        assert!(
            diff.contains("--- a/apps/a/y.yaml\n+++ /dev/null\n"),
            "{diff}"
        );
        assert!(diff.contains("-x\n+x2\n"), "{diff}");
    }

    #[test]
    fn files_mldeploy_did_not_write_are_never_overwritten_without_force() {
        let t = tree(&[("apps/a/kustomization.yaml", "ours\n")]);
        let mut disk = Current::default();
        disk.files
            .insert("apps/a/kustomization.yaml".into(), b"theirs\n".to_vec());
        let p = plan(&t, &disk, false);
        assert_eq!(p.conflicts[0].reason, ConflictReason::NotGenerated);
        assert!(p.change.is_empty());
        // The same bytes are simply adopted into the manifest (a lost manifest is recoverable).
        disk.files
            .insert("apps/a/kustomization.yaml".into(), b"ours\n".to_vec());
        let p = plan(&t, &disk, false);
        assert!(p.conflicts.is_empty() && p.add.is_empty() && p.change.is_empty());
        assert!(p.manifest.is_some());
    }

    #[test]
    fn manifests_naming_paths_outside_the_tree_are_refused() {
        let ok = Manifest::of(&tree(&[("apps/a/x.yaml", "x")])).to_text();
        assert!(Manifest::parse(&ok).is_ok());
        for bad in [
            "../x",
            "/etc/passwd",
            "apps/../../x",
            "apps//x",
            "./x",
            "",
            MANIFEST,
        ] {
            let text = ok.replace("apps/a/x.yaml", bad);
            assert!(Manifest::parse(&text).is_err(), "{bad:?} accepted");
        }
        assert!(Manifest::parse(&ok.replace("\"version\": 1", "\"version\": 9")).is_err());
        assert!(Manifest::parse("{\"version\": 1, \"files\": {}, \"extra\": 1}").is_err());
    }

    #[test]
    fn hashes_are_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn revisions_map_to_flux_refs_and_paths_are_normalised() {
        assert_eq!(flux_ref("main"), ("branch", "main"));
        assert_eq!(flux_ref("refs/tags/v1.2"), ("name", "refs/tags/v1.2"));
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(flux_ref(sha), ("commit", sha));
        let g = |path: &str| Gitops {
            engine: GitopsEngine::Flux,
            repo_url: "https://x".into(),
            revision: "main".into(),
            path: path.into(),
        };
        assert_eq!(repo_path(&g("deploy"), "prod"), "deploy/apps/prod");
        assert_eq!(repo_path(&g("./a/b/"), "prod"), "a/b/apps/prod");
        assert_eq!(repo_path(&g(""), "prod"), "apps/prod");
        assert_eq!(repo_path(&g("."), "prod"), "apps/prod");
    }

    fn project(gitops: &str) -> Project {
        let text = format!(
            "version: 1\nproject: p\nmodels:\n  - name: m\n    image: r.example.com/m:1\n\
             clusters:\n  c: {{cloud: onprem}}\nenvironments:\n  e: {{cluster: c}}\n{gitops}"
        );
        let loaded =
            crate::config::load_str(Path::new("t.yaml"), &text).expect("test config loads");
        crate::model::resolve(&loaded).expect("test config resolves")
    }

    #[test]
    fn engine_files_quote_every_user_string() {
        let hostile = [
            "https://x.example.com/r.git # not: a comment",
            "yes",
            "\n---\nkind: Secret",
            "{a: b}",
            "'\"\\",
        ];
        for engine in ["argocd", "flux"] {
            for h in hostile {
                let q = yaml_string(h);
                let p = project(&format!(
                    "gitops: {{engine: {engine}, repoURL: {q}, revision: {q}}}\n"
                ));
                let t = generate(&p, &Templates::builtin().expect("built-ins")).expect("renders");
                let text = &t.files[&format!("{engine}/e.yaml")];
                let docs: Vec<serde_json::Value> =
                    serde_saphyr::from_multiple(text).expect("parses back");
                let (url, rev) = if engine == "argocd" {
                    assert_eq!(docs.len(), 1);
                    let src = &docs[0]["spec"]["source"];
                    (src["repoURL"].clone(), src["targetRevision"].clone())
                } else {
                    assert_eq!(docs.len(), 2, "{text}");
                    let spec = &docs[0]["spec"];
                    (spec["url"].clone(), spec["ref"]["branch"].clone())
                };
                assert_eq!(url, h, "{text}");
                assert_eq!(rev, h, "{text}");
            }
        }
    }

    #[test]
    fn without_a_gitops_block_there_are_no_engine_files() {
        let t = generate(&project(""), &Templates::builtin().expect("built-ins")).expect("ok");
        assert!(
            t.files
                .keys()
                .all(|p| p.starts_with("apps/") || p.starts_with("clusters/"))
        );
        assert!(t.files.contains_key("apps/e/kustomization.yaml"));
    }
}
