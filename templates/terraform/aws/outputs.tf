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
