terraform {
  required_version = ">= 1.5"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.20"
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

  # State in an Azure Storage blob container. A backend block cannot use variables, so name the
  # storage account at init:
  #   terraform init -backend-config="resource_group_name=<rg>" \
  #     -backend-config="storage_account_name=<account>" -backend-config="container_name=<container>"
  backend "azurerm" {
    key = {{ project.name ~ "/" ~ cluster.name ~ ".tfstate" }}
  }
}
