//! The delivery service's settings.

use std::time::Duration;

use platform::{ConfigError, Env, ServiceConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceConfig,
    /// The orders service, whose event feed says which orders need a
    /// courier (`ORDERS_URL`, default its local URL).
    pub orders_url: platform::client::Endpoints,
    /// How often the dispatcher looks for pending deliveries even when
    /// nothing woke it (`DISPATCH_INTERVAL_MS`, default 500).
    pub dispatch_interval: Duration,
    /// The speed the ETA assumes (`COURIER_SPEED_KMH`, default 25).
    pub courier_speed_kmh: f64,
}

const DEFAULT_INTERVAL_MS: u64 = 500;
const DEFAULT_SPEED_KMH: f64 = 25.0;

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env(&mut env, "delivery");
        let orders_url = env.urls("ORDERS_URL", &platform::config::default_url("orders"));
        let interval: u64 = env.get("DISPATCH_INTERVAL_MS", DEFAULT_INTERVAL_MS);
        if !(10..=60_000).contains(&interval) {
            env.invalid(
                "DISPATCH_INTERVAL_MS",
                "must be between 10 and 60000 milliseconds",
            );
        }
        let speed: f64 = env.get("COURIER_SPEED_KMH", DEFAULT_SPEED_KMH);
        // A zero or absurd speed would make every ETA infinite or nonsense.
        if !(speed.is_finite() && (1.0..=200.0).contains(&speed)) {
            env.invalid("COURIER_SPEED_KMH", "must be between 1 and 200");
        }
        env.finish()?;
        Ok(Self {
            service,
            orders_url,
            dispatch_interval: Duration::from_millis(interval),
            courier_speed_kmh: speed,
        })
    }

    /// The settings of a service at `service` reading orders' feed at
    /// `orders_url`, with the default interval and speed.
    pub fn new(service: ServiceConfig, orders_url: impl Into<String>) -> Self {
        Self {
            service,
            orders_url: platform::client::Endpoints::parse(&orders_url.into()),
            dispatch_interval: Duration::from_millis(DEFAULT_INTERVAL_MS),
            courier_speed_kmh: DEFAULT_SPEED_KMH,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_make_a_local_run_work() {
        let c = Config::from_env(env(&[])).expect("valid");
        assert_eq!(c.orders_url.all(), ["http://127.0.0.1:8083"]);
        assert_eq!(c.service.http.port, 8085);
        assert_eq!(c.dispatch_interval, Duration::from_millis(500));
        assert_eq!(c.courier_speed_kmh, 25.0);
    }

    #[test]
    fn bad_values_are_reported_together() {
        let e = Config::from_env(env(&[
            ("ORDERS_URL", "orders:8083"),
            ("DISPATCH_INTERVAL_MS", "0"),
            ("COURIER_SPEED_KMH", "0"),
        ]))
        .expect_err("invalid");
        let text = e.to_string();
        for name in ["ORDERS_URL", "DISPATCH_INTERVAL_MS", "COURIER_SPEED_KMH"] {
            assert!(text.contains(name), "{text}");
        }
    }
}
