{#- Platform add-ons, the same on every cloud. Each cloud's main.tf defines
    terraform_data.cluster_ready, which exists once the cluster and all its node pools do. -#}
{%- if addons.kserve or addons.seldon or addons.seldonV2 or addons.devicePlugin or addons.amdDevicePlugin or gpuOperator or addons.prometheus or kyverno or addons.keda -%}
# Platform add-ons that the rendered manifests rely on, installed with Helm once the cluster and
# its node pools exist (terraform_data.cluster_ready) and removed before them. Chart versions are
# pinned; bump them here, not in the cluster.
{%- if addons.kserve %}

# KServe needs cert-manager for its webhook certificates.
resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = "v1.16.5"
  namespace        = "cert-manager"
  create_namespace = true

  values = [
    yamlencode({
      crds = {
        enabled = true
      }
    }),
  ]

  depends_on = [terraform_data.cluster_ready]
}

# KServe v0.20.0: the release whose CRDs (../shared/crds/kserve) the rendered InferenceServices
# are validated against. Since v0.17 the controller chart is `kserve-resources` and the
# ClusterServingRuntimes (the Hugging Face/vLLM, scikit-learn, XGBoost... runtimes that
# prepackaged models name) come in their own chart, `kserve-runtime-configs`.
resource "helm_release" "kserve_crd" {
  name             = "kserve-crd"
  repository       = "oci://ghcr.io/kserve/charts"
  chart            = "kserve-crd"
  version          = "v0.20.0"
  namespace        = "kserve"
  create_namespace = true

  depends_on = [helm_release.cert_manager]
}

# InferenceServices run as plain Deployments (Standard mode: no Knative or Istio needed).
resource "helm_release" "kserve" {
  name             = "kserve"
  repository       = "oci://ghcr.io/kserve/charts"
  chart            = "kserve-resources"
  version          = "v0.20.0"
  namespace        = "kserve"
  create_namespace = true

  values = [
    yamlencode({
      kserve = {
        controller = {
          deploymentMode = "Standard"
        }
      }
    }),
  ]

  depends_on = [helm_release.kserve_crd]
}

resource "helm_release" "kserve_runtimes" {
  name             = "kserve-runtimes"
  repository       = "oci://ghcr.io/kserve/charts"
  chart            = "kserve-runtime-configs"
  version          = "v0.20.0"
  namespace        = "kserve"
  create_namespace = true

  values = [
    yamlencode({
      kserve = {
        servingruntime = {
          enabled = true
        }
      }
    }),
  ]

  depends_on = [helm_release.kserve]
}
{%- endif %}
{%- if addons.seldon %}

# Seldon Core v1: the operator for SeldonDeployments, watching every namespace.
resource "helm_release" "seldon_core_operator" {
  name             = "seldon-core"
  repository       = "https://storage.googleapis.com/seldon-charts"
  chart            = "seldon-core-operator"
  version          = "1.17.1"
  namespace        = "seldon-system"
  create_namespace = true

  values = [
    yamlencode({
      usageMetrics = {
        enabled = false
      }
    }),
  ]

  depends_on = [terraform_data.cluster_ready]
}
{%- endif %}
{%- if addons.seldonV2 %}

# Seldon Core v2: CRDs, then the cluster-wide operator, then in every namespace with models a
# SeldonRuntime (scheduler, gateways) and the default MLServer and Triton Servers.
resource "helm_release" "seldon_core_v2_crds" {
  name             = "seldon-core-v2-crds"
  repository       = "https://seldonio.github.io/helm-charts"
  chart            = "seldon-core-v2-crds"
  version          = "2.9.1"
  namespace        = "seldon-mesh"
  create_namespace = true

  depends_on = [terraform_data.cluster_ready]
}

resource "helm_release" "seldon_core_v2_setup" {
  name             = "seldon-core-v2-setup"
  repository       = "https://seldonio.github.io/helm-charts"
  chart            = "seldon-core-v2-setup"
  version          = "2.9.1"
  namespace        = "seldon-mesh"
  create_namespace = true

  values = [
    yamlencode({
      controller = {
        clusterwide = true
      }
    }),
  ]

  depends_on = [helm_release.seldon_core_v2_crds]
}

