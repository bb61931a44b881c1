//! Model storage access: the bucket a `modelUri` names, and the workload identity
//! (`storage: {identity: workload}`) that reads it instead of keys — checked against the
//! environment's cloud and the runtime's row.

use serde::Serialize;

use super::{Canary, ModelCheck, Source, key, names};
use crate::config::yaml::Seg;
use crate::config::{Cloud, IdentityMode, ModelSpec};
use crate::model::ClusterModel;
use crate::runtime::RuntimeSpec;

/// A bucket (or blob container) of a cloud's object store.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase", tag = "store")]
pub enum Bucket {
    /// Google Cloud Storage (`gs://bucket/…`).
    Gcs {
        /// Bucket name.
        bucket: String,
    },
    /// Amazon S3 (`s3://bucket/…`).
    S3 {
        /// Bucket name.
        bucket: String,
    },
    /// An Azure Blob Storage container (`https://<account>.blob.core.windows.net/<container>/…`).
    AzureBlob {
        /// Storage account.
        account: String,
        /// Container.
        container: String,
    },
}

impl Bucket {
    /// The bucket an artifact URI lives in, None for other URIs (`pvc://`, `hf://`, plain
    /// https).
    pub fn of(uri: &str) -> Option<Bucket> {
        let first = |rest: &str| {
            rest.split('/')
                .next()
                .filter(|b| !b.is_empty())
                .map(str::to_string)
        };
        if let Some(rest) = uri.strip_prefix("gs://") {
            return first(rest).map(|bucket| Bucket::Gcs { bucket });
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            return first(rest).map(|bucket| Bucket::S3 { bucket });
        }
        let rest = uri.strip_prefix("https://")?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let account = host.strip_suffix(".blob.core.windows.net")?;
        let container = first(path)?;
        (!account.is_empty() && !account.contains('.')).then(|| Bucket::AzureBlob {
            account: account.to_string(),
            container,
        })
    }

    /// The cloud whose identity can be granted read on it.
    pub fn cloud(&self) -> Cloud {
        match self {
            Bucket::Gcs { .. } => Cloud::Gcp,
            Bucket::S3 { .. } => Cloud::Aws,
            Bucket::AzureBlob { .. } => Cloud::Azure,
        }
    }

    /// The store's name for messages.
    pub fn store(&self) -> &'static str {
        match self {
            Bucket::Gcs { .. } => "a Google Cloud Storage bucket",
            Bucket::S3 { .. } => "an S3 bucket",
            Bucket::AzureBlob { .. } => "an Azure Blob Storage container",
        }
    }

    /// How Terraform names it: the bucket, or `<account>/<container>` on Azure.
    pub fn id(&self) -> String {
        match self {
            Bucket::Gcs { bucket } | Bucket::S3 { bucket } => bucket.clone(),
            Bucket::AzureBlob { account, container } => format!("{account}/{container}"),
        }
    }
}

/// A workload identity a model's pods run as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Name of the cloud identity and of the Kubernetes ServiceAccount bound to it.
    pub name: String,
    /// Buckets it reads (sorted, without repeats).
    pub buckets: Vec<Bucket>,
    /// AKS: the managed identity's client id, once known.
    pub client_id: Option<String>,
}

/// Longest Google service account id (and shortest: 6).
const GCP_MAX: usize = 30;
const GCP_MIN: usize = 6;

/// The longest identity name `cloud` takes (Kubernetes ServiceAccounts here are DNS labels).
fn max_name(cloud: Cloud) -> usize {
    match cloud {
        Cloud::Gcp => GCP_MAX,
        _ => 63,
    }
}

/// `<project>-<env>-storage`, shortened with a stable hash to what the cloud allows.
pub fn default_name(project: &str, env: &str, cloud: Cloud) -> String {
    let full = format!("{project}-{env}-storage");
    let max = max_name(cloud);
    if full.len() <= max {
        return full;
    }
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let prefix: String = full.chars().take(max - 9).collect();
    format!("{}-{:08x}", prefix.trim_end_matches('-'), hash as u32)
}

