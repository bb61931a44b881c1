//! The bundle: everything one environment renders to — Kubernetes objects in apply order and
//! Terraform files — each parsed back and checked, ready to write, diff or apply.

use std::path::Path;

use serde_json::Value;

use crate::render::RenderError;

/// First line of every file mldeploy writes, so a later run knows which files are its own.
pub const HEADER: &str = "# Rendered by mldeploy";

/// A Kubernetes object.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Apply group (0 CRDs … 7 monitoring); lower groups go first.
    pub group: u8,
    /// apiVersion.
    pub api_version: String,
    /// kind.
    pub kind: String,
    /// metadata.name.
    pub name: String,
    /// metadata.namespace, if set.
    pub namespace: Option<String>,
    /// Template it came from.
    pub template: String,
    /// The document as rendered.
    pub text: String,
}

impl Manifest {
    /// The object as JSON. Parsed on demand: render only checks documents (keeping every parsed
    /// tree would cost ten times the text in memory), later stages parse what they use.
    pub fn object(&self) -> Value {
        serde_saphyr::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// What a rendered document says about itself: its identity, read in one pass over the parser's
/// events without building a tree.
#[derive(Debug, Default)]
struct Header {
    api_version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
}

/// Checks that `doc` is one valid YAML document whose root is a mapping without duplicate keys,
/// and reads its identity fields.
fn inspect(doc: &str) -> Result<Header, String> {
    use serde_saphyr::granit_parser::{Event, Parser};

    /// A container being read: for a mapping, its keys so far and whether a key comes next.
    enum Frame {
        Map {
            keys: Vec<String>,
            want_key: bool,
            key: Option<String>,
        },
        Seq,
    }
    let mut header = Header::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut documents = 0;
    let mut root_is_map = None;
    let mut parser = Parser::new_from_str(doc);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| e.to_string())?;
        // Which field a value at this point fills: only top-level and metadata-level keys matter.
        let slot = |stack: &[Frame]| -> Option<(usize, String)> {
            match stack.last() {
                Some(Frame::Map {
                    want_key: false,
                    key: Some(k),
                    ..
                }) if stack.len() <= 2 => {
                    let parent = match stack.first() {
                        Some(Frame::Map { key: Some(p), .. }) if stack.len() == 2 => {
                            Some(p.as_str())
                        }
                        _ => None,
                    };
                    match (stack.len(), parent) {
                        (1, _) => Some((1, k.clone())),
                        (2, Some("metadata")) => Some((2, k.clone())),
                        _ => None,
                    }
                }
                _ => None,
            }
        };
        let after_value = |stack: &mut Vec<Frame>| {
            if let Some(Frame::Map { want_key, .. }) = stack.last_mut() {
                *want_key = true;
            }
        };
        match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(format!(
                        "more than one document (line {})",
                        span.start.line()
                    ));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                if stack.is_empty() && root_is_map.is_none() {
                    root_is_map = Some(is_map);
                }
                if let Some(Frame::Map { want_key: true, .. }) = stack.last() {
                    return Err(format!(
                        "a mapping or list used as a key (line {})",
                        span.start.line()
                    ));
                }
                stack.push(if is_map {
                    Frame::Map {
                        keys: Vec::new(),
                        want_key: true,
                        key: None,
                    }
                } else {
                    Frame::Seq
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                after_value(&mut stack);
            }
            Event::Scalar(value, ..) => {
                if stack.is_empty() && root_is_map.is_none() {
                    root_is_map = Some(false);
                }
                if let Some(Frame::Map {
                    keys,
                    want_key: want_key @ true,
                    key,
                }) = stack.last_mut()
                {
                    if keys.iter().any(|k| *k == value) {
                        return Err(format!(
                            "duplicate key `{value}` (line {})",
                            span.start.line()
                        ));
                    }
                    keys.push(value.to_string());
                    *key = Some(value.into_owned());
                    *want_key = false;
                    continue;
                }
                match slot(&stack).as_ref().map(|(depth, k)| (*depth, k.as_str())) {
                    Some((1, "apiVersion")) => header.api_version = Some(value.into_owned()),
                    Some((1, "kind")) => header.kind = Some(value.into_owned()),
                    Some((2, "name")) => header.name = Some(value.into_owned()),
                    Some((2, "namespace")) => header.namespace = Some(value.into_owned()),
                    _ => {}
                }
                after_value(&mut stack);
            }
            Event::Alias(..) => after_value(&mut stack),
            _ => {}
        }
    }
    if root_is_map != Some(true) {
        return Err("the document is not a mapping".into());
    }
    Ok(header)
}

/// A Terraform file.
#[derive(Debug, Clone)]
pub struct TfFile {
    /// File name (`main.tf`).
    pub file: String,
    /// Template it came from.
    pub template: String,
    /// Contents.
    pub text: String,
}

impl TfFile {
    /// The file as written: mldeploy's header, then the text.
    pub fn contents(&self) -> String {
        format!(
            "{HEADER} from {}. Edit mldeploy.yaml, not this file.\n{}",
            self.template, self.text
        )
    }
}

/// One environment's rendered output.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Objects in apply order.
    pub manifests: Vec<Manifest>,
    /// Terraform files by name.
    pub terraform: Vec<TfFile>,
}

