variable "kubeconfig_path" {
  description = "kubeconfig file with the cluster's credentials."
  type        = string
  default     = "~/.kube/config"
}

variable "kube_context" {
  description = "kubeconfig context of the cluster (null: the current context)."
  type        = string
  default     = {% if cluster.context %}{{ cluster.context }}{% else %}null{% endif %}
}
{%- if k3s %}

variable "create_nvidia_runtime_class" {
  description = "Create the nvidia RuntimeClass. k3s releases since December 2023 (v1.28.5+k3s1, and the v1.25 to v1.27 patches of that month) install it themselves and creating it again would fail; set to true on older k3s."
  type        = bool
  default     = false
}
{%- endif %}