/// Whether `s` is a GUID (`00000000-0000-0000-0000-000000000000`), as Entra client ids are.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The identity of a model (None without `storage.identity: workload`), with every problem of
/// `storage` recorded: a cloud without workload identity, a bucket of another cloud, a name the
/// cloud refuses, keys and an identity both, a runtime that cannot label its pods on AKS.
pub(super) fn check_storage(
    mc: &mut ModelCheck<'_>,
    spec: &ModelSpec,
    rt: &RuntimeSpec,
    cluster: Option<&ClusterModel>,
    (project, env_name): (&str, &str),
    source: Option<&Source>,
    canary: Option<&Canary>,
) -> Option<Identity> {
    let storage = spec.storage.as_ref()?;
    let at = |f: &str| [key("storage"), key(f)];
    if storage.identity != Some(IdentityMode::Workload) {
        for (field, set) in [
            ("name", storage.name.is_some()),
            ("buckets", storage.buckets.is_some()),
            ("clientId", storage.client_id.is_some()),
        ] {
            if set {
                mc.at(
                    &at(field),
                    format!("`storage.{field}` applies to a workload identity"),
                    Some("set `storage.identity: workload` as well, or remove it".into()),
                );
            }
        }
        return None;
    }
    let cluster = cluster?;
    let cloud = cluster.cloud;
    if crate::platform::of(cloud).workload_identity.is_none() {
        mc.at(
            &at("identity"),
            format!(
                "environment `{env_name}` runs on a {} cluster, which has no workload identity",
                cloud.name()
            ),
            Some(
                "use `storageSecret` with the keys of your object store (MinIO), or set \
                 `storage: {identity: none}` in this environment's overrides"
                    .into(),
            ),
        );
        return None;
    }
    if spec.storage_secret.is_some() {
        mc.at(
            &[key("storageSecret")],
            "set either `storageSecret` (keys) or `storage.identity: workload`, not both",
            Some("on a cloud the workload identity needs no Secret: remove `storageSecret`".into()),
        );
    }
    let name = match &storage.name {
        Some(n) => {
            let max = max_name(cloud);
            if let Err(e) = names::dns_label(n) {
                mc.at(
                    &at("name"),
                    format!("identity name `{n}` {e}"),
                    Some("a DNS-1123 label, e.g. `models-reader`".into()),
                );
            } else if n.len() > max
                || (cloud == Cloud::Gcp
                    && (n.len() < GCP_MIN || !n.starts_with(|c: char| c.is_ascii_lowercase())))
            {
                mc.at(
                    &at("name"),
                    format!(
                        "identity name `{n}` does not fit {}",
                        if cloud == Cloud::Gcp {
                            "a Google service account id"
                        } else {
                            "a Kubernetes ServiceAccount name"
                        }
                    ),
                    Some(if cloud == Cloud::Gcp {
                        format!("{GCP_MIN} to {GCP_MAX} characters, starting with a letter")
                    } else {
                        format!("at most {max} characters")
                    }),
                );
            }
            n.clone()
        }
        None => default_name(project, env_name, cloud),
    };
    let before = mc.found.len();
    let mut buckets: Vec<(Bucket, Vec<Seg>)> = Vec::new();
    let mut uri_problem = |mc: &mut ModelCheck<'_>, uri: &str, path: Vec<Seg>| match Bucket::of(uri)
    {
        Some(b) if b.cloud() != cloud => mc.at(
            &path,
            format!(
                "`{uri}` is {}, but environment `{env_name}` runs on {}: its workload identity \
                 cannot read it",
                b.store(),
                cloud.name()
            ),
            Some(format!(
                "copy the artifact to {} of the same cloud, or drop `storage.identity` and use \
                 `storageSecret` with keys for that store",
                Bucket::example(cloud)
            )),
        ),
        Some(b) => buckets.push((b, path)),
        None => {}
    };
    if let Some(Source::Prepackaged { model_uri, .. }) = source {
        uri_problem(mc, model_uri, vec![key("modelUri")]);
    }
    if let Some(Canary {
        source: Source::Prepackaged { model_uri, .. },
        ..
    }) = canary
    {
        uri_problem(mc, model_uri, vec![key("canary"), key("modelUri")]);
    }
    for (i, uri) in storage.buckets.iter().flatten().enumerate() {
        let path = vec![key("storage"), key("buckets"), Seg::Index(i)];
        if Bucket::of(uri).is_none() {
            mc.at(
                &path,
                format!("`{uri}` is not a bucket"),
                Some(format!("e.g. {}", Bucket::example(cloud))),
            );
        }
        uri_problem(mc, uri, path);
    }
    let mut buckets: Vec<Bucket> = buckets.into_iter().map(|(b, _)| b).collect();
    buckets.sort();
    buckets.dedup();
    if buckets.is_empty() && mc.found.len() == before {
        mc.at(
            &at("identity"),
            "a workload identity needs a bucket to read, and this model names none",
            Some(format!(
                "`modelUri` in a bucket ({}) or `storage.buckets`",
                Bucket::example(cloud)
            )),
        );
    }
    if let Some(id) = &storage.client_id {
        if cloud != Cloud::Azure {
            mc.at(
                &at("clientId"),
                "`clientId` applies to azure clusters (AKS workload identity)",
                Some(format!(
                    "on {} the ServiceAccount needs no client id: remove it",
                    cloud.name()
                )),
            );
        } else if !is_guid(id) {
            mc.at(
                &at("clientId"),
                format!("`{id}` is not a client id"),
                Some("a GUID, as `terraform output storage_identities` prints it".into()),
            );
        }
    }
    if cloud == Cloud::Azure && !rt.security.identity.pod_labels {
        mc.at(
            &at("identity"),
            format!(
                "AKS workload identity needs the label `azure.workload.identity/use` on the pods, \
                 which runtime `{}` cannot set ({})",
                rt.runtime.name(),
                rt.security.identity.how
            ),
            Some(format!(
                "use runtime {}, or `storageSecret`",
                crate::runtime::names_where(|r| r.prepackaged
                    && r.security.identity.pod_labels
                    && r.security.identity.rclone.is_none())
            )),
        );
    } else if cloud == Cloud::Azure && rt.security.identity.rclone.is_some() {
        mc.at(
            &at("identity"),
            format!(
                "runtime `{}` fetches artifacts with rclone, which cannot read an \
                 `https://<account>.blob.core.windows.net` URI with AKS workload identity",
                rt.runtime.name()
            ),
            Some("use runtime `kserve` (its storage initializer reads Azure Blob with the identity), or `storageSecret`".into()),
        );
    }
    Some(Identity {
        name,
        buckets,
        client_id: storage.client_id.clone(),
    })
}

