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
