//! The restaurants service: the catalog of restaurants and their menus.
//!
//! It owns the `restaurants` and `menu_items` tables. Anyone may read the
//! catalog; only a restaurant's owner may change it, and the owner of a
//! restaurant never changes, so checking ownership once per request is
//! enough. Prices are integer cents validated by `contracts::PriceCents`;
//! a stock of `NULL` means unlimited, never negative.
//!
//! It also owns the kitchen side of orders (`kitchen`): stock reservations
//! and tickets, with the events `ticket.accepted`, `ticket.rejected` and
//! `ticket.ready` served on its feed (`GET /events`).
//!
//! Tokens are verified here, against the users service's public keys
//! (fetched once and cached by `platform::Verifier`).

mod config;
mod cursor;
mod kitchen;
mod routes;
mod store;

use std::time::Duration;

use axum::Extension;
use platform::events::Outbox;
use platform::events::transport::Transport;
use platform::{Db, HttpClient, Server, Service, Verifier};
use utoipa::OpenApi;

pub use config::Config;
pub use routes::ApiDoc;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    db: Db,
    outbox: Outbox,
    accept_window: Duration,
}

impl AppState {
    /// State over an open, migrated database (see [`MIGRATIONS`]).
    pub fn new(db: Db, accept_window: Duration) -> Self {
        Self {
            outbox: Outbox::new(db.clone()),
            db,
            accept_window,
        }
    }
}

/// The schema, compiled in so a binary never runs against a database it
/// does not know.
pub static MIGRATIONS: &[platform::db::MigrationSource] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "kitchen", include_str!("../migrations/0002_kitchen.sql")),
    platform::events::MIGRATION,
    platform::events::INDEXES_MIGRATION,
];

/// Opens the database and binds the server, verifying tokens against the
/// users service's JWKS; `run_until_stopped` on the result serves.
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
    let transport = Transport::connect(&config.service.events, "restaurants").await?;
    let mut state = AppState::new(db.clone(), config.accept_window);
    state.outbox = transport.outbox(db.clone());
    // The relay runs until the server stops, finishing its batch then.
    let relay = state.outbox.start_relay();
    let mut openapi = routes::openapi();
    openapi.merge(kitchen::KitchenDoc::openapi());
    let service = Service::new(
        "restaurants",
        router(state)
            .merge(platform::audit::router(db.clone(), kitchen::store::audit))
            .layer(Extension(verifier)),
        openapi,
    )
    .with_db(db)
    .on_shutdown(move || relay.finish());
    Ok(Server::bind(&config.service.http, service).await?)
}

/// The service's routes, without the server's standard endpoints. The
/// caller adds the `Verifier` extension that `Identity` needs.
pub fn router(state: AppState) -> axum::Router {
    let feed = platform::events::feed::router(state.outbox.clone());
    routes::router()
        .merge(kitchen::router())
        .with_state(state)
        .merge(feed)
}
