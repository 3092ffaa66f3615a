//! The outbound HTTP client every service uses.
//!
//! [`HttpClient`] is one pooled, keep-alive client per process: a connect
//! timeout, a timeout on every call, and the current request's trace
//! (`traceparent`), request id (`x-request-id`) and remaining budget
//! (`x-deadline-ms`, with the call's timeout cut to it) on every request
//! it sends. [`Upstream`] adds what a call to another service needs:
//! replicas, retries, a circuit breaker and a concurrency limit.

mod breaker;
#[cfg(test)]
mod stack_tests;
mod upstream;

use std::time::Duration;

use reqwest::{Method, RequestBuilder};

pub use breaker::{Breaker, BreakerConfig, BreakerState, Pass};
pub use upstream::{CallError, CallPolicy, Idempotency, Upstream};

use crate::context;

/// A cheap-to-clone handle on the shared connection pool.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
    request_timeout: Duration,
}

/// Timeouts of a client.
#[derive(Clone, Copy, Debug)]
pub struct ClientConfig {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl HttpClient {
    pub fn new(config: ClientConfig) -> Self {
        let inner = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .expect("a plain-HTTP client with static settings always builds");
        Self {
            inner,
            request_timeout: config.request_timeout,
        }
    }

    /// A request carrying the current trace context and what is left of
    /// the current request's deadline.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let builder = self.inner.request(method, url);
        let Some(ctx) = context::current() else {
            return builder;
        };
        let builder = builder
            .header("traceparent", context::traceparent(&ctx.trace_id))
            .header("x-request-id", ctx.request_id);
        match context::remaining() {
            Some(left) => {
                let budget = left.min(self.request_timeout);
                builder
                    .header(context::DEADLINE_HEADER, budget.as_millis() as u64)
                    .timeout(budget)
            }
            None => builder,
        }
    }

    /// Sends a request built from [`Self::request`].
    pub async fn execute(&self, request: reqwest::Request) -> reqwest::Result<reqwest::Response> {
        self.inner.execute(request).await
    }

    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new(ClientConfig::default())
    }
}

/// How often callers check the health of a service's replicas.
pub const HEALTH_CHECK_EVERY: Duration = Duration::from_millis(500);

/// The replicas of one service: base URLs taken in turn (round robin),
/// skipping one whose last health check (`GET /readyz`) failed or that
/// refused a connection since. With every replica failing, all are tried
/// in turn again (a check may be stale; a refused call costs little).
///
/// Configured as a comma-separated list (`ORDERS_URL=http://a,http://b`);
/// one URL is the common case and costs nothing extra.
#[derive(Clone, Debug)]
pub struct Endpoints {
    inner: std::sync::Arc<EndpointsInner>,
}

#[derive(Debug)]
struct EndpointsInner {
    urls: Vec<String>,
    healthy: Vec<std::sync::atomic::AtomicBool>,
    next: std::sync::atomic::AtomicUsize,
}

impl Endpoints {
    /// `list`: one base URL or several, comma-separated.
    pub fn parse(list: &str) -> Self {
        let urls: Vec<String> = list
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        let healthy = urls
            .iter()
            .map(|_| std::sync::atomic::AtomicBool::new(true))
            .collect();
        Self {
            inner: std::sync::Arc::new(EndpointsInner {
                urls,
                healthy,
                next: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    /// Every replica's base URL, in configured order.
    pub fn all(&self) -> &[String] {
        &self.inner.urls
    }

    /// The first replica's base URL (for what needs one fixed address).
    pub fn first(&self) -> &str {
        self.inner.urls.first().map_or("", String::as_str)
    }

    /// The next healthy replica's base URL.
    pub fn pick(&self) -> &str {
        use std::sync::atomic::Ordering::Relaxed;
        let n = self.inner.urls.len();
        if n <= 1 {
            return self.first();
        }
        let start = self.inner.next.fetch_add(1, Relaxed);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.inner.healthy[i].load(Relaxed))
            .map_or_else(|| &self.inner.urls[start % n], |i| &self.inner.urls[i])
    }

    /// `path` on the next healthy replica.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.pick())
    }

    /// Takes `base` out of the rotation until its next good health check.
    pub fn mark_down(&self, base: &str) {
        self.set_health(base, false);
    }

    fn set_health(&self, base: &str, up: bool) {
        if let Some(i) = self
            .inner
            .urls
            .iter()
            .position(|u| base.starts_with(u.as_str()))
        {
            self.inner.healthy[i].store(up, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// With more than one replica: checks each one's `/readyz` every
    /// `every` on a task (until it is aborted).
    pub fn watch(
        &self,
        client: HttpClient,
        every: Duration,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if self.inner.urls.len() <= 1 {
            return None;
        }
        let this = self.clone();
        Some(tokio::spawn(async move {
            loop {
                for url in this.all() {
                    let ready = client
                        .get(&format!("{url}/readyz"))
                        .timeout(every.max(Duration::from_millis(200)))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    this.set_health(url, ready);
                }
                tokio::time::sleep(every).await;
            }
        }))
    }
}

impl std::fmt::Display for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.inner.urls.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoints;

    #[test]
    fn replicas_are_taken_in_turn_skipping_one_that_is_down() {
        let e = Endpoints::parse("http://a:1, http://b:2/,http://c:3");
        assert_eq!(e.all(), ["http://a:1", "http://b:2", "http://c:3"]);
        let turn: Vec<&str> = (0..6).map(|_| e.pick()).collect();
        assert_eq!(
            turn,
            [
                "http://a:1",
                "http://b:2",
                "http://c:3",
                "http://a:1",
                "http://b:2",
                "http://c:3"
            ]
        );
        e.mark_down("http://b:2/orders");
        let turn: Vec<&str> = (0..4).map(|_| e.pick()).collect();
        assert!(!turn.contains(&"http://b:2"), "{turn:?}");
        assert!(turn.contains(&"http://a:1") && turn.contains(&"http://c:3"));
        // All down: each is still tried in turn rather than none.
        e.mark_down("http://a:1");
        e.mark_down("http://c:3");
        let turn: std::collections::HashSet<&str> = (0..3).map(|_| e.pick()).collect();
        assert_eq!(turn.len(), 3);
        e.set_health("http://b:2", true);
        assert_eq!(e.pick(), "http://b:2");
    }

    #[test]
    fn one_url_is_always_itself() {
        let e = Endpoints::parse("http://127.0.0.1:8081");
        assert_eq!(e.pick(), "http://127.0.0.1:8081");
        assert_eq!(e.url("/x"), "http://127.0.0.1:8081/x");
        assert_eq!(e.to_string(), "http://127.0.0.1:8081");
    }
}
