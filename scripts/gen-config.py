#!/usr/bin/env python3
"""Print an mldeploy.yaml with N models (same shape as benches/render.rs `config`)."""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
out = ["version: 1", "project: bench", "labels: {team: perf}",
       "defaults: {resources: {cpu: 500m, memory: 1Gi}}", "models:"]
for i in range(n):
    out.append([
        f"  - {{name: m{i}, runtime: deployment, image: registry.example.com/m{i}:1.0, replicas: 2, env: {{LOG_LEVEL: info, WORKERS: 4}}, autoscale: {{min: 2, max: 6}}}}",
        f"  - {{name: m{i}, runtime: seldon, image: registry.example.com/m{i}:1.0, gpu: {{type: t4}}, canary: {{image: registry.example.com/m{i}:1.1, traffic: 10}}}}",
        f"  - {{name: m{i}, runtime: kserve, server: xgboost, modelUri: gs://bench/m{i}, storageSecret: gcs, autoscale: {{min: 1, max: 3}}}}",
        f"  - {{name: m{i}, runtime: seldon-v2, server: sklearn, modelUri: gs://bench/m{i}, replicas: 2}}",
    ][i % 4])
out += ["clusters:", "  gke:", "    cloud: gcp", "    region: europe-west4", "    gcp: {project: bench}",
        "    nodePools:", "      - {name: system, machine: {cpu: 8, memory: 32Gi}, min: 1, max: 10}",
        "      - {name: gpu, gpu: {type: t4, count: 1}, min: 0, max: 50}",
        "environments:", "  prod: {cluster: gke}", "monitoring: {prometheus: true, grafanaDashboard: true}"]
print("\n".join(out))
