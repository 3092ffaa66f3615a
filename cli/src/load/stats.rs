//! What a load run measured: a latency histogram (HdrHistogram) per
//! operation, counts by HTTP status and by business outcome, errors, and
//! the summaries printed as a table and written as JSON.
//!
//! Pure: the caller hands in latencies already measured (from each
//! request's *scheduled* send time, so a stall shows up in every request
//! that should have been sent during it); nothing here reads a clock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::mix::Op;

/// Latencies are recorded in microseconds, up to ten minutes (anything
/// longer is recorded as ten minutes), with three significant digits.
const MAX_LATENCY_US: u64 = 600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// The status key of a request that got no HTTP answer at all.
pub(crate) const TRANSPORT: &str = "transport";

/// How one request ended, as the target judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The HTTP status, `None` when the request failed before an answer.
    pub(crate) status: Option<u16>,
    /// Whether the answer is one the operation expects.
    pub(crate) ok: bool,
    /// A business outcome worth counting (an order's status), if any.
    pub(crate) label: Option<&'static str>,
    /// What went wrong, for an error (the first few are reported).
    pub(crate) detail: Option<String>,
}

impl Outcome {
    pub(crate) fn ok(status: u16) -> Outcome {
        Outcome {
            status: Some(status),
            ok: true,
            label: None,
            detail: None,
        }
    }

    pub(crate) fn failed(status: Option<u16>, detail: String) -> Outcome {
        Outcome {
            status,
            ok: false,
            label: None,
            detail: Some(detail),
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Everything measured for one operation.
#[derive(Debug, Clone)]
struct OpRecord {
    latency: Histogram<u64>,
    errors: u64,
    dropped: u64,
    statuses: BTreeMap<String, u64>,
    outcomes: BTreeMap<&'static str, u64>,
}

impl OpRecord {
    fn new() -> OpRecord {
        OpRecord {
            latency: histogram(),
            errors: 0,
            dropped: 0,
            statuses: BTreeMap::new(),
            outcomes: BTreeMap::new(),
        }
    }
}

/// How many error details a report keeps.
const KEPT_ERRORS: usize = 5;

/// Collects the measurements of one run (one rate step).
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    ops: Vec<OpRecord>,
    /// Every operation together.
    all: Histogram<u64>,
    /// Every operation since the last [`Recorder::take_window`]: the live
    /// p99 of the progress line.
    window: Histogram<u64>,
    window_errors: u64,
    first_errors: Vec<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            ops: Op::ALL.iter().map(|_| OpRecord::new()).collect(),
            all: histogram(),
            window: histogram(),
            window_errors: 0,
            first_errors: Vec::new(),
        }
    }
}

/// The live view since the previous one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Window {
    pub(crate) completed: u64,
    pub(crate) errors: u64,
    pub(crate) p99: Duration,
}

impl Recorder {
    /// A completed request and its latency from its scheduled send time.
    pub(crate) fn record(&mut self, op: Op, latency: Duration, outcome: Outcome) {
        let us = micros(latency);
        let r = &mut self.ops[op.index()];
        r.latency.saturating_record(us);
        self.all.saturating_record(us);
        self.window.saturating_record(us);
        let status = outcome
            .status
            .map_or_else(|| TRANSPORT.to_owned(), |s| s.to_string());
        *r.statuses.entry(status).or_default() += 1;
        if let Some(label) = outcome.label {
            *r.outcomes.entry(label).or_default() += 1;
        }
        if !outcome.ok {
            r.errors += 1;
            self.window_errors += 1;
            if self.first_errors.len() < KEPT_ERRORS {
                let detail = outcome.detail.unwrap_or_default();
                self.first_errors.push(format!("{op}: {detail}"));
            }
        }
    }

    /// A request that was due but not sent, because too many were still
    /// in flight: an error, never a silent slowdown of the schedule.
    pub(crate) fn dropped(&mut self, op: Op) {
        let r = &mut self.ops[op.index()];
        r.dropped += 1;
        r.errors += 1;
        self.window_errors += 1;
    }

