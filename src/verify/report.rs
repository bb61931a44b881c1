//! Results where people look: a text summary, JSON, a JUnit XML file for CI test reports, and
//! the Prometheus text exposition format for a Pushgateway.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::ModelRun;
use super::load::Outcome;

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        Some(Percentiles {
            p50: ms(h.value_at_percentile(50.0)),
            p90: ms(h.value_at_percentile(90.0)),
            p95: ms(h.value_at_percentile(95.0)),
            p99: ms(h.value_at_percentile(99.0)),
            max: ms(h.max()),
            mean: (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
        })
    }
}

/// A load test's figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadSummary {
    /// Measured requests that ended.
    pub requests: u64,
    /// Successful ones.
    pub ok: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// Failed share, percent.
    pub error_rate: f64,
    /// Requests per second.
    pub throughput: f64,
    /// Measurement time, seconds.
    pub duration_s: f64,
    /// Latency of successful requests (ms).
    pub latency_ms: Option<Percentiles>,
    /// Time to first token (ms), streaming only.
    pub ttft_ms: Option<Percentiles>,
    /// Inter-token latency (ms), streaming only.
    pub itl_ms: Option<Percentiles>,
    /// Tokens per second over the run, streaming only.
    pub tokens_per_second: Option<f64>,
    /// Whether the hard deadline or Ctrl-C ended the run early.
    pub cut_short: bool,
}

impl From<&Outcome> for LoadSummary {
    fn from(o: &Outcome) -> Self {
        let secs = o.elapsed.as_secs_f64();
        LoadSummary {
            requests: o.total(),
            ok: o.ok,
            errors: o.errors.clone(),
            error_rate: o.error_rate() * 100.0,
            throughput: (o.throughput() * 10.0).round() / 10.0,
            duration_s: (secs * 1000.0).round() / 1000.0,
            latency_ms: Percentiles::of(&o.hist.latency),
            ttft_ms: Percentiles::of(&o.hist.ttft),
            itl_ms: Percentiles::of(&o.hist.itl),
            tokens_per_second: (o.tokens > 0)
                .then(|| (o.tokens as f64 / secs * 10.0).round() / 10.0),
            cut_short: o.cut_short,
        }
    }
}

fn line(p: &Percentiles) -> String {
    format!(
        "p50 {:.2} ms  p90 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        p.p50, p.p90, p.p95, p.p99, p.max
    )
}

/// The text summary of one model.
pub fn text(run: &ModelRun) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}, {}) at {}",
        run.model, run.runtime, run.protocol, run.endpoint
    );
    if let Some(s) = &run.smoke {
        for st in &s.steps {
            let _ = writeln!(
                out,
                "  smoke  {:<13} {} {:>8.2} ms  {}",
                st.name, st.status, st.latency_ms, st.path
            );
        }
        if let Some(t) = s.ttft_ms {
            let _ = writeln!(out, "  smoke  time to first token {t:.2} ms");
        }
        let _ = writeln!(out, "  answer {}", s.response.replace('\n', " "));
    }
    if let Some(l) = &run.load {
        let _ = writeln!(
            out,
            "  load   {} requests in {:.1}s: {:.1}/s, {} failed ({:.2}%){}",
            l.requests,
            l.duration_s,
            l.throughput,
            l.requests - l.ok,
            l.error_rate,
            if l.cut_short { " [cut short]" } else { "" }
        );
        for (kind, n) in &l.errors {
            let _ = writeln!(out, "         {n} × {kind}");
        }
        if let Some(p) = &l.latency_ms {
            let _ = writeln!(out, "  latency {}", line(p));
        }
        if let Some(p) = &l.ttft_ms {
            let _ = writeln!(out, "  ttft    {}", line(p));
        }
        if let Some(p) = &l.itl_ms {
            let _ = writeln!(out, "  itl     {}", line(p));
        }
        if let Some(t) = l.tokens_per_second {
            let _ = writeln!(out, "  tokens  {t:.1}/s");
        }
    }
    for c in &run.checks {
        let _ = writeln!(out, "  slo    {c}");
    }
    match (&run.error, run.breached()) {
        (Some(e), _) => {
            let _ = writeln!(out, "  ERROR  {}", e.message);
            if let Some(h) = &e.hint {
                let _ = writeln!(out, "         help: {h}");
            }
        }
        (None, true) => {
            let _ = writeln!(out, "  FAIL   SLO breached");
        }
        (None, false) => {
            let _ = writeln!(out, "  PASS");
        }
    }
    out
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// A JUnit XML report: one test case for each model's smoke test and each SLO check.
pub fn junit(suite: &str, runs: &[ModelRun]) -> String {
    let mut cases = String::new();
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    for r in runs {
        let class = xml(&format!("mldeploy.{}", r.model));
        let secs = r.smoke.as_ref().map_or(0.0, |s| {
            s.steps.iter().map(|s| s.latency_ms).sum::<f64>() / 1000.0
        });
        tests += 1;
        match (&r.error, &r.smoke) {
            (Some(e), None) => {
                errors += 1;
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{class}\" name=\"smoke\" time=\"{secs:.3}\">\n      <error message=\"{}\">{}</error>\n    </testcase>",
                    xml(&e.message),
                    xml(e.hint.as_deref().unwrap_or(""))
                );
                continue;
            }
            _ => {
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{class}\" name=\"smoke\" time=\"{secs:.3}\"/>"
                );
            }
        }
        let load_secs = r.load.as_ref().map_or(0.0, |l| l.duration_s);
        if let Some(e) = &r.error {
            tests += 1;
            errors += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{class}\" name=\"load\" time=\"{load_secs:.3}\">\n      <error message=\"{}\">{}</error>\n    </testcase>",
                xml(&e.message),
                xml(e.hint.as_deref().unwrap_or(""))
            );
        }
        for c in &r.checks {
            tests += 1;
            let name = xml(&format!("slo {}", c.name));
            if c.pass {
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{class}\" name=\"{name}\" time=\"{load_secs:.3}\"/>"
                );
            } else {
                failures += 1;
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{class}\" name=\"{name}\" time=\"{load_secs:.3}\">\n      <failure message=\"{}\"/>\n    </testcase>",
                    xml(&c.to_string())
                );
            }
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n{cases}  </testsuite>\n</testsuites>\n",
        xml(suite)
    )
}

