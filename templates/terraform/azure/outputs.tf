output "cluster_name" {
  description = "Name of the AKS cluster."
  value       = azurerm_kubernetes_cluster.this.name
}

output "cluster_endpoint" {
  description = "URL of the cluster's Kubernetes API server."
  value       = azurerm_kubernetes_cluster.this.kube_config[0].host
  sensitive   = true
}

output "get_credentials" {
  description = "Command that adds the cluster's credentials to the kubeconfig."
  value       = "az aks get-credentials --resource-group ${data.azurerm_resource_group.this.name} --name ${azurerm_kubernetes_cluster.this.name}"
}

output "cluster_ca_certificate" {
  description = "CA certificate of the Kubernetes API server (base64 PEM), for kubeconfigs."
  value       = azurerm_kubernetes_cluster.this.kube_config[0].cluster_ca_certificate
  sensitive   = true
}

output "resource_group_name" {
  description = "Resource group of the cluster."
  value       = data.azurerm_resource_group.this.name
}
