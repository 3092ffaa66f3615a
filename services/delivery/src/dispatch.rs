//! The dispatcher: gives each pending delivery, oldest first, the nearest
//! available courier who holds no other delivery.
//!
//! It runs as a background task, woken when there may be new work (a new
//! delivery, a courier becoming available or free again) and on a periodic
//! tick, so a delivery that found no courier is retried without anyone
//! having to remember it ("dispatch retries").
//!
//! Invariant: one assignment is one write transaction: a conditional update
//! (`WHERE status = 'PENDING'` and the courier still available) and the
//! `delivery.assigned` event commit together or not at all. Two
//! dispatchers (replicas on one PostgreSQL database, or an old and a new
//! process) cannot assign one delivery twice, because only one conditional
//! update matches; nor give one courier two deliveries, because the partial
//! unique index refuses the second, and the loser tries its next courier.

use std::sync::Arc;
use std::time::Duration;

use contracts::delivery::{DeliveryAssigned, DeliveryStatus};
use contracts::{OrderId, UserId};
use platform::Db;
use platform::db::{begin_write, is_unique_violation};
use platform::events::{Outbox, enqueue};
use tokio::sync::Notify;

use crate::domain::{Candidate, nearest_first, travel_time};
use crate::store::{self, Pending};

/// The most pending deliveries one round looks at; the rest wait for the
/// next round, which follows at once when this one assigned anything.
const BATCH: i64 = 200;

/// How long the dispatcher waits after a wake-up before it looks. The
/// orders consumer wakes it from inside the transaction that creates the
/// delivery, so looking at once could miss that delivery; the pause lets
/// the commit land and gathers a burst of wake-ups into one round.
/// Correctness never depends on it: the tick finds whatever a round missed.
const SETTLE: Duration = Duration::from_millis(20);

pub(crate) struct Dispatcher {
    pub(crate) db: Db,
    pub(crate) outbox: Outbox,
    pub(crate) wake: Arc<Notify>,
    pub(crate) interval: Duration,
    pub(crate) speed_kmh: f64,
}

/// What one attempt to assign a delivery to a courier found.
enum Attempt {
    Assigned,
    /// The courier just took another delivery or went unavailable.
    CourierGone,
    /// The delivery is no longer pending (cancelled, or assigned elsewhere).
    DeliveryGone,
}

impl Dispatcher {
    /// Runs rounds until the task is aborted.
    pub(crate) fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.dispatch_once().await {
                    // A full batch may leave more behind: go again at once.
                    Ok(Round { assigned, seen }) if assigned > 0 && seen as i64 == BATCH => {
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "dispatch round failed; retrying");
                    }
                }
                tokio::select! {
                    () = self.wake.notified() => tokio::time::sleep(SETTLE).await,
                    () = tokio::time::sleep(self.interval) => {}
                }
            }
        })
    }

    /// One round: assigns what the free couriers can take.
    async fn dispatch_once(&self) -> anyhow::Result<Round> {
        // The couriers first: when every one is busy (the usual case under
        // load, with deliveries piling up), a round reads nothing else,
        // where it read a batch of pending deliveries to assign none.
        let mut free = store::free_couriers(&self.db).await?;
        if free.is_empty() {
            return Ok(Round::default());
        }
        let pending = store::pending(&self.db, BATCH).await?;
        let mut assigned = 0;
        for delivery in &pending {
            if free.is_empty() {
                break;
            }
            match self.assign_nearest(delivery, &mut free).await {
                Ok(true) => assigned += 1,
                Ok(false) => {}
                // One bad delivery must not hold up the others.
                Err(e) => {
                    tracing::warn!(delivery_id = %delivery.id, error = %format!("{e:#}"), "cannot assign a delivery; retrying later");
                }
            }
        }
        let waiting = pending.len() - assigned;
        if waiting > 0 {
            tracing::debug!(waiting, "deliveries waiting for a free courier");
        }
        Ok(Round {
            assigned,
            seen: pending.len(),
        })
    }

    /// Tries `free` couriers nearest first until one takes `delivery`;
    /// removes from `free` every courier that took it or turned out busy.
    async fn assign_nearest(
        &self,
        delivery: &Pending,
        free: &mut Vec<Candidate>,
    ) -> anyhow::Result<bool> {
        let order_id: OrderId = delivery.order_id.parse()?;
        for courier in nearest_first(free, delivery.pickup()) {
            let attempt = self.try_assign(delivery, order_id, &courier).await?;
            if !matches!(attempt, Attempt::DeliveryGone) {
                free.retain(|c| c.courier_id != courier.courier_id);
            }
            match attempt {
                Attempt::Assigned => {
                    self.outbox.notify();
                    tracing::info!(%order_id, courier_id = %courier.courier_id, "courier assigned");
                    return Ok(true);
                }
                Attempt::CourierGone => continue,
                Attempt::DeliveryGone => return Ok(false),
            }
        }
        Ok(false)
    }

    async fn try_assign(
        &self,
        delivery: &Pending,
        order_id: OrderId,
        courier: &Candidate,
    ) -> anyhow::Result<Attempt> {
        let courier_id: UserId = courier.courier_id.parse()?;
        let eta = platform::time::from_now(travel_time(
            courier.location,
            delivery.pickup(),
            delivery.dropoff(),
            self.speed_kmh,
        ));
        let mut tx = begin_write(&self.db).await?;
        match store::assign(&mut tx, &delivery.id, &courier.courier_id, &eta).await {
            Ok(true) => {
                enqueue(
                    &mut tx,
                    &DeliveryAssigned {
                        order_id,
                        delivery_id: delivery.id.clone(),
                        courier_id,
                        eta,
                    },
                )
                .await?;
                tx.commit().await?;
                Ok(Attempt::Assigned)
            }
            // Another dispatcher gave this courier a delivery since we read
            // the free list: the index refused a second one.
            Err(e) if is_unique_violation(&e) => Ok(Attempt::CourierGone),
            Err(e) => Err(e.into()),
            Ok(false) => {
                drop(tx);
                // Nothing matched: either the delivery moved on or the
                // courier went unavailable; only the first ends the search.
                Ok(match store::status(&self.db, &delivery.id).await? {
                    Some(DeliveryStatus::Pending) => Attempt::CourierGone,
                    _ => Attempt::DeliveryGone,
                })
            }
        }
    }
}

/// What a round did.
#[derive(Debug, Default)]
struct Round {
    assigned: usize,
    seen: usize,
}
