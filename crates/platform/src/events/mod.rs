//! Events: the transactional outbox, its relay, the `feed` transport and
//! idempotent consumers.
//!
//! A service writes a state change and the events it causes in **one**
//! local transaction ([`enqueue`] into the `outbox` table). The [`Relay`]
//! then gives committed events their feed position — strictly increasing,
//! without gaps, in commit order — and hands them to the transport. With the
//! embedded `feed` transport the outbox *is* the published log: the
//! producer serves it as an ordered long-poll feed (`GET /events`, see
//! [`feed`]), and each consumer keeps its own cursor in its own database.
//! A consumer ([`consumer`]) applies each event in a transaction that also
//! records the event id (inbox) and advances the cursor, so an event is
//! applied exactly once however often it is delivered; an event that keeps
//! failing is parked as a dead letter and the rest keeps flowing.
//!
//! Architecture invariant: no event is visible to anyone unless the state
//! change that caused it committed, and no committed event is lost.

pub mod consumer;
pub mod dead_letters;
pub mod feed;
pub mod nats;
mod relay;
pub mod transport;

use std::future::Future;
use std::pin::Pin;

use contracts::audit::EventsAudit;
use contracts::events::{CloudEvent, Event};
use sqlx::AnyConnection;

pub use relay::{Outbox, Relay, backlog};

/// A boxed, sendable future (handlers are trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The tables of the outbox, inbox, consumer cursors and dead letters.
/// Every service that produces or consumes events adds this migration and
/// [`INDEXES_MIGRATION`].
pub const MIGRATION: crate::db::MigrationSource = (900, "events", include_str!("events.sql"));

/// The outbox's index of unpublished events (a migration of its own: a
/// database migrated by an earlier build keeps its checksum for 900).
pub const INDEXES_MIGRATION: crate::db::MigrationSource =
    (901, "outbox indexes", include_str!("indexes.sql"));

/// Writes `payload` to the outbox inside the caller's transaction; it is
/// published only if that transaction commits. Carries the current trace.
pub async fn enqueue<E: Event>(
    conn: &mut AnyConnection,
    payload: &E,
) -> Result<CloudEvent, sqlx::Error> {
    let traceparent = crate::context::current().map(|c| crate::context::traceparent(&c.trace_id));
    let event = CloudEvent::new(payload, crate::time::now(), traceparent);
    let json = serde_json::to_string(&event).expect("a CloudEvent always serialises");
    sqlx::query(
        "INSERT INTO outbox (id, type, subject, event, created_at, attempts) \
         VALUES ($1, $2, $3, $4, $5, 0)",
    )
    .bind(&event.id)
    .bind(&event.kind)
    .bind(event.subject.as_deref())
    .bind(json)
    .bind(&event.time)
    .execute(&mut *conn)
    .await?;
    Ok(event)
}

/// The events part of a service's audit (`contracts::audit`): its
/// outbox backlog and the dead letters still parked.
pub async fn audit(db: &crate::db::Db) -> Result<EventsAudit, sqlx::Error> {
    let (outbox_unpublished, outbox_oldest_seconds) = backlog(db).await?;
    let mut dead_letters = dead_letters::all(db).await?;
    dead_letters.retain(|d| d.redriven_at.is_none());
    Ok(EventsAudit {
        outbox_unpublished,
        outbox_oldest_seconds,
        dead_letters,
    })
}

#[cfg(test)]
mod tests;
