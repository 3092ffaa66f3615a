//! One upstream service as its callers see it: the one path of every
//! service-to-service call.
//!
//! A call through [`Upstream::send`], in order:
//! 1. takes a slot under the upstream's concurrency limit, or fails at once
//!    (`Saturated`): a caller never queues without bound behind a slow
//!    upstream;
//! 2. asks the upstream's [`Breaker`]; open, the call fails at once
//!    (`BreakerOpen`) without touching the network;
//! 3. gets a budget: the per-call timeout, cut to what is left of the
//!    current request's deadline (nothing left: `DeadlineExceeded`, not
//!    sent); the budget travels as `x-deadline-ms`, so the callee stops
//!    when the caller stops waiting;
//! 4. goes to the next healthy replica ([`Endpoints`]);
//! 5. on a refused connection (the request never arrived) is tried again
//!    on the next replica; on a timeout, a transport error or a 502/503/504
//!    is tried again only when [`Idempotency::Safe`] (a GET, or a call
//!    carrying an idempotency key, which the callee answers once) — after
//!    a jittered exponential back-off, within the budget, and only while
//!    the breaker lets it.
//!
//! Any HTTP answer the attempts end with is the caller's to read (a 404 is
//! a business answer, a final 503 the upstream's own words).
//!
//! Metrics: `client_calls_total{upstream,outcome}`,
//! `client_retries_total{upstream}`, and the breaker's gauge.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use rand::Rng;
use reqwest::{Method, RequestBuilder, Response};
use tokio::sync::Semaphore;

use super::breaker::{Breaker, BreakerConfig, BreakerState};
use super::{Endpoints, HttpClient};
use crate::ApiError;
use crate::context::{self, DEADLINE_HEADER};

/// Below this much budget an attempt is not worth sending.
const MIN_ATTEMPT: Duration = Duration::from_millis(5);

/// How an upstream's calls are made.
#[derive(Clone, Copy, Debug)]
pub struct CallPolicy {
    /// The most one attempt may take (the request's deadline may cut it).
    pub timeout: Duration,
    /// Attempts in all, for a call that may be repeated.
    pub attempts: u32,
    /// The wait before the first retry; doubled each time, jittered ±50 %.
    pub backoff: Duration,
    /// Calls in flight at once; one more fails at once.
    pub max_in_flight: usize,
    pub breaker: BreakerConfig,
}

impl Default for CallPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_millis(25),
            max_in_flight: 512,
            breaker: BreakerConfig::default(),
        }
    }
}

/// Whether a call may be sent again after it may already have arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// Repeating it may do its effect twice: repeated only when the
    /// connection was refused (it never arrived).
    Unsafe,
    /// A read, or a write under an idempotency key.
    Safe,
}

impl Idempotency {
    /// GET, HEAD, PUT, DELETE and OPTIONS are idempotent by definition
    /// (RFC 9110 §9.2.2); any call carrying an idempotency key is made so.
    pub fn of(method: &Method, keyed: bool) -> Self {
        let idempotent = matches!(
            *method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        if idempotent || keyed {
            Self::Safe
        } else {
            Self::Unsafe
        }
    }
}

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the {upstream} service's circuit breaker is open: failing fast")]
    BreakerOpen { upstream: String },
    #[error("too many calls to the {upstream} service are in flight")]
    Saturated { upstream: String },
    #[error("the request's deadline left no time to call the {upstream} service")]
    DeadlineExceeded { upstream: String },
    #[error("the {upstream} service {}: {source}", describe(.source))]
    Transport {
        upstream: String,
        #[source]
        source: reqwest::Error,
    },
}

fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "did not answer in time"
    } else if e.is_connect() {
        "refused the connection"
    } else {
        "failed while answering"
    }
}

impl CallError {
    /// The problem a caller's own client sees: 503 naming the upstream
    /// with `Retry-After` (504 when the deadline ran out).
    pub fn to_api_error(&self) -> ApiError {
        match self {
            Self::DeadlineExceeded { .. } => ApiError::deadline_exceeded(),
            Self::BreakerOpen { upstream }
            | Self::Saturated { upstream }
            | Self::Transport { upstream, .. } => ApiError::unavailable(
                upstream,
                format!("the {upstream} service is unavailable: {}", self.reason()),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::BreakerOpen { .. } => "it failed repeatedly, so calls fail fast for a moment",
            Self::Saturated { .. } => "too many calls to it are in flight",
            Self::DeadlineExceeded { .. } => "no time was left to call it",
            Self::Transport { source, .. } => describe(source),
        }
    }

    fn outcome(&self) -> &'static str {
        match self {
            Self::BreakerOpen { .. } => "breaker_open",
            Self::Saturated { .. } => "saturated",
            Self::DeadlineExceeded { .. } => "deadline",
            Self::Transport { source, .. } if source.is_timeout() => "timeout",
            Self::Transport { .. } => "transport",
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        e.to_api_error()
    }
}

/// A cheap-to-clone handle on one upstream service.
#[derive(Clone, Debug)]
pub struct Upstream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    endpoints: Endpoints,
    client: HttpClient,
    policy: CallPolicy,
    breaker: Breaker,
    in_flight: Arc<Semaphore>,
}

