//! The load generator: a fixed set of workers, each with its own keep-alive connection, in a
//! closed loop (`--concurrency`: send, wait, send) or an open loop (`--rate`: request k is due
//! at start + k/rate and its latency counts from then, so a slow server cannot hide its queue —
//! no coordinated omission). Warm-up first, then a bounded measurement: it ends at `--duration`
//! or after `--requests`, and a hard deadline ends it regardless; an interrupt ends it at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::endpoint::{Endpoint, Failure, Prepared};

/// Most workers (and so requests in flight, and connections) a run may use.
pub const MAX_CONCURRENCY: usize = 1024;
/// Longest run without `--duration` (with only `--requests`).
pub const MAX_RUN: Duration = Duration::from_secs(600);

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Workers: requests in flight at most, and connections.
    pub concurrency: usize,
    /// Open loop: requests per second; `None` is a closed loop.
    pub rate: Option<f64>,
    /// Measurement time (after warm-up); `None` with `requests` set.
    pub duration: Option<Duration>,
    /// Measured requests to send at most.
    pub requests: Option<u64>,
    /// Warm-up before measuring (nothing recorded).
    pub warmup: Duration,
    /// Deadline of each request.
    pub timeout: Duration,
}

/// Live counters, for a progress bar.
#[derive(Debug, Default)]
pub struct Counters {
    /// Measured requests answered successfully.
    pub ok: AtomicU64,
    /// Measured requests that failed.
    pub failed: AtomicU64,
    /// Whether the measurement has started (warm-up over).
    pub measuring: AtomicBool,
}

/// Latency histograms in microseconds.
#[derive(Debug, Clone)]
pub struct Histograms {
    /// Whole-request latency of successful requests.
    pub latency: Histogram<u64>,
    /// Time to first token (streaming).
    pub ttft: Histogram<u64>,
    /// Gaps between tokens (streaming).
    pub itl: Histogram<u64>,
}

impl Histograms {
    /// Empty histograms.
    pub fn empty() -> Histograms {
        // 1 µs to 1 h at 3 significant digits: a few hundred KiB per worker.
        let h = || {
            Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
        };
        Histograms {
            latency: h(),
            ttft: h(),
            itl: h(),
        }
    }

    fn add(&mut self, other: &Histograms) {
        let _ = self.latency.add(&other.latency);
        let _ = self.ttft.add(&other.ttft);
        let _ = self.itl.add(&other.itl);
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// One worker's tally.
#[derive(Debug)]
struct Tally {
    hist: Histograms,
    errors: BTreeMap<String, u64>,
    first_error: Option<Failure>,
    tokens: u64,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Histograms (µs).
    pub hist: Histograms,
    /// Successful measured requests.
    pub ok: u64,
    /// Failed measured requests by kind (`HTTP 503`, `timeout`, …).
    pub errors: BTreeMap<String, u64>,
    /// One failure, for the message.
    pub first_error: Option<Failure>,
    /// Tokens received (streaming).
    pub tokens: u64,
    /// Measurement time.
    pub elapsed: Duration,
    /// Whether the hard deadline or an interrupt cut the run short.
    pub cut_short: bool,
}

impl Outcome {
    /// Measured requests that ended (successfully or not).
    pub fn total(&self) -> u64 {
        self.ok + self.errors.values().sum::<u64>()
    }

    /// Failed share of the measured requests (0 when none ran).
    pub fn error_rate(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            0.0
        } else {
            (total - self.ok) as f64 / total as f64
        }
    }

    /// Requests per second over the measurement.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.total() as f64 / secs
        } else {
            0.0
        }
    }
}

struct Shared {
    plan: Plan,
    start: Instant,
    measure_from: Instant,
    end: Option<Instant>,
    next: AtomicU64,
    measured: AtomicU64,
    stop: AtomicBool,
    counters: Arc<Counters>,
}

