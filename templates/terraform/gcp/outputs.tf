output "cluster_name" {
  description = "Name of the GKE cluster."
  value       = google_container_cluster.this.name
}

output "cluster_endpoint" {
  description = "URL of the cluster's Kubernetes API server."
  value       = "https://${google_container_cluster.this.endpoint}"
  sensitive   = true
}

output "get_credentials" {
  description = "Command that adds the cluster's credentials to the kubeconfig."
  value       = "gcloud container clusters get-credentials ${google_container_cluster.this.name} --location ${google_container_cluster.this.location} --project ${var.project_id}"
}

output "cluster_ca_certificate" {
  description = "CA certificate of the Kubernetes API server (base64 PEM), for kubeconfigs."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
  sensitive   = true
}

output "location" {
  description = "Region or zone of the cluster."
  value       = google_container_cluster.this.location
}

output "project_id" {
  description = "GCP project of the cluster."
  value       = var.project_id
}
