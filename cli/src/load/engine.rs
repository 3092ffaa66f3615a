//! The open-loop engine: sends the i-th request at `start + i / rate`
//! whatever happened to the earlier ones, and measures each request's
//! latency from that scheduled time.
//!
//! Invariant (coordinated omission accounted for): a slow answer never
//! delays the schedule. A stall of the target therefore shows up in the
//! latency of every request that was due during it, as a user arriving
//! then would have felt it, not only in the one request that hit it. When
//! more than `max_in_flight` requests are outstanding, a due request is
//! counted as dropped (an error) instead of waiting for a free slot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::mix::{Mix, Op};
use super::stats::{Outcome, Recorder, StepReport, Window};

/// Something to load: answers one operation. `n` counts the operation's
/// own arrivals (0, 1, 2, … per operation), so a target can spread them
/// over customers and restaurants deterministically.
pub(crate) trait Target: Send + Sync + 'static {
    fn call(&self, op: Op, n: u64) -> impl Future<Output = Outcome> + Send;
}

/// When the i-th arrival is due, relative to the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Schedule {
    rate: f64,
}

impl Schedule {
    pub(crate) fn new(rate: f64) -> Schedule {
        Schedule { rate }
    }

    pub(crate) fn offset(&self, i: u64) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// How many arrivals fall within `duration`.
    pub(crate) fn arrivals(&self, duration: Duration) -> u64 {
        (duration.as_secs_f64() * self.rate).round() as u64
    }
}

/// One run at one rate.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) rate: f64,
    pub(crate) duration: Duration,
    pub(crate) mix: Mix,
    pub(crate) max_in_flight: usize,
    /// How long to wait for the last answers once every request is sent.
    pub(crate) drain: Duration,
}

/// What the progress callback sees, about once a second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Live {
    pub(crate) elapsed: Duration,
    pub(crate) duration: Duration,
    /// Completions per second since the previous call.
    pub(crate) rate: f64,
    /// The p99 of the completions since the previous call.
    pub(crate) window: Window,
    pub(crate) p99_so_far: Duration,
    pub(crate) errors: u64,
    pub(crate) in_flight: usize,
}

fn lock(recorder: &Mutex<Recorder>) -> std::sync::MutexGuard<'_, Recorder> {
    // A panic while recording leaves counts that are still counts.
    recorder.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `plan` against `target`; `progress` is called about once a second.
pub(crate) async fn run<T: Target>(
    target: Arc<T>,
    plan: &Plan,
    mut progress: impl FnMut(Live) + Send,
) -> StepReport {
    let schedule = Schedule::new(plan.rate);
    let total = schedule.arrivals(plan.duration);
    let pattern = plan.mix.pattern();
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let mut per_op = [0u64; Op::ALL.len()];
    let mut in_flight: JoinSet<()> = JoinSet::new();
    // Which operation each in-flight task runs, to name the unfinished.
    let mut tasks: HashMap<tokio::task::Id, Op> = HashMap::new();
    let mut sent = 0u64;
    let mut max_lag = Duration::ZERO;
    let tick = Duration::from_secs(1);

    let start = Instant::now();
    let mut last_progress = start;
    for i in 0..total {
        let due = start + schedule.offset(i);
        let now = Instant::now();
        if due > now {
            // The timer wakes late by up to a millisecond or so; every
            // request due by then is sent at once, its latency still
            // counted from its own due time.
            tokio::time::sleep_until(due).await;
        }
        while let Some(done) = in_flight.try_join_next_with_id() {
            reap(done, &mut tasks, &recorder);
        }
        let now = Instant::now();
        if now >= last_progress + tick {
            let since = now - last_progress;
            last_progress = now;
            progress(live(&recorder, start, plan, in_flight.len(), since));
        }
        let op = pattern[usize::try_from(i % pattern.len() as u64).unwrap_or(0)];
        let n = per_op[op.index()];
        per_op[op.index()] += 1;
        if in_flight.len() >= plan.max_in_flight {
            lock(&recorder).dropped(op);
            continue;
        }
        max_lag = max_lag.max(now.saturating_duration_since(due));
        sent += 1;
        let target = target.clone();
        let recorder = recorder.clone();
        let handle = in_flight.spawn(async move {
            let outcome = target.call(op, n).await;
            let latency = due.elapsed();
            lock(&recorder).record(op, latency, outcome);
        });
        tasks.insert(handle.id(), op);
    }
    let sending_took = start.elapsed().max(plan.duration);

    let drained = tokio::time::timeout(plan.drain, async {
        while let Some(done) = in_flight.join_next_with_id().await {
            reap(done, &mut tasks, &recorder);
        }
    })
    .await;
    if drained.is_err() {
        in_flight.abort_all();
        let mut r = lock(&recorder);
        for op in tasks.values() {
            r.unfinished(*op, 1);
        }
    }

    let r = lock(&recorder);
    let ops: Vec<Op> = plan.mix.ops().collect();
    StepReport {
        rate: plan.rate,
        duration_s: plan.duration.as_secs_f64(),
        scheduled: total,
        sent,
        sent_rate: (sent as f64 / sending_took.as_secs_f64() * 10.0).round() / 10.0,
        max_send_lag_ms: max_lag.as_secs_f64() * 1000.0,
        errors: r.errors(),
        passed: None,
        operations: r.summary(&ops, plan.duration),
        first_errors: r.first_errors().to_vec(),
    }
}

