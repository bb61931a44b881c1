output "cluster_name" {
  description = "Name of the cluster in mldeploy.yaml."
  value       = {{ cluster.name }}
}

output "get_credentials" {
  description = "kubeconfig context of the cluster: it exists already, so there are no credentials to fetch (null: the current context)."
  value       = var.kube_context
}
