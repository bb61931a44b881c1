//! Workload identity for model storage, image signature policies and Secrets as files (issue
//! 14): what each cloud's ServiceAccounts, pods and Terraform get (snapshots), and what
//! `validate` refuses or warns about (CLI).

use std::path::Path;

use mldeploy::bundle::Bundle;
use mldeploy::model::{self, Project};
use mldeploy::render::{self, Templates};
use serde_json::Value;

use crate::mldeploy;

fn project(text: &str) -> Project {
    let loaded = mldeploy::config::load_str(Path::new("identity.yaml"), text).expect("parses");
    model::resolve(&loaded).unwrap_or_else(|r| panic!("{}", r.render(false)))
}

fn render(p: &Project, env: &str) -> Bundle {
    let templates = Templates::builtin().expect("built-ins compile");
    render::render_env(p, &p.environments[env], &templates).expect("renders")
}

/// A project on `cluster` whose models use a workload identity with every runtime the cloud
/// allows.
fn config(cluster: &str, uri: &str, models: &str) -> String {
    format!(
        r#"version: 1
project: shop
models:
  - name: ranker
    runtime: kserve
    server: xgboost
    modelUri: {uri}/ranker/v1
    storage: {{identity: workload}}
    canary: {{modelUri: {uri}2/ranker/v2, traffic: 10}}
  - name: embedder
    runtime: deployment
    image: registry.example.com/shop/embedder@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    storage: {{identity: workload, name: embedder-reader, buckets: ["{uri}/embeddings"]}}
    secretEnv:
      - {{name: HF_TOKEN_PATH, secret: hf, key: token, file: true}}
      - {{name: API_KEY, secret: api, key: key}}
{models}
clusters:
  {cluster}
environments:
  prod: {{cluster: c, namespace: shop}}
  staging: {{cluster: c, namespace: shop-staging}}
"#
    )
}

const SELDON: &str = r#"  - name: router
    runtime: seldon
    server: sklearn
    modelUri: URI/router/v3
    storage: {identity: workload}
  - name: tagger
    runtime: seldon-v2
    server: sklearn
    modelUri: URI/tagger/v1
    storage: {identity: workload}
"#;

