{#- EKS has no built-in node autoscaler (without one, node groups never leave their initial size
    and a GPU group with min 0 never gets a node) and no metrics-server (HorizontalPodAutoscalers
    of the rendered models need it). GKE, AKS and k3s have both. -#}
# Cluster Autoscaler: grows a node group when pods cannot be scheduled and shrinks it down to its
# minimum. It finds the node groups by the tags EKS puts on their Auto Scaling groups, and reads
# their labels and taints from EKS to scale a group up from zero.
module "cluster_autoscaler_irsa" {
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "5.52.2"

  role_name_prefix                 = {{ (cluster.name | truncate(length=20, end="") | trim_end(pat="-")) ~ "-autoscaler-" }}
  attach_cluster_autoscaler_policy = true
  cluster_autoscaler_cluster_names = [module.eks.cluster_name]

  oidc_providers = {
    eks = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:cluster-autoscaler"]
    }
  }
}

resource "helm_release" "cluster_autoscaler" {
  name       = "cluster-autoscaler"
  repository = "https://kubernetes.github.io/autoscaler"
  chart      = "cluster-autoscaler"
  version    = "9.43.2"
  namespace  = "kube-system"

  values = [
    yamlencode({
      cloudProvider = "aws"
      awsRegion     = var.region
      autoDiscovery = {
        clusterName = module.eks.cluster_name
      }
{%- if cluster.kubernetesVersion %}
      # The autoscaler's minor version should match the cluster's.
      image = {
        tag = "v${var.kubernetes_version}.0"
      }
{%- endif %}
      rbac = {
        serviceAccount = {
          name = "cluster-autoscaler"
          annotations = {
            "eks.amazonaws.com/role-arn" = module.cluster_autoscaler_irsa.iam_role_arn
          }
        }
      }
      extraArgs = {
        balance-similar-node-groups = true
        expander                    = "least-waste"
      }
    }),
  ]

  depends_on = [terraform_data.cluster_ready]
}

# metrics-server: CPU and memory metrics for the models' HorizontalPodAutoscalers.
resource "helm_release" "metrics_server" {
  name       = "metrics-server"
  repository = "https://kubernetes-sigs.github.io/metrics-server"
  chart      = "metrics-server"
  version    = "3.12.2"
  namespace  = "kube-system"

  depends_on = [terraform_data.cluster_ready]
}
