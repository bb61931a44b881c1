//! Judging a load test against a service-level objective.

use serde::Serialize;

use super::load::Outcome;
use crate::model::slo::Slo;

/// The error-rate limit when the SLO sets none: a gate that passes a failing endpoint is no gate.
pub const DEFAULT_ERROR_RATE: f64 = 0.01;

/// One limit and how the run did against it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `p95`, `errorRate`, `ttftP95`, …
    pub name: String,
    /// The limit (ms for latencies, percent for the error rate).
    pub limit: f64,
    /// What was measured, in the same unit; `None` when there was nothing to measure.
    pub actual: Option<f64>,
    /// `ms` or `%`.
    pub unit: &'static str,
    /// Within the limit.
    pub pass: bool,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let actual = self
            .actual
            .map_or("n/a".to_string(), |a| format!("{a:.2}{}", self.unit));
        let verdict = if self.pass { "ok" } else { "BREACHED" };
        write!(
            f,
            "{} {actual} (limit {:.2}{}) {verdict}",
            self.name, self.limit, self.unit
        )
    }
}

/// Checks every limit the SLO sets (and the default error-rate limit).
pub fn judge(slo: &Slo, o: &Outcome) -> Vec<Check> {
    let mut checks = Vec::new();
    let ms = |us: u64| us as f64 / 1000.0;
    let latency = [
        ("p50", slo.p50, 50.0),
        ("p90", slo.p90, 90.0),
        ("p95", slo.p95, 95.0),
        ("p99", slo.p99, 99.0),
    ];
    for (name, limit, q) in latency {
        if let Some(limit) = limit {
            let actual =
                (!o.hist.latency.is_empty()).then(|| ms(o.hist.latency.value_at_percentile(q)));
            let limit = limit.as_secs_f64() * 1000.0;
            checks.push(Check {
                name: name.into(),
                limit,
                actual,
                unit: "ms",
                pass: actual.is_some_and(|a| a <= limit),
            });
        }
    }
    if let Some(limit) = slo.ttft_p95 {
        let actual = (!o.hist.ttft.is_empty()).then(|| ms(o.hist.ttft.value_at_percentile(95.0)));
        let limit = limit.as_secs_f64() * 1000.0;
        checks.push(Check {
            name: "ttftP95".into(),
            limit,
            actual,
            unit: "ms",
            pass: actual.is_some_and(|a| a <= limit),
        });
    }
    let limit = slo.error_rate.unwrap_or(DEFAULT_ERROR_RATE) * 100.0;
    let actual = (o.total() > 0).then(|| o.error_rate() * 100.0);
    checks.push(Check {
        name: "errorRate".into(),
        limit,
        actual,
        unit: "%",
        pass: actual.is_some_and(|a| a <= limit),
    });
    checks
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::verify::load::Histograms;

    fn outcome(latencies_ms: &[u64], errors: u64) -> Outcome {
        let mut hist = Histograms::empty();
        for l in latencies_ms {
            hist.latency.record(l * 1000).unwrap();
        }
        Outcome {
            hist,
            ok: latencies_ms.len() as u64,
            errors: if errors > 0 {
                BTreeMap::from([("HTTP 503".to_string(), errors)])
            } else {
                BTreeMap::new()
            },
            first_error: None,
            tokens: 0,
            elapsed: Duration::from_secs(1),
            cut_short: false,
        }
    }

    #[test]
    fn limits_pass_and_breach() {
        let slo = Slo {
            p95: Some(Duration::from_millis(100)),
            error_rate: Some(0.05),
            ..Slo::default()
        };
        let fast: Vec<u64> = vec![10; 100];
        assert!(judge(&slo, &outcome(&fast, 0)).iter().all(|c| c.pass));
        let slow: Vec<u64> = vec![500; 100];
        let checks = judge(&slo, &outcome(&slow, 0));
        assert!(!checks[0].pass, "{}", checks[0]);
        let failing = judge(&slo, &outcome(&fast, 10));
        assert!(!failing[1].pass, "10/110 failed is above 5%");
    }

    #[test]
    fn nothing_measured_is_not_a_pass() {
        let checks = judge(&Slo::default(), &outcome(&[], 0));
        assert_eq!(checks.len(), 1);
        assert!(!checks[0].pass);
    }
}
