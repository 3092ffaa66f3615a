//! The orders service's settings: where its participants are, and how long
//! `POST /orders` waits for a decision.

use std::time::Duration;

use platform::client::Endpoints;
use platform::config::default_url;
use platform::{ConfigError, Env, ServiceConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceConfig,
    /// Each participant's replicas (one URL or several, comma-separated).
    pub restaurants_url: Endpoints,
    pub payments_url: Endpoints,
    pub delivery_url: Endpoints,
    /// How long `POST /orders` drives the saga before answering 202
    /// (`DECISION_DEADLINE_MS`, default 2000).
    pub decision_deadline: Duration,
    /// How often the sweeper looks for sagas with work left and for
    /// acceptance windows that closed (`SWEEP_INTERVAL_MS`, default 500).
    pub sweep_interval: Duration,
    /// How long after placement an order whose payment was not authorized
    /// is rejected (`PAYMENT_DEADLINE_MS`, default 60000): payments down
    /// or too slow for that long.
    pub payment_deadline: Duration,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env(&mut env, "orders");
        let restaurants_url = env.urls("RESTAURANTS_URL", &default_url("restaurants"));
        let payments_url = env.urls("PAYMENTS_URL", &default_url("payments"));
        let delivery_url = env.urls("DELIVERY_URL", &default_url("delivery"));
        let deadline: u64 = env.get("DECISION_DEADLINE_MS", 2000);
        let sweep: u64 = env.get("SWEEP_INTERVAL_MS", 500);
        let payment_deadline: u64 = env.get("PAYMENT_DEADLINE_MS", 60_000);
        if !(1000..=3_600_000).contains(&payment_deadline) {
            env.invalid("PAYMENT_DEADLINE_MS", "must be between 1000 and 3600000");
        }
        if !(100..=30_000).contains(&deadline) {
            env.invalid("DECISION_DEADLINE_MS", "must be between 100 and 30000");
        }
        if !(10..=60_000).contains(&sweep) {
            env.invalid("SWEEP_INTERVAL_MS", "must be between 10 and 60000");
        }
        env.finish()?;
        Ok(Self {
            service,
            restaurants_url,
            payments_url,
            delivery_url,
            decision_deadline: Duration::from_millis(deadline),
            sweep_interval: Duration::from_millis(sweep),
            payment_deadline: Duration::from_millis(payment_deadline),
        })
    }
}