/// The identity objects of a bundle: ServiceAccounts and rclone Secrets in full, and of every
/// workload the ServiceAccount and the pod labels it runs with.
fn identity_view(b: &Bundle) -> String {
    let mut out = String::new();
    for m in &b.manifests {
        let o = m.object();
        let pod = match m.kind.as_str() {
            "ServiceAccount" | "Secret" | "ClusterPolicy" => {
                out.push_str(&m.text);
                out.push_str("---\n");
                continue;
            }
            "Deployment" => o.pointer("/spec/template").cloned(),
            "InferenceService" => o.pointer("/spec/predictor").cloned().map(|p| {
                serde_json::json!({"spec": {"serviceAccountName": p["serviceAccountName"]},
                    "metadata": {"labels": p["labels"]}})
            }),
            "SeldonDeployment" => o.pointer("/spec/predictors/0/componentSpecs/0").cloned(),
            "Server" => o
                .pointer("/spec/podSpec")
                .cloned()
                .map(|s| serde_json::json!({"spec": s})),
            "Model" => {
                out.push_str(&format!(
                    "{} {}: server {}, secretName {}\n",
                    m.kind, m.name, o["spec"]["server"], o["spec"]["secretName"]
                ));
                continue;
            }
            _ => None,
        };
        if let Some(pod) = pod {
            let labels: Vec<String> = pod["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.starts_with("azure.workload.identity"))
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            out.push_str(&format!(
                "{} {}: serviceAccountName {}, labels {:?}, envSecretRefName {}\n",
                m.kind,
                m.name,
                pod["spec"]["serviceAccountName"],
                labels,
                o.pointer("/spec/predictors/0/graph/envSecretRefName")
                    .unwrap_or(&Value::Null)
            ));
        }
    }
    let identity = b
        .terraform
        .iter()
        .find(|t| t.file == "identity.tf")
        .expect("identity.tf");
    out.push_str("=== terraform/identity.tf\n");
    out.push_str(&identity.text);
    out
}

#[test]
fn gke_binds_a_google_service_account_per_identity() {
    let p = project(&config(
        "c: {cloud: gcp, region: europe-west4, gcp: {project: acme-ml}}",
        "gs://shop-models",
        &SELDON.replace("URI", "gs://shop-models"),
    ));
    insta::assert_snapshot!("identity-gke", identity_view(&render(&p, "prod")));
}

#[test]
fn eks_associates_an_iam_role_per_identity_with_pod_identity() {
    let p = project(&config(
        "c: {cloud: aws, region: eu-central-1}",
        "s3://shop-models",
        &SELDON.replace("URI", "s3://shop-models"),
    ));
    insta::assert_snapshot!("identity-eks", identity_view(&render(&p, "prod")));
}

#[test]
fn aks_federates_a_managed_identity_and_labels_the_pods() {
    let text = config(
        "c: {cloud: azure, region: westeurope, azure: {resourceGroup: shop-rg}}",
        "https://shopmodels.blob.core.windows.net/models",
        "",
    )
    .replace(
        "storage: {identity: workload}",
        "storage: {identity: workload, clientId: 0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b}",
    );
    let p = project(&text);
    insta::assert_snapshot!("identity-aks", identity_view(&render(&p, "prod")));
}

#[test]
fn an_aks_identity_without_its_client_id_gets_no_annotation_yet() {
    let p = project(&config(
        "c: {cloud: azure, region: westeurope, azure: {resourceGroup: shop-rg}}",
        "https://shopmodels.blob.core.windows.net/models",
        "",
    ));
    let b = render(&p, "prod");
    let sa = b
        .manifests
        .iter()
        .find(|m| m.kind == "ServiceAccount" && m.name == "shop-prod-storage")
        .expect("the identity's ServiceAccount");
    assert!(
        sa.object()["metadata"].get("annotations").is_none(),
        "{}",
        sa.text
    );
    // The warning says what to do.
    assert!(p.warnings.iter().any(|w| w.message.contains("client id")));
}

#[test]
fn secrets_marked_file_are_mounted_read_only_and_the_rest_stay_variables() {
    let p = project(&config(
        "c: {cloud: gcp, region: europe-west4, gcp: {project: acme-ml}}",
        "gs://shop-models",
        "",
    ));
    let b = render(&p, "prod");
    let dep = b
        .manifests
        .iter()
        .find(|m| m.kind == "Deployment")
        .expect("embedder")
        .object();
    let spec = &dep["spec"]["template"]["spec"];
    let c = &spec["containers"][0];
    let env = c["env"].as_array().expect("env");
    assert!(env.contains(&serde_json::json!({"name": "HF_TOKEN_PATH",
        "value": "/var/run/secrets/mldeploy/HF_TOKEN_PATH/token"})));
    assert!(
        env.iter()
            .any(|e| e["name"] == "API_KEY" && e["valueFrom"]["secretKeyRef"]["name"] == "api")
    );
    assert!(
        c["volumeMounts"]
            .as_array()
            .expect("mounts")
            .contains(&serde_json::json!({"name": "secret-file-0",
            "mountPath": "/var/run/secrets/mldeploy/HF_TOKEN_PATH", "readOnly": true}))
    );
    assert!(spec["volumes"].as_array().expect("volumes").contains(
        &serde_json::json!({"name": "secret-file-0", "secret": {"secretName": "hf",
            "items": [{"key": "token", "path": "token"}]}})
    ));
}

/// `validate --output json` of a config (with a cosign.pub next to it): exit code and document.
fn validate(text: &str) -> (i32, Value, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("mldeploy.yaml");
    std::fs::write(&file, text).expect("write");
    std::fs::write(
        dir.path().join("cosign.pub"),
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n",
    )
    .expect("write key");
    let out = mldeploy()
        .arg("-f")
        .arg(&file)
        .args(["--output", "json", "validate"])
        .output()
        .expect("runs");
    let text_mode = mldeploy()
        .arg("-f")
        .arg(&file)
        .arg("validate")
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout))),
        String::from_utf8_lossy(&text_mode.stderr).into_owned(),
    )
}

/// The entries of `list` at `path`.
fn at<'a>(list: &'a Value, path: &str) -> Vec<&'a Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["path"] == path)
        .collect()
}

const BAD: &str = r#"version: 1
project: shop
models:
  - {name: onprem-id, runtime: kserve, server: sklearn, modelUri: "s3://m/a", storage: {identity: workload}}
  - {name: cross, runtime: kserve, server: sklearn, modelUri: "gs://m/a", storage: {identity: workload}}
  - {name: both, runtime: kserve, server: sklearn, modelUri: "s3://m/a", storageSecret: keys, storage: {identity: workload}}
  - {name: client, runtime: kserve, server: sklearn, modelUri: "s3://m/a", storage: {identity: workload, clientId: 0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b}}
  - {name: nobucket, runtime: deployment, image: "r/x:1", storage: {identity: workload}}
  - {name: stray, runtime: kserve, server: sklearn, modelUri: "s3://m/a", storage: {name: reader}}
  - {name: v2file, runtime: seldon-v2, server: sklearn, modelUri: "s3://m/a", secretEnv: [{name: T, secret: s, key: k, file: true}]}
  - {name: longname, runtime: kserve, server: sklearn, modelUri: "gs://m/a", storage: {identity: workload, name: gsa}}
  - {name: v2aks, runtime: seldon-v2, server: sklearn, modelUri: "https://a.blob.core.windows.net/c/m", storage: {identity: workload}}
  - {name: v1aks, runtime: seldon, server: sklearn, modelUri: "https://a.blob.core.windows.net/c/m", storage: {identity: workload}}
