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
