//! Render benchmarks: the whole pure pipeline (parse → resolve → render → parse back) for
//! environments of 1, 10, 100 and 1000 generated models. See docs/performance.md.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mldeploy::render::{Templates, render_env};

/// A config with `n` models cycling through the four runtimes, GPUs, autoscaling and canaries,
/// on one GKE cluster with monitoring on: the same shape as `scripts/gen-config.py`.
pub fn config(n: usize) -> String {
    let mut s = String::from(
        "version: 1\nproject: bench\nlabels: {team: perf}\ndefaults: {resources: {cpu: 500m, memory: 1Gi}}\nmodels:\n",
    );
    for i in 0..n {
        match i % 4 {
            0 => s.push_str(&format!(
                "  - {{name: m{i}, runtime: deployment, image: registry.example.com/m{i}:1.0, replicas: 2, env: {{LOG_LEVEL: info, WORKERS: 4}}, autoscale: {{min: 2, max: 6}}}}\n"
            )),
            1 => s.push_str(&format!(
                "  - {{name: m{i}, runtime: seldon, image: registry.example.com/m{i}:1.0, gpu: {{type: t4}}, canary: {{image: registry.example.com/m{i}:1.1, traffic: 10}}}}\n"
            )),
            2 => s.push_str(&format!(
                "  - {{name: m{i}, runtime: kserve, server: xgboost, modelUri: gs://bench/m{i}, storageSecret: gcs, autoscale: {{min: 1, max: 3}}}}\n"
            )),
            _ => s.push_str(&format!(
                "  - {{name: m{i}, runtime: seldon-v2, server: sklearn, modelUri: gs://bench/m{i}, replicas: 2}}\n"
            )),
        }
    }
    s.push_str(
        "clusters:\n  gke:\n    cloud: gcp\n    region: europe-west4\n    gcp: {project: bench}\n    nodePools:\n      - {name: system, machine: {cpu: 8, memory: 32Gi}, min: 1, max: 10}\n      - {name: gpu, gpu: {type: t4, count: 1}, min: 0, max: 50}\nenvironments:\n  prod: {cluster: gke}\nmonitoring: {prometheus: true, grafanaDashboard: true}\n",
    );
    s
}

fn bench_render(c: &mut Criterion) {
    let templates = Templates::builtin().expect("built-ins compile");
    let mut group = c.benchmark_group("render");
    group.sample_size(20);
    for n in [1usize, 10, 100, 1000] {
        let text = config(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("pipeline", n), &text, |b, text| {
            b.iter(|| {
                let loaded = mldeploy::config::load_str(Path::new("bench.yaml"), black_box(text))
                    .expect("parses");
                let project = mldeploy::model::resolve(&loaded).expect("valid");
                let env = &project.environments["prod"];
                black_box(render_env(&project, env, &templates).expect("renders"))
            });
        });
    }
    group.finish();
    c.bench_function("templates/compile", |b| {
        b.iter(|| black_box(Templates::builtin().expect("compile")))
    });
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
