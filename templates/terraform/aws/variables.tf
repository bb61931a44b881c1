variable "region" {
  description = "AWS region of the cluster."
  type        = string
  default     = {{ cluster.region }}
}

variable "kubernetes_version" {
  description = "Kubernetes version of the EKS control plane (null: the latest EKS offers)."
  type        = string
  default     = {% if cluster.kubernetesVersion %}{{ cluster.kubernetesVersion }}{% else %}null{% endif %}
}
{%- if cluster.awsVpcId %}

variable "vpc_id" {
  description = "Existing VPC of the cluster."
  type        = string
  default     = {{ cluster.awsVpcId }}
}

variable "subnet_ids" {
  description = "Subnets of the control plane and the nodes, in at least two availability zones (usually private subnets with a NAT gateway)."
  type        = list(string)
  default     = [{% for id in cluster.awsSubnetIds %}{{ id }}{% if not loop.last %}, {% endif %}{% endfor %}]

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones: set aws.subnetIds of the cluster in mldeploy.yaml."
  }
}
{%- else %}

variable "availability_zones" {
  description = "Availability zones of the VPC's subnets (three, by name)."
  type        = list(string)
  default     = [{{ cluster.region ~ "a" }}, {{ cluster.region ~ "b" }}, {{ cluster.region ~ "c" }}]
}

variable "vpc_cidr" {
  description = "Address range of the VPC created for the cluster."
  type        = string
  default     = "10.0.0.0/16"
}
{%- endif %}

variable "endpoint_public_access_cidrs" {
  description = "Addresses allowed to reach the Kubernetes API server from the internet (controlPlane.authorizedNetworks in mldeploy.yaml; Terraform and mldeploy need to)."
  type        = list(string)
  default     = [{% for n in cluster.controlPlane.authorizedNetworks %}{{ n }}{% if not loop.last %}, {% endif %}{% endfor %}]
}
