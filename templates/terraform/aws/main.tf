{#- EKS through the community modules: terraform-aws-modules/eks (managed node groups, one per
    configured pool, plus a small system group when every configured pool has GPUs: GPU nodes are
    tainted, so cluster services and add-ons would have nowhere to run) and, without an existing
    VPC, terraform-aws-modules/vpc. Keys of `tags` are padded so that `terraform fmt` finds them
    aligned. -#}
{%- set pools = cluster.nodePools -%}
{%- if not [p for p in pools if not p.gpu] -%}
{%- set pools = [{"name": "system", "machineType": "m6i.xlarge", "gpu": none, "min": 1, "max": 3, "spot": false, "diskSizeGb": 100, "added": true}, ...pools] -%}
{%- endif -%}
{%- set pad = "                                                                                " -%}
{%- set ours = ["managed-by", "mldeploy-cluster", "mldeploy-project"] -%}
{%- set user = [k for k, v in project.labels if not ours is containing(pat=k)] -%}
{%- set width = [16, ...[k | length for k in user]] | sort | last -%}
{%- set effects = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"} -%}
locals {
  # Tags of every AWS resource (the provider's default_tags): the project labels and ours.
  tags = {
{%- for key in user %}
    {{ ('"' ~ key ~ '"' ~ pad) | truncate(length=width + 2, end="") | safe }} = {{ project.labels[key] }}
{%- endfor %}
    {{ ('"managed-by"' ~ pad) | truncate(length=width + 2, end="") | safe }} = "mldeploy"
    {{ ('"mldeploy-cluster"' ~ pad) | truncate(length=width + 2, end="") | safe }} = {{ cluster.name }}
    {{ ('"mldeploy-project"' ~ pad) | truncate(length=width + 2, end="") | safe }} = {{ project.name }}
  }
}
{%- if not cluster.awsVpcId %}

# The zones named in var.availability_zones, by name: a zone AWS adds later never moves subnets.
data "aws_availability_zones" "available" {
  filter {
    name   = "zone-name"
    values = var.availability_zones
  }
}

locals {
  azs = data.aws_availability_zones.available.names
}

# A VPC for the cluster: nodes in private subnets behind one NAT gateway, public subnets for
# internet-facing load balancers.
module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.17.0"

  name = {{ cluster.name }}
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets = [for i, az in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets  = [for i, az in local.azs : cidrsubnet(var.vpc_cidr, 8, i + 48)]

  enable_nat_gateway = true
  single_nat_gateway = true

  public_subnet_tags = {
    "kubernetes.io/role/elb" = 1
  }
  private_subnet_tags = {
    "kubernetes.io/role/internal-elb" = 1
  }
}
{%- endif %}

module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "20.31.6"

  cluster_name    = {{ cluster.name }}
  cluster_version = var.kubernetes_version

  # Nodes sit in private subnets. The API server is reachable from inside the VPC and, unless
  # controlPlane.privateEndpoint, from var.endpoint_public_access_cidrs
  # (controlPlane.authorizedNetworks).
  cluster_endpoint_private_access      = true
  cluster_endpoint_public_access       = {{ not cluster.controlPlane.privateEndpoint }}
  cluster_endpoint_public_access_cidrs = var.endpoint_public_access_cidrs
{%- if cluster.hardening.cloudLogging %}

  # Control-plane logs to CloudWatch Logs. Opt out: hardening.cloudLogging: false.
  cluster_enabled_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
{%- else %}

  cluster_enabled_log_types = []
{%- endif %}

  # Whoever runs Terraform becomes a cluster admin (an EKS access entry).
  enable_cluster_creator_admin_permissions = true
{%- if cluster.awsVpcId %}

  vpc_id     = var.vpc_id
  subnet_ids = var.subnet_ids
{%- else %}

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets
{%- endif %}

  cluster_addons = {
    coredns                = {}
    eks-pod-identity-agent = {}
    kube-proxy             = {}
    vpc-cni = {
      before_compute = true
{%- if cluster.hardening.networkPolicy %}
      # The VPC CNI enforces NetworkPolicies. Opt out: hardening.networkPolicy: false.
      configuration_values = jsonencode({
        enableNetworkPolicy = "true"
      })
{%- endif %}
    }
  }

  eks_managed_node_groups = {
{%- for pool in pools %}
{%- set family = pool.machineType | split(pat=".") | first %}
{%- set arm = [d for d in range(end=10) if family is containing(pat=d ~ "g")] | length > 0 %}
{%- if not loop.first %}
{% endif %}
{%- if pool.added is defined %}
    # Not in mldeploy.yaml: every configured pool has GPUs, and GPU nodes are tainted, so
    # cluster services and the add-ons run on this group.
{%- endif %}
    {{ pool.name }} = {
      ami_type       = {% if pool.gpu %}{{ "AL2023_ARM_64_NVIDIA" if arm else "AL2023_x86_64_NVIDIA" }}{% else %}{{ "AL2023_ARM_64_STANDARD" if arm else "AL2023_x86_64_STANDARD" }}{% endif %}
      instance_types = [{{ pool.machineType }}]
      capacity_type  = {{ "SPOT" if pool.spot else "ON_DEMAND" }}

      # desired_size applies when the group is created; from then on the cluster autoscaler
      # (autoscaling.tf) sizes the group within its limits.
      min_size     = {{ pool.min | safe }}
      max_size     = {{ pool.max | safe }}
      desired_size = {{ pool.min | safe }}

      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = {{ pool.diskSizeGb | safe }}
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }
{%- if pool.gpu %}

      # EKS neither labels nor taints GPU nodes: GPU pods select this label and tolerate the
      # taint, other pods stay off these nodes.
      labels = {
{%- for line in poolGpu[pool.name].labels %}
        {{ line | safe }}
{%- endfor %}
      }
{%- if scheduling.taint %}
      taints = {
        gpu = {
          key    = {{ poolGpu[pool.name].taintKey }}
          value  = {{ scheduling.taint.value }}
          effect = {{ effects[scheduling.taint.effect] }}
        }
      }
{%- endif %}
{%- endif %}
    }
{%- endfor %}
  }
}

# Add-ons (addons.tf) install once the cluster and all its node groups exist.
resource "terraform_data" "cluster_ready" {
  depends_on = [module.eks]
}
