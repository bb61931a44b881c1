output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the cluster's Kubernetes API server."
  value       = module.eks.cluster_endpoint
  sensitive   = true
}

output "get_credentials" {
  description = "Command that adds the cluster's credentials to the kubeconfig."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}

output "cluster_ca_certificate" {
  description = "CA certificate of the Kubernetes API server (base64 PEM), for kubeconfigs."
  value       = module.eks.cluster_certificate_authority_data
  sensitive   = true
}

output "region" {
  description = "AWS region of the cluster."
  value       = var.region
}
