#!/usr/bin/env python3
"""mldeploy apply vs kubectl apply --server-side, side by side on a real kube-apiserver.

Starts ../shared/kube/up.sh (if it is not up), installs the CRDs of ../shared/crds, then for each
size (default 50 and 500 models, scripts/gen-config.py) alternates runs of:
  first apply   — into a fresh namespace (mldeploy apply --no-wait / kubectl apply --server-side)
  no-op apply   — the same again
and reports medians, plus requests per run by verb as the API server's audit log counts them
(dry runs apart). Needs kubectl on PATH and a release build (cargo build --release).

Usage: scripts/bench-apply.py [--sizes 50,500] [--runs 5]
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def sh(*args, **kw):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kw)


def up():
    out = sh("bash", str(SHARED / "kube/up.sh")).stdout
    env = dict(re.findall(r"(\w+)=(\S+)", out))
    return env["MLDEPLOY_TEST_KUBECONFIG"], pathlib.Path(env["KUBE_TEST_DIR"])


def audit_size(d):
    return (d / "audit.log").stat().st_size


def requests_since(d, offset, agent):
    counts = {}
    with open(d / "audit.log", "rb") as f:
        f.seek(offset)
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if not e.get("userAgent", "").startswith(agent):
                continue
            verb = e.get("verb", "?")
            if "dryRun=All" in e.get("requestURI", ""):
                verb = "dry-run " + verb
            counts[verb] = counts.get(verb, 0) + 1
    return counts


def timed(cmd, env=None):
    t = time.perf_counter()
    r = subprocess.run(cmd, text=True, capture_output=True, env=env)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="50,500")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    if not shutil.which("kubectl"):
        sys.exit("kubectl is not on PATH: it is the tool compared against")
    sh("cargo", "build", "--release", "--quiet", cwd=ROOT)
    binary = str(ROOT / "target/release/mldeploy")
    kc, kdir = up()
    sh("kubectl", "--kubeconfig", kc, "apply", "--server-side", "--force-conflicts", "-R", "-f", str(SHARED / "crds"))
    sh("kubectl", "--kubeconfig", kc, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    work = pathlib.Path(tempfile.mkdtemp(prefix="mldeploy-bench-apply-"))
    print("| models | objects | tool | first apply (median) | no-op apply (median) | first-apply requests | no-op requests |")
    print("|---|---|---|---|---|---|---|")
    for n in [int(s) for s in a.sizes.split(",")]:
        base = sh("python3", str(ROOT / "scripts/gen-config.py"), str(n)).stdout
        times = {("mldeploy", "first"): [], ("mldeploy", "noop"): [], ("kubectl", "first"): [], ("kubectl", "noop"): []}
        reqs = {}
        objects = 0
        for i in range(a.runs):
            for tool in ("mldeploy", "kubectl"):
                ns = f"b{n}-{tool[0]}-{i}-{os.getpid()}"
                cfg = work / f"{ns}.yaml"
                cfg.write_text(base.replace("  prod: {cluster: gke}", f"  prod: {{cluster: gke, namespace: {ns}}}"))
                if tool == "mldeploy":
                    cmd = [binary, "-f", str(cfg), "--kubeconfig", kc, "--context", "test", "apply", "--no-wait"]
                else:
                    out = work / ns
                    sh(binary, "render", "-f", str(cfg), "--out", str(out))
                    files = sorted((out / "manifests").glob("*.yaml"))
                    objects = len(files)
                    cmd = ["kubectl", "--kubeconfig", kc, "apply", "--server-side", "-f", str(out / "manifests")]
                agent = "mldeploy/" if tool == "mldeploy" else "kubectl"
                for phase in ("first", "noop"):
                    off = audit_size(kdir)
                    times[(tool, phase)].append(timed(cmd))
                    time.sleep(0.3)
                    reqs[(tool, phase)] = requests_since(kdir, off, agent)
                # Wait for the namespace to go: its deletion (every object, the pods the controller
                # manager made) would otherwise load the server during the next tool's run.
                subprocess.run(["kubectl", "--kubeconfig", kc, "delete", "ns", ns, "--timeout=120s"], capture_output=True)
        for tool in ("mldeploy", "kubectl"):
            f = statistics.median(times[(tool, "first")])
            z = statistics.median(times[(tool, "noop")])
            fr = ", ".join(f"{v} {k}" for k, v in sorted(reqs[(tool, "first")].items()))
            zr = ", ".join(f"{v} {k}" for k, v in sorted(reqs[(tool, "noop")].items()))
            print(f"| {n} | {objects} | {tool} | {f*1000:.0f} ms | {z*1000:.0f} ms | {fr} | {zr} |")
        runs = "; ".join(f"{t} {p}: " + ", ".join(f"{x*1000:.0f}" for x in v) for (t, p), v in times.items())
        print(f"| {n} | | runs (ms) | {runs} | | | |")
        mf, kf = statistics.median(times[("mldeploy", "first")]), statistics.median(times[("kubectl", "first")])
        mz, kz = statistics.median(times[("mldeploy", "noop")]), statistics.median(times[("kubectl", "noop")])
        print(f"| {n} | | ratio | **{kf/mf:.1f}×** | **{kz/mz:.1f}×** | | |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
