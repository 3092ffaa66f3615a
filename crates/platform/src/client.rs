//! The outbound HTTP client every service uses.
//!
//! One pooled, keep-alive client per process: a connect timeout, a timeout
//! on every call, and the current request's trace (`traceparent`) and
//! request id (`x-request-id`) on every request it sends.

use std::time::Duration;

use reqwest::{Method, RequestBuilder};

use crate::context;

/// A cheap-to-clone handle on the shared connection pool.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
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
        Self { inner }
    }

    /// A request carrying the current trace context.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let builder = self.inner.request(method, url);
        match context::current() {
            Some(ctx) => builder
                .header("traceparent", context::traceparent(&ctx.trace_id))
                .header("x-request-id", ctx.request_id),
            None => builder,
        }
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
