terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
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

  # State in an S3 bucket. Name it in the cluster's `state` in mldeploy.yaml (`mldeploy infra`
  # needs that), or at init with its region and the lock, as a backend block cannot use variables:
  #   terraform init -backend-config="bucket=<state bucket>" -backend-config="region=<bucket region>" \
  #     -backend-config="use_lockfile=true"   # Terraform >= 1.10; older: dynamodb_table=<lock table>
  backend "s3" {
    key     = {{ project.name ~ "/" ~ cluster.name ~ "/terraform.tfstate" }}
    encrypt = true
  }
{%- endif %}
}
