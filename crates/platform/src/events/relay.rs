//! The relay: orders committed outbox events into the feed, then hands
//! them to the transport.
//!
//! Positions are assigned to committed, unpositioned events under the
//! write lock (SQLite's single writer; a PostgreSQL advisory lock), so two
//! replicas' relays never hand out the same position. Where the outbox is
//! the feed, positioning is publishing. Otherwise the [`Publisher`] gets
//! the events in position order and they are marked published once it
//! has them: on PostgreSQL in the very transaction that positions them
//! (committed only after the hand-over), on SQLite in a pass of its own. A
//! failure is retried on the next pass with the error recorded. Feed
//! readers waiting for news are woken through a watch channel.
//! `outbox_unpublished` and `outbox_oldest_unpublished_seconds` say how far
//! behind the transport is.

use std::sync::Arc;
use std::time::Duration;

use contracts::events::{CloudEvent, FeedEntry};
use tokio::sync::{Notify, watch};

use super::transport::{FeedPublisher, Publisher};
use crate::db::{Backend, Db};

/// The feed's head: the highest position handed out.
macro_rules! head {
    () => {
        "SELECT COALESCE(MAX(position), 0) FROM outbox"
    };
}

/// A service's outbox: wake the relay after committing events, and watch
/// the feed's head.
#[derive(Clone)]
pub struct Outbox {
    db: Db,
    wake: Arc<Notify>,
    head: watch::Sender<i64>,
    publisher: Arc<dyn Publisher>,
}

/// How often the relay looks for events even when not woken (events
/// committed by another replica, or before a crash).
const TICK: Duration = Duration::from_millis(200);
/// The most events a pass positions, and publishes (the `LIMIT` of both
/// statements).
const BATCH: usize = 500;
/// How long the relay lingers after a wake-up before its pass.
const LINGER: Duration = Duration::from_millis(2);
/// The longest the relay waits between attempts while failing.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Outbox {
    /// An outbox published by the embedded `feed` transport.
    pub fn new(db: Db) -> Self {
        Self::with_publisher(db, Arc::new(FeedPublisher))
    }

    /// An outbox whose events the relay hands to `publisher`.
    pub fn with_publisher(db: Db, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            db,
            wake: Arc::new(Notify::new()),
            head: watch::Sender::new(0),
            publisher,
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
        let (stop, mut stopping) = watch::channel(false);
        let task = tokio::spawn(async move {
            if !outbox.publisher.hands_over()
                && let Err(e) = outbox.mark_fed_published().await
            {
                tracing::warn!(error = %e, "cannot mark the feed's earlier events published");
            }
            // After a failure the relay waits longer each time (jittered,
            // up to MAX_BACKOFF), so a dead transport or database is not
            // hammered; a success resets the wait to the normal tick.
            let mut backoff = TICK;
            // A stop is heeded only between passes: a batch handed to the
            // transport is always marked published before the relay ends.
            while !*stopping.borrow() {
                // Every commit announced so far is visible to this pass:
                // take the announcements with it, so they do not start an
                // empty pass after it (each commit notifies, and under load
                // many land while a pass runs that it takes along).
                let _ = futures_util::FutureExt::now_or_never(outbox.wake.notified());
                let passed = outbox.relay_once().await;
                let wait = match &passed {
                    Ok(_) => {
                        backoff = TICK;
                        TICK
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), transport = outbox.publisher.name(),
                            "outbox relay failed; retrying");
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0)
                    }
                };
                tokio::select! {
                    () = outbox.wake.notified(), if passed.is_ok() => {
                        // Let the commits right behind this one join the
                        // pass: under load one pass carries many events.
                        tokio::time::sleep(LINGER).await;
                    }
                    () = tokio::time::sleep(wait) => {}
                    _ = stopping.changed() => {}
                }
            }
        });
        Relay { task, stop }
    }

    /// One pass: positions every committed, unpositioned event (up to a
    /// batch) and, where the transport takes events over, hands them to it;
    /// returns the head. Fails if the transport refused the batch (the
    /// failure is recorded on its events, and the next pass tries again).
    ///
    /// - The feed: positioning is publishing, one statement marks both.
    /// - Another transport on PostgreSQL: one transaction under the relay's
    ///   advisory lock positions the batch, marks it published, hands it
    ///   over, and commits only once the transport has it. Replicas take
    ///   turns, so the transport gets events in position order; a failure
    ///   or a crash before the commit leaves them unpositioned, and they go
    ///   out again with the same ids (the transport drops what it had by
    ///   event id), at the same positions unless an event with an earlier
    ///   id committed meanwhile. Events an earlier version positioned but
    ///   never published go out first in the same pass.
    /// - Another transport on SQLite: the positioning statement, then a
    ///   publishing pass ([`Outbox::publish_once`]); the file's one
    ///   connection is never held while the transport answers.
    pub async fn relay_once(&self) -> anyhow::Result<i64> {
        let hands_over = self.publisher.hands_over();
        let postgres = Backend::of(&self.db) == Backend::Postgres;
        let positioned: Vec<i64> = match (postgres, hands_over) {
            (true, true) => self.position_and_hand_over().await?,
            (true, false) => {
                let mut tx = crate::db::begin_write(&self.db).await?;
                sqlx::query(LOCK).execute(&mut *tx).await?;
                let positioned = sqlx::query_scalar(POSITION_AND_PUBLISH)
                    .bind(crate::time::now())
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                positioned
            }
            // SQLite has one writer and only this process positions its
            // file: the statement is the whole pass, its own transaction
            // (four hand-offs to the connection's thread were one).
            (false, false) => {
                sqlx::query_scalar(POSITION_AND_PUBLISH)
                    .bind(crate::time::now())
                    .fetch_all(&self.db)
                    .await?
            }
            (false, true) => sqlx::query_scalar(POSITION).fetch_all(&self.db).await?,
        };
        // Nothing positioned: on SQLite the head is where this process
        // left it; on PostgreSQL another replica may have moved it.
        let known = *self.head.borrow();
        let head = match positioned.iter().max() {
            Some(&last) => last,
            None if !postgres && known > 0 => known,
            None => sqlx::query_scalar(head!()).fetch_one(&self.db).await?,
        };
        if !hands_over && !positioned.is_empty() {
            // In the feed, not yet announced: readers find it on their
            // next look.
            crate::failpoint::hit("relay.published");
        }
        if !positioned.is_empty() {
            metrics::counter!("outbox_events_relayed_total").increment(positioned.len() as u64);
            // More may be waiting beyond this batch.
            if positioned.len() >= BATCH {
                self.notify();
            }
        }
        if !hands_over || postgres {
            // What waits is what the next pass positions: nothing, unless
            // this batch was full.
            metrics::gauge!("outbox_unpublished").set(if positioned.len() >= BATCH {
                BATCH as f64
            } else {
                0.0
            });
            metrics::gauge!("outbox_oldest_unpublished_seconds").set(0.0);
        }
        // Only forward: two passes that overlap (two relays on one
        // outbox) must not leave the head behind what was positioned.
        self.head.send_if_modified(|h| {
            let changed = head > *h;
            *h = (*h).max(head);
            changed
        });
        if hands_over && !postgres {
            // Positioned and announced; the publishing pass may fail
            // without holding the head back.
            self.publish_once().await?;
        }
        Ok(head)
    }
}

