//! Idempotent consumers.
//!
//! A [`Consumer`] reads a producer's feed from its stored cursor and applies
//! each event with a [`Handler`] inside one transaction that also records
//! the event id in the inbox and advances the cursor. So an event is
//! applied once: a redelivery finds its id in the inbox, and a crash before
//! the commit leaves the cursor where it was. A handler that fails is
//! retried with back-off; after `max_attempts` the event is parked in
//! `dead_letters` (in the same transaction that moves the cursor past it)
//! and the feed keeps flowing. On JetStream the durable consumer's acks are
//! the position, so no cursor is stored there.

use std::time::Duration;

use contracts::events::CloudEvent;
use sqlx::AnyConnection;

use super::BoxFuture;
use super::transport::{HttpFeed, Source, Transport};
use crate::auth::ServiceTokens;
use crate::client::HttpClient;
use crate::db::{Backend, Db};

/// Applies one event; runs inside the consumer's transaction.
pub trait Handler: Send + Sync + 'static {
    /// Which event types this handler wants; the rest only move the cursor.
    fn wants(&self, kind: &str) -> bool;

    fn handle<'a>(
        &'a self,
        tx: &'a mut AnyConnection,
        event: &'a CloudEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Called after the transaction that applied `event` committed: the
    /// place to start work that must see the effect (e.g. executing the
    /// commands it caused).
    fn committed(&self, _event: &CloudEvent) {}
}

/// Where and how to consume.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The producing service (the cursor's key), e.g. `orders`.
    pub source: String,
    /// The producer's base URL.
    pub url: String,
    pub batch: i64,
    /// How long one feed request waits for news.
    pub wait: Duration,
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// On JetStream: how long a message delivered but never settled (its
    /// consumer crashed) waits before it is delivered again.
    pub ack_wait: Duration,
}

impl ConsumerConfig {
    pub fn new(source: &str, url: &str) -> Self {
        Self {
            source: source.to_owned(),
            url: url.trim_end_matches('/').to_owned(),
            batch: 100,
            wait: Duration::from_secs(10),
            max_attempts: 8,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            ack_wait: super::nats::ACK_WAIT,
        }
    }
}

impl ConsumerConfig {
    /// How long to wait after failed attempt `attempt` (from 1) of one
    /// event: doubling from `first_backoff`, capped at `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.first_backoff
            .saturating_mul(1 << attempt.clamp(1, 16).saturating_sub(1))
            .min(self.max_backoff)
    }
}

/// What happened to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Already in the inbox.
    Duplicate,
    /// Not a type the handler wants.
    Skipped,
    DeadLettered,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Skipped => "skipped",
            Outcome::DeadLettered => "dead_lettered",
        }
    }
}

pub struct Consumer<H, S = HttpFeed> {
    db: Db,
    source: S,
    pub(super) config: ConsumerConfig,
    handler: H,
    /// On SQLite, where the last poll left the cursor: this process is the
    /// only consumer of its file, so the next poll starts there without
    /// reading it. `None` (read it) after a failed poll, and always on
    /// PostgreSQL, where replicas share the cursor.
    reached: std::sync::Mutex<Option<Reached>>,
    /// Whether this process owns its cursor (SQLite, one process per file).
    owns_cursor: bool,
    /// Whether the cursor is stored at all: on the feed it is where the
    /// consumer resumes; on JetStream the durable consumer's acks are, so
    /// an unwanted event is only acked and an applied one moves nothing
    /// but the inbox.
    stores_cursor: bool,
}

/// Where a consumer has read to, and how much of that its stored cursor
/// says.
#[derive(Clone, Copy, Debug)]
struct Reached {
    read: i64,
    stored: i64,
}

impl<H: Handler> Consumer<H, HttpFeed> {
    /// Consumes the producer's feed at `config.url` over HTTP.
    pub fn new(
        db: Db,
        client: HttpClient,
        tokens: ServiceTokens,
        config: ConsumerConfig,
        handler: H,
    ) -> Self {
        let source = HttpFeed::new(client, tokens, &config.url);
        Self::with_source(db, source, config, handler)
    }
}

impl<H: Handler, S: Source> Consumer<H, S> {
    /// Consumes `source` (any transport).
    pub fn with_source(db: Db, source: S, config: ConsumerConfig, handler: H) -> Self {
        Self {
            owns_cursor: Backend::of(&db) == Backend::Sqlite,
            stores_cursor: true,
            db,
            source,
            config,
            handler,
            reached: std::sync::Mutex::new(None),
        }
    }

