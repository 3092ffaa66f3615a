//! Admission: which requests the gateway takes on at all.
//!
//! Two checks before any work, each answering at once instead of queueing:
//! - **Load shedding**: at most `GATEWAY_MAX_IN_FLIGHT` requests are being
//!   served at once (long-lived order streams aside, they wait on events,
//!   not on work); one more is a 503 `overloaded` with `Retry-After`. A
//!   saturated gateway keeps answering quickly, and what it takes on keeps
//!   its latency, instead of a queue growing without bound.
//! - **Rate limit per client**: each client address gets
//!   `GATEWAY_RATE_LIMIT` requests per second with bursts of
//!   `GATEWAY_RATE_BURST` (GCRA, a token bucket kept as one instant per
//!   client); beyond that a 429 with `Retry-After`. `0` turns it off (the
//!   benchmarks, where one address is a thousand customers).
//!
//! The probes (`/livez`, `/readyz`, `/metrics`) are outside this layer.
//! Metric: `gateway_rejected_total{reason}` (`overloaded`, `rate_limited`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::ApiError;
use tokio::sync::Semaphore;

/// The gateway's admission settings.
#[derive(Clone, Copy, Debug)]
pub struct AdmissionConfig {
    pub max_in_flight: usize,
    /// Requests per second per client; 0: no limit.
    pub rate_per_client: u32,
    pub burst: u32,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            rate_per_client: 1000,
            burst: 2000,
        }
    }
}

/// The shared state of the admission layer.
pub(crate) struct Admission {
    config: AdmissionConfig,
    in_flight: Semaphore,
    clients: Option<RateLimiter>,
}

impl Admission {
    pub(crate) fn new(config: AdmissionConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            in_flight: Semaphore::new(config.max_in_flight),
            clients: (config.rate_per_client > 0)
                .then(|| RateLimiter::new(config.rate_per_client, config.burst)),
        })
    }
}

/// The middleware.
pub(crate) async fn admit(
    State(admission): State<Arc<Admission>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(limiter) = &admission.clients {
        let client = req
            .extensions()
            .get::<ConnectInfo<platform::listener::PeerAddr>>()
            .map(|c| c.0.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if let Err(wait) = limiter.check(client, Instant::now()) {
            metrics::counter!("gateway_rejected_total", "reason" => "rate_limited").increment(1);
            return rate_limited(wait);
        }
    }
    if is_stream(req.uri().path()) {
        return next.run(req).await;
    }
    let Ok(_slot) = admission.in_flight.try_acquire() else {
        metrics::counter!("gateway_rejected_total", "reason" => "overloaded").increment(1);
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "the gateway is serving its limit of {} requests at once; retry shortly",
                admission.config.max_in_flight
            ),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
        .into_response();
    };
    next.run(req).await
}

/// An order's live stream: held open for as long as the page is.
fn is_stream(path: &str) -> bool {
    path.ends_with("/stream")
}

fn rate_limited(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "too many requests from this client; slow down and retry after the time in Retry-After",
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)))
    .into_response()
}

/// GCRA per key: a request is admitted when the key's theoretical arrival
/// time is at most `burst` intervals ahead of now.
pub(crate) struct RateLimiter {
    interval: Duration,
    tolerance: Duration,
    tat: Mutex<HashMap<IpAddr, Instant>>,
}

/// Above this many remembered clients, those idle long enough to have a
/// full bucket are forgotten.
const MAX_CLIENTS: usize = 100_000;

impl RateLimiter {
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / rate.max(1);
        Self {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            tat: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request of `client` at `now`, or says how long to wait.
    pub(crate) fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut tat = self
            .tat
            .lock()
            .expect("the limiter's lock is never poisoned");
        if tat.len() >= MAX_CLIENTS {
            tat.retain(|_, t| *t > now);
        }
        let entry = tat.entry(client).or_insert(now);
        let at = (*entry).max(now);
        if at > now + self.tolerance {
            return Err(at - self.tolerance - now);
        }
        *entry = at + self.interval;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(10, 5);
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.check(a, t0).is_ok());
        }
        let wait = limiter.check(a, t0).expect_err("over its burst");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(
            limiter.check(b, t0).is_ok(),
            "another client has its own bucket"
        );
        // One interval later, one more.
        let t1 = t0 + Duration::from_millis(100);
        assert!(limiter.check(a, t1).is_ok());
        assert!(limiter.check(a, t1).is_err());
        // Over the next second at the rate: ten admitted.
        let admitted = (1..=100)
            .filter(|i| limiter.check(a, t1 + Duration::from_millis(10 * i)).is_ok())
            .count();
        assert_eq!(admitted, 10);
    }

    #[test]
    fn an_idle_client_refills_to_its_burst_not_beyond() {
        let limiter = RateLimiter::new(100, 3);
        let a = IpAddr::from([10, 0, 0, 1]);
        let t0 = Instant::now();
        assert_eq!((0..10).filter(|_| limiter.check(a, t0).is_ok()).count(), 3);
        let later = t0 + Duration::from_secs(60);
        let admitted = (0..10).filter(|_| limiter.check(a, later).is_ok()).count();
        assert_eq!(admitted, 3);
    }
}