impl Outbox {
    /// On PostgreSQL with a transport that takes events over: the batch
    /// positioned, marked published and handed over in one transaction
    /// under the relay's lock, committed once the transport has it (see
    /// [`Outbox::relay_once`]). Four round trips to the database per pass
    /// (`BEGIN`, the lock, the statement, `COMMIT`), where a positioning
    /// transaction and then a publishing one took nine.
    async fn position_and_hand_over(&self) -> anyhow::Result<Vec<i64>> {
        let mut tx = crate::db::begin_write(&self.db).await?;
        sqlx::query(LOCK).execute(&mut *tx).await?;
        let mut batch: Vec<(i64, String, String)> = sqlx::query_as(POSITION_AND_HAND_OVER)
            .bind(crate::time::now())
            .fetch_all(&mut *tx)
            .await?;
        if batch.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // RETURNING answers in no particular order.
        batch.sort_unstable_by_key(|(position, _, _)| *position);
        let entries = batch
            .iter()
            .map(|(position, _, json)| entry(*position, json))
            .collect::<anyhow::Result<Vec<_>>>()?;
        // The lock is held while the transport answers: bounded, so a hung
        // transport cannot hold up every replica's relay.
        let handed = tokio::time::timeout(HAND_OVER_WITHIN, self.publisher.publish(&entries))
            .await
            .unwrap_or_else(|_| {
                Err(anyhow::anyhow!(
                    "the transport did not take the batch within {HAND_OVER_WITHIN:?}"
                ))
            });
        match handed {
            Ok(()) => {
                // Handed over, not committed: the batch goes out again
                // (the transport drops it by event id).
                crate::failpoint::hit("relay.published");
                tx.commit().await?;
                Ok(entries.iter().map(|e| e.position).collect())
            }
            Err(e) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "cannot roll back a refused hand-over; the connection drops it");
                }
                // The refused batch, by id (its new events are unpositioned
                // again).
                let placeholders: Vec<String> =
                    (2..batch.len() + 2).map(|i| format!("${i}")).collect();
                let statement = format!(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $1 WHERE id IN ({})",
                    placeholders.join(", ")
                );
                let mut refused =
                    sqlx::query(sqlx::AssertSqlSafe(statement)).bind(format!("{e:#}"));
                for (_, id, _) in &batch {
                    refused = refused.bind(id.as_str());
                }
                self.record_refusal(refused).await?;
                if let Ok((pending, oldest)) = backlog(&self.db).await {
                    metrics::gauge!("outbox_unpublished").set(pending as f64);
                    metrics::gauge!("outbox_oldest_unpublished_seconds").set(oldest.unwrap_or(0.0));
                }
                Err(e)
            }
        }
    }

    /// On the feed, marks published what has a position but was not
    /// marked: left by a relay that published in a pass of its own (an
    /// earlier version, or one stopped between its two passes). Served by
    /// the feed already; unmarked, it would count as waiting forever.
    async fn mark_fed_published(&self) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE outbox SET published_at = $1 \
             WHERE position IS NOT NULL AND published_at IS NULL",
        )
        .bind(crate::time::now())
        .execute(&self.db)
        .await
        .map(|_| ())
    }

    /// Hands positioned, unpublished events to the publisher, in position
    /// order, and marks them published; returns how many. The publishing
    /// pass on SQLite, whose one process owns the file (on PostgreSQL the
    /// positioning transaction hands over itself).
    pub(crate) async fn publish_once(&self) -> anyhow::Result<usize> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as(UNPUBLISHED).fetch_all(&self.db).await?;
        // A batch short of the limit is the whole backlog (but for events
        // committed since the positions were handed out, which the next
        // pass counts); only a full batch needs the count.
        let (pending, oldest) = if rows.len() < BATCH {
            let oldest = rows.iter().map(|(_, _, at)| at.as_str()).min();
            (rows.len() as i64, oldest.map(age_seconds))
        } else {
            backlog(&self.db).await?
        };
        metrics::gauge!("outbox_unpublished").set(pending as f64);
        metrics::gauge!("outbox_oldest_unpublished_seconds").set(oldest.unwrap_or(0.0));
        if rows.is_empty() {
            return Ok(0);
        }
        let entries = rows
            .iter()
            .map(|(position, json, _)| entry(*position, json))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (first, last) = (entries[0].position, entries[entries.len() - 1].position);
        match self.publisher.publish(&entries).await {
            Ok(()) => {
                // Published, not yet marked: the batch goes out again.
                crate::failpoint::hit("relay.published");
                sqlx::query(
                    "UPDATE outbox SET published_at = $1 \
                     WHERE position >= $2 AND position <= $3 AND published_at IS NULL",
                )
                .bind(crate::time::now())
                .bind(first)
                .bind(last)
                .execute(&self.db)
                .await?;
                Ok(entries.len())
            }
            Err(e) => {
                self.record_refusal(
                    sqlx::query(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = $1 \
                         WHERE position >= $2 AND position <= $3",
                    )
                    .bind(format!("{e:#}"))
                    .bind(first)
                    .bind(last),
                )
                .await?;
                Err(e)
            }
        }
    }

    /// Records that the transport refused a batch: `on_its_events` counts
    /// the attempt and keeps the error on each of the batch's events.
    async fn record_refusal(
        &self,
        on_its_events: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<(), sqlx::Error> {
        on_its_events.execute(&self.db).await?;
        metrics::counter!("outbox_publish_failures_total", "transport" => self.publisher.name())
            .increment(1);
        Ok(())
    }
}

