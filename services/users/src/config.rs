//! The users service's settings.

use std::time::Duration;

use platform::{ConfigError, Env, ServiceConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceConfig,
    /// How long an access token is valid (`TOKEN_TTL_SECS`, default one hour).
    pub token_ttl: Duration,
}

impl Config {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env(&mut env, "users");
        let ttl: u64 = env.get("TOKEN_TTL_SECS", 3600);
        if !(60..=86_400).contains(&ttl) {
            env.invalid("TOKEN_TTL_SECS", "must be between 60 and 86400 seconds");
        }
        env.finish()?;
        Ok(Self {
            service,
            token_ttl: Duration::from_secs(ttl),
        })
    }
}