clusters:
  factory: {cloud: onprem, context: k3s}
  eks: {cloud: aws, region: eu-central-1}
  gke: {cloud: gcp, region: europe-west4, gcp: {project: p}}
  aks: {cloud: azure, region: westeurope, azure: {resourceGroup: rg}}
environments:
  edge:
    cluster: factory
    overrides:
      models:
        cross: {storage: {identity: none}}
        both: {storage: {identity: none}}
        client: {storage: {identity: none}}
        nobucket: {storage: {identity: none}}
        longname: {storage: {identity: none}}
        v2aks: {storage: {identity: none}}
        v1aks: {storage: {identity: none}}
  aws:
    cluster: eks
    overrides:
      models:
        onprem-id: {storage: {identity: none}}
        longname: {storage: {identity: none}}
        v2aks: {storage: {identity: none}}
        v1aks: {storage: {identity: none}}
  gcp:
    cluster: gke
    overrides:
      models:
        onprem-id: {storage: {identity: none}}
        cross: {storage: {identity: none}}
        both: {storage: {identity: none}}
        client: {storage: {identity: none}}
        v2aks: {storage: {identity: none}}
        v1aks: {storage: {identity: none}}
  azure:
    cluster: aks
    overrides:
      models:
        onprem-id: {storage: {identity: none}}
        cross: {storage: {identity: none}}
        both: {storage: {identity: none}}
        client: {storage: {identity: none}}
        longname: {storage: {identity: none}}
"#;

#[test]
fn identity_mistakes_are_errors_with_location_field_and_hint() {
    let (code, doc, text) = validate(BAD);
    assert_eq!(code, 1, "{doc}");
    let errors = &doc["errors"];
    for (path, message, hint) in [
        (
            "models[0].storage.identity",
            "runs on a onprem cluster, which has no workload identity",
            "storageSecret",
        ),
        (
            "models[1].modelUri",
            "`gs://m/a` is a Google Cloud Storage bucket, but environment `aws` runs on aws",
            "s3://bucket/path",
        ),
        (
            "models[2].storageSecret",
            "set either `storageSecret` (keys) or `storage.identity: workload`",
            "remove `storageSecret`",
        ),
        (
            "models[3].storage.clientId",
            "`clientId` applies to azure clusters",
            "remove it",
        ),
        (
            "models[4].storage.identity",
            "a workload identity needs a bucket to read",
            "storage.buckets",
        ),
        (
            "models[5].storage.name",
            "`storage.name` applies to a workload identity",
            "identity: workload",
        ),
        (
            "models[6].secretEnv[0].file",
            "runtime `seldon-v2` cannot mount Secrets as files",
            "a Model has no container of its own",
        ),
        (
            "models[7].storage.name",
            "identity name `gsa` does not fit a Google service account id",
            "6 to 30 characters",
        ),
        (
            "models[8].storage.identity",
            "needs the label `azure.workload.identity/use` on the pods",
            "use runtime",
        ),
        (
            "models[9].storage.identity",
            "runtime `seldon` fetches artifacts with rclone",
            "use runtime `kserve`",
        ),
    ] {
        let found = at(errors, path);
        let e = found
            .iter()
            .find(|e| e["message"].as_str().is_some_and(|m| m.contains(message)))
            .unwrap_or_else(|| panic!("no error {message:?} at {path}: {errors:#}"));
        assert!(
            e["hint"].as_str().is_some_and(|h| h.contains(hint)),
            "{path}: hint {hint:?}: {e}"
        );
        assert!(e["line"].as_u64().is_some_and(|l| l > 2), "{path}: {e}");
        assert!(text.contains(path), "{path} in text mode:\n{text}");
    }
}

const WARN: &str = r#"version: 1
project: shop
security:
  imageSignatures: {cosignKey: cosign.pub}
