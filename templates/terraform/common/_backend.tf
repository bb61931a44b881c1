{#- The backend block built from the cluster's `state` in mldeploy.yaml, aligned as terraform fmt
    wants it; included by each cloud's versions.tf. -#}
{%- set pad = "                        " -%}
{%- set width = [s.name | length for s in backend.settings] | sort | last %}
  backend {{ backend.kind }} {
{%- for s in backend.settings %}
    {{ (s.name ~ pad) | truncate(length=width, end="") | safe }} = {% if s.value is string %}{{ s.value }}{% else %}{{ s.value | safe }}{% endif %}
{%- endfor %}
  }