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

  # State in a GCS bucket. A backend block cannot use variables, so name the bucket at init:
  #   terraform init -backend-config="bucket=<state bucket>"
  backend "gcs" {
    prefix = {{ project.name ~ "/" ~ cluster.name }}
  }
}
