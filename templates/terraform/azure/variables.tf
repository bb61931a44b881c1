variable "subscription_id" {
  description = "Azure subscription of the cluster (null: the ARM_SUBSCRIPTION_ID environment variable)."
  type        = string
  default     = null
}

variable "resource_group_name" {
  description = "Existing resource group that holds the cluster."
  type        = string
  default     = {{ cluster.azureResourceGroup }}
}

variable "location" {
  description = "Azure region of the cluster."
  type        = string
  default     = {{ cluster.region }}
}

variable "kubernetes_version" {
  description = "Kubernetes version of the cluster (null: the AKS default). AKS applies patch releases itself."
  type        = string
  default     = {% if cluster.kubernetesVersion %}{{ cluster.kubernetesVersion }}{% else %}null{% endif %}
}

variable "authorized_networks" {
  description = "CIDR ranges allowed to reach the Kubernetes API server (controlPlane.authorizedNetworks in mldeploy.yaml)."
  type        = list(string)
  default     = [{% for n in cluster.controlPlane.authorizedNetworks %}{{ n }}{% if not loop.last %}, {% endif %}{% endfor %}]
}

variable "private_endpoint" {
  description = "A private cluster: the API server is reachable only from the virtual network (controlPlane.privateEndpoint in mldeploy.yaml)."
  type        = bool
  default     = {{ cluster.controlPlane.privateEndpoint | safe }}
}
{%- if storageIdentities %}

variable "storage_resource_group_name" {
  description = "Resource group of the storage accounts holding the models (null: the cluster's resource group)."
  type        = string
  default     = null
}
{%- endif %}