/// The outbox event stored as `json`, at `position` in the feed.
fn entry(position: i64, json: &str) -> anyhow::Result<FeedEntry> {
    serde_json::from_str::<CloudEvent>(json)
        .map(|event| FeedEntry { position, event })
        .map_err(|e| anyhow::anyhow!("outbox event {position} is not an event: {e}"))
}

/// On PostgreSQL, replicas' relays take turns under this lock, and the
/// pass's statements reach rows only through plain index scans.
///
/// The outbox is a queue there: each event positioned leaves the version
/// it replaced dead, with its index entries, until a vacuum (which may be
/// rare, or off), and the table's statistics are those of when it was
/// small. Left to itself the planner walked the whole table (a hash join
/// over a sequential scan, planned when it held a few hundred rows) or
/// every dead version's heap page (a bitmap scan), so each pass cost more
/// than the last: half of PostgreSQL's time at 40 orders/s after only
/// 20 s (docs/PERFORMANCE.md, "The outbox is a queue"). A plain index
/// scan reads what waits, and marks the dead entries it passes so the next
/// pass skips them. Set for this transaction only, in the lock's own round
/// trip.
pub(crate) const LOCK: &str = "SELECT pg_advisory_xact_lock(727274), \
     set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)";

/// The next positions after the head, in the events' id (time) order, for
/// a batch of unpositioned events: the whole batch in one statement (a
/// statement is a round trip to the database; one per event was most of a
/// pass). The head is read by the statement itself: an uncorrelated
/// subquery is evaluated once, before any row changes, on both databases.
/// The others also mark them published at `$1`: where positioning is
/// publishing, or in the transaction that hands them over.
macro_rules! position {
    ($also:literal, $returning:literal) => {
        concat!(
            "UPDATE outbox SET position = (",
            head!(),
            ") + batch.n",
            $also,
            " FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM \
               (SELECT id FROM outbox WHERE position IS NULL ORDER BY id LIMIT 500) AS next) AS batch \
             WHERE outbox.id = batch.id RETURNING outbox.position",
            $returning
        )
    };
}
const POSITION: &str = position!("", "");
const POSITION_AND_PUBLISH: &str = position!(", published_at = $1", "");
/// PostgreSQL only: the next batch positioned and marked published at `$1`,
/// and before it what an earlier version positioned but never published
/// (it published in a pass of its own, and stopped between the two), so
/// those go out first, in the same pass. Both halves read the same
/// snapshot and change disjoint rows.
pub(crate) const POSITION_AND_HAND_OVER: &str = concat!(
    "WITH leftovers AS (UPDATE outbox SET published_at = $1 WHERE id IN \
       (SELECT id FROM outbox WHERE position IS NOT NULL AND published_at IS NULL \
        ORDER BY position LIMIT 500) \
       RETURNING position, id, event), \
     fresh AS (",
    position!(", published_at = $1", ", outbox.id, outbox.event"),
    ") SELECT position, id, event FROM leftovers \
     UNION ALL SELECT position, id, event FROM fresh"
);

