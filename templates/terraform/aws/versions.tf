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

  # State in an S3 bucket. A backend block cannot use variables, so name the bucket, its region
  # and the lock at init:
  #   terraform init -backend-config="bucket=<state bucket>" -backend-config="region=<bucket region>" \
  #     -backend-config="use_lockfile=true"   # Terraform >= 1.10; older: dynamodb_table=<lock table>
  backend "s3" {
    key     = {{ project.name ~ "/" ~ cluster.name ~ "/terraform.tfstate" }}
    encrypt = true
  }
}
