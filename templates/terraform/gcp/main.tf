{#- GKE: a regional (or zonal) cluster without its default pool, and one node pool per
    configured pool, plus a small system pool when every configured pool has GPUs (GPU nodes are
    tainted, so cluster services and add-ons would have nowhere to run). Keys of `labels` are
    padded so that `terraform fmt` finds them aligned. -#}
{%- set pools = cluster.nodePools -%}
{%- if not [p for p in pools if not p.gpu] -%}
{%- set pools = [{"name": "system", "machineType": "e2-standard-4", "gpu": none, "min": 1, "max": 3, "spot": false, "diskSizeGb": 100, "added": true}, ...pools] -%}
{%- endif -%}
{%- set pad = "                                                                                " -%}
{%- set ours = ["managed-by", "mldeploy-cluster", "mldeploy-project"] -%}
{%- set user = [k for k, v in project.labels if k is not containing(pat="/") and k is not containing(pat=".") and not ours is containing(pat=k | lower)] -%}
{%- set width = [16, ...[k | length for k in user]] | sort | last -%}
locals {
  # GCP labels of the cluster and its node VMs: lowercase, and only the project labels whose key
  # has no "/" or "." (GCP allows neither).
  labels = {
{%- for key in user %}
    {{ ('"' ~ key | lower ~ '"' ~ pad) | truncate(length=width + 2, end="") | safe }} = {{ project.labels[key] | lower }}
{%- endfor %}
    {{ ('"managed-by"' ~ pad) | truncate(length=width + 2, end="") | safe }} = "mldeploy"
    {{ ('"mldeploy-cluster"' ~ pad) | truncate(length=width + 2, end="") | safe }} = {{ cluster.name }}
    {{ ('"mldeploy-project"' ~ pad) | truncate(length=width + 2, end="") | safe }} = {{ project.name }}
  }
}

# Nodes run as their own least-privilege service account, not the Compute Engine default one.
resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = {{ (cluster.name | truncate(length=24, end="") | trim_end(pat="-")) ~ "-nodes" }}
  display_name = {{ "Nodes of GKE cluster " ~ cluster.name }}
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/artifactregistry.reader",
    "roles/container.defaultNodeServiceAccount",
  ])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "this" {
  name     = {{ cluster.name }}
  project  = var.project_id
  location = var.location

  # Node pools are managed below; GKE still needs a default pool to create the cluster, which
  # is then removed.
  remove_default_node_pool = true
  initial_node_count       = 1

  min_master_version  = var.kubernetes_version
  network             = var.network
  subnetwork          = var.subnetwork
  networking_mode     = "VPC_NATIVE"
  deletion_protection = var.deletion_protection
  resource_labels     = local.labels

  release_channel {
    channel = var.release_channel
  }

  # Pods get Google credentials through their Kubernetes ServiceAccount.
  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  # Pod and Service IP ranges chosen by GKE.
  ip_allocation_policy {}

  # Only the ranges of controlPlane.authorizedNetworks reach the API server.
  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.authorized_networks
      content {
        cidr_block = cidr_blocks.value
      }
    }
  }

  # No client certificate: people and Terraform authenticate with Google credentials.
  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }
{%- if cluster.hardening.privateNodes %}

  # Nodes have no public IP (they reach the internet through Cloud NAT, below). Opt out:
  # hardening.privateNodes: false.
  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = var.private_endpoint
    master_ipv4_cidr_block  = var.master_ipv4_cidr_block
  }
{%- endif %}
{%- if cluster.hardening.networkPolicy %}

  # GKE Dataplane V2 (Cilium) enforces NetworkPolicies. Opt out: hardening.networkPolicy: false.
  datapath_provider = "ADVANCED_DATAPATH"
{%- endif %}
{%- if cluster.hardening.cloudLogging %}

  # Control plane, system and workload logs and metrics go to Cloud Logging and Monitoring.
  # Opt out: hardening.cloudLogging: false.
  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "APISERVER", "CONTROLLER_MANAGER", "SCHEDULER", "WORKLOADS"]
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS", "APISERVER", "CONTROLLER_MANAGER", "SCHEDULER"]
  }
{%- endif %}

  # The default pool exists only while the cluster is created; it gets the metadata server too.
  node_config {
    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = {{ cluster.hardening.secureBoot | safe }}
      enable_integrity_monitoring = true
    }
  }
}
{%- if cluster.hardening.privateNodes %}