/// Apply order by kind (DESIGN.md): CRDs → Namespaces → ServiceAccounts/RBAC/NetworkPolicies →
/// ConfigMaps/Secrets
/// → Services → workloads → custom resources → monitoring.
pub fn group(kind: &str) -> u8 {
    match kind {
        "CustomResourceDefinition" => 0,
        "Namespace" => 1,
        // NetworkPolicies exist before the pods they protect.
        "ServiceAccount" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding"
        | "NetworkPolicy" => 2,
        // A ResourceClaimTemplate exists before the pods whose claims are made from it.
        "ConfigMap" | "Secret" | "ResourceClaimTemplate" => 3,
        "Service" => 4,
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "HorizontalPodAutoscaler"
        | "PodDisruptionBudget" => 5,
        "ServiceMonitor" | "PodMonitor" | "PrometheusRule" => 7,
        _ => 6,
    }
}

/// Splits a template's output into documents and parses each back. Values are quoted by the
/// templates' autoescape, so a line that is exactly `---` can only come from the template itself.
pub fn parse_objects(template: &str, text: &str) -> Result<Vec<Manifest>, RenderError> {
    let mut out = Vec::new();
    let mut doc = String::new();
    let mut docs = Vec::new();
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(std::mem::take(&mut doc));
        } else {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.push(doc);
    for doc in docs {
        if doc
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        let header = inspect(&doc).map_err(|message| RenderError::InvalidYaml {
            name: template.to_string(),
            message: format!("{message}\n--- rendered document ---\n{doc}"),
        })?;
        let missing = |what: &str| RenderError::NotAnObject {
            name: template.to_string(),
            message: format!("it has no {what}\n--- rendered document ---\n{doc}"),
        };
        let api_version = header.api_version.ok_or_else(|| missing("apiVersion"))?;
        let kind = header.kind.ok_or_else(|| missing("kind"))?;
        let name = header.name.ok_or_else(|| missing("metadata.name"))?;
        let namespace = header.namespace;
        let text = doc.trim_matches('\n').to_string() + "\n";
        out.push(Manifest {
            group: group(&kind),
            api_version,
            kind,
            name,
            namespace,
            template: template.to_string(),
            text,
        });
    }
    Ok(out)
}

impl Bundle {
    /// Orders the objects for apply and checks that none is rendered twice.
    pub fn new(
        mut manifests: Vec<Manifest>,
        mut terraform: Vec<TfFile>,
    ) -> Result<Self, RenderError> {
        manifests.sort_by(|a, b| {
            (a.group, &a.kind, &a.namespace, &a.name).cmp(&(
                b.group,
                &b.kind,
                &b.namespace,
                &b.name,
            ))
        });
        for pair in manifests.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.kind == b.kind && a.namespace == b.namespace && a.name == b.name {
                return Err(RenderError::Duplicate {
                    kind: a.kind.clone(),
                    name: a.name.clone(),
                    first: a.template.clone(),
                    second: b.template.clone(),
                });
            }
        }
        terraform.sort_by(|a, b| a.file.cmp(&b.file));
        for pair in terraform.windows(2) {
            if pair[0].file == pair[1].file {
                return Err(RenderError::Duplicate {
                    kind: "Terraform file".into(),
                    name: pair[0].file.clone(),
                    first: pair[0].template.clone(),
                    second: pair[1].template.clone(),
                });
            }
        }
        Ok(Bundle {
            manifests,
            terraform,
        })
    }

    /// The file name of a manifest: sorted names give the apply order.
    pub fn manifest_file(m: &Manifest) -> String {
        format!("{:02}-{}-{}.yaml", m.group, m.kind.to_lowercase(), m.name)
    }

    /// The manifests as one multi-document YAML stream.
    pub fn to_stream(&self) -> String {
        let mut out = String::new();
        for m in &self.manifests {
            out.push_str("---\n# Source: ");
            out.push_str(&m.template);
            out.push('\n');
            out.push_str(&m.text);
        }
        out
    }

    /// Every file of the bundle: (relative path, contents), sorted.
    pub fn files(&self) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = self
            .manifests
            .iter()
            .map(|m| {
                (
                    format!("manifests/{}", Self::manifest_file(m)),
                    format!(
                        "{HEADER} from {}. Edit mldeploy.yaml, not this file.\n{}",
                        m.template, m.text
                    ),
                )
            })
            .chain(
                self.terraform
                    .iter()
                    .map(|t| (format!("terraform/{}", t.file), t.contents())),
            )
            .collect();
        files.sort();
        files
    }

    /// Writes the bundle under `dir` (`manifests/`, `terraform/`) and removes files an earlier
    /// render wrote there that are no longer rendered, by the rules of [`crate::fsx`]: files
    /// without mldeploy's header are never overwritten or deleted, links and FIFOs are never
    /// written through. Returns the paths written.
    pub fn write_to(&self, dir: &Path) -> Result<Vec<String>, RenderError> {
        let files = self.files();
        for sub in ["manifests", "terraform"] {
            let wanted: std::collections::BTreeMap<String, String> = files
                .iter()
                .filter_map(|(rel, text)| {
                    let name = rel.strip_prefix(sub)?.strip_prefix('/')?;
                    Some((name.to_string(), text.clone()))
                })
                .collect();
            crate::fsx::sync_folder(dir, sub, &wanted, |_| true)?;
        }
        Ok(files.into_iter().map(|(rel, _)| rel).collect())
    }
}