/// Forgets a finished task; one that panicked is counted as unfinished
/// (it never recorded its outcome).
fn reap(
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
    tasks: &mut HashMap<tokio::task::Id, Op>,
    recorder: &Mutex<Recorder>,
) {
    match done {
        Ok((id, ())) => {
            tasks.remove(&id);
        }
        Err(e) => {
            if let Some(op) = tasks.remove(&e.id()) {
                lock(recorder).unfinished(op, 1);
            }
        }
    }
}

fn live(
    recorder: &Mutex<Recorder>,
    start: Instant,
    plan: &Plan,
    in_flight: usize,
    since: Duration,
) -> Live {
    let mut r = lock(recorder);
    let window = r.take_window();
    Live {
        elapsed: start.elapsed(),
        duration: plan.duration,
        rate: window.completed as f64 / since.as_secs_f64(),
        window,
        p99_so_far: r.p99(),
        errors: r.errors(),
        in_flight,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn plan(rate: f64, duration: Duration, mix: &str) -> Plan {
        Plan {
            rate,
            duration,
            mix: Mix::parse(mix).expect("valid mix"),
            max_in_flight: 10_000,
            drain: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_schedule_spaces_arrivals_evenly() {
        let s = Schedule::new(200.0);
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), Duration::from_millis(5));
        assert_eq!(s.offset(200), Duration::from_secs(1));
        assert_eq!(s.arrivals(Duration::from_secs(15)), 3000);
        assert_eq!(Schedule::new(0.5).arrivals(Duration::from_secs(4)), 2);
    }

    /// Answers after a latency chosen by the arrival's number: 90 % take
    /// 5 ms, 9 % 50 ms, 1 % 200 ms.
    struct Known;

    impl Target for Known {
        async fn call(&self, _: Op, n: u64) -> Outcome {
            let ms = match n % 100 {
                0..90 => 5,
                90..99 => 50,
                _ => 200,
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Outcome::ok(200)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn percentiles_match_a_known_latency_distribution() {
        let report = run(
            Arc::new(Known),
            &plan(250.0, Duration::from_secs(2), "browse=1"),
            |_| {},
        )
        .await;
        let s = &report.operations["browse"];
        assert_eq!((s.count, s.errors), (500, 0), "{}", report.table());
        let l = s.latency_ms;
        // Sleeps end on the timer's millisecond ticks, and this box may be
        // busy: generous upper margins, exact lower bounds.
        let within = |got: f64, want: f64| got >= want && got <= want + 25.0;
        assert!(within(l.p50, 5.0), "{}", report.table());
        assert!(
            within(l.p90, 5.0) || within(l.p90, 50.0),
            "{}",
            report.table()
        );
        assert!(within(l.p99, 50.0), "{}", report.table());
        assert!(within(l.p99_9, 200.0), "{}", report.table());
        assert!(within(l.max, 200.0), "{}", report.table());
        assert_eq!(report.operations["all"].count, 500);
    }

    /// Answers in 1 ms, except that nothing is answered between
    /// `stall_from` and `stall_until`: requests arriving then wait for its
    /// end, as behind a stop-the-world pause.
    struct Stalling {
        stall_from: Instant,
        stall_until: Instant,
    }

    impl Target for Stalling {
        async fn call(&self, _: Op, _: u64) -> Outcome {
            let now = Instant::now();
            if now >= self.stall_from && now < self.stall_until {
                tokio::time::sleep_until(self.stall_until).await;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            Outcome::ok(200)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stall_shows_in_every_request_that_was_due_during_it() {
        let rate = 200.0;
        let start = Instant::now();
        let stall = Duration::from_millis(500);
        let target = Stalling {
            stall_from: start + Duration::from_millis(500),
            stall_until: start + Duration::from_millis(500) + stall,
        };
        let report = run(
            Arc::new(target),
            &plan(rate, Duration::from_millis(1500), "track=1"),
            |_| {},
        )
        .await;
        let s = &report.operations["track"];
        assert_eq!((s.count, s.errors), (300, 0), "{}", report.table());
        // A closed-loop client would have sent one request into the stall
        // and seen one slow answer: p99 would be ~1 ms. Open loop, the
        // ~100 requests due during the stall waited from their due time
        // to its end (500 ms down to 0): a third of all requests, so p90
        // is well above the base latency and the max is the whole stall.
        assert!(s.latency_ms.max >= 480.0, "{}", report.table());
        assert!(s.latency_ms.p99 >= 400.0, "{}", report.table());
        assert!(s.latency_ms.p90 >= 150.0, "{}", report.table());
        assert!(s.latency_ms.p50 < 100.0, "{}", report.table());
        // The stall did not slow the schedule: everything was sent on time.
        assert_eq!(report.sent, 300);
        assert!(report.max_send_lag_ms < 250.0, "{}", report.table());
    }

    /// Answers at once, but the 50th call blocks its thread for 300 ms:
    /// on a single-threaded runtime that stalls the load generator itself,
    /// as a GC pause or a descheduled process would.
    struct BlockingOnce;

    impl Target for BlockingOnce {
        async fn call(&self, _: Op, n: u64) -> Outcome {
            if n == 50 {
                std::thread::sleep(Duration::from_millis(300));
            }
            Outcome::ok(200)
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_stalled_generator_counts_the_delay_against_the_requests_it_held_back() {
        let report = run(
            Arc::new(BlockingOnce),
            &plan(200.0, Duration::from_secs(1), "browse=1"),
            |_| {},
        )
        .await;
        let s = &report.operations["browse"];
        assert_eq!((s.count, s.errors), (200, 0), "{}", report.table());
        // ~60 requests were due during the pause and sent after it: timed
        // from their due time they took up to 300 ms, although the target
        // answered each at once. Timed from the late send, only the one
        // blocking request would look slow (p90 ~0).
        assert!(s.latency_ms.max >= 280.0, "{}", report.table());
        assert!(s.latency_ms.p90 >= 100.0, "{}", report.table());
        assert!(report.max_send_lag_ms >= 250.0, "{}", report.table());
    }

    /// Never answers within the test.
    struct Hanging;

    impl Target for Hanging {
        async fn call(&self, _: Op, _: u64) -> Outcome {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Outcome::ok(200)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_in_flight_cap_requests_are_dropped_not_delayed() {
        let mut p = plan(100.0, Duration::from_millis(500), "order=1");
        p.max_in_flight = 10;
        p.drain = Duration::from_millis(100);
        let started = Instant::now();
        let report = run(Arc::new(Hanging), &p, |_| {}).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the schedule kept going"
        );
        let s = &report.operations["order"];
        assert_eq!(report.scheduled, 50);
        assert_eq!((report.sent, s.dropped), (10, 40), "{}", report.table());
        assert_eq!(s.statuses["unfinished"], 10);
        assert_eq!(report.errors, 50, "{}", report.table());
        assert!(!report.holds(Duration::from_secs(1)));
    }

    /// A local HTTP server counting when each request arrived.
    async fn counting_server() -> (String, Arc<Mutex<Vec<Instant>>>) {
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let seen = arrivals.clone();
        let app = axum::Router::new().route(
            "/ping",
            axum::routing::get(move || {
                let seen = seen.clone();
                async move {
                    lock_vec(&seen).push(Instant::now());
                    "pong"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let url = format!("http://{}/ping", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, arrivals)
    }

    fn lock_vec(v: &Mutex<Vec<Instant>>) -> std::sync::MutexGuard<'_, Vec<Instant>> {
        v.lock().unwrap_or_else(PoisonError::into_inner)
    }

    struct Http {
        client: reqwest::Client,
        url: String,
        calls: AtomicU64,
    }

    impl Target for Http {
        async fn call(&self, _: Op, _: u64) -> Outcome {
            self.calls.fetch_add(1, Ordering::Relaxed);
            match self.client.get(&self.url).send().await {
                Ok(r) if r.status() == reqwest::StatusCode::OK => {
                    let _ = r.bytes().await;
                    Outcome::ok(200)
                }
                Ok(r) => Outcome::failed(Some(r.status().as_u16()), "unexpected".into()),
                Err(e) => Outcome::failed(None, e.to_string()),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn it_keeps_the_asked_rate_against_a_real_server() {
        let (url, arrivals) = counting_server().await;
        let target = Arc::new(Http {
            client: reqwest::Client::new(),
            url,
            calls: AtomicU64::new(0),
        });
        let (rate, secs) = (400.0, 2.0);
        let mut ticks = 0;
        let report = run(
            target.clone(),
            &plan(rate, Duration::from_secs_f64(secs), "browse=1"),
            |_| ticks += 1,
        )
        .await;
        assert_eq!(report.scheduled, 800);
        assert_eq!(report.sent, 800, "{}", report.table());
        assert_eq!(target.calls.load(Ordering::Relaxed), 800);
        assert_eq!(report.errors, 0, "{}", report.table());
        assert_eq!(report.operations["browse"].count, 800);
        assert!(
            (report.sent_rate - rate).abs() <= rate * 0.1,
            "sent at {}/s, asked {rate}/s",
            report.sent_rate
        );
        assert!(ticks >= 1, "progress was reported");

        // Spread over the whole run, not sent in a burst: each half second
        // received about a quarter of the requests.
        let arrivals = lock_vec(&arrivals).clone();
        assert_eq!(arrivals.len(), 800);
        let first = *arrivals.iter().min().expect("arrivals");
        let mut quarters = [0u32; 4];
        for a in &arrivals {
            let q = (a.duration_since(first).as_secs_f64() / (secs / 4.0)) as usize;
            quarters[q.min(3)] += 1;
        }
        assert!(
            quarters.iter().all(|q| (150..=250).contains(q)),
            "{quarters:?}"
        );
    }
}
