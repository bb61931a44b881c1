{#- AKS: the first pool without GPUs or spot capacity is the cluster's default (system) pool, or a
    small system pool when there is none; every other pool is an azurerm_kubernetes_cluster_node_pool.
    AKS pool names are at most 12 lowercase letters and digits, so "gpu-t4" becomes "gput4". Keys
    of `tags` are padded so that `terraform fmt` finds them aligned. -#}
{%- set pad = "                                                                                " -%}
{%- set ours = ["managed-by", "mldeploy-cluster", "mldeploy-project"] -%}
{%- set user = [k for k, v in project.labels if k is not containing(pat="/") and not ours is containing(pat=k)] -%}
{%- set width = [16, ...[k | length for k in user]] | sort | last -%}
{%- set system = [p for p in cluster.nodePools if not p.gpu and not p.spot] -%}
{%- set default = system | first if system else none -%}
{%- set others = [p for p in cluster.nodePools if not default or p.name != default.name] -%}
locals {
  # Tags of the cluster and its node pools: the project labels whose key has no "/" (Azure
  # allows none), and ours.
  tags = {
{%- for key in user %}
    {{ ('"' ~ key ~ '"' ~ pad) | truncate(length=width + 2, end="") | safe }} = {{ project.labels[key] }}
{%- endfor %}
    {{ ('"managed-by"' ~ pad) | truncate(length=width + 2, end="") | safe }} = "mldeploy"
    {{ ('"mldeploy-cluster"' ~ pad) | truncate(length=width + 2, end="") | safe }} = {{ cluster.name }}
    {{ ('"mldeploy-project"' ~ pad) | truncate(length=width + 2, end="") | safe }} = {{ project.name }}
  }
}

# A data source, not a resource: the resource group must exist (`az group create`), and since
# mldeploy does not own it, destroying the cluster never deletes it.
data "azurerm_resource_group" "this" {
  name = var.resource_group_name
}

resource "azurerm_kubernetes_cluster" "this" {
  name                = {{ cluster.name }}
  location            = var.location
  resource_group_name = data.azurerm_resource_group.this.name
  dns_prefix          = {{ cluster.name | truncate(length=54, end="") | trim_end(pat="-") }}
  kubernetes_version  = var.kubernetes_version

  automatic_upgrade_channel = "patch"
  oidc_issuer_enabled       = true
  workload_identity_enabled = true
  tags                      = local.tags

{%- if default %}
{%- set name = default.name | replace(from="-", to="") | truncate(length=12, end="") %}

  # The system pool, which runs cluster services and the platform add-ons.
  default_node_pool {
    name                        = {{ name }}
    vm_size                     = {{ default.machineType }}
    auto_scaling_enabled        = true
    min_count                   = {{ default.min | safe }}
    max_count                   = {{ default.max | safe }}
    os_disk_size_gb             = {{ default.diskSizeGb | safe }}
    os_disk_type                = {{ "Ephemeral" if localDisk is containing(pat=default.name) else "Managed" }}
    host_encryption_enabled     = {{ cluster.hardening.encryptionAtHost | safe }}
    max_pods                    = 110
    temporary_name_for_rotation = {{ "tmp" ~ name | truncate(length=9, end="") }}
    tags                        = local.tags
{%- else %}

  # The system pool, which runs cluster services and the platform add-ons (every configured pool
  # has GPUs or spot capacity, which a system pool cannot).
  default_node_pool {
    name                        = "system"
    vm_size                     = "Standard_D4s_v5"
    auto_scaling_enabled        = true
    min_count                   = 1
    max_count                   = 3
    os_disk_size_gb             = 100
    os_disk_type                = "Managed"
    host_encryption_enabled     = {{ cluster.hardening.encryptionAtHost | safe }}
    max_pods                    = 110
    temporary_name_for_rotation = "tmpsystem"
    tags                        = local.tags
{%- endif %}

    upgrade_settings {
      max_surge = "10%"
    }
  }

  identity {
    type = "SystemAssigned"
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
{%- if cluster.hardening.networkPolicy %}
    # Azure CNI powered by Cilium enforces NetworkPolicies. Opt out: hardening.networkPolicy: false.
    network_data_plane = "cilium"
    network_policy     = "cilium"
{%- endif %}
  }

  # Nodes have no public IPs; the API server is reachable from controlPlane.authorizedNetworks,
  # or (controlPlane.privateEndpoint) only from the virtual network.
  private_cluster_enabled = var.private_endpoint
{%- if not cluster.controlPlane.privateEndpoint %}

  api_server_access_profile {
    authorized_ip_ranges = var.authorized_networks
  }
{%- endif %}
{%- if cluster.hardening.cloudLogging %}

  # Container logs and metrics go to Azure Monitor. Opt out: hardening.cloudLogging: false.
  oms_agent {
    log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id
  }
{%- endif %}

  # People sign in with Microsoft Entra ID (kubelogin, as `mldeploy infra kubeconfig` sets up)
  # and are authorised with Azure RBAC. Terraform itself uses the admin credentials.
  azure_active_directory_role_based_access_control {
    azure_rbac_enabled = true
  }
}

{%- if cluster.hardening.cloudLogging %}
resource "azurerm_log_analytics_workspace" "this" {
  name                = {{ cluster.name ~ "-logs" }}
  location            = var.location
  resource_group_name = data.azurerm_resource_group.this.name
  sku                 = "PerGB2018"
  retention_in_days   = 30
  tags                = local.tags
}

# Control-plane logs (API server, audit, controller manager, scheduler) to the workspace.
resource "azurerm_monitor_diagnostic_setting" "control_plane" {
  name                       = "control-plane"
  target_resource_id         = azurerm_kubernetes_cluster.this.id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category = "kube-apiserver"
  }
  enabled_log {
    category = "kube-audit-admin"
  }
  enabled_log {
    category = "kube-controller-manager"
  }
  enabled_log {
    category = "kube-scheduler"
  }
}

{% endif -%}
# Whoever runs Terraform administers the cluster through Entra ID (as the creator of an EKS
# cluster does), so the kubeconfig of `mldeploy infra kubeconfig` works for them. Role
# assignments can take a few minutes to reach the cluster.
data "azurerm_client_config" "current" {}

resource "azurerm_role_assignment" "cluster_admin" {
  scope                = azurerm_kubernetes_cluster.this.id
  role_definition_name = "Azure Kubernetes Service RBAC Cluster Admin"
  principal_id         = data.azurerm_client_config.current.object_id
}
{%- for pool in others %}
{%- set name = pool.name | replace(from="-", to="") | truncate(length=12, end="") %}
{%- set id = name %}
{%- if "0123456789" is containing(pat=id | truncate(length=1, end="")) %}{% set id = "pool_" ~ id %}{% endif %}

resource "azurerm_kubernetes_cluster_node_pool" {{ id }} {
  name                  = {{ name }}
  kubernetes_cluster_id = azurerm_kubernetes_cluster.this.id
  vm_size               = {{ pool.machineType }}
  mode                  = "User"
  auto_scaling_enabled  = true
  min_count             = {{ pool.min | safe }}
  max_count             = {{ pool.max | safe }}
  os_disk_size_gb       = {{ pool.diskSizeGb | safe }}
  os_disk_type          = {{ "Ephemeral" if localDisk is containing(pat=pool.name) else "Managed" }}
  max_pods              = 110
  tags                  = local.tags

  # Temp disks and disk caches encrypted on the host. Opt out: hardening.encryptionAtHost: false.
  host_encryption_enabled = {{ cluster.hardening.encryptionAtHost | safe }}
{%- if pool.spot %}

  # Spot VMs, deleted on eviction, at up to the on-demand price. AKS taints spot nodes; the taint
  # is listed so that Terraform does not try to remove it.
  priority        = "Spot"
  eviction_policy = "Delete"
  spot_max_price  = -1
{%- endif %}
{%- if pool.gpu %}

  # GPU pods select this label and tolerate the taint; other pods stay off these nodes. AKS
  # installs the NVIDIA driver; the device plugin is an add-on (addons.tf).
  node_labels = {
{%- for line in poolGpu[pool.name].labels %}
    {{ line | safe }}
{%- endfor %}
  }
{%- endif %}
{%- if pool.gpu or pool.spot %}
{%- if not pool.gpu %}
{% endif %}
  node_taints = [
{%- if pool.gpu and scheduling.taint %}
    {{ poolGpu[pool.name].taintKey ~ "=" ~ scheduling.taint.value ~ ":" ~ scheduling.taint.effect }},
{%- endif %}
{%- if pool.spot %}
    "kubernetes.azure.com/scalesetpriority=spot:NoSchedule",
{%- endif %}
  ]
{%- endif %}
{%- if not pool.spot %}

  upgrade_settings {
    max_surge = "10%"
  }
{%- endif %}
}
{%- endfor %}

# Add-ons (addons.tf) install once the cluster and all its node pools exist.
resource "terraform_data" "cluster_ready" {
  depends_on = [
    azurerm_kubernetes_cluster.this,
{%- for pool in others %}
{%- set id = pool.name | replace(from="-", to="") | truncate(length=12, end="") %}
{%- if "0123456789" is containing(pat=id | truncate(length=1, end="")) %}{% set id = "pool_" ~ id %}{% endif %}
    azurerm_kubernetes_cluster_node_pool.{{ id | safe }},
{%- endfor %}
  ]
}