models:
  - {name: public, runtime: kserve, server: sklearn, modelUri: "gs://public-models/a"}
  - {name: keys, runtime: kserve, server: sklearn, modelUri: "s3://m/a", storageSecret: keys}
  - {name: az, runtime: kserve, server: sklearn, modelUri: "https://a.blob.core.windows.net/c/m", storage: {identity: workload}}
  - {name: app, image: "registry.example.com/app:1"}
clusters:
  eks: {cloud: aws, region: eu-central-1, controlPlane: {authorizedNetworks: ["203.0.113.0/24"]}}
  aks: {cloud: azure, region: westeurope, azure: {resourceGroup: rg}, controlPlane: {authorizedNetworks: ["203.0.113.0/24"]}}
environments:
  aws:
    cluster: eks
    overrides: {models: {az: {storage: null, storageSecret: az-keys}}}
  azure:
    cluster: aks
    overrides: {models: {public: {modelUri: "https://a.blob.core.windows.net/c/p"}, keys: {modelUri: "https://a.blob.core.windows.net/c/k"}}}
"#;

#[test]
fn validate_warns_about_keys_a_missing_client_id_a_foreign_bucket_and_kyverno() {
    let (code, doc, text) = validate(WARN);
    assert_eq!(code, 0, "{doc}");
    let warnings = &doc["warnings"];
    for (path, message) in [
        (
            "models[0].modelUri",
            "`gs://public-models/a` of model `public` is a Google Cloud Storage bucket but environment `aws` runs on aws",
        ),
        (
            "models[1].storageSecret",
            "reads its artifact with static keys",
        ),
        ("models[2].storage", "has no AKS client id yet"),
        (
            "security.imageSignatures",
            "Kyverno must run in the cluster",
        ),
    ] {
        assert!(
            at(warnings, path)
                .iter()
                .any(|w| w["message"].as_str().is_some_and(|m| m.contains(message))),
            "no warning {path}: {message}\n{warnings:#}"
        );
        assert!(
            text.lines().any(|l| l.starts_with("warning: ")
                && l.contains("mldeploy.yaml:")
                && l.contains(path)),
            "{path} with its location:\n{text}"
        );
    }

    // A key that is not there is an error at its field.
    let bad_key = WARN.replace("cosignKey: cosign.pub", "cosignKey: missing.pub");
    let (code, doc, _) = validate(&bad_key);
    assert_eq!(code, 1, "{doc}");
    let e = at(&doc["errors"], "security.imageSignatures.cosignKey");
    assert!(
        e.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing.pub"))),
        "{doc:#}"
    );
}

#[test]
fn signed_images_get_a_kyverno_policy_for_the_custom_images_only() {
    let text = config(
        "c: {cloud: gcp, region: europe-west4, gcp: {project: acme-ml}}",
        "gs://shop-models",
        "  - {name: app, image: \"registry.example.com:5000/shop/app:2.1\", canary: {image: \"registry.example.com:5000/shop/app:2.2\", traffic: 5}, runtime: kserve}\n",
    )
    .replace(
        "models:",
        "security:\n  imageSignatures:\n    cosignKey: \"-----BEGIN PUBLIC KEY-----\\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\\n-----END PUBLIC KEY-----\"\n    action: Audit\nmodels:",
    );
    let p = project(&text);
    let b = render(&p, "prod");
    let policy = b
        .manifests
        .iter()
        .find(|m| m.kind == "ClusterPolicy")
        .expect("a ClusterPolicy");
    assert_eq!(policy.name, "shop.prod.verify-images");
    assert_eq!(policy.namespace, None);
    insta::assert_snapshot!("identity-kyverno-policy", policy.text);
}

#[test]
fn install_kyverno_adds_a_pinned_helm_release_next_to_the_policy() {
    let text = r#"version: 1
project: shop
security:
  imageSignatures:
    cosignKey: "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
    installKyverno: true
models:
  - {name: app, image: "registry.example.com/app:1"}
clusters:
  k: {cloud: onprem, context: k3s}
environments:
  prod: {cluster: k}
"#;
    let b = render(&project(text), "prod");
    let addons = b
        .terraform
        .iter()
        .find(|t| t.file == "addons.tf")
        .expect("addons.tf");
    assert!(
        addons
            .text
            .contains("resource \"helm_release\" \"kyverno\"")
            && addons.text.contains("version          = \"3.5.2\""),
        "{}",
        addons.text
    );
    assert!(b.manifests.iter().any(|m| m.kind == "ClusterPolicy"));
    // Without installKyverno the chart is left to the platform team.
    let b = render(
        &project(&text.replace("installKyverno: true", "action: Enforce")),
        "prod",
    );
    assert!(b.terraform.iter().all(|t| !t.text.contains("kyverno")));
}
