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
{%- if backend %}

  # Where the state lives: the cluster's `state` in mldeploy.yaml (default: a Secret of the
  # cluster itself, as on-prem has no cloud storage).
{%- if backend.kind == "kubernetes" %} A backend block cannot use variables, so
  # the kubeconfig is given at init (`mldeploy infra` does that):
  #   terraform init -backend-config="config_path=$HOME/.kube/config"   # or set KUBE_CONFIG_PATH
{%- elif backend.kind == "local" %} A relative path is relative to the folder
  # Terraform runs in; `mldeploy infra` resolves it against the folder of mldeploy.yaml.
{%- endif %}
{%- include "terraform/common/_backend.tf" %}
{%- endif %}
}
