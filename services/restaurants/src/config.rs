//! The restaurants service's settings.

use std::time::Duration;

use platform::{ConfigError, Env, ServiceConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceConfig,
    /// How long an owner has to accept a ticket (`ACCEPT_WINDOW_SECS`,
    /// default 120) before the order is rejected automatically.
    pub accept_window: Duration,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env(&mut env, "restaurants");
        let window: u64 = env.get("ACCEPT_WINDOW_SECS", 120);
        if !(5..=3600).contains(&window) {
            env.invalid("ACCEPT_WINDOW_SECS", "must be between 5 and 3600 seconds");
        }
        env.finish()?;
        Ok(Self {
            service,
            accept_window: Duration::from_secs(window),
        })
    }

    /// The settings of a service at `service`, with the default window.
    pub fn new(service: ServiceConfig) -> Self {
        Self {
            service,
            accept_window: Duration::from_secs(120),
        }
    }
}
