variable "project_id" {
  description = "GCP project of the cluster."
  type        = string
  default     = {{ cluster.gcpProject }}
}

variable "location" {
  description = "Region (regional cluster, nodes in several zones) or zone (zonal cluster) of the cluster."
  type        = string
  default     = {{ cluster.gcpZone if cluster.gcpZone else cluster.region }}
}

variable "kubernetes_version" {
  description = "Minimum Kubernetes version of the control plane (null: the release channel's default). GKE upgrades within the release channel."
  type        = string
  default     = {% if cluster.kubernetesVersion %}{{ cluster.kubernetesVersion }}{% else %}null{% endif %}
}

variable "release_channel" {
  description = "GKE release channel: RAPID, REGULAR, STABLE or EXTENDED."
  type        = string
  default     = "REGULAR"
}

variable "network" {
  description = "VPC network of the cluster."
  type        = string
  default     = "default"
}

variable "subnetwork" {
  description = "Subnetwork of the nodes (null: the network's subnetwork in the cluster's region)."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete the cluster. Set to false before destroying it (mldeploy infra destroy)."
  type        = bool
  default     = true
}

variable "authorized_networks" {
  description = "CIDR ranges allowed to reach the Kubernetes API server (controlPlane.authorizedNetworks in mldeploy.yaml)."
  type        = list(string)
  default     = [{% for n in cluster.controlPlane.authorizedNetworks %}{{ n }}{% if not loop.last %}, {% endif %}{% endfor %}]
}
{%- if cluster.hardening.privateNodes %}

variable "private_endpoint" {
  description = "Give the API server a private endpoint only (controlPlane.privateEndpoint in mldeploy.yaml)."
  type        = bool
  default     = {{ cluster.controlPlane.privateEndpoint | safe }}
}

variable "master_ipv4_cidr_block" {
  description = "Private /28 range of the control plane; it must not overlap the network's ranges."
  type        = string
  default     = "172.16.0.0/28"
}
{%- endif %}
