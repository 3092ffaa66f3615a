//! The transport seam: how events leave a producer and reach a consumer.
//!
//! Two traits, one per side, so a broker can replace the embedded `feed`
//! without touching the outbox, the relay's ordering, the inbox or any
//! service: a [`Publisher`] receives the relay's positioned events (with
//! the `feed` transport the outbox already *is* the published log, so
//! [`FeedPublisher`] has nothing to hand over); a [`Source`] gives a
//! consumer the events after its cursor ([`HttpFeed`] long-polls the
//! producer's `GET /events`). The NATS JetStream transport ([`super::nats`])
//! publishes to a stream and consumes through durable consumers instead.
//! [`Transport`] is what a service holds: which of the two it runs on.

use std::time::Duration;

use contracts::events::{FeedEntry, FeedPage};

use super::BoxFuture;
use super::nats::Nats;
use super::relay::Outbox;
use crate::auth::ServiceTokens;
use crate::client::HttpClient;
use crate::config::EventsConfig;
use crate::db::Db;

/// The transport a service's events travel on, chosen by its settings.
#[derive(Clone)]
pub enum Transport {
    /// The embedded feed: the outbox is served at `GET /events`.
    Feed,
    /// NATS JetStream.
    Nats(Nats),
}

impl Transport {
    /// The transport `config` names, connected, for `service`.
    pub async fn connect(config: &EventsConfig, service: &str) -> anyhow::Result<Self> {
        Ok(match config {
            EventsConfig::Feed => Transport::Feed,
            EventsConfig::Nats { url, prefix } => {
                Transport::Nats(Nats::connect(url, prefix, service).await?)
            }
        })
    }

    /// This service's outbox, published on this transport.
    pub fn outbox(&self, db: Db) -> Outbox {
        match self {
            Transport::Feed => Outbox::new(db),
            Transport::Nats(nats) => {
                Outbox::with_publisher(db, std::sync::Arc::new(nats.publisher()))
            }
        }
    }

    /// The transport's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Feed => "feed",
            Transport::Nats(_) => "nats",
        }
    }
}

/// Where the relay hands positioned events.
pub trait Publisher: Send + Sync + 'static {
    /// Publishes `entries` (in position order); `Ok` means durably
    /// published, and the relay marks them so.
    fn publish<'a>(&'a self, entries: &'a [FeedEntry]) -> BoxFuture<'a, anyhow::Result<()>>;

    /// The transport's name, for metrics and logs.
    fn name(&self) -> &'static str;

    /// Whether positioned events must be handed over at all. `false` when
    /// the outbox itself is what consumers read (the feed): an event is
    /// published the moment it has a position, and the relay marks it so
    /// in the same statement, without a publishing pass.
    fn hands_over(&self) -> bool {
        true
    }
}

/// The embedded transport's publisher: the outbox is served as the feed,
/// so a positioned event is published.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeedPublisher;

impl Publisher for FeedPublisher {
    fn publish<'a>(&'a self, _entries: &'a [FeedEntry]) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn name(&self) -> &'static str {
        "feed"
    }

    fn hands_over(&self) -> bool {
        false
    }
}

/// Where a consumer reads a producer's events.
pub trait Source: Send + Sync + 'static {
    /// Up to `limit` events after position `after`, waiting up to `wait`
    /// for the first when there are none yet.
    fn fetch(
        &self,
        after: i64,
        limit: i64,
        wait: Duration,
    ) -> BoxFuture<'_, anyhow::Result<FeedPage>>;
}

/// A producer's feed over HTTP, read with a service token.
#[derive(Clone)]
pub struct HttpFeed {
    client: HttpClient,
    tokens: ServiceTokens,
    /// The producer's replicas (any of them serves the same feed).
    endpoints: crate::client::Endpoints,
}

impl HttpFeed {
    /// The feed of the producer at base URL `url` (or several replicas'
    /// URLs, comma-separated).
    pub fn new(client: HttpClient, tokens: ServiceTokens, url: &str) -> Self {
        Self {
            client,
            tokens,
            endpoints: crate::client::Endpoints::parse(url),
        }
    }
}

impl Source for HttpFeed {
    fn fetch(
        &self,
        after: i64,
        limit: i64,
        wait: Duration,
    ) -> BoxFuture<'_, anyhow::Result<FeedPage>> {
        Box::pin(async move {
            let token = self
                .tokens
                .token()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let page = self
                .client
                .get(&self.endpoints.url(&format!(
                    "/events?after={after}&limit={limit}&wait={}",
                    wait.as_millis()
                )))
                .timeout(wait + Duration::from_secs(5))
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            Ok(page)
        })
    }
}
