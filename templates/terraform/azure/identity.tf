{#- Workload identity for model storage (AKS Workload Identity): per identity a user-assigned
    managed identity that may read its blob containers, federated with the Kubernetes
    ServiceAccount of the same name through the cluster's OIDC issuer. Its client id is known
    only once Terraform has created it: `mldeploy infra apply` prints the output
    `storage_identities`, and the config takes it as `storage.clientId` (the ServiceAccount's
    azure.workload.identity/client-id annotation). #}
{%- if storageIdentities -%}
# Model storage without keys (AKS Workload Identity): a managed identity per identity, allowed
# to read its blob containers, federated with the Kubernetes ServiceAccount of the same name in
# each namespace that uses it.
{% include "terraform/common/_storage_locals.tf" %}
# The storage accounts of the models' containers: in var.storage_resource_group_name, or the
# cluster's resource group.
data "azurerm_storage_account" "models" {
  for_each = toset([for key, read in local.storage_reads : split("/", read.bucket)[0]])

  name                = each.key
  resource_group_name = coalesce(var.storage_resource_group_name, data.azurerm_resource_group.this.name)
}

resource "azurerm_user_assigned_identity" "storage" {
  for_each = local.storage_identities

  name                = each.key
  location            = var.location
  resource_group_name = data.azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "storage" {
  for_each = local.storage_bindings

  name                = replace(each.key, "/", "-")
  resource_group_name = data.azurerm_resource_group.this.name
  parent_id           = azurerm_user_assigned_identity.storage[each.value.identity].id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject             = "system:serviceaccount:${each.value.namespace}:${each.value.identity}"
}

# Read only, on the container (not the whole account).
resource "azurerm_role_assignment" "storage_read" {
  for_each = local.storage_reads

  scope                = "${data.azurerm_storage_account.models[split("/", each.value.bucket)[0]].id}/blobServices/default/containers/${split("/", each.value.bucket)[1]}"
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = azurerm_user_assigned_identity.storage[each.value.identity].principal_id
}

output "storage_identities" {
  description = "Client id of each model storage identity: mldeploy.yaml takes it as storage.clientId."
  value       = { for name, id in azurerm_user_assigned_identity.storage : name => id.client_id }
}
{%- endif %}