    /// Consumes forever (until the task is aborted).
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { self.run().await })
    }

    /// Consumes forever on a task over `transport` (the feed this consumer
    /// was built with, or NATS JetStream), and hands back the consumer
    /// itself (for the dead-letter operations) and the task.
    pub fn start_on(
        self,
        transport: &Transport,
    ) -> (std::sync::Arc<Self>, tokio::task::JoinHandle<()>) {
        match transport {
            Transport::Feed => self.start(),
            Transport::Nats(nats) => {
                let this = std::sync::Arc::new(Self {
                    stores_cursor: false,
                    ..self
                });
                let (running, nats) = (this.clone(), nats.clone());
                let task = tokio::spawn(async move { running.run_jetstream(&nats).await });
                (this, task)
            }
        }
    }

    /// Consumes forever on a task, and hands back the consumer itself (for
    /// the dead-letter operations, [`super::dead_letters`]) and the task.
    pub fn start(self) -> (std::sync::Arc<Self>, tokio::task::JoinHandle<()>) {
        let this = std::sync::Arc::new(self);
        let running = this.clone();
        let task = tokio::spawn(async move { running.run().await });
        (this, task)
    }

    /// Applies this source's parked events again, oldest first, each once:
    /// one that applies (or was applied meanwhile) is marked redriven; one
    /// that fails again stays parked with its new error.
    pub async fn redrive(&self) -> anyhow::Result<super::dead_letters::Redriven> {
        let parked: Vec<(String, Option<i64>, String)> = sqlx::query_as(
            "SELECT event_id, position, event FROM dead_letters \
             WHERE source = $1 AND redriven_at IS NULL ORDER BY dead_at, event_id",
        )
        .bind(&self.config.source)
        .fetch_all(&self.db)
        .await?;
        let mut report = super::dead_letters::Redriven::default();
        for (event_id, position, json) in parked {
            let event: CloudEvent = serde_json::from_str(&json)?;
            match self.apply(position.unwrap_or(0), &event).await {
                Ok(_) => {
                    sqlx::query("UPDATE dead_letters SET redriven_at = $1 WHERE event_id = $2")
                        .bind(crate::time::now())
                        .bind(&event_id)
                        .execute(&self.db)
                        .await?;
                    report.applied.push(event_id);
                }
                Err(e) => {
                    sqlx::query("UPDATE dead_letters SET error = $1, attempts = attempts + 1 WHERE event_id = $2")
                        .bind(format!("{e:#}"))
                        .bind(&event_id)
                        .execute(&self.db)
                        .await?;
                    report.still_failing.push(event_id);
                }
            }
        }
        self.count_parked().await;
        Ok(report)
    }

    /// Exports how many of this source's events are parked right now.
    pub(super) async fn count_parked(&self) {
        let parked: Result<i64, _> = sqlx::query_scalar(
            "SELECT COUNT(*) FROM dead_letters WHERE source = $1 AND redriven_at IS NULL",
        )
        .bind(&self.config.source)
        .fetch_one(&self.db)
        .await;
        if let Ok(parked) = parked {
            metrics::gauge!("events_dead_letters_parked", "source" => self.config.source.clone())
                .set(parked as f64);
        }
    }

    /// The source this consumer reads.
    pub fn source(&self) -> &str {
        &self.config.source
    }

    async fn run(&self) {
        self.count_parked().await;
        let mut backoff = self.config.first_backoff;
        // The first page without waiting: the lag is known (and exported)
        // from the start, not only after the first long poll.
        let mut wait = Duration::ZERO;
        loop {
            match self.poll(wait).await {
                Ok(_) => {
                    backoff = self.config.first_backoff;
                    wait = self.config.wait;
                }
                Err(e) => {
                    tracing::debug!(source = %self.config.source, error = %format!("{e:#}"), "feed unavailable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// The stored cursor for this source.
    pub async fn cursor(&self) -> Result<i64, sqlx::Error> {
        cursor(&self.db, &self.config.source).await
    }

    /// Fetches one page (waiting for news) and applies it; returns how many
    /// entries it read.
    pub async fn poll_once(&self) -> anyhow::Result<usize> {
        self.poll(self.config.wait).await
    }

    async fn poll(&self, wait: Duration) -> anyhow::Result<usize> {
        let known = *self.reached.lock().expect("never poisoned");
        let from = match known {
            Some(reached) => reached,
            None => {
                let stored = self.cursor().await?;
                Reached {
                    read: stored,
                    stored,
                }
            }
        };
        let polled = self.poll_after(from, wait).await;
        let reached = match &polled {
            Ok((_, reached)) if self.owns_cursor => Some(*reached),
            _ => None,
        };
        *self.reached.lock().expect("never poisoned") = reached;
        polled.map(|(read, _)| read)
    }

    /// Fetches and applies the page after `from.read`; answers how many
    /// entries it read and where that leaves the consumer.
    async fn poll_after(&self, from: Reached, wait: Duration) -> anyhow::Result<(usize, Reached)> {
        let page = self
            .source
            .fetch(from.read, self.config.batch, wait)
            .await?;
        // Events this consumer does not want (most of a producer's feed)
        // cost no transaction of their own: the next applied event's cursor
        // move covers them. A page that ends with them moves the stored
        // cursor once; on SQLite only once it is a batch behind (the
        // consumer remembers where it read to, and a crash re-reads at most
        // a batch of them, skipped again).
        let mut reached = from;
        let mut skipped_to = None;
        for entry in &page.entries {
            reached.read = reached.read.max(entry.position);
            if !self.handler.wants(&entry.event.kind) {
                self.count(&entry.event, Outcome::Skipped);
                skipped_to = Some(entry.position);
                continue;
            }
            skipped_to = None;
            self.apply_with_retries(entry.position, &entry.event)
                .await?;
            reached.stored = reached.stored.max(entry.position);
        }
        if let Some(position) = skipped_to {
            let behind = position - reached.stored;
            if !self.owns_cursor || behind >= self.config.batch {
                let mut tx = crate::db::begin_write(&self.db).await?;
                advance(&mut tx, &self.config.source, position).await?;
                tx.commit().await?;
                reached.stored = position;
            }
        }
        metrics::gauge!("consumer_lag_events", "source" => self.config.source.clone())
            .set((page.head - page.last_position).max(0) as f64);
        Ok((page.entries.len(), reached))
    }

    async fn apply_with_retries(
        &self,
        position: i64,
        event: &CloudEvent,
    ) -> anyhow::Result<Outcome> {
        let mut attempt = 1;
        loop {
            match self.apply(position, event).await {
                Ok(outcome) => {
                    self.count(event, outcome);
                    return Ok(outcome);
                }
                Err(e) if attempt >= self.config.max_attempts => {
                    tracing::error!(source = %self.config.source, event_id = %event.id, kind = %event.kind, attempts = attempt,
                        error = %format!("{e:#}"), "event parked as a dead letter");
                    self.dead_letter(position, event, &format!("{e:#}"), attempt)
                        .await?;
                    self.count(event, Outcome::DeadLettered);
                    return Ok(Outcome::DeadLettered);
                }
                Err(e) => {
                    tracing::warn!(source = %self.config.source, event_id = %event.id, kind = %event.kind, attempt,
                        error = %format!("{e:#}"), "applying an event failed; retrying");
                    tokio::time::sleep(self.config.backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    pub(super) fn count(&self, event: &CloudEvent, outcome: Outcome) {
        metrics::counter!("events_consumed_total", "source" => self.config.source.clone(),
            "type" => event.kind.clone(), "outcome" => outcome.label())
        .increment(1);
    }

    /// Applies one event exactly once, advancing the stored cursor with it
    /// (where one is stored).
    pub async fn apply(&self, position: i64, event: &CloudEvent) -> anyhow::Result<Outcome> {
        let wanted = self.handler.wants(&event.kind);
        if !wanted && !self.stores_cursor {
            // Nothing to apply and no cursor to move: no transaction.
            return Ok(Outcome::Skipped);
        }
        let mut tx = crate::db::begin_write(&self.db).await?;
        let outcome = if !wanted {
            Outcome::Skipped
        } else if !claim(&mut tx, &event.id, &self.config.source).await? {
            Outcome::Duplicate
        } else {
            self.handler.handle(&mut tx, event).await?;
            Outcome::Applied
        };
        if self.stores_cursor {
            advance(&mut tx, &self.config.source, position).await?;
        }
        tx.commit().await?;
        if outcome == Outcome::Applied {
            // Applied, not yet acknowledged (JetStream) nor followed up.
            crate::failpoint::hit("consumer.applied");
            self.handler.committed(event);
        }
        Ok(outcome)
    }

    pub(super) async fn dead_letter(
        &self,
        position: i64,
        event: &CloudEvent,
        error: &str,
        attempts: u32,
    ) -> anyhow::Result<()> {
        let mut tx = crate::db::begin_write(&self.db).await?;
        sqlx::query(
            "INSERT INTO dead_letters (event_id, source, position, event, error, attempts, dead_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&event.id)
        .bind(&self.config.source)
        .bind(position)
        .bind(serde_json::to_string(event)?)
        .bind(error)
        .bind(i64::from(attempts))
        .bind(crate::time::now())
        .execute(&mut *tx)
        .await?;
        if self.stores_cursor {
            advance(&mut tx, &self.config.source, position).await?;
        }
        tx.commit().await?;
        metrics::counter!("events_dead_letters_total", "source" => self.config.source.clone())
            .increment(1);
        self.count_parked().await;
        Ok(())
    }
}

async fn cursor(db: &Db, source: &str) -> Result<i64, sqlx::Error> {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM consumer_cursors WHERE source = $1")
            .bind(source)
            .fetch_optional(db)
            .await?;
    Ok(position.unwrap_or(0))
}

/// Records `event_id` in the inbox; false if it is there already (applied
/// before). In the applying transaction, before the effect: a failed apply
/// rolls the record back with it, and a concurrent apply of the same event
/// (a replica, a redelivery) waits on the record and then finds it.
async fn claim(
    conn: &mut AnyConnection,
    event_id: &str,
    source: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (event_id, source, handled_at) VALUES ($1, $2, $3) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(source)
    .bind(crate::time::now())
    .execute(&mut *conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

async fn advance(conn: &mut AnyConnection, source: &str, position: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consumer_cursors (source, position, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (source) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at \
         WHERE consumer_cursors.position < excluded.position",
    )
    .bind(source)
    .bind(position)
    .bind(crate::time::now())
    .execute(&mut *conn)
    .await
    .map(|_| ())
}
