//! The relay: orders committed outbox events into the feed.
//!
//! One statement assigns positions to every committed, unpositioned event,
//! continuing from the highest position, in id (time) order. SQLite runs it
//! under its single writer; PostgreSQL takes an advisory lock first, so two
//! replicas' relays never hand out the same position. Feed readers waiting
//! for news are woken through a watch channel.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::db::{Backend, Db};

/// A service's outbox: wake the relay after committing events, and watch
/// the feed's head.
#[derive(Clone)]
pub struct Outbox {
    db: Db,
    wake: Arc<Notify>,
    head: watch::Sender<i64>,
}

/// How often the relay looks for events even when not woken (events
/// committed by another replica, or before a crash).
const TICK: Duration = Duration::from_millis(200);

impl Outbox {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            wake: Arc::new(Notify::new()),
            head: watch::Sender::new(0),
        }
    }

    /// Tells the relay that events were committed.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// The highest position known to this process.
    pub fn head(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// Starts the relay task for this outbox.
    pub fn start_relay(&self) -> Relay {
        let outbox = self.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = outbox.relay_once().await {
                    tracing::warn!(error = %e, "outbox relay failed; retrying");
                }
                tokio::select! {
                    () = outbox.wake.notified() => {}
                    () = tokio::time::sleep(TICK) => {}
                }
            }
        });
        Relay { task }
    }

    /// Positions every committed, unpositioned event; returns the head.
    pub async fn relay_once(&self) -> Result<i64, sqlx::Error> {
        // Hold the write lock while reading the head: an immediate
        // transaction on SQLite; on PostgreSQL an advisory lock, so replicas'
        // relays take turns.
        let mut tx = crate::db::begin_write(&self.db).await?;
        if Backend::of(&self.db) == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(727274)")
                .execute(&mut *tx)
                .await?;
        }
        let pending: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM outbox WHERE position IS NULL ORDER BY id LIMIT 500",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM outbox")
            .fetch_one(&mut *tx)
            .await?;
        for id in &pending {
            head += 1;
            sqlx::query("UPDATE outbox SET position = $1 WHERE id = $2")
                .bind(head)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if !pending.is_empty() {
            metrics::counter!("outbox_events_relayed_total").increment(pending.len() as u64);
            // More may be waiting beyond this batch.
            if pending.len() == 500 {
                self.notify();
            }
        }
        self.head.send_if_modified(|h| {
            let changed = *h != head;
            *h = head;
            changed
        });
        Ok(head)
    }
}

/// The running relay task; dropping it does not stop it, [`Relay::stop`] does.
pub struct Relay {
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub fn stop(self) {
        self.task.abort();
    }
}
