//! The orders service: the order saga's orchestrator.
//!
//! `domain/` is pure: the saga is a state machine with no I/O and no clock,
//! so every decision the service takes about an order can be tested without
//! a database. Around it: `routes` (the API), `store` (orders, timeline,
//! idempotency keys), `orchestrator` (executes the saga's commands against
//! restaurants and payments, persisting every step before and after, and a
//! sweeper that resumes unfinished sagas and closes acceptance windows),
//! and `events` (consumes the restaurants and delivery feeds).
//!
//! Invariant: an order's saga state, its timeline and the events it
//! publishes change in one transaction; a crash at any point resumes from
//! the stored state, and the participants' idempotency keys make every
//! repeated step a no-op.

mod config;
pub mod domain;
mod events;
mod orchestrator;
mod routes;
mod stats;
mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use platform::auth::ServiceTokens;
use platform::events::Outbox;
use platform::events::consumer::{Consumer, ConsumerConfig};
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
    orchestrator: Arc<orchestrator::Orchestrator>,
    decision_deadline: Duration,
    /// The sweeper and consumers: they stop when the server (which owns the
    /// last copy of this state) stops, so a service restarted in the same
    /// process never leaves its old workers running. (The relay is the
    /// server's to finish: `Service::on_shutdown`.)
    _background: Arc<Background>,
}

struct Background {
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub static MIGRATIONS: &[platform::db::MigrationSource] = &[
    (1, "orders", include_str!("../migrations/0001_orders.sql")),
    (2, "leases", include_str!("../migrations/0002_leases.sql")),
    (
        3,
        "timer index",
        include_str!("../migrations/0003_timer_index.sql"),
    ),
    platform::events::MIGRATION,
    platform::events::INDEXES_MIGRATION,
];

/// Binds the service, verifying tokens against the users service's keys
/// and getting its own service token from it.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    let client = HttpClient::default();
    let verifier = Verifier::remote(
        client.clone(),
        format!("{}/.well-known/jwks.json", config.service.users_url),
    );
    let tokens = ServiceTokens::from_users(
        client,
        &config.service.users_url,
        "orders",
        &config.service.service_secret,
    );
    build_with(config, verifier, tokens).await
}

/// [`build`] with a given verifier and token source (tests).
pub async fn build_with(
    config: Config,
    verifier: Verifier,
    tokens: ServiceTokens,
) -> anyhow::Result<Server> {
    let db = config.service.open_database(MIGRATIONS).await?;
    let transport = Transport::connect(&config.service.events, "orders").await?;
    let outbox = transport.outbox(db.clone());
    let relay = outbox.start_relay();
    let client = HttpClient::default();
    let upstream = |name: &str, endpoints: &platform::client::Endpoints| {
        platform::client::Upstream::new(
            name,
            endpoints.clone(),
            client.clone(),
            config.service.call_policy,
        )
    };
    let participants = orchestrator::Participants {
        restaurants: upstream("restaurants", &config.restaurants_url),
        payments: upstream("payments", &config.payments_url),
        delivery: upstream("delivery", &config.delivery_url),
    };
    let mut tasks = vec![];
    for participant in [
        &participants.restaurants,
        &participants.payments,
        &participants.delivery,
    ] {
        tasks.extend(participant.watch_replicas().map(|t| t.abort_handle()));
    }
    let orchestrator = Arc::new(orchestrator::Orchestrator::new(
        db.clone(),
        outbox.clone(),
        tokens.clone(),
        participants,
        config.payment_deadline,
    ));
    tasks.push(
        orchestrator
            .spawn_sweeper(config.sweep_interval)
            .abort_handle(),
    );
    let mut consumers: Vec<Arc<dyn platform::events::dead_letters::Redrive>> = Vec::new();
    for (source, url) in [
        ("restaurants", &config.restaurants_url),
        ("delivery", &config.delivery_url),
    ] {
        let (consumer, task) = Consumer::new(
            db.clone(),
            client.clone(),
            tokens.clone(),
            ConsumerConfig::new(source, &url.to_string()),
            events::SagaEvents::new(orchestrator.clone()),
        )
        .start_on(&transport);
        consumers.push(consumer);
        tasks.push(task.abort_handle());
    }
    let dead_letters = platform::events::dead_letters::router(db.clone(), consumers);
    let state = AppState {
        db: db.clone(),
        outbox,
        orchestrator,
        decision_deadline: config.decision_deadline,
        _background: Arc::new(Background { tasks }),
    };
    let mut openapi = ApiDoc::openapi();
    openapi.merge(stats::StatsDoc::openapi());
    let service = Service::new(
        "orders",
        router(state)
            .merge(dead_letters)
            .merge(platform::audit::router(db.clone(), store::audit))
            .layer(Extension(verifier)),
        openapi,
    )
    .with_db(db)
    .on_shutdown(move || relay.finish());
    Ok(Server::bind(&config.service.http, service).await?)
}

/// The service's routes and its event feed; the caller adds the
/// `Verifier` extension.
pub fn router(state: AppState) -> axum::Router {
    let feed = platform::events::feed::router(state.outbox.clone());
    routes::router()
        .merge(stats::router())
        .with_state(state)
        .merge(feed)
}
