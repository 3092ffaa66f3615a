//! The users service: accounts, credentials and the keys that sign tokens.
//!
//! It owns the `users` and `signing_keys` tables. Passwords are hashed with
//! argon2id on the blocking pool (never on the async threads), with a bound
//! on how many hashes run at once so a login flood cannot exhaust memory.
//! Tokens are EdDSA JWTs; the public keys are served as a JWKS so every other
//! service verifies tokens itself.

mod config;
mod password;
mod routes;
mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use platform::auth::{JwkSet, SigningKey};
use platform::{Db, Server, Service, Verifier};

pub use config::Config;
pub use routes::ApiDoc;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    db: Db,
    key: SigningKey,
    token_ttl: Duration,
    passwords: password::Passwords,
    /// What a service presents for a service token.
    service_secret: Arc<str>,
}

static MIGRATIONS: &[platform::db::MigrationSource] =
    &[(1, "init", include_str!("../migrations/0001_init.sql"))];

/// Opens the database, loads (or creates) the signing key and binds the
/// server; `run_until_stopped` on the result serves.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    let db = config.service.open_database(MIGRATIONS).await?;
    let key = store::current_signing_key(&db).await?;
    let jwks = JwkSet {
        keys: store::all_signing_keys(&db)
            .await?
            .iter()
            .map(SigningKey::jwk)
            .collect(),
    };
    let verifier = Verifier::with_keys(&jwks)?;
    let state = AppState {
        db: db.clone(),
        key,
        token_ttl: config.token_ttl,
        passwords: password::Passwords::new(),
        service_secret: config.service.service_secret.as_str().into(),
    };
    if config.service.service_secret == platform::config::DEV_SERVICE_SECRET {
        tracing::warn!("SERVICE_SECRET is not set: using the local development secret");
    }
    let service = Service::new(
        "users",
        router(state).layer(Extension(verifier)),
        routes::openapi(),
    )
    .with_db(db);
    Ok(Server::bind(&config.service.http, service).await?)
}

/// The service's routes, without the server's standard endpoints.
pub fn router(state: AppState) -> axum::Router {
    routes::router().with_state(state)
}
