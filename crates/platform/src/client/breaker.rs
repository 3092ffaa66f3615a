//! A circuit breaker: one per upstream service, in each caller.
//!
//! Closed, it lets every call through and counts consecutive failures
//! (a transport error, a timeout, or a 502/503/504). At `threshold` of
//! them it opens: calls fail at once, without touching the network, for
//! `cooldown`. Then it is half-open: one call (the probe) goes through;
//! its success closes the breaker, its failure opens it again. A probe
//! whose caller gave up (dropped the [`Pass`]) frees the slot for the next.
//!
//! The state is the gauge `client_breaker_state{upstream}` (0 closed,
//! 1 half-open, 2 open); each opening counts in
//! `client_breaker_opened_total{upstream}`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When a breaker opens and for how long.
#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    /// Consecutive failures that open it.
    pub threshold: u32,
    /// How long it stays open before letting a probe through.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            threshold: 5,
            cooldown: Duration::from_secs(1),
        }
    }
}

/// What a breaker does with the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Cooled down: one probe at a time decides.
    HalfOpen,
    Open,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }

    fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// A cheap-to-clone handle on one upstream's breaker.
#[derive(Clone, Debug)]
pub struct Breaker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    upstream: String,
    config: BreakerConfig,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(upstream: &str, config: BreakerConfig) -> Self {
        // The recorder must exist before the first gauge is set, or a
        // breaker made before the server (they are) would not show until
        // its first change.
        crate::server::prometheus();
        let breaker = Self {
            inner: Arc::new(Inner {
                upstream: upstream.to_owned(),
                config,
                state: Mutex::new(State::Closed { failures: 0 }),
            }),
        };
        breaker.export(BreakerState::Closed);
        breaker
    }

    /// The state the next call would meet.
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Lets a call through (`Some`), or refuses it while open or while
    /// another call is the half-open probe. Report the call's outcome on
    /// the pass; a pass dropped without one reports nothing.
    pub fn try_pass(&self) -> Option<Pass> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() < until => return None,
            State::HalfOpen { probing: true } => return None,
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                true
            }
        };
        drop(state);
        if probe {
            self.export(BreakerState::HalfOpen);
        }
        Some(Pass {
            breaker: self.clone(),
            probe,
            reported: false,
        })
    }

    fn succeeded(&self) {
        let mut state = self.lock();
        let was_closed = matches!(*state, State::Closed { .. });
        *state = State::Closed { failures: 0 };
        drop(state);
        if !was_closed {
            tracing::info!(upstream = %self.inner.upstream, "circuit breaker closed: the upstream answers again");
            self.export(BreakerState::Closed);
        }
    }

    fn failed(&self) {
        let mut state = self.lock();
        let open = match *state {
            State::Closed { failures } if failures + 1 < self.inner.config.threshold => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            State::Closed { .. } | State::HalfOpen { .. } => true,
            // Calls let through before it opened, failing late.
            State::Open { .. } => false,
        };
        if open {
            *state = State::Open {
                until: Instant::now() + self.inner.config.cooldown,
            };
        }
        drop(state);
        if open {
            tracing::warn!(upstream = %self.inner.upstream, cooldown_ms = self.inner.config.cooldown.as_millis() as u64, "circuit breaker opened: calls fail fast");
            metrics::counter!("client_breaker_opened_total", "upstream" => self.inner.upstream.clone())
                .increment(1);
            self.export(BreakerState::Open);
        }
    }

    /// Closes it now, whatever its state.
    pub fn reset(&self) {
        self.succeeded();
    }

    fn probe_abandoned(&self) {
        let mut state = self.lock();
        if let State::HalfOpen { probing: true } = *state {
            *state = State::HalfOpen { probing: false };
        }
    }

    fn export(&self, state: BreakerState) {
        metrics::gauge!("client_breaker_state", "upstream" => self.inner.upstream.clone())
            .set(state.gauge());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .expect("the breaker's lock is never held across a panic")
    }
}

/// Permission for one call; report its outcome.
#[derive(Debug)]
pub struct Pass {
    breaker: Breaker,
    probe: bool,
    reported: bool,
}

impl Pass {
    pub fn success(mut self) {
        self.reported = true;
        self.breaker.succeeded();
    }

    pub fn failure(mut self) {
        self.reported = true;
        self.breaker.failed();
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.breaker.probe_abandoned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(cooldown_ms: u64) -> Breaker {
        Breaker::new(
            "test",
            BreakerConfig {
                threshold: 3,
                cooldown: Duration::from_millis(cooldown_ms),
            },
        )
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(10_000);
        b.try_pass().expect("the breaker lets it through").failure();
        b.try_pass().expect("the breaker lets it through").failure();
        b.try_pass().expect("the breaker lets it through").success(); // resets the count
        b.try_pass().expect("the breaker lets it through").failure();
        b.try_pass().expect("the breaker lets it through").failure();
        assert_eq!(b.state(), BreakerState::Closed);
        b.try_pass().expect("the breaker lets it through").failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.try_pass().is_none(), "open: calls fail fast");
    }

    #[test]
    fn one_probe_after_the_cooldown_decides() {
        let b = breaker(20);
        for _ in 0..3 {
            b.try_pass().expect("the breaker lets it through").failure();
        }
        assert!(b.try_pass().is_none());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let probe = b.try_pass().expect("the probe goes through");
        assert!(b.try_pass().is_none(), "one probe at a time");
        probe.failure();
        assert_eq!(b.state(), BreakerState::Open, "a failed probe reopens it");
        std::thread::sleep(Duration::from_millis(30));
        b.try_pass().expect("the breaker lets it through").success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.try_pass().is_some());
    }

    #[test]
    fn an_abandoned_probe_frees_the_slot() {
        let b = breaker(1);
        for _ in 0..3 {
            b.try_pass().expect("the breaker lets it through").failure();
        }
        std::thread::sleep(Duration::from_millis(5));
        drop(b.try_pass().expect("the breaker lets it through"));
        assert!(b.try_pass().is_some(), "the next call may probe");
    }
}
