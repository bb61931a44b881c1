{#- Workload identity for model storage (GKE Workload Identity): per identity a Google service
    account that may read its buckets and that the Kubernetes ServiceAccount of the same name
    (mldeploy renders it, annotated iam.gke.io/gcp-service-account) may impersonate. #}
{%- if storageIdentities -%}
# Model storage without keys (GKE Workload Identity): a Google service account per identity,
# allowed to read its buckets and to be impersonated by the Kubernetes ServiceAccount of the
# same name in each namespace that uses it.
{% include "terraform/common/_storage_locals.tf" %}
resource "google_service_account" "storage" {
  for_each = local.storage_identities

  project      = var.project_id
  account_id   = each.key
  display_name = "Model storage reader ${each.key} (mldeploy)"
}

# Read only: list and get objects.
resource "google_storage_bucket_iam_member" "storage_read" {
  for_each = local.storage_reads

  bucket = each.value.bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.storage[each.value.identity].email}"
}

resource "google_service_account_iam_member" "storage_workload_identity" {
  for_each = local.storage_bindings

  service_account_id = google_service_account.storage[each.value.identity].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${each.value.namespace}/${each.value.identity}]"
}

output "storage_identities" {
  description = "Google service account of each model storage identity."
  value       = { for name, sa in google_service_account.storage : name => sa.email }
}
{%- endif %}
