//! The payments service's settings: only what every service has.

use platform::{ConfigError, Env, ServiceConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceConfig,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env(&mut env, "payments");
        env.finish()?;
        Ok(Self { service })
    }
}
