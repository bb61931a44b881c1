locals {
  # Per identity: the namespaces whose ServiceAccount of the same name it is bound to, and the
  # buckets it reads (mldeploy.yaml: `storage: {identity: workload}` of the models).
  storage_identities = {
{%- for line in storageIdentities %}
    {{ line | safe }}
{%- endfor %}
  }
  storage_reads = merge([
    for name, id in local.storage_identities : {
      for bucket in id.buckets : "${name}/${bucket}" => { identity = name, bucket = bucket }
    }
  ]...)
  storage_bindings = merge([
    for name, id in local.storage_identities : {
      for ns in id.namespaces : "${ns}/${name}" => { identity = name, namespace = ns }
    }
  ]...)
}