resource "helm_release" "seldon_core_v2_runtime" {
  for_each = toset([
{%- for ns in seldonV2Namespaces %}
    {{ ns }},
{%- endfor %}
  ])

  name             = "seldon-core-v2-runtime"
  repository       = "https://seldonio.github.io/helm-charts"
  chart            = "seldon-core-v2-runtime"
  version          = "2.9.1"
  namespace        = each.key
  create_namespace = true

  depends_on = [helm_release.seldon_core_v2_setup]
}

resource "helm_release" "seldon_core_v2_servers" {
  for_each = helm_release.seldon_core_v2_runtime

  name       = "seldon-core-v2-servers"
  repository = "https://seldonio.github.io/helm-charts"
  chart      = "seldon-core-v2-servers"
  version    = "2.9.1"
  namespace  = each.value.namespace
}
{%- endif %}
{%- if addons.devicePlugin %}

# NVIDIA device plugin: advertises the nvidia.com/gpu resource of GPU nodes to the scheduler.
resource "helm_release" "nvidia_device_plugin" {
  name             = "nvidia-device-plugin"
  repository       = "https://nvidia.github.io/k8s-device-plugin"
  chart            = "nvidia-device-plugin"
  version          = "0.17.4"
  namespace        = "nvidia-device-plugin"
  create_namespace = true

  values = [
    yamlencode({
{%- if gpuPools %}
      # Only on GPU nodes, which carry this label from their node pool.
      affinity = {
        nodeAffinity = {
          requiredDuringSchedulingIgnoredDuringExecution = {
            nodeSelectorTerms = [
              {
                matchExpressions = [
                  {
                    key      = {{ scheduling.nodeLabel }}
                    operator = "Exists"
                  },
                ]
              },
            ]
          }
        }
      }
{%- else %}
      # An existing cluster: GPU feature discovery (with node-feature-discovery) finds the GPU
      # nodes, labels them with nvidia.com/gpu.product (which GPU pods select), and the device
      # plugin runs where it found GPUs.
      gfd = {
        enabled = true
      }
{%- endif %}
{%- if scheduling.taint %}
      # GPU nodes are tainted; the list replaces the chart's default, so it keeps
      # CriticalAddonsOnly.
      tolerations = [
        {
          key      = "CriticalAddonsOnly"
          operator = "Exists"
        },
        {
          key      = {{ scheduling.taint.key }}
          operator = "Exists"
          effect   = {{ scheduling.taint.effect }}
        },
      ]
{%- endif %}
{%- if k3s %}
      # k3s starts GPU containers with the nvidia container runtime.
      runtimeClassName = "nvidia"
{%- endif %}
    }),
  ]

  depends_on = [terraform_data.cluster_ready]
}
{%- endif %}
{%- if gpuOperator %}

# NVIDIA GPU operator: its device plugin time-slices GPUs by the node label
# nvidia.com/device-plugin.config (GPU feature discovery then names the product
# "<product>-SHARED"), and its MIG manager cuts GPUs as the node label nvidia.com/mig.config says.
# Time-slices have no memory or fault isolation; MIG slices do.
resource "helm_release" "gpu_operator" {
  name             = "gpu-operator"
  repository       = "https://helm.ngc.nvidia.com/nvidia"
  chart            = "gpu-operator"
  version          = "v25.3.4"
  namespace        = "gpu-operator"
  create_namespace = true

  values = [
    yamlencode({
      # The node images bring the driver.
      driver = {
        enabled = false
      }
{%- if gpuOperator.mig %}
      # Each MIG profile is its own resource, nvidia.com/mig-<profile>.
      mig = {
        strategy = "mixed"
      }
{%- endif %}
      migManager = {
        config = {
          default = {{ gpuOperator.defaultMig }}
        }
      }
{%- if gpuOperator.sharing %}
      devicePlugin = {
        config = {
          create = true
          name   = "time-slicing-config"
{%- if gpuOperator.defaultSharing %}
          # An existing cluster's nodes are not labelled by a pool: every GPU is shared.
          default = {{ gpuOperator.defaultSharing }}
{%- endif %}
          data = {
{%- for entry in gpuOperator.sharing %}
            {{ entry.name }} = yamlencode({
              version = "v1"
              sharing = {
                timeSlicing = {
                  resources = [
                    {
                      name     = "nvidia.com/gpu"
                      replicas = {{ entry.replicas | safe }}
                    },
                  ]
                }
              }
            })
{%- endfor %}
          }
        }
      }
{%- endif %}
{%- if k3s %}
      # k3s runs its own containerd.
      toolkit = {
        env = [
          {
            name  = "CONTAINERD_CONFIG"
            value = "/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl"
          },
          {
            name  = "CONTAINERD_SOCKET"
            value = "/run/k3s/containerd/containerd.sock"
          },
        ]
      }
{%- endif %}
    }),
  ]

  depends_on = [terraform_data.cluster_ready]
}
{%- endif %}
{%- if addons.amdDevicePlugin %}