    /// Requests sent but still unanswered when the run gave up waiting.
    pub(crate) fn unfinished(&mut self, op: Op, count: u64) {
        let r = &mut self.ops[op.index()];
        *r.statuses.entry("unfinished".to_owned()).or_default() += count;
        r.errors += count;
    }

    /// The completions, errors and p99 since the previous call.
    pub(crate) fn take_window(&mut self) -> Window {
        let w = Window {
            completed: self.window.len(),
            errors: self.window_errors,
            p99: Duration::from_micros(self.window.value_at_quantile(0.99)),
        };
        self.window.reset();
        self.window_errors = 0;
        w
    }

    /// Errors so far, every operation together.
    pub(crate) fn errors(&self) -> u64 {
        self.ops.iter().map(|r| r.errors).sum()
    }

    /// The p99 so far, every operation together.
    pub(crate) fn p99(&self) -> Duration {
        Duration::from_micros(self.all.value_at_quantile(0.99))
    }

    /// Summarises the run: `duration` is how long arrivals were scheduled
    /// over, which turns counts into rates.
    pub(crate) fn summary(&self, ops: &[Op], duration: Duration) -> BTreeMap<String, OpSummary> {
        let mut out: BTreeMap<String, OpSummary> = ops
            .iter()
            .map(|op| {
                let r = &self.ops[op.index()];
                let summary = OpSummary::new(&r.latency, r.errors, r.dropped, duration)
                    .with_counts(&r.statuses, &r.outcomes);
                (op.as_str().to_owned(), summary)
            })
            .collect();
        let errors = ops.iter().map(|op| self.ops[op.index()].errors).sum();
        let dropped = ops.iter().map(|op| self.ops[op.index()].dropped).sum();
        out.insert(
            "all".to_owned(),
            OpSummary::new(&self.all, errors, dropped, duration),
        );
        out
    }

    pub(crate) fn first_errors(&self) -> &[String] {
        &self.first_errors
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p99_9: f64,
    pub(crate) max: f64,
    pub(crate) mean: f64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p99_9: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: ms(h.mean().round() as u64),
        }
    }
}

/// One operation's results in a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct OpSummary {
    /// Requests answered (or failed in transport); dropped ones excluded.
    pub(crate) count: u64,
    /// Answered requests per second of the run.
    pub(crate) rate: f64,
    pub(crate) latency_ms: Latency,
    /// Failed requests: transport failures, unexpected statuses, dropped
    /// and unfinished ones.
    pub(crate) errors: u64,
    /// Due but never sent, because the in-flight cap was reached.
    pub(crate) dropped: u64,
    /// Answers by HTTP status (`transport`: no answer).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) statuses: BTreeMap<String, u64>,
    /// Business outcomes (an order's status when placed).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) outcomes: BTreeMap<String, u64>,
}

impl OpSummary {
    fn new(h: &Histogram<u64>, errors: u64, dropped: u64, duration: Duration) -> OpSummary {
        let secs = duration.as_secs_f64().max(f64::EPSILON);
        OpSummary {
            count: h.len(),
            rate: (h.len() as f64 / secs * 10.0).round() / 10.0,
            latency_ms: Latency::of(h),
            errors,
            dropped,
            statuses: BTreeMap::new(),
            outcomes: BTreeMap::new(),
        }
    }

    fn with_counts(
        mut self,
        statuses: &BTreeMap<String, u64>,
        outcomes: &BTreeMap<&'static str, u64>,
    ) -> OpSummary {
        self.statuses = statuses.clone();
        self.outcomes = outcomes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        self
    }
}