/// The next events to publish, in feed order. Both this and [`BACKLOG`]
/// read only the index of unpublished events (`indexes.sql`): the outbox
/// keeps every event, and a pass must cost what waits, not what is kept.
pub(crate) const UNPUBLISHED: &str = "SELECT position, event, created_at FROM outbox \
     WHERE position IS NOT NULL AND published_at IS NULL ORDER BY position LIMIT 500";
pub(crate) const BACKLOG: &str =
    "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE published_at IS NULL";

/// How many of the outbox's events are not published yet, and how many
/// seconds the oldest of them has waited.
pub async fn backlog(db: &Db) -> Result<(i64, Option<f64>), sqlx::Error> {
    let (pending, oldest): (i64, Option<String>) = sqlx::query_as(BACKLOG).fetch_one(db).await?;
    Ok((pending, oldest.as_deref().map(age_seconds)))
}

/// Seconds since the RFC 3339 instant `at` (0 if it does not parse).
fn age_seconds(at: &str) -> f64 {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map(|t| {
            (time::OffsetDateTime::now_utc() - t)
                .as_seconds_f64()
                .max(0.0)
        })
        .unwrap_or(0.0)
}

/// The running relay task; dropping it does not stop it, [`Relay::stop`] does.
pub struct Relay {
    task: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

/// The longest a graceful stop waits for the relay's current pass.
const FINISH_WITHIN: Duration = Duration::from_secs(5);
/// The longest a pass on PostgreSQL waits for the transport to take a
/// batch, holding the relay's lock: within [`FINISH_WITHIN`], so a
/// graceful stop still sees the pass end and record the refusal.
const HAND_OVER_WITHIN: Duration = Duration::from_secs(4);

impl Relay {
    /// Stops it at once, wherever it is (a batch published but not yet
    /// marked is published again by the next relay: transports and
    /// consumers are idempotent).
    pub fn stop(self) {
        self.task.abort();
    }

    /// Stops it gracefully: the current pass (a batch being positioned or
    /// published) finishes and is recorded, then the relay ends; after
    /// [`FINISH_WITHIN`] it is stopped as by [`Relay::stop`].
    pub async fn finish(mut self) {
        self.stop.send_replace(true);
        if tokio::time::timeout(FINISH_WITHIN, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("the outbox relay did not finish its pass in time; stopping it");
            self.task.abort();
        }
    }
}