# AMD GPU device plugin: advertises amd.com/gpu; its node labeller sets amd.com/gpu.* labels
# (product name, VRAM, family) that GPU pods on existing clusters select.
resource "helm_release" "amd_gpu_device_plugin" {
  name             = "amd-gpu"
  repository       = "https://rocm.github.io/k8s-device-plugin/"
  chart            = "amd-gpu"
  version          = "0.20.0"
  namespace        = "amd-gpu"
  create_namespace = true

  values = [
    yamlencode({
      labeller = {
        enabled = true
      }
{%- if scheduling.taint %}
      tolerations = [
        {
          key      = "amd.com/gpu"
          operator = "Exists"
          effect   = {{ scheduling.taint.effect }}
        },
      ]
{%- endif %}
    }),
  ]

  depends_on = [terraform_data.cluster_ready]
}
{%- endif %}
{%- if addons.keda %}

# KEDA: scales models on Prometheus metrics (autoscale.metric), down to zero. The chart's
# version matches the ScaledObject CRD mldeploy validates against.
resource "helm_release" "keda" {
  name             = "keda"
  repository       = "https://kedacore.github.io/charts"
  chart            = "keda"
  version          = "2.20.1"
  namespace        = "keda"
  create_namespace = true

  depends_on = [terraform_data.cluster_ready]
}
{%- endif %}
{%- if addons.prometheus %}

# kube-prometheus-stack: Prometheus, Alertmanager and Grafana, finding the models'
# ServiceMonitors and dashboard ConfigMaps in every namespace (not only the release's).
resource "helm_release" "kube_prometheus_stack" {
  name             = "kube-prometheus-stack"
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = "80.13.3"
  namespace        = "monitoring"
  create_namespace = true
  timeout          = 600

  values = [
    yamlencode({
      prometheus = {
        prometheusSpec = {
          podMonitorSelectorNilUsesHelmValues     = false
          ruleSelectorNilUsesHelmValues           = false
          serviceMonitorSelectorNilUsesHelmValues = false
        }
      }
      grafana = {
        sidecar = {
          dashboards = {
            searchNamespace = "ALL"
          }
        }
      }
      # The control plane is not scrapeable on managed clusters or k3s.
      kubeControllerManager = {
        enabled = false
      }
      kubeEtcd = {
        enabled = false
      }
      kubeScheduler = {
        enabled = false
      }
    }),
  ]

  depends_on = [terraform_data.cluster_ready]
}
{%- endif %}
{%- if kyverno %}

# Kyverno, for the image signature policy (security.imageSignatures with installKyverno): its
# admission webhook verifies cosign signatures of the models' images.
resource "helm_release" "kyverno" {
  name             = "kyverno"
  repository       = "https://kyverno.github.io/kyverno"
  chart            = "kyverno"
  version          = "3.5.2"
  namespace        = "kyverno"
  create_namespace = true

  depends_on = [terraform_data.cluster_ready]
}
{%- endif %}
{%- endif %}