impl Upstream {
    pub fn new(name: &str, endpoints: Endpoints, client: HttpClient, policy: CallPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                breaker: Breaker::new(name, policy.breaker),
                in_flight: Arc::new(Semaphore::new(policy.max_in_flight)),
                endpoints,
                client,
                policy,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The pooled client its calls go through (to build them with).
    pub fn client(&self) -> &HttpClient {
        &self.inner.client
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// Closes the breaker: for a caller that knows the upstream is back
    /// (the ops API, having just started it).
    pub fn reset_breaker(&self) {
        self.inner.breaker.reset();
    }

    /// With more than one replica, checks their health on a task (see
    /// [`Endpoints::watch`]).
    pub fn watch_replicas(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.inner
            .endpoints
            .watch(self.inner.client.clone(), super::HEALTH_CHECK_EVERY)
    }

    /// Sends the request `build` makes for a replica's base URL, as the
    /// module's documentation says. `build` may be called once per attempt.
    pub async fn send(
        &self,
        idempotency: Idempotency,
        build: impl Fn(&str) -> RequestBuilder,
    ) -> Result<Response, CallError> {
        let result = self.attempts(idempotency, build).await;
        let outcome = match &result {
            Ok(response) if response.status().is_server_error() => "server_error",
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        metrics::counter!("client_calls_total", "upstream" => self.inner.name.clone(), "outcome" => outcome)
            .increment(1);
        result
    }

    async fn attempts(
        &self,
        idempotency: Idempotency,
        build: impl Fn(&str) -> RequestBuilder,
    ) -> Result<Response, CallError> {
        let inner = &*self.inner;
        let upstream = || inner.name.clone();
        let _slot =
            inner
                .in_flight
                .clone()
                .try_acquire_owned()
                .map_err(|_| CallError::Saturated {
                    upstream: upstream(),
                })?;
        let mut backoff = inner.policy.backoff;
        let mut attempt = 1;
        loop {
            let pass = inner
                .breaker
                .try_pass()
                .ok_or_else(|| CallError::BreakerOpen {
                    upstream: upstream(),
                })?;
            let budget = context::remaining()
                .map_or(inner.policy.timeout, |left| left.min(inner.policy.timeout));
            if budget < MIN_ATTEMPT {
                return Err(CallError::DeadlineExceeded {
                    upstream: upstream(),
                });
            }
            let base = inner.endpoints.pick();
            let mut request = build(base).build().map_err(|source| CallError::Transport {
                upstream: upstream(),
                source,
            })?;
            let timeout = request.timeout().map_or(budget, |t| budget.min(*t));
            *request.timeout_mut() = Some(timeout);
            request.headers_mut().insert(
                DEADLINE_HEADER,
                HeaderValue::from(timeout.as_millis() as u64),
            );
            let result = inner.client.execute(request).await;
            let retry = match &result {
                Ok(response) => {
                    if matches!(response.status().as_u16(), 502..=504) {
                        pass.failure();
                        idempotency == Idempotency::Safe
                    } else {
                        pass.success();
                        false
                    }
                }
                Err(e) if e.is_connect() => {
                    // Never arrived: any call may go again, elsewhere.
                    inner.endpoints.mark_down(base);
                    pass.failure();
                    true
                }
                Err(e)
                    if e.is_timeout() && context::remaining().is_some_and(|l| l < MIN_ATTEMPT) =>
                {
                    // The request's deadline ran out, not the upstream.
                    drop(pass);
                    false
                }
                Err(_) => {
                    pass.failure();
                    idempotency == Idempotency::Safe
                }
            };
            let wait = backoff.mul_f64(rand::thread_rng().gen_range(0.5..1.5));
            let time_left = context::remaining().is_none_or(|left| left > wait + MIN_ATTEMPT);
            if !retry || attempt >= inner.policy.attempts || !time_left {
                return result.map_err(|source| {
                    // A timeout that the request's deadline set: the caller
                    // ran out of time, the upstream is not to blame.
                    let deadline_passed =
                        context::remaining().is_some_and(|left| left < MIN_ATTEMPT);
                    if source.is_timeout() && deadline_passed {
                        CallError::DeadlineExceeded {
                            upstream: upstream(),
                        }
                    } else {
                        CallError::Transport {
                            upstream: upstream(),
                            source,
                        }
                    }
                });
            }
            metrics::counter!("client_retries_total", "upstream" => inner.name.clone())
                .increment(1);
            tokio::time::sleep(wait).await;
            backoff *= 2;
            attempt += 1;
        }
    }
}
