//! A model's service-level objective and test settings, resolved from `slo:` and `test:`:
//! durations and percentages parsed once here, so `mldeploy test` works with numbers.

use std::time::Duration;

use serde::Serialize;

use super::{ModelCheck, key};
use crate::config::{self, Protocol};

/// Limits a load test must stay within; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Slo {
    /// Highest median latency.
    #[serde(serialize_with = "millis")]
    pub p50: Option<Duration>,
    /// Highest 90th-percentile latency.
    #[serde(serialize_with = "millis")]
    pub p90: Option<Duration>,
    /// Highest 95th-percentile latency.
    #[serde(serialize_with = "millis")]
    pub p95: Option<Duration>,
    /// Highest 99th-percentile latency.
    #[serde(serialize_with = "millis")]
    pub p99: Option<Duration>,
    /// Highest share of failed requests, as a fraction (0.005 for `0.5%`).
    pub error_rate: Option<f64>,
    /// Highest 95th-percentile time to first token.
    #[serde(serialize_with = "millis")]
    pub ttft_p95: Option<Duration>,
}

/// Durations as milliseconds in resolved-model JSON.
fn millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_secs_f64() * 1000.0)),
        None => s.serialize_none(),
    }
}

impl Slo {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Slo::default()
    }

    /// `other`'s limits where it sets them, else ours (flags over config).
    pub fn overridden_by(self, other: Slo) -> Slo {
        Slo {
            p50: other.p50.or(self.p50),
            p90: other.p90.or(self.p90),
            p95: other.p95.or(self.p95),
            p99: other.p99.or(self.p99),
            error_rate: other.error_rate.or(self.error_rate),
            ttft_p95: other.ttft_p95.or(self.ttft_p95),
        }
    }
}

/// How `mldeploy test` talks to a model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestSettings {
    /// Request body file, as written (relative to the config's folder).
    pub payload: Option<String>,
    /// Protocol, when the config says; else the runtime's.
    pub protocol: Option<Protocol>,
}

impl TestSettings {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == TestSettings::default()
    }
}

const DURATION_HINT: &str = "a duration with a unit: 250ms, 1.5s, 2m";

/// Parses `250ms`, `1.5s`, `2m`, `800us`. A bare number is refused: its unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration"))?;
    let secs = match unit.trim() {
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "" => return Err(format!("`{text}` has no unit")),
        u => return Err(format!("unknown unit `{u}` in `{text}`")),
    };
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("`{text}` is out of range (0 to 24h)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `0.5%` (or a fraction `0.005`) into a fraction between 0 and 1.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    let v: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage"))?;
    let v = v / scale;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("`{text}` is not between 0% and 100%"));
    }
    Ok(v)
}

/// Resolves `slo:`, reporting each bad value at its own location.
pub(super) fn check_slo(mc: &mut ModelCheck<'_>, spec: Option<&config::Slo>) -> Slo {
    let Some(s) = spec else {
        return Slo::default();
    };
    let mut duration = |field: &str, v: &Option<config::Scalar>| {
        let v = v.as_ref()?;
        match parse_duration(v.as_str()) {
            Ok(d) => Some(d),
            Err(e) => {
                mc.at(&[key("slo"), key(field)], e, Some(DURATION_HINT.into()));
                None
            }
        }
    };
    let p50 = duration("p50", &s.p50);
    let p90 = duration("p90", &s.p90);
    let p95 = duration("p95", &s.p95);
    let p99 = duration("p99", &s.p99);
    let ttft_p95 = duration("ttftP95", &s.ttft_p95);
    let error_rate = s
        .error_rate
        .as_ref()
        .and_then(|v| match parse_rate(v.as_str()) {
            Ok(r) => Some(r),
            Err(e) => {
                mc.at(
                    &[key("slo"), key("errorRate")],
                    e,
                    Some("a percentage: 0.5%, 1%".into()),
                );
                None
            }
        });
    Slo {
        p50,
        p90,
        p95,
        p99,
        error_rate,
        ttft_p95,
    }
}

/// Resolves `test:`.
pub(super) fn check_test(mc: &mut ModelCheck<'_>, spec: Option<&config::TestSpec>) -> TestSettings {
    let Some(t) = spec else {
        return TestSettings::default();
    };
    if let Some(p) = &t.payload
        && p.trim().is_empty()
    {
        mc.at(
            &[key("test"), key("payload")],
            "test.payload is empty",
            Some("a JSON file next to the config, e.g. payloads/iris.json".into()),
        );
    }
    TestSettings {
        payload: t.payload.clone(),
        protocol: t.protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("800us"), Ok(Duration::from_micros(800)));
        assert!(parse_duration("250").unwrap_err().contains("no unit"));
        assert!(parse_duration("5h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn rates_are_percentages() {
        assert_eq!(parse_rate("0.5%"), Ok(0.005));
        assert_eq!(parse_rate("1 %"), Ok(0.01));
        assert_eq!(parse_rate("0.02"), Ok(0.02));
        assert!(parse_rate("150%").is_err());
        assert!(parse_rate("-1%").is_err());
    }

    #[test]
    fn flags_override_config_limits() {
        let config = Slo {
            p95: Some(Duration::from_millis(250)),
            error_rate: Some(0.01),
            ..Slo::default()
        };
        let flags = Slo {
            p95: Some(Duration::from_millis(100)),
            ..Slo::default()
        };
        let s = config.overridden_by(flags);
        assert_eq!(s.p95, Some(Duration::from_millis(100)));
        assert_eq!(s.error_rate, Some(0.01));
    }
}