/// A run's figures in the Prometheus text exposition format (for a Pushgateway). The grouping
/// labels (project, env, model) are in the push URL, so the samples carry none of their own.
pub fn prometheus(run: &ModelRun, now_unix: u64) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(Option<&str>, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (q, v) in samples {
            match q {
                Some(q) => {
                    let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {v}");
                }
                None => {
                    let _ = writeln!(out, "{name} {v}");
                }
            }
        }
    };
    let quantiles = |p: &Percentiles| {
        vec![
            (Some("0.5"), p.p50 / 1000.0),
            (Some("0.9"), p.p90 / 1000.0),
            (Some("0.95"), p.p95 / 1000.0),
            (Some("0.99"), p.p99 / 1000.0),
            (Some("1"), p.max / 1000.0),
        ]
    };
    if let Some(l) = &run.load {
        gauge(
            "mldeploy_test_requests",
            "Requests measured by the last mldeploy test run.",
            &[(None, l.requests as f64)],
        );
        gauge(
            "mldeploy_test_error_ratio",
            "Share of failed requests in the last mldeploy test run.",
            &[(None, l.error_rate / 100.0)],
        );
        gauge(
            "mldeploy_test_throughput_rps",
            "Requests per second in the last mldeploy test run.",
            &[(None, l.throughput)],
        );
        if let Some(p) = &l.latency_ms {
            gauge(
                "mldeploy_test_latency_seconds",
                "Request latency quantiles of the last mldeploy test run.",
                &quantiles(p),
            );
        }
        if let Some(p) = &l.ttft_ms {
            gauge(
                "mldeploy_test_ttft_seconds",
                "Time-to-first-token quantiles of the last mldeploy test run.",
                &quantiles(p),
            );
        }
        if let Some(t) = l.tokens_per_second {
            gauge(
                "mldeploy_test_tokens_per_second",
                "Tokens per second in the last mldeploy test run.",
                &[(None, t)],
            );
        }
    }
    gauge(
        "mldeploy_test_passed",
        "1 when the last mldeploy test run met the SLO, else 0.",
        &[(None, if run.passed() { 1.0 } else { 0.0 })],
    );
    gauge(
        "mldeploy_test_last_run_timestamp_seconds",
        "When the last mldeploy test run ended (Unix time).",
        &[(None, now_unix as f64)],
    );
    out
}

/// The Pushgateway path of a run: `/metrics/job/mldeploy_test/project/P/env/E/model/M`.
pub fn push_path(project: &str, env: &str, model: &str) -> String {
    format!("/metrics/job/mldeploy_test/project/{project}/env/{env}/model/{model}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::slo::Check;

    fn run(pass: bool) -> ModelRun {
        ModelRun {
            model: "iris<1>".into(),
            runtime: "kserve",
            protocol: "oip-v2",
            endpoint: "http://x".into(),
            smoke: Some(super::super::Smoke {
                steps: vec![],
                response: "{}".into(),
                ttft_ms: None,
            }),
            load: None,
            checks: vec![Check {
                name: "p95".into(),
                limit: 250.0,
                actual: Some(if pass { 10.0 } else { 300.0 }),
                unit: "ms",
                pass,
            }],
            error: None,
        }
    }

    #[test]
    fn junit_counts_and_escapes() {
        let x = junit("mldeploy test", &[run(true), run(false)]);
        assert!(x.contains("tests=\"4\" failures=\"1\" errors=\"0\""), "{x}");
        assert!(x.contains("mldeploy.iris&lt;1&gt;"));
        assert!(x.contains("<failure message=\"p95 300.00ms (limit 250.00ms) BREACHED\"/>"));
    }

    #[test]
    fn prometheus_text_has_types_and_help() {
        let t = prometheus(&run(false), 1_700_000_000);
        assert!(t.contains("# TYPE mldeploy_test_passed gauge\nmldeploy_test_passed 0\n"));
        assert!(t.contains("mldeploy_test_last_run_timestamp_seconds 1700000000"));
    }
}