impl Shared {
    /// The next request's due time and whether it is measured; `None` when the run is over.
    fn next(&self) -> Option<(Instant, bool)> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let due = match self.plan.rate {
            Some(rate) => {
                let k = self.next.fetch_add(1, Ordering::Relaxed);
                self.start + Duration::from_secs_f64(k as f64 / rate)
            }
            None => Instant::now(),
        };
        if self.end.is_some_and(|end| due >= end) {
            return None;
        }
        let measured = due >= self.measure_from;
        if measured {
            let n = self.measured.fetch_add(1, Ordering::Relaxed);
            if self.plan.requests.is_some_and(|max| n >= max) {
                return None;
            }
        }
        Some((due, measured))
    }
}

/// Runs the plan against `endpoint` with request `req`. `stop` ends it early (Ctrl-C).
pub async fn run(
    endpoint: &Endpoint,
    req: &Prepared,
    plan: Plan,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) -> Outcome {
    let concurrency = plan.concurrency.clamp(1, MAX_CONCURRENCY);
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = match (plan.duration, plan.requests) {
        (Some(d), _) => Some(measure_from + d),
        (None, Some(_)) => None,
        (None, None) => Some(measure_from + Duration::from_secs(10)),
    };
    // Requests due before the end may take their full deadline; nothing runs past this.
    let hard_end = end.unwrap_or(measure_from + MAX_RUN) + plan.timeout + Duration::from_secs(1);
    let shared = Arc::new(Shared {
        plan,
        start,
        measure_from,
        end,
        next: AtomicU64::new(0),
        measured: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        counters: counters.clone(),
    });
    let tallies: Vec<Arc<Mutex<Tally>>> = (0..concurrency)
        .map(|_| {
            Arc::new(Mutex::new(Tally {
                hist: Histograms::empty(),
                errors: BTreeMap::new(),
                first_error: None,
                tokens: 0,
            }))
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for tally in &tallies {
        let shared = shared.clone();
        let tally = tally.clone();
        let mut conn = endpoint.connection();
        let req = req.clone();
        tasks.spawn(async move {
            while let Some((due, measured)) = shared.next() {
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(wait).await;
                }
                let result = conn.send(&req, due, shared.plan.timeout, false).await;
                if !measured {
                    continue;
                }
                shared.counters.measuring.store(true, Ordering::Relaxed);
                let mut t = tally
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match result {
                    Ok(a) => {
                        let _ = t.hist.latency.record(micros(a.latency));
                        if let Some(ttft) = a.ttft {
                            let _ = t.hist.ttft.record(micros(ttft));
                        }
                        for g in &a.gaps {
                            let _ = t.hist.itl.record(micros(*g));
                        }
                        t.tokens += a.tokens;
                        shared.counters.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(f) => {
                        *t.errors.entry(f.kind.clone()).or_default() += 1;
                        if t.first_error.is_none() {
                            t.first_error = Some(f);
                        }
                        shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    let mut cut_short = false;
    let hard = tokio::time::sleep_until(hard_end.into());
    tokio::pin!(hard);
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            joined = tasks.join_next() => {
                if joined.is_none() {
                    break;
                }
            }
            () = &mut hard => {
                cut_short = true;
                tasks.abort_all();
                break;
            }
            _ = poll.tick() => {
                if stop.load(Ordering::Relaxed) {
                    // Interrupted: stop at once. What was measured is kept (the tallies live
                    // outside the workers); requests in flight are dropped, not counted.
                    shared.stop.store(true, Ordering::Relaxed);
                    cut_short = true;
                    tasks.abort_all();
                    break;
                }
            }
        }
    }
    let finished = Instant::now();
    let elapsed = match end {
        Some(end) => finished.min(end).saturating_duration_since(measure_from),
        None => finished.saturating_duration_since(measure_from),
    }
    .max(Duration::from_millis(1));
    let mut outcome = Outcome {
        hist: Histograms::empty(),
        ok: 0,
        errors: BTreeMap::new(),
        first_error: None,
        tokens: 0,
        elapsed,
        cut_short,
    };
    for t in &tallies {
        let t = t.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        outcome.hist.add(&t.hist);
        outcome.ok += t.hist.latency.len();
        for (k, n) in &t.errors {
            *outcome.errors.entry(k.clone()).or_default() += n;
        }
        if outcome.first_error.is_none() {
            outcome.first_error = t.first_error.clone();
        }
        outcome.tokens += t.tokens;
    }
    outcome
}