# Private nodes reach image registries and model storage outside Google through Cloud NAT.
resource "google_compute_router" "nat" {
  name    = {{ cluster.name ~ "-nat" }}
  project = var.project_id
  region  = {{ cluster.region }}
  network = var.network
}

resource "google_compute_router_nat" "nat" {
  name                               = {{ cluster.name ~ "-nat" }}
  project                            = var.project_id
  region                             = google_compute_router.nat.region
  router                             = google_compute_router.nat.name
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}
{%- endif %}
{%- for pool in pools %}
{%- set id = pool.name | replace(from="-", to="_") %}
{%- if "0123456789" is containing(pat=id | truncate(length=1, end="")) %}{% set id = "pool_" ~ id %}{% endif %}

{% if pool.added is defined -%}
# Not in mldeploy.yaml: every configured pool has GPUs, and GPU nodes are tainted, so cluster
# services and the add-ons run on this pool.
{% endif -%}
resource "google_container_node_pool" {{ id }} {
  name     = {{ pool.name }}
  project  = var.project_id
  location = var.location
  cluster  = google_container_cluster.this.name
{%- if pool.min > 0 %}

  # Nodes per zone at creation; from then on the autoscaler keeps the pool within its limits.
  initial_node_count = 1
{%- endif %}

  # Limits for the whole pool, across all of the cluster's zones.
  autoscaling {
    total_min_node_count = {{ pool.min | safe }}
    total_max_node_count = {{ pool.max | safe }}
    location_policy      = {{ "ANY" if pool.gpu or pool.spot else "BALANCED" }}
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = {{ pool.machineType }}
    disk_size_gb    = {{ pool.diskSizeGb | safe }}
    disk_type       = "pd-balanced"
    spot            = {{ pool.spot | safe }}
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    resource_labels = local.labels

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    # Shielded nodes; GKE's signed NVIDIA drivers (Container-Optimized OS) load under Secure Boot.
    # Opt out: hardening.secureBoot: false.
    shielded_instance_config {
      enable_secure_boot          = {{ cluster.hardening.secureBoot | safe }}
      enable_integrity_monitoring = true
    }
{%- if pool.gpu %}

    # GKE labels these nodes cloud.google.com/gke-accelerator, taints them
    # nvidia.com/gpu=present:NoSchedule, and installs the driver and the device plugin. The pool
    # spans the cluster's zones: set node_locations if the GPU is not offered in all of them.
    guest_accelerator {
      type  = {{ pool.gpu.accelerator }}
      count = {{ pool.gpu.count | safe }}

      gpu_driver_installation_config {
        gpu_driver_version = "DEFAULT"
      }
{%- set pg = poolGpu[pool.name] %}
{%- if pg.partition %}

      # MIG: GKE cuts each GPU into slices of this profile, each one nvidia.com/gpu, and labels
      # the nodes cloud.google.com/gke-gpu-partition-size.
      gpu_partition_size = {{ pg.partition }}
{%- endif %}
{%- if pg.sharing %}

      # Time-sharing: this many containers share each GPU, with no memory or fault isolation.
      gpu_sharing_config {
        gpu_sharing_strategy       = "TIME_SHARING"
        max_shared_clients_per_gpu = {{ pg.sharing | safe }}
      }
{%- endif %}
    }
{%- endif %}
  }
{%- if pool.min > 0 %}

  lifecycle {
    ignore_changes = [initial_node_count]
  }
{%- endif %}

  depends_on = [google_project_iam_member.nodes]
}
{%- endfor %}

# Add-ons (addons.tf) install once the cluster and all its node pools exist.
resource "terraform_data" "cluster_ready" {
  depends_on = [
    google_container_cluster.this,
{%- for pool in pools %}
{%- set id = pool.name | replace(from="-", to="_") %}
{%- if "0123456789" is containing(pat=id | truncate(length=1, end="")) %}{% set id = "pool_" ~ id %}{% endif %}
    google_container_node_pool.{{ id | safe }},
{%- endfor %}
  ]
}
