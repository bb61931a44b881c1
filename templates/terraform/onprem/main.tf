{#- On-prem: the cluster and its nodes exist already; Terraform installs the add-ons only. -#}
{%- if k3s -%}
# k3s starts GPU containers with the nvidia container runtime, which pods choose with
# runtimeClassName: nvidia. k3s detects the runtime on each node; recent k3s also installs this
# RuntimeClass (see var.create_nvidia_runtime_class).
resource "kubernetes_runtime_class_v1" "nvidia" {
  count = var.create_nvidia_runtime_class ? 1 : 0

  metadata {
    name = "nvidia"
  }

  handler = "nvidia"
}

# Add-ons (addons.tf) install once the RuntimeClass exists.
resource "terraform_data" "cluster_ready" {
  depends_on = [kubernetes_runtime_class_v1.nvidia]
}
{%- else -%}
# The cluster exists already: add-ons (addons.tf) have nothing to wait for.
resource "terraform_data" "cluster_ready" {}
{%- endif %}