impl Bucket {
    /// A bucket URI of `cloud`'s object store, for hints.
    pub fn example(cloud: Cloud) -> &'static str {
        match cloud {
            Cloud::Gcp => "`gs://bucket/path`",
            Cloud::Aws => "`s3://bucket/path`",
            Cloud::Azure => "`https://<account>.blob.core.windows.net/<container>/path`",
            Cloud::Onprem => "a bucket of your object store",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_from_uris() {
        assert_eq!(
            Bucket::of("gs://acme-models/fraud/v3"),
            Some(Bucket::Gcs {
                bucket: "acme-models".into()
            })
        );
        assert_eq!(
            Bucket::of("s3://b"),
            Some(Bucket::S3 { bucket: "b".into() })
        );
        assert_eq!(
            Bucket::of("https://acct.blob.core.windows.net/models/x").map(|b| b.id()),
            Some("acct/models".into())
        );
        assert_eq!(Bucket::of("https://example.com/model.bin"), None);
        assert_eq!(Bucket::of("pvc://claim/path"), None);
        assert_eq!(Bucket::of("gs://"), None);
    }

    #[test]
    fn default_names_fit_the_cloud() {
        assert_eq!(
            default_name("visual-qc", "prod", Cloud::Gcp),
            "visual-qc-prod-storage"
        );
        let long = default_name("a-rather-long-project", "staging", Cloud::Gcp);
        assert!(long.len() <= 30, "{long}");
        assert_eq!(
            long,
            default_name("a-rather-long-project", "staging", Cloud::Gcp)
        );
        assert_eq!(
            default_name("a-rather-long-project", "staging", Cloud::Aws),
            "a-rather-long-project-staging-storage"
        );
    }

    #[test]
    fn client_ids_are_guids() {
        assert!(is_guid("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"));
        assert!(!is_guid("0f1e2d3c"));
    }
}
