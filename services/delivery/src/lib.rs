//! The delivery service: couriers, and the deliveries they make.
//!
//! It owns the `couriers` and `deliveries` tables. A delivery is born
//! `PENDING` when the orders feed says an order was confirmed
//! (`order.confirmed`, see `events`); the dispatcher (`dispatch`) gives
//! it the nearest available courier (`ASSIGNED`, with an ETA); the courier
//! picks it up (`PICKED_UP`) and delivers it (`DELIVERED`). An
//! `order.cancelled` cancels it unless the food is already on its way
//! (`CANCELLED`). Each step publishes its event on this service's feed
//! (`GET /events`): `delivery.assigned`, `delivery.picked_up`,
//! `delivery.delivered`, and `courier.moved` while a courier carries an
//! order.
//!
//! Invariants:
//! - A courier holds at most one active (`ASSIGNED` or `PICKED_UP`)
//!   delivery; the database enforces it with a partial unique index, so no
//!   race between dispatchers can break it. A delivered or cancelled
//!   delivery frees its courier.
//! - An order has at most one delivery, however often `order.confirmed`
//!   arrives (the order id is unique, and the consumer's inbox skips
//!   repeats).
//! - Every status change commits in one transaction with the event that
//!   announces it (transactional outbox).
//! - Delivery is not a synchronous step of the order saga: this service
//!   needs neither orders nor users to be up to serve couriers (it keeps
//!   reading the orders feed, retrying while orders is down), and orders
//!   never waits for it.
//!
//! Tokens are verified here, against the users service's public keys
//! (fetched once and cached by `platform::Verifier`).

mod config;
mod dispatch;
mod domain;
mod events;
mod routes;
mod store;

use std::sync::Arc;

use axum::Extension;
use platform::auth::ServiceTokens;
use platform::events::Outbox;
use platform::events::consumer::{Consumer, ConsumerConfig};
use platform::events::transport::Transport;
use platform::{Db, HttpClient, Server, Service, Verifier};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use utoipa::OpenApi;

pub use config::Config;
pub use routes::ApiDoc;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    db: Db,
    outbox: Outbox,
    /// Wakes the dispatcher: a courier may have become free.
    dispatch: Arc<Notify>,
    /// The background tasks, kept alive by the router that holds this
    /// state (see `Background`).
    _background: Option<Arc<Background>>,
}

impl AppState {
    /// State over an open, migrated database (see [`MIGRATIONS`]), without
    /// background tasks: enough to test the router on its own.
    pub fn new(db: Db) -> Self {
        Self {
            outbox: Outbox::new(db.clone()),
            db,
            dispatch: Arc::new(Notify::new()),
            _background: None,
        }
    }
}

/// The relay, the dispatcher and the orders consumer, stopped when the last
/// router holding them is dropped, that is when the server stops. So a
/// service stopped and started again in one process (the tests' restarts)
/// never leaves an old dispatcher or consumer running on the side.
struct Background {
    tasks: Vec<AbortHandle>,
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The schema, compiled in so a binary never runs against a database it
/// does not know.
pub static MIGRATIONS: &[platform::db::MigrationSource] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    platform::events::MIGRATION,
    platform::events::INDEXES_MIGRATION,
];

/// Opens the database, starts the dispatcher and the orders consumer, and
/// binds the server, verifying tokens against the users service's JWKS and
/// getting its own service token from users; `run_until_stopped` on the
/// result serves.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    let client = HttpClient::default();
    let users_url = config.service.users_url.clone();
    let verifier = Verifier::remote(client.clone(), format!("{users_url}/.well-known/jwks.json"));
    let tokens = ServiceTokens::from_users(
        client,
        &users_url,
        "delivery",
        &config.service.service_secret,
    );
    build_with(config, verifier, tokens).await
}

/// [`build`] with a given token verifier and service-token source, so tests
/// can sign their own tokens without running the users service.
pub async fn build_with(
    config: Config,
    verifier: Verifier,
    tokens: ServiceTokens,
) -> anyhow::Result<Server> {
    let db = config.service.open_database(MIGRATIONS).await?;
    let transport = Transport::connect(&config.service.events, "delivery").await?;
    let mut state = AppState::new(db.clone());
    state.outbox = transport.outbox(db.clone());
    let relay = state.outbox.start_relay();
    let dispatcher = dispatch::Dispatcher {
        db: db.clone(),
        outbox: state.outbox.clone(),
        wake: state.dispatch.clone(),
        interval: config.dispatch_interval,
        speed_kmh: config.courier_speed_kmh,
    }
    .spawn();
    // Retries forever while orders is down: delivery starts and serves
    // couriers without it, and catches up from its stored cursor.
    let (consumer_ops, consumer) = Consumer::new(
        db.clone(),
        HttpClient::default(),
        tokens,
        ConsumerConfig::new("orders", &config.orders_url.to_string()),
        events::OrdersHandler {
            dispatch: state.dispatch.clone(),
        },
    )
    .start_on(&transport);
    state._background = Some(Arc::new(Background {
        tasks: vec![dispatcher.abort_handle(), consumer.abort_handle()],
    }));
    let dead_letters = platform::events::dead_letters::router(db.clone(), vec![consumer_ops]);
    let service = Service::new(
        "delivery",
        router(state)
            .merge(dead_letters)
            .merge(platform::audit::router(db.clone(), store::audit))
            .layer(Extension(verifier)),
        ApiDoc::openapi(),
    )
    .with_db(db)
    .on_shutdown(move || relay.finish());
    Ok(Server::bind(&config.service.http, service).await?)
}

/// The service's routes and its event feed, without the server's standard
/// endpoints. The caller adds the `Verifier` extension that `Identity` and
/// `ServiceCaller` need.
pub fn router(state: AppState) -> axum::Router {
    let feed = platform::events::feed::router(state.outbox.clone());
    routes::router().with_state(state).merge(feed)
}