/// The results of one run at one rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct StepReport {
    /// The rate asked for, operations per second.
    pub(crate) rate: f64,
    pub(crate) duration_s: f64,
    /// Arrivals scheduled: rate × duration.
    pub(crate) scheduled: u64,
    /// Requests actually sent (scheduled minus dropped).
    pub(crate) sent: u64,
    /// The rate requests were sent at: sent over the time the schedule
    /// took (at least the asked duration), so a scheduler falling behind
    /// shows as a lower rate.
    pub(crate) sent_rate: f64,
    /// The latest any request left after its scheduled time, in ms: how
    /// far the load generator itself fell behind.
    pub(crate) max_send_lag_ms: f64,
    pub(crate) errors: u64,
    /// Whether the p99 met the target with zero errors (`--find-max`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) passed: Option<bool>,
    pub(crate) operations: BTreeMap<String, OpSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) first_errors: Vec<String>,
}

impl StepReport {
    /// The latency summary of every operation together.
    pub(crate) fn all(&self) -> &OpSummary {
        self.operations
            .get("all")
            .expect("a step report always has `all`")
    }

    /// Whether this step holds: zero errors, p99 within `target`.
    pub(crate) fn holds(&self, p99_target: Duration) -> bool {
        self.errors == 0
            && self.sent == self.scheduled
            && self.all().latency_ms.p99 <= p99_target.as_secs_f64() * 1000.0
    }

