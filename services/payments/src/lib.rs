//! The payments service: authorizations of orders' totals and what becomes
//! of them — captured, voided, refunded — for the orders saga.
//!
//! It owns the `payments` table (one payment per order), the append-only
//! `ledger_entries` (every movement of money, and every decline, once) and
//! `idempotency_keys` (the first answer to each command). Its API is
//! internal: only services, with a service token, call it. Payment methods
//! are test tokens (`pm_card_visa`, …); card numbers are refused.
//!
//! Invariant: a capture never exceeds the authorization and never happens
//! twice; every effect is recorded once under its idempotency key. A
//! command's change, its ledger entry, its event (outbox) and its stored
//! answer commit in one transaction, so a repeat — a retry, a replayed
//! saga step, two at once — gets the first answer and changes nothing.
//!
//! It publishes `feastfast.payment.{authorized,declined,captured,voided,
//! refunded}.v1` (subject: the order id) on its event feed, `GET /events`.

mod commands;
mod config;
mod domain;
mod idempotency;
mod routes;
mod store;

use axum::Extension;
use platform::events::Outbox;
use platform::events::transport::Transport;
use platform::{Db, HttpClient, Server, Service, Verifier};

pub use config::Config;
pub use routes::ApiDoc;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    db: Db,
    outbox: Outbox,
}

impl AppState {
    /// State over an open, migrated database (see [`MIGRATIONS`]).
    pub fn new(db: Db) -> Self {
        Self {
            outbox: Outbox::new(db.clone()),
            db,
        }
    }

    /// The outbox the commands write their events to; its relay publishes
    /// them on the feed.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}

/// The schema, compiled in so a binary never runs against a database it
/// does not know: the service's tables, then the outbox's.
pub static MIGRATIONS: &[platform::db::MigrationSource] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    platform::events::MIGRATION,
    platform::events::INDEXES_MIGRATION,
];

/// Opens the database, binds the server and starts the outbox relay,
/// verifying tokens against the users service's JWKS; `run_until_stopped`
/// on the result serves.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    let verifier = Verifier::remote(
        HttpClient::default(),
        format!("{}/.well-known/jwks.json", config.service.users_url),
    );
    build_with_verifier(config, verifier).await
}

/// [`build`] with a given token verifier, so tests can sign their own tokens
/// without running the users service.
pub async fn build_with_verifier(config: Config, verifier: Verifier) -> anyhow::Result<Server> {
    let db = config.service.open_database(MIGRATIONS).await?;
    let transport = Transport::connect(&config.service.events, "payments").await?;
    let mut state = AppState::new(db.clone());
    state.outbox = transport.outbox(db.clone());
    // Events committed before a crash are still unpositioned in the
    // outbox, and the relay finds them on its first pass; on shutdown it
    // finishes the batch in hand.
    let relay = state.outbox().start_relay();
    let service = Service::new(
        "payments",
        router(state)
            .merge(platform::audit::router(db.clone(), store::audit))
            .layer(Extension(verifier)),
        routes::openapi(),
    )
    .with_db(db)
    .on_shutdown(move || relay.finish());
    Ok(Server::bind(&config.service.http, service).await?)
}

/// The service's routes and its event feed, without the server's standard
/// endpoints. The caller adds the `Verifier` extension that
/// `ServiceCaller` needs.
pub fn router(state: AppState) -> axum::Router {
    let feed = platform::events::feed::router(state.outbox.clone());
    routes::router().with_state(state).merge(feed)
}
