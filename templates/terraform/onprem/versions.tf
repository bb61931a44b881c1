terraform {
  required_version = ">= 1.5"

  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.17"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.35"
    }
  }

  # State in a Secret of the cluster itself (no cloud storage on-prem). A backend block cannot
  # use variables, so give the kubeconfig at init:
  #   terraform init -backend-config="config_path=$HOME/.kube/config"   # or set KUBE_CONFIG_PATH
  backend "kubernetes" {
    secret_suffix = {{ project.name ~ "-" ~ cluster.name }}
    namespace     = "kube-system"
{%- if cluster.context %}

    config_context = {{ cluster.context }}
{%- endif %}
  }
}
