{#- Workload identity for model storage (EKS Pod Identity, not IRSA: the association lives in
    EKS, so the ServiceAccount needs no annotation and the role's trust policy names no
    cluster-specific OIDC issuer). The eks-pod-identity-agent add-on (main.tf) serves the
    credentials to the pods. #}
{%- if storageIdentities -%}
# Model storage without keys (EKS Pod Identity): an IAM role per identity that may read its
# buckets, associated with the Kubernetes ServiceAccount of the same name in each namespace
# that uses it.
{% include "terraform/common/_storage_locals.tf" %}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "storage_trust" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "storage" {
  for_each = local.storage_identities

  name               = each.key
  description        = "Model storage reader ${each.key} (mldeploy)"
  assume_role_policy = data.aws_iam_policy_document.storage_trust.json
}

# Read only: list the buckets, get their objects.
data "aws_iam_policy_document" "storage_read" {
  for_each = local.storage_identities

  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [for b in each.value.buckets : "arn:${data.aws_partition.current.partition}:s3:::${b}"]
  }

  statement {
    sid       = "GetObjects"
    actions   = ["s3:GetObject"]
    resources = [for b in each.value.buckets : "arn:${data.aws_partition.current.partition}:s3:::${b}/*"]
  }
}

resource "aws_iam_role_policy" "storage_read" {
  for_each = local.storage_identities

  name   = "read-model-storage"
  role   = aws_iam_role.storage[each.key].id
  policy = data.aws_iam_policy_document.storage_read[each.key].json
}

resource "aws_eks_pod_identity_association" "storage" {
  for_each = local.storage_bindings

  cluster_name    = module.eks.cluster_name
  namespace       = each.value.namespace
  service_account = each.value.identity
  role_arn        = aws_iam_role.storage[each.value.identity].arn
}

output "storage_identities" {
  description = "IAM role of each model storage identity."
  value       = { for name, role in aws_iam_role.storage : name => role.arn }
}
{%- endif %}
