//! Configuration from environment variables (12-factor).
//!
//! Every setting has a default that makes a local run work untouched. Bad
//! values are collected and reported together in one line, so a service
//! with a broken configuration exits at once with a message that says what
//! to fix.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::IpAddr;
use std::str::FromStr;

use crate::telemetry::LogFormat;

/// One or more invalid settings.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

/// Reads settings, remembering every invalid one.
pub struct Env {
    vars: HashMap<String, String>,
    errors: Vec<String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// A given set of variables (for tests, and for a supervisor that
    /// computes a child's environment).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            vars: vars.into_iter().collect(),
            errors: Vec::new(),
        }
    }

    /// The raw value, if set and not blank.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// `name` parsed as `T`, or `default` when unset.
    pub fn get<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get_opt(name).unwrap_or(default)
    }

    /// `name` parsed as `T`, or `None` when unset.
    pub fn get_opt<T>(&mut self, name: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        let raw = self.raw(name)?.to_owned();
        match raw.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(format!("{name}={raw:?}: {e}"));
                None
            }
        }
    }

    /// `name` as a string, or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_owned()
    }

    /// `name` as an `http://` or `https://` base URL without a trailing slash.
    pub fn url(&mut self, name: &str, default: &str) -> String {
        let value = self.string(name, default);
        if !(value.starts_with("http://") || value.starts_with("https://")) {
            self.errors.push(format!(
                "{name}={value:?}: must start with http:// or https://"
            ));
        }
        value.trim_end_matches('/').to_owned()
    }

    /// `name` as one or more comma-separated base URLs (a service's
    /// replicas), each checked like [`Env::url`].
    pub fn urls(&mut self, name: &str, default: &str) -> crate::client::Endpoints {
        let value = self.string(name, default);
        let endpoints = crate::client::Endpoints::parse(&value);
        if endpoints.all().is_empty() {
            self.errors.push(format!("{name}={value:?}: no URL"));
        }
        for url in endpoints.all() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                self.errors.push(format!(
                    "{name}={value:?}: {url:?} must start with http:// or https://"
                ));
            }
        }
        endpoints
    }

    /// Records a problem found by the caller's own checks.
    pub fn invalid(&mut self, name: &str, message: impl Display) {
        self.errors.push(format!("{name}: {message}"));
    }

    /// Ok when every setting read so far was valid.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self.errors))
        }
    }
}

/// How a service calls the others (`platform::client::CallPolicy`):
/// `UPSTREAM_TIMEOUT_MS` (per attempt, default 5000), `UPSTREAM_ATTEMPTS`
/// (default 3), `UPSTREAM_MAX_IN_FLIGHT` (per upstream, default 512),
/// `BREAKER_THRESHOLD` (consecutive failures, default 5) and
/// `BREAKER_COOLDOWN_MS` (default 1000).
pub fn call_policy(env: &mut Env) -> crate::client::CallPolicy {
    let default = crate::client::CallPolicy::default();
    let ranged = |env: &mut Env, name: &str, default: u64, range: std::ops::RangeInclusive<u64>| {
        let value: u64 = env.get(name, default);
        if range.contains(&value) {
            value
        } else {
            env.invalid(
                name,
                format!("must be between {} and {}", range.start(), range.end()),
            );
            default
        }
    };
    let ms = std::time::Duration::from_millis;
    crate::client::CallPolicy {
        timeout: ms(ranged(env, "UPSTREAM_TIMEOUT_MS", 5000, 100..=60_000)),
        attempts: ranged(env, "UPSTREAM_ATTEMPTS", 3, 1..=10) as u32,
        max_in_flight: ranged(env, "UPSTREAM_MAX_IN_FLIGHT", 512, 1..=100_000) as usize,
        breaker: crate::client::BreakerConfig {
            threshold: ranged(env, "BREAKER_THRESHOLD", 5, 1..=1000) as u32,
            cooldown: ms(ranged(env, "BREAKER_COOLDOWN_MS", 1000, 10..=600_000)),
        },
        ..default
    }
}

/// Where a service listens.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub host: IpAddr,
    /// 0 asks the OS for a free port (tests).
    pub port: u16,
    /// The most connections served at once (`MAX_CONNECTIONS`, unset: no
    /// limit); more wait in the kernel's accept queue. Each costs some tens
    /// of kilobytes, so a limit bounds a process's memory under overload,
    /// but only for clients that close idle connections (see
    /// `platform::listener`).
    pub max_connections: usize,
}

impl HttpConfig {
    /// Reads `HOST` (default 127.0.0.1) and `PORT` (default: the service's
    /// local port).
    pub fn from_env(env: &mut Env, service: &str) -> Self {
        let max_connections = env.get("MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 {
            env.invalid("MAX_CONNECTIONS", "must be at least 1");
        }
        Self {
            host: env.get("HOST", IpAddr::from([127, 0, 0, 1])),
            port: env.get("PORT", default_port(service)),
            max_connections,
        }
    }

