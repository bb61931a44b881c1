#!/usr/bin/env bash
# Whole-process render measurements for docs/performance.md. Needs hyperfine and kubectl
# (apt-get install hyperfine; kubectl from your distribution) and GNU time (/usr/bin/time).
# Usage: scripts/bench.sh [WORKDIR]   (default: a folder under /dev/shm, to measure CPU, not disk)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d /dev/shm/mldeploy-bench.XXXXXX 2>/dev/null || mktemp -d)}
cargo build --release --quiet
bin=$PWD/target/release/mldeploy

for n in 50 1000; do python3 scripts/gen-config.py "$n" > "$work/models-$n.yaml"; done

# The same 50-model objects as plain files + kustomization.yaml, for kubectl kustomize.
"$bin" render -f "$work/models-50.yaml" --out "$work/kustomize-50" 2>/dev/null
(
  cd "$work/kustomize-50/manifests"
  files=$(ls ./*.yaml)
  { echo "apiVersion: kustomize.config.k8s.io/v1beta1"; echo "kind: Kustomization"; echo "resources:";
    for f in $files; do echo "  - ${f#./}"; done; } > kustomization.yaml
)

echo "== 50 models: mldeploy render (whole process, to a fresh folder) vs kubectl kustomize"
hyperfine -N -w 3 -r 30 --output=pipe \
  --prepare "rm -rf $work/out-50" \
  "$bin render -f $work/models-50.yaml --out $work/out-50" \
  "kubectl kustomize $work/kustomize-50/manifests"

echo "== 1000 models: whole process, to a fresh folder, and to stdout"
hyperfine -N -w 3 -r 30 --output=pipe \
  --prepare "rm -rf $work/out-1000" \
  "$bin render -f $work/models-1000.yaml --out $work/out-1000" \
  "$bin render -f $work/models-1000.yaml"

echo "== 1000 models: peak memory (max RSS)"
rm -rf "$work/out-1000"
/usr/bin/time -f "max RSS %M KiB, %e s" "$bin" render -f "$work/models-1000.yaml" --out "$work/out-1000" 2>&1 | tail -1
