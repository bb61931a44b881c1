terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
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

  # Where the state lives: the cluster's `state` in mldeploy.yaml.
{%- if backend.kind == "local" %} A relative path is relative to the folder
  # Terraform runs in; `mldeploy infra` resolves it against the folder of mldeploy.yaml.
{%- endif %}
{%- include "terraform/common/_backend.tf" %}
{%- else %}

  # State in a GCS bucket. Name it in the cluster's `state` in mldeploy.yaml (`mldeploy infra`
  # needs that), or at init, as a backend block cannot use variables:
  #   terraform init -backend-config="bucket=<state bucket>"
  backend "gcs" {
    prefix = {{ project.name ~ "/" ~ cluster.name }}
  }
{%- endif %}
}