    /// `host:port` with the default connection limit.
    pub fn at(host: IpAddr, port: u16) -> Self {
        Self {
            host,
            port,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Connections a service serves at once unless `MAX_CONNECTIONS` says
/// otherwise: no limit (see `platform::listener` for why).
pub const DEFAULT_MAX_CONNECTIONS: usize = usize::MAX;

/// The settings every service has.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub http: HttpConfig,
    /// `sqlite://path/to/file.db` (default) or `postgres://…`.
    pub database_url: String,
    /// The most connections to the database (`DATABASE_POOL_MAX`; the
    /// default depends on the engine, see [`crate::db::default_pool_max`]).
    pub database_pool_max: u32,
    pub log_format: LogFormat,
    /// Where the users service publishes its signing keys and issues
    /// service tokens.
    pub users_url: String,
    /// The secret a service presents to the users service for a service
    /// token (`SERVICE_SECRET`). `feastfast up` generates one per run.
    pub service_secret: String,
    /// How events travel (`NATS_URL`, `NATS_PREFIX`).
    pub events: EventsConfig,
    /// How it calls other services ([`call_policy`]).
    pub call_policy: crate::client::CallPolicy,
}

/// Which event transport a service uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsConfig {
    /// The embedded feed: each producer serves its outbox at `GET /events`
    /// (the default; nothing to run).
    Feed,
    /// NATS JetStream at `url`; subjects and stream names start with
    /// `prefix` (tests use their own, so runs never collide).
    Nats { url: String, prefix: String },
}

impl EventsConfig {
    /// Reads `NATS_URL` (unset: the feed) and `NATS_PREFIX` (default
    /// `feastfast`; lower-case letters, digits and `_`).
    pub fn from_env(env: &mut Env) -> Self {
        let Some(url) = env.raw("NATS_URL").map(str::to_owned) else {
            return EventsConfig::Feed;
        };
        if !url.starts_with("nats://") {
            env.invalid("NATS_URL", format!("{url:?} must start with nats://"));
        }
        let prefix = env.string("NATS_PREFIX", "feastfast");
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            env.invalid(
                "NATS_PREFIX",
                format!("{prefix:?} may hold only a-z, 0-9 and _"),
            );
        }
        EventsConfig::Nats { url, prefix }
    }
}

/// The service secret when none is configured: fine on a laptop, refused
/// nowhere, but logged as a warning at start.
pub const DEV_SERVICE_SECRET: &str = "feastfast-local-development-secret";

/// The default local URL of a service.
pub fn default_url(service: &str) -> String {
    format!("http://127.0.0.1:{}", default_port(service))
}

/// The default local ports: the gateway on 8080, then the services.
pub fn default_port(service: &str) -> u16 {
    match service {
        "gateway" => 8080,
        "users" => 8081,
        "restaurants" => 8082,
        "orders" => 8083,
        "payments" => 8084,
        "delivery" => 8085,
        _ => 8090,
    }
}

impl ServiceConfig {
    /// Reads `HOST`, `PORT`, `DATABASE_URL`, `LOG_FORMAT` and `USERS_URL`.
    pub fn from_env(env: &mut Env, service: &str) -> Self {
        let database_url = env.string("DATABASE_URL", &format!("sqlite://.feastfast/{service}.db"));
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            env.invalid(
                "DATABASE_URL",
                format!("{database_url:?} is neither sqlite:// nor postgres://"),
            );
        }
        let database_pool_max = env.get(
            "DATABASE_POOL_MAX",
            crate::db::default_pool_max(&database_url),
        );
        if !(1..=200).contains(&database_pool_max) {
            env.invalid("DATABASE_POOL_MAX", "must be between 1 and 200");
        }
        Self {
            http: HttpConfig::from_env(env, service),
            database_url,
            database_pool_max,
            log_format: env.get("LOG_FORMAT", LogFormat::Json),
            users_url: env.url("USERS_URL", &default_url("users")),
            service_secret: env.string("SERVICE_SECRET", DEV_SERVICE_SECRET),
            events: EventsConfig::from_env(env),
            call_policy: call_policy(env),
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
        let mut e = env(&[]);
        let c = ServiceConfig::from_env(&mut e, "users");
        assert!(e.finish().is_ok());
        assert_eq!(c.http.port, 8081);
        assert_eq!(c.database_url, "sqlite://.feastfast/users.db");
        assert_eq!(c.users_url, "http://127.0.0.1:8081");
    }

    #[test]
    fn every_bad_value_is_reported_in_one_line() {
        let mut e = env(&[
            ("PORT", "eighty"),
            ("USERS_URL", "users:8081"),
            ("LOG_FORMAT", "xml"),
        ]);
        let _ = ServiceConfig::from_env(&mut e, "restaurants");
        let message = e.finish().expect_err("invalid").to_string();
        assert!(message.contains("PORT=\"eighty\""), "{message}");
        assert!(message.contains("USERS_URL"), "{message}");
        assert!(message.contains("LOG_FORMAT"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
}
