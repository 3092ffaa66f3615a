//! The gateway: FeastFast's one public door, `/api/v1`.
//!
//! It owns nothing durable. It routes each public path to the service that
//! owns it, rejects a missing or bad token before any upstream sees the
//! request (verifying it itself against the users service's cached keys),
//! passes the caller's token on, and turns an upstream that cannot answer
//! into a fast problem+json 503 naming that service. It also serves the
//! operations API (`/api/v1/ops/...`), the merged public OpenAPI document,
//! and the web UI (`web.rs`).
//!
//! Architecture invariant: the gateway holds no business rules; the service
//! behind a route decides. The route table in `routes.rs` is the single
//! source of both the router and the public OpenAPI document.

mod admission;
mod audit;
mod compose;
mod config;
mod edge;
mod follow;
mod forward;
mod live;
mod ops;
mod overview;
mod routes;
mod web;

use std::sync::Arc;

use axum::Extension;
use platform::auth::ServiceTokens;
use platform::client::ClientConfig;
use platform::events::transport::Transport;
use platform::{HttpClient, Server, Service, Verifier};

pub use admission::AdmissionConfig;
pub use config::{Config, SERVICES, Upstream, replica_name};

/// What every handler shares: one reference count to clone per request
/// (a handler's `State` is a clone; cloning seven shared parts and
/// dropping them again was 4 % of the gateway's CPU serving cached pages).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    config: Arc<Config>,
    client: HttpClient,
    /// Every call to a service goes through its upstream: replicas,
    /// retries, circuit breaker, concurrency limit (`platform::client`).
    upstreams: Arc<[platform::client::Upstream]>,
    verifier: Verifier,
    /// The gateway's own service token, for internal calls (composition).
    tokens: ServiceTokens,
    /// Wakes live order streams when an order's events arrive.
    hub: Arc<live::Hub>,
    /// Restaurant pages and lists answered at the edge (`edge.rs`).
    edge: Arc<edge::EdgeCache>,
}

impl Shared {
    fn upstream(&self, name: &str) -> Option<&platform::client::Upstream> {
        self.upstreams.iter().find(|u| u.name() == name)
    }

    /// `GET path` on `upstream`'s internal API with the gateway's service
    /// token, within `timeout`; a read, so retried on another replica.
    async fn internal_get(
        &self,
        upstream: &platform::client::Upstream,
        path: &str,
        timeout: std::time::Duration,
    ) -> Result<reqwest::Response, String> {
        let token = self.tokens.token().await.map_err(|e| e.to_string())?;
        upstream
            .send(platform::client::Idempotency::Safe, |base| {
                self.client
                    .get(&format!("{base}{path}"))
                    .bearer_auth(&token)
                    .timeout(timeout)
            })
            .await
            .map_err(|e| e.to_string())
    }
}

/// Binds the gateway; `run_until_stopped` on the result serves.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    let client = HttpClient::new(ClientConfig {
        connect_timeout: config.connect_timeout,
        request_timeout: config.call_policy.timeout,
    });
    let users = config
        .upstreams
        .iter()
        .find(|u| u.name == "users")
        .map(|u| u.endpoints.first().to_owned())
        .ok_or_else(|| anyhow::anyhow!("the gateway needs a users upstream"))?;
    let verifier = Verifier::remote(client.clone(), format!("{users}/.well-known/jwks.json"));
    let tokens =
        ServiceTokens::from_users(client.clone(), &users, "gateway", &config.service_secret);
    let upstreams: Arc<[platform::client::Upstream]> = config
        .upstreams
        .iter()
        .map(|u| {
            let upstream = platform::client::Upstream::new(
                u.name,
                u.endpoints.clone(),
                client.clone(),
                config.call_policy,
            );
            // Replicas failing their health check leave the rotation (a
            // task per replicated upstream, for the life of the process).
            upstream.watch_replicas();
            upstream
        })
        .collect();
    let http = config.http.clone();
    let state = AppState(Arc::new(Shared {
        config: Arc::new(config),
        client,
        upstreams,
        verifier: verifier.clone(),
        tokens: tokens.clone(),
        hub: Arc::new(live::Hub::default()),
        edge: Arc::new(edge::EdgeCache::default()),
    }));
    // Follow the events that announce an order's moves (live pages) and a
    // restaurant's changes (the edge cache); they end with the process
    // (the gateway holds nothing they could leave half-done).
    let transport = Transport::connect(&state.config.events, "gateway").await?;
    let listeners: [(&'static str, Arc<dyn follow::Listener>); 3] = [
        ("orders", state.hub.clone()),
        ("delivery", state.hub.clone()),
        ("restaurants", state.edge.clone()),
    ];
    for (name, listener) in listeners {
        match &transport {
            Transport::Nats(nats) => {
                follow::nats(listener, nats.clone(), name);
            }
            Transport::Feed => {
                if let Some(upstream) = state.upstream(name) {
                    let feed = platform::events::transport::HttpFeed::new(
                        state.client.clone(),
                        tokens.clone(),
                        &upstream.endpoints().to_string(),
                    );
                    follow::feed(listener, feed);
                }
            }
        }
    }
    let mut service = Service::new(
        "gateway",
        router(state).layer(Extension(verifier)),
        ops::openapi(),
    );
    service.body_limit = forward::BODY_LIMIT;
    Ok(Server::bind(&http, service).await?)
}

/// The gateway's routes, without the server's standard endpoints.
pub fn router(state: AppState) -> axum::Router {
    let web = web::routes(state.config.web_dir.clone());
    let admission = admission::Admission::new(state.config.admission);
    routes::public_routes()
        .merge(ops::routes())
        .merge(web)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            admission,
            admission::admit,
        ))
}