    /// The table people read: one row per operation, then `all`.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7}  statuses",
            "op", "count", "rate/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors"
        );
        // In the order of the mix's operations, then every one together.
        let rows = Op::ALL
            .iter()
            .map(|op| op.as_str())
            .chain(["all"])
            .filter_map(|name| self.operations.get_key_value(name));
        for (name, s) in rows {
            let l = &s.latency_ms;
            let mut counts: Vec<String> =
                s.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            if s.dropped > 0 {
                counts.push(format!("dropped:{}", s.dropped));
            }
            if !s.outcomes.is_empty() {
                let outcomes: Vec<String> =
                    s.outcomes.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                counts.push(format!("({})", outcomes.join(" ")));
            }
            let _ = writeln!(
                out,
                "{name:<8} {:>8} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>7}  {}",
                s.count,
                s.rate,
                l.p50,
                l.p90,
                l.p99,
                l.p99_9,
                l.max,
                s.errors,
                counts.join(" ")
            );
        }
        let _ = write!(
            out,
            "asked {} ops/s for {:.1} s: scheduled {}, sent {} at {:.1}/s (max send lag {:.1} ms), errors {}",
            self.rate,
            self.duration_s,
            self.scheduled,
            self.sent,
            self.sent_rate,
            self.max_send_lag_ms,
            self.errors
        );
        for e in &self.first_errors {
            let _ = write!(out, "\n  error: {e}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Outcome {
        Outcome::ok(200)
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut r = Recorder::default();
        // 1 ms, 2 ms, …, 1000 ms: each percentile is its own rank.
        for i in 1..=1000u64 {
            r.record(Op::Browse, Duration::from_millis(i), ok());
        }
        let s = r.summary(&[Op::Browse], Duration::from_secs(10));
        let l = s["browse"].latency_ms;
        // Three significant digits: within 0.1 %.
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(near(l.p50, 500.0), "{l:?}");
        assert!(near(l.p90, 900.0), "{l:?}");
        assert!(near(l.p99, 990.0), "{l:?}");
        assert!(near(l.p99_9, 999.0), "{l:?}");
        assert!(near(l.max, 1000.0), "{l:?}");
        assert!(near(l.mean, 500.5), "{l:?}");
        assert_eq!(s["browse"].count, 1000);
        assert_eq!(s["browse"].rate, 100.0);
        assert_eq!(s["all"].count, 1000);
    }

    #[test]
    fn errors_statuses_outcomes_and_drops_are_counted_per_operation() {
        let mut r = Recorder::default();
        r.record(
            Op::Order,
            Duration::from_millis(5),
            Outcome {
                label: Some("CONFIRMED"),
                ..Outcome::ok(201)
            },
        );
        r.record(
            Op::Order,
            Duration::from_millis(7),
            Outcome::failed(Some(503), "503 upstream down".into()),
        );
        r.record(
            Op::Track,
            Duration::from_millis(9),
            Outcome::failed(None, "connection refused".into()),
        );
        r.dropped(Op::Track);
        r.record(Op::Browse, Duration::from_millis(1), ok());

        let s = r.summary(&[Op::Browse, Op::Track, Op::Order], Duration::from_secs(1));
        assert_eq!(s["order"].count, 2);
        assert_eq!(s["order"].errors, 1);
        assert_eq!(s["order"].statuses["201"], 1);
        assert_eq!(s["order"].statuses["503"], 1);
        assert_eq!(s["order"].outcomes["CONFIRMED"], 1);
        assert_eq!(s["track"].count, 1, "a dropped request was never sent");
        assert_eq!((s["track"].errors, s["track"].dropped), (2, 1));
        assert_eq!(s["track"].statuses[TRANSPORT], 1);
        assert_eq!(s["browse"].errors, 0);
        assert_eq!(
            (s["all"].errors, s["all"].dropped, s["all"].count),
            (3, 1, 4)
        );
        assert_eq!(r.errors(), 3);
        assert_eq!(
            r.first_errors(),
            ["order: 503 upstream down", "track: connection refused"]
        );
    }

    #[test]
    fn the_window_is_what_happened_since_the_last_look() {
        let mut r = Recorder::default();
        for _ in 0..99 {
            r.record(Op::Browse, Duration::from_millis(1), ok());
        }
        r.record(Op::Browse, Duration::from_millis(200), ok());
        r.record(
            Op::Browse,
            Duration::from_millis(300),
            Outcome::failed(Some(500), "boom".into()),
        );
        let w = r.take_window();
        assert_eq!((w.completed, w.errors), (101, 1));
        assert!(w.p99 >= Duration::from_millis(199), "{w:?}");
        r.record(Op::Browse, Duration::from_millis(2), ok());
        let w = r.take_window();
        assert_eq!((w.completed, w.errors), (1, 0));
        assert!(w.p99 < Duration::from_millis(3));
        assert!(
            r.p99() >= Duration::from_millis(199),
            "the run keeps it all"
        );
    }

    fn step(p99_ms: u64, errors: u64) -> StepReport {
        let mut r = Recorder::default();
        for _ in 0..100 {
            r.record(Op::Order, Duration::from_millis(p99_ms), Outcome::ok(201));
        }
        StepReport {
            rate: 100.0,
            duration_s: 1.0,
            scheduled: 100,
            sent: 100,
            sent_rate: 100.0,
            max_send_lag_ms: 0.5,
            errors,
            passed: None,
            operations: r.summary(&[Op::Order], Duration::from_secs(1)),
            first_errors: Vec::new(),
        }
    }

    #[test]
    fn a_step_holds_with_p99_in_target_and_no_errors() {
        let target = Duration::from_millis(25);
        assert!(step(20, 0).holds(target));
        assert!(!step(30, 0).holds(target));
        assert!(!step(20, 1).holds(target));
        let table = step(20, 0).table();
        assert!(table.contains("order"), "{table}");
        assert!(table.lines().any(|l| l.starts_with("all ")), "{table}");
        assert!(table.contains("201:100"), "{table}");
    }

    #[test]
    fn the_json_report_names_every_figure() {
        let json = serde_json::to_value(step(20, 0)).expect("serialises");
        let order = &json["operations"]["order"];
        assert_eq!(order["count"], 100);
        assert_eq!(order["statuses"]["201"], 100);
        assert!(order["latency_ms"]["p99_9"].as_f64().is_some());
        assert_eq!(json["sent_rate"], 100.0);
        assert!(json.get("passed").is_none());
    }
}
