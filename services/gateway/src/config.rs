//! The gateway's settings: where each upstream service is.

use std::path::PathBuf;
use std::time::Duration;

use platform::client::Endpoints;
use platform::config::default_url;
use platform::telemetry::LogFormat;
use platform::{ConfigError, Env, HttpConfig};

/// A service the gateway routes to.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: &'static str,
    /// Its replicas' base URLs, taken in turn.
    pub endpoints: Endpoints,
}

impl Upstream {
    /// Service `name` at `urls` (one base URL, or replicas' comma-separated).
    pub fn new(name: &'static str, urls: &str) -> Self {
        Self {
            name,
            endpoints: Endpoints::parse(urls),
        }
    }

    /// Each replica with its instance name ([`replica_name`]).
    pub fn replicas(&self) -> impl Iterator<Item = (String, &str)> {
        self.endpoints
            .all()
            .iter()
            .enumerate()
            .map(|(i, url)| (replica_name(self.name, i), url.as_str()))
    }
}

/// The instance name of replica `index` (from 0) of `service`: the first is
/// the service's own name, the next `orders-2`, `orders-3`, … (as
/// `feastfast up --replicas` names the processes).
pub fn replica_name(service: &str, index: usize) -> String {
    if index == 0 {
        service.to_owned()
    } else {
        format!("{service}-{}", index + 1)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub log_format: LogFormat,
    pub upstreams: Vec<Upstream>,
    /// The `feastfast up` supervisor's control URL (`FEASTFAST_CONTROL_URL`);
    /// set only in a local run, it enables stopping and starting services.
    pub control_url: Option<String>,
    /// How upstream calls are made: timeout per attempt, retries, breaker,
    /// concurrency limit (`platform::config::call_policy`).
    pub call_policy: platform::client::CallPolicy,
    /// Load shedding and the per-client rate limit (`GATEWAY_MAX_IN_FLIGHT`,
    /// `GATEWAY_RATE_LIMIT`, `GATEWAY_RATE_BURST`).
    pub admission: crate::AdmissionConfig,
    pub connect_timeout: Duration,
    /// Exchanged with users for the gateway's service token (`SERVICE_SECRET`).
    pub service_secret: String,
    /// Where the order and delivery events come from for live pages
    /// (`NATS_URL`; unset: the producers' feeds).
    pub events: platform::config::EventsConfig,
    /// Serve the web UI from this directory instead of the copy compiled
    /// into the binary (`FEASTFAST_WEB_DIR`), to edit it without rebuilding.
    pub web_dir: Option<PathBuf>,
}

/// The services behind the gateway, in display order.
pub const SERVICES: &[&str] = &["users", "restaurants", "orders", "payments", "delivery"];

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let http = HttpConfig::from_env(&mut env, "gateway");
        let log_format = env.get("LOG_FORMAT", LogFormat::Json);
        let upstreams = SERVICES
            .iter()
            .map(|&name| Upstream {
                name,
                endpoints: env.urls(&format!("{}_URL", name.to_uppercase()), &default_url(name)),
            })
            .collect();
        let control_url = env
            .raw("FEASTFAST_CONTROL_URL")
            .is_some()
            .then(|| env.url("FEASTFAST_CONTROL_URL", ""));
        let call_policy = platform::config::call_policy(&mut env);
        let defaults = crate::AdmissionConfig::default();
        let admission = crate::AdmissionConfig {
            max_in_flight: env.get("GATEWAY_MAX_IN_FLIGHT", defaults.max_in_flight),
            rate_per_client: env.get("GATEWAY_RATE_LIMIT", defaults.rate_per_client),
            burst: 0,
        };
        let admission = crate::AdmissionConfig {
            burst: env.get(
                "GATEWAY_RATE_BURST",
                admission.rate_per_client.saturating_mul(2),
            ),
            ..admission
        };
        if admission.max_in_flight == 0 {
            env.invalid("GATEWAY_MAX_IN_FLIGHT", "must be at least 1");
        }
        let service_secret = env.string("SERVICE_SECRET", platform::config::DEV_SERVICE_SECRET);
        let events = platform::config::EventsConfig::from_env(&mut env);
        let web_dir = env.raw("FEASTFAST_WEB_DIR").map(PathBuf::from);
        env.finish()?;
        Ok(Self {
            http,
            log_format,
            upstreams,
            control_url,
            call_policy,
            admission,
            connect_timeout: Duration::from_millis(300),
            service_secret,
            events,
            web_dir,
        })
    }
}
