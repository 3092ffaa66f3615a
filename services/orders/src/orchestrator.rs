//! The orchestrator: executes the saga's commands against the participants
//! and feeds their answers back into the saga.
//!
//! Every step is persisted before and after: `apply` stores the new saga
//! state (with its timeline entry and outbox events) in one transaction,
//! compare-and-set on the order's version; the commands it yields are then
//! executed as idempotent calls keyed `<order id>:<step>`. A crash between
//! the two leaves the commands outstanding in the stored saga, and the
//! sweeper re-issues them; a participant answers a repeated key with its
//! first answer, so nothing happens twice.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contracts::OrderId;
use contracts::kitchen::{Reservation, Ticket, TicketStatus};
use contracts::orders::{
    OrderCancelled, OrderCompleted, OrderConfirmed, OrderPlaced, OrderRejected, OrderStatusChanged,
};
use platform::Db;
use platform::auth::ServiceTokens;
use platform::client::{Idempotency, Upstream};
use platform::events::{Outbox, enqueue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::AnyConnection;

use crate::domain::{Command, OrderEventKind, Saga, SagaError, SagaEvent};
use crate::store::{self, Facts, StoredOrder};

/// An order this process is driving; released on drop.
struct Claim<'a> {
    set: &'a Mutex<HashSet<OrderId>>,
    id: OrderId,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .expect("the driving set is never poisoned")
            .remove(&self.id);
    }
}

/// The participants, each called through the platform's call path
/// (replicas in turn, keyed calls retried, a breaker per participant).
#[derive(Debug, Clone)]
pub(crate) struct Participants {
    pub(crate) restaurants: Upstream,
    pub(crate) payments: Upstream,
    pub(crate) delivery: Upstream,
}

impl Participants {
    fn of(&self, service: &str) -> &Upstream {
        match service {
            "restaurants" => &self.restaurants,
            "payments" => &self.payments,
            _ => &self.delivery,
        }
    }
}

/// Whether the courier let go of an order the customer wants to cancel.
#[derive(Debug)]
pub(crate) enum CourierRelease {
    /// No delivery, or it was cancelled before pick-up: cancel away.
    Released,
    /// The courier has the food: too late.
    PickedUp(String),
    /// Delivery cannot say right now.
    Unknown(String),
}

pub(crate) struct Orchestrator {
    db: Db,
    outbox: Outbox,
    tokens: ServiceTokens,
    participants: Participants,
    /// Orders this process is driving right now: a second driver would
    /// only repeat (harmless) calls, so it skips them.
    driving: Mutex<HashSet<OrderId>>,
    /// This process's name in the saga leases (replicas share the
    /// database, so a lease says which of them drives an order).
    me: String,
    /// Whether sagas are leased in the database: on PostgreSQL, where
    /// replicas share it. A SQLite file has one process (`--replicas`
    /// needs `--postgres`), so there the in-process claim is the whole
    /// lease and the two extra writes per drive are saved.
    leases: bool,
    /// How long after placement an unanswered authorization rejects the
    /// order (`PAYMENT_DEADLINE_MS`).
    payment_deadline: Duration,
}

/// How long a saga's lease lasts without renewal: the longest another
/// replica waits to take over the sagas of one that was killed. Renewed
/// before a round of steps that starts more than `RENEW_AFTER` after the
/// last renewal, so every round has at least 9 s of lease (a step takes at
/// most the client timeout) without a write per round: a happy order's
/// rounds all fall within its first second (measured: 7 lease writes per
/// order in production mode before, 4 after: a take and a release for each
/// of its two drives).
const LEASE: Duration = Duration::from_secs(10);
const RENEW_AFTER: Duration = Duration::from_secs(1);

/// Why `apply` changed nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    #[error("no order {0}")]
    NotFound(OrderId),
    #[error(transparent)]
    Saga(#[from] SagaError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("order {0} kept changing under us")]
    Contended(OrderId),
}

/// A participant could not answer now; the command stays outstanding.
#[derive(Debug, thiserror::Error)]
#[error("{service} did not answer {step}: {why}")]
pub(crate) struct Unreachable {
    service: &'static str,
    step: &'static str,
    why: String,
}

/// The delivery fee: a base plus a rate per started kilometre, capped.
pub(crate) fn delivery_fee_cents(km: f64) -> i64 {
    const BASE: i64 = 199;
    const PER_KM: i64 = 50;
    const CAP: i64 = 999;
    (BASE + PER_KM * km.max(0.0).ceil() as i64).min(CAP)
}

impl Orchestrator {
    pub(crate) fn new(
        db: Db,
        outbox: Outbox,
        tokens: ServiceTokens,
        participants: Participants,
        payment_deadline: Duration,
    ) -> Self {
        let leases = platform::db::Backend::of(&db) == platform::db::Backend::Postgres;
        Self {
            db,
            outbox,
            tokens,
            participants,
            driving: Mutex::new(HashSet::new()),
            me: uuid::Uuid::now_v7().to_string(),
            leases,
            payment_deadline,
        }
    }

    /// Applies `event` to order `id` inside `conn`: stores the new state
    /// (if the version still matches), its timeline entry and its events.
    /// Returns whether the state changed; `Ok(false)` for a repeated fact.
    pub(crate) async fn apply_in(
        &self,
        conn: &mut AnyConnection,
        id: OrderId,
        event: SagaEvent,
        facts: &Facts,
    ) -> Result<(bool, StoredOrder), ApplyError> {
        let order = store::load(conn, id)
            .await?
            .ok_or(ApplyError::NotFound(id))?;
        self.apply_to(conn, order, event, facts).await
    }

    /// Applies `event` to `order` as it was read (in `conn`'s transaction or
    /// before it): the compare-and-set on its version fails with
    /// `Contended` if it changed since. Answers whether the state changed
    /// and the order as it now stands, so the caller's next step needs no
    /// read.
    pub(crate) async fn apply_to(
        &self,
        conn: &mut AnyConnection,
        order: StoredOrder,
        event: SagaEvent,
        facts: &Facts,
    ) -> Result<(bool, StoredOrder), ApplyError> {
        let (saga, commands) = order.saga.apply(event)?;
        if saga == order.saga && commands.is_empty() {
            return Ok((false, order));
        }
        let Some(stored) = store::update(conn, &order, &saga, facts).await? else {
            return Err(ApplyError::Contended(order.id));
        };
        for command in &commands {
            if let Command::Publish(kind) = command {
                publish(conn, &order, &saga, facts, *kind).await?;
            }
        }
        if saga.status() != order.saga.status() {
            metrics::counter!("saga_transitions_total", "to" => saga.status().as_str())
                .increment(1);
            // Every move, for live views (the gateway's order stream).
            enqueue(
                conn,
                &OrderStatusChanged {
                    order_id: order.id,
                    status: saga.status(),
                },
            )
            .await?;
        }
        Ok((true, stored))
    }

    /// [`Self::apply_in`] in its own write transaction, retried when
    /// another writer changed the order in between.
    pub(crate) async fn apply(
        &self,
        id: OrderId,
        event: SagaEvent,
        facts: &Facts,
    ) -> Result<bool, ApplyError> {
        self.apply_all(id, None, std::slice::from_ref(&event), facts, false)
            .await
            .map(|(changed, _)| changed)
    }

    /// Applies a participant's answer (one or more events, such as a
    /// ticket created and accepted at once) to `order`, the order in hand,
    /// in one write transaction; answers the order as it stands after them.
    /// An event that does not fit the saga is logged and skipped, as the
    /// ones after it still may fit.
    async fn apply_answer(
        &self,
        order: &StoredOrder,
        events: &[SagaEvent],
        facts: &Facts,
    ) -> Result<StoredOrder, ApplyError> {
        match self
            .apply_all(order.id, Some(order), events, facts, true)
            .await?
        {
            (true, Some(order)) => Ok(order),
            // Nothing fit the order in hand: it may be stale (another
            // writer moved the saga on); read what is stored.
            _ => store::load(&mut *self.db.acquire().await?, order.id)
                .await?
                .ok_or(ApplyError::NotFound(order.id)),
        }
    }

    /// `events` in one write transaction, applied to `known` (the order in
    /// hand) on the first attempt and to the stored order on the retries
    /// that follow another writer's change: whether any changed the order,
    /// and the order after the last that fit. With `skip_misfits`, an event
    /// that does not fit the saga is logged and skipped instead of failing
    /// all.
    async fn apply_all(
        &self,
        id: OrderId,
        known: Option<&StoredOrder>,
        events: &[SagaEvent],
        facts: &Facts,
        skip_misfits: bool,
    ) -> Result<(bool, Option<StoredOrder>), ApplyError> {
        let mut known = known.cloned();
        'attempt: for _ in 0..5 {
            let mut tx = platform::db::begin_write(&self.db).await?;
            let mut order = match known.take() {
                Some(order) => order,
                None => store::load(&mut tx, id)
                    .await?
                    .ok_or(ApplyError::NotFound(id))?,
            };
            let mut changed = false;
            for event in events {
                match self
                    .apply_to(&mut tx, order.clone(), event.clone(), facts)
                    .await
                {
                    Ok((moved, now)) => {
                        changed |= moved;
                        order = now;
                    }
                    Err(ApplyError::Saga(e)) if skip_misfits => {
                        tracing::warn!(order_id = %id, error = %e, "a participant's answer did not fit the saga");
                    }
                    Err(ApplyError::Contended(_)) => continue 'attempt,
                    Err(e) => return Err(e),
                }
            }
            tx.commit().await?;
            self.outbox.notify();
            return Ok((changed, Some(order)));
        }
        Err(ApplyError::Contended(id))
    }

    /// Executes the order's outstanding commands, feeding each answer back,
    /// until none is left, a participant cannot answer (the sweeper tries
    /// again later), or `deadline` passes. Another driver of the same order
    /// in this process makes this a no-op.
    pub(crate) async fn drive(&self, id: OrderId, deadline: Option<Instant>) {
        self.drive_from(id, None, deadline).await;
    }

    /// [`Self::drive`], starting from `known`, the order as the caller's
    /// last write stored it (not read again; a change since then fails the
    /// next step's compare-and-set, which reads it afresh).
    pub(crate) async fn drive_from(
        &self,
        id: OrderId,
        known: Option<StoredOrder>,
        deadline: Option<Instant>,
    ) {
        let Some(_claim) = self.claim(id) else {
            tracing::debug!(order_id = %id, "the saga is being driven here already");
            return;
        };
        // Across replicas: the lease in the order's row.
        match self.renew_lease(id).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(order_id = %id, "another process holds the saga's lease");
                return;
            }
            Err(e) => {
                tracing::debug!(order_id = %id, error = %e, "cannot take the saga's lease");
                return;
            }
        }
        if let Err(e) = self.drive_claimed(id, known, deadline).await {
            tracing::debug!(order_id = %id, error = %e, "saga paused; the sweeper will resume it");
        }
        if self.leases
            && let Err(e) = store::release(&self.db, id, &self.me).await
        {
            tracing::debug!(order_id = %id, error = %e, "cannot release the saga's lease; it expires");
        }
    }

    /// Takes or renews this process's lease on driving `id` (always had
    /// where the in-process claim is the lease).
    async fn renew_lease(&self, id: OrderId) -> Result<bool, sqlx::Error> {
        if !self.leases {
            return Ok(true);
        }
        store::lease(
            &self.db,
            id,
            &self.me,
            &platform::time::now(),
            &platform::time::from_now(LEASE),
        )
        .await
    }

    /// Drives `id` on its own task, so a caller that goes away (a client
    /// hanging up) does not stop the saga midway; waits for it at most
    /// until `deadline`.
    /// `known` is as for [`Self::drive_from`].
    pub(crate) async fn drive_until(
        self: &Arc<Self>,
        id: OrderId,
        known: Option<StoredOrder>,
        deadline: Instant,
    ) {
        let this = self.clone();
        let task = tokio::spawn(async move { this.drive_from(id, known, Some(deadline)).await });
        let _ = tokio::time::timeout_at(deadline.into(), task).await;
    }

    /// Marks `id` as driven by this process until the returned claim drops
    /// (however the driving ends: finished, failed, or cancelled).
    fn claim(&self, id: OrderId) -> Option<Claim<'_>> {
        // The guard must be gone before a Claim can exist: dropping a
        // Claim takes the same lock.
        let inserted = self
            .driving
            .lock()
            .expect("the driving set is never poisoned")
            .insert(id);
        inserted.then(|| Claim {
            set: &self.driving,
            id,
        })
    }

    async fn drive_claimed(
        &self,
        id: OrderId,
        known: Option<StoredOrder>,
        deadline: Option<Instant>,
    ) -> anyhow::Result<()> {
        // `drive` took the lease just before.
        let mut leased = Instant::now();
        // Read once (unless the caller just wrote it); after that, the
        // order each answer left behind (as fresh as a read: its write was
        // a compare-and-set on the version read, so nobody changed it in
        // between).
        let mut order = match known {
            Some(order) => order,
            None => {
                let mut conn = self.db.acquire().await?;
                let Some(order) = store::load(&mut conn, id).await? else {
                    return Ok(());
                };
                order
            }
        };
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
            let commands = order.saga.outstanding();
            if commands.is_empty() {
                return Ok(());
            }
            if leased.elapsed() >= RENEW_AFTER {
                if !self.renew_lease(id).await? {
                    anyhow::bail!("another replica took the saga over");
                }
                leased = Instant::now();
            }
            // One participant down must not hold up the others' steps (a
            // void must not wait for a restaurants outage): run every
            // command, and stop after the round if any could not run.
            let mut unreachable: Option<Unreachable> = None;
            for command in commands {
                let started = Instant::now();
                let answer = self.execute(&order, command).await;
                metrics::histogram!("saga_step_duration_seconds", "step" => command.step())
                    .record(started.elapsed().as_secs_f64());
                // A saga's trail, step by step, for when one seems stuck.
                tracing::debug!(order_id = %id, step = command.step(),
                    ms = started.elapsed().as_millis() as u64, answered = answer.is_ok(), "saga step");
                let (events, facts) = match answer {
                    Ok(answer) => {
                        metrics::counter!("saga_steps_total", "step" => command.step(), "outcome" => "answered").increment(1);
                        // The participant acted; the saga does not know yet.
                        platform::failpoint::hit(format_args!("saga.{}.answered", command.step()));
                        answer
                    }
                    Err(e) => {
                        metrics::counter!("saga_steps_total", "step" => command.step(), "outcome" => "unreachable").increment(1);
                        unreachable = Some(e);
                        continue;
                    }
                };
                if !events.is_empty() {
                    order = self.apply_answer(&order, &events, &facts).await?;
                }
                // The answer is committed; the next step has not started.
                platform::failpoint::hit(format_args!("saga.{}.recorded", command.step()));
            }
            if let Some(e) = unreachable {
                return Err(e.into());
            }
        }
    }

    /// Before a cancel of a confirmed order: asks delivery to cancel the
    /// delivery unless it was picked up, atomically on delivery's side, so a
    /// cancel can never race a pick-up (the food leaving with the payment
    /// voided).
    pub(crate) async fn release_courier(&self, id: OrderId) -> CourierRelease {
        let path = format!("/internal/deliveries/by-order/{id}/cancel");
        match self
            .call(
                "delivery",
                "cancel_delivery",
                Method::POST,
                path,
                None,
                None,
            )
            .await
        {
            Ok((status, _)) if status.is_success() || status == StatusCode::NOT_FOUND => {
                CourierRelease::Released
            }
            Ok((StatusCode::CONFLICT, body)) => CourierRelease::PickedUp(
                body["detail"]
                    .as_str()
                    .unwrap_or("the courier already picked it up")
                    .to_owned(),
            ),
            Ok((status, _)) => CourierRelease::Unknown(format!("delivery answered {status}")),
            Err(e) => CourierRelease::Unknown(e.to_string()),
        }
    }

    /// Closes the acceptance window of an order whose restaurant did not
    /// decide in time.
    pub(crate) async fn time_out_acceptance(&self, id: OrderId) {
        match self
            .apply(id, SagaEvent::AcceptanceTimedOut, &Facts::default())
            .await
        {
            Ok(true) => {
                tracing::info!(order_id = %id, "the restaurant did not accept in time; rejecting")
            }
            Ok(false) | Err(ApplyError::Saga(_)) => {}
            Err(e) => {
                tracing::warn!(order_id = %id, error = %e, "could not time out the acceptance")
            }
        }
    }

    /// One call to a participant: `path` on its next replica, with the
    /// service token and `key` (which makes it safe to retry).
    async fn call(
        &self,
        service: &'static str,
        step: &'static str,
        method: Method,
        path: String,
        key: Option<String>,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), Unreachable> {
        let unreachable = |why: String| Unreachable { service, step, why };
        let token = self
            .tokens
            .token()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let upstream = self.participants.of(service);
        let idempotency = Idempotency::of(&method, key.is_some());
        let response = upstream
            .send(idempotency, |base| {
                let mut request = upstream
                    .client()
                    .request(method.clone(), &format!("{base}{path}"))
                    .bearer_auth(&token);
                if let Some(key) = &key {
                    request = request.header("idempotency-key", key);
                }
                if let Some(body) = &body {
                    request = request.json(body);
                }
                request
            })
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(unreachable(format!("answered {status}")));
        }
        let body = if status == StatusCode::NO_CONTENT {
            Value::Null
        } else {
            response
                .json()
                .await
                .map_err(|e| unreachable(e.to_string()))?
        };
        Ok((status, body))
    }

    /// Runs one command; answers the saga events it yields. `Publish` never
    /// reaches here: it is written with the state that caused it.
    async fn execute(
        &self,
        order: &StoredOrder,
        command: Command,
    ) -> Result<(Vec<SagaEvent>, Facts), Unreachable> {
        let id = order.id;
        let key = Some(format!("{id}:{}", command.step()));
        let step = command.step();
        let refused = |body: &Value| {
            body["detail"]
                .as_str()
                .unwrap_or("refused without a reason")
                .to_owned()
        };
        let unexpected = |service: &'static str, status: StatusCode, body: &Value| Unreachable {
            service,
            step,
            why: format!("answered {status}: {}", refused(body)),
        };
        match command {
            Command::ReserveStock => {
                let body = json!({"restaurant_id": order.request.restaurant_id, "items": order.request.items});
                let (status, body) = self
                    .call(
                        "restaurants",
                        step,
                        Method::POST,
                        format!("/internal/orders/{id}/reservation"),
                        key,
                        Some(body),
                    )
                    .await?;
                if status.is_success() {
                    let reservation: Reservation =
                        serde_json::from_value(body).map_err(|e| Unreachable {
                            service: "restaurants",
                            step,
                            why: format!("an unreadable reservation: {e}"),
                        })?;
                    let km = reservation
                        .pickup
                        .distance_km(&order.request.delivery_address.location);
                    let facts = Facts {
                        items: Some(reservation.items),
                        pickup: Some(reservation.pickup),
                        accept_by: None,
                    };
                    Ok((
                        vec![SagaEvent::StockReserved {
                            subtotal_cents: reservation.subtotal_cents,
                            delivery_fee_cents: delivery_fee_cents(km),
                        }],
                        facts,
                    ))
                } else if status == StatusCode::CONFLICT
                    || status == StatusCode::UNPROCESSABLE_ENTITY
                {
                    Ok((
                        vec![SagaEvent::StockUnavailable {
                            reason: refused(&body),
                        }],
                        Facts::default(),
                    ))
                } else {
                    Err(unexpected("restaurants", status, &body))
                }
            }
            Command::ReleaseStock => {
                let (status, body) = self
                    .call(
                        "restaurants",
                        step,
                        Method::POST,
                        format!("/internal/orders/{id}/reservation/release"),
                        key,
                        None,
                    )
                    .await?;
                if status.is_success() {
                    Ok((vec![SagaEvent::StockReleased], Facts::default()))
                } else {
                    Err(unexpected("restaurants", status, &body))
                }
            }
            Command::Authorize { amount_cents } => {
                let body = json!({"order_id": id, "amount_cents": amount_cents, "payment_method": order.request.payment_method});
                let (status, body) = self
                    .call(
                        "payments",
                        step,
                        Method::POST,
                        "/internal/payments/authorize".to_owned(),
                        key,
                        Some(body),
                    )
                    .await?;
                match (status.is_success(), body["status"].as_str()) {
                    (true, Some("declined")) => Ok((
                        vec![SagaEvent::PaymentDeclined {
                            reason: body["decline_reason"]
                                .as_str()
                                .unwrap_or("card_declined")
                                .to_owned(),
                        }],
                        Facts::default(),
                    )),
                    (true, _) => Ok((
                        vec![SagaEvent::PaymentAuthorized { amount_cents }],
                        Facts::default(),
                    )),
                    (false, _) if status == StatusCode::UNPROCESSABLE_ENTITY => Ok((
                        vec![SagaEvent::PaymentDeclined {
                            reason: refused(&body),
                        }],
                        Facts::default(),
                    )),
                    _ => Err(unexpected("payments", status, &body)),
                }
            }
            Command::Void => {
                let (status, body) = self
                    .call(
                        "payments",
                        step,
                        Method::POST,
                        format!("/internal/payments/{id}/void"),
                        key,
                        Some(json!({})),
                    )
                    .await?;
                if status.is_success() {
                    Ok((vec![SagaEvent::PaymentVoided], Facts::default()))
                } else {
                    Err(unexpected("payments", status, &body))
                }
            }
            Command::Capture { amount_cents } => {
                let (status, body) = self
                    .call(
                        "payments",
                        step,
                        Method::POST,
                        format!("/internal/payments/{id}/capture"),
                        key,
                        Some(json!({"amount_cents": amount_cents})),
                    )
                    .await?;
                if status.is_success() {
                    Ok((vec![SagaEvent::PaymentCaptured], Facts::default()))
                } else {
                    Err(unexpected("payments", status, &body))
                }
            }
            Command::CreateTicket => {
                let (status, body) = self
                    .call(
                        "restaurants",
                        step,
                        Method::POST,
                        format!("/internal/orders/{id}/ticket"),
                        key,
                        None,
                    )
                    .await?;
                if !status.is_success() {
                    return Err(unexpected("restaurants", status, &body));
                }
                let ticket: Ticket = serde_json::from_value(body).map_err(|e| Unreachable {
                    service: "restaurants",
                    step,
                    why: format!("an unreadable ticket: {e}"),
                })?;
                let mut events = vec![SagaEvent::TicketCreated];
                match ticket.status {
                    TicketStatus::Accepted | TicketStatus::Ready => {
                        events.push(SagaEvent::TicketAccepted)
                    }
                    TicketStatus::Rejected => events.push(SagaEvent::TicketRejected {
                        reason: ticket
                            .rejection_reason
                            .clone()
                            .unwrap_or_else(|| "rejected by the restaurant".to_owned()),
                    }),
                    TicketStatus::Pending | TicketStatus::Cancelled => {}
                }
                Ok((
                    events,
                    Facts {
                        accept_by: Some(ticket.accept_by),
                        ..Facts::default()
                    },
                ))
            }
            Command::CancelTicket => {
                let (status, body) = self
                    .call(
                        "restaurants",
                        step,
                        Method::POST,
                        format!("/internal/orders/{id}/ticket/cancel"),
                        key,
                        None,
                    )
                    .await?;
                if status.is_success() {
                    Ok((vec![SagaEvent::TicketCancelled], Facts::default()))
                } else {
                    Err(unexpected("restaurants", status, &body))
                }
            }
            Command::Publish(_) => Ok((Vec::new(), Facts::default())),
        }
    }

    /// Finds sagas with work left (after a crash, a participant's outage,
    /// or a closed acceptance window) and drives them, forever.
    pub(crate) fn spawn_sweeper(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let now = platform::time::now();
                let ids = match store::with_work(&this.db, &now, 100).await {
                    Ok(ids) => ids,
                    Err(e) => {
                        tracing::warn!(error = %e, "the saga sweeper cannot read orders");
                        continue;
                    }
                };
                for id in ids {
                    let this = this.clone();
                    tokio::spawn(async move {
                        this.time_out_if_due(id).await;
                        this.drive(id, None).await;
                    });
                }
            }
        })
    }

    /// Fires the order's timers that are due: the restaurant's acceptance
    /// window, the payment deadline.
    async fn time_out_if_due(&self, id: OrderId) {
        use contracts::orders::OrderStatus;
        let order = match self.db.acquire().await {
            Ok(mut conn) => store::load(&mut conn, id).await.ok().flatten(),
            Err(_) => None,
        };
        let Some(order) = order else { return };
        match order.saga.status() {
            OrderStatus::AwaitingRestaurant
                if order
                    .accept_by
                    .as_ref()
                    .is_some_and(|by| *by < platform::time::now()) =>
            {
                self.time_out_acceptance(id).await;
            }
            OrderStatus::PaymentPending
                if order.created_at < platform::time::ago(self.payment_deadline) =>
            {
                self.time_out_payment(id).await;
            }
            _ => {}
        }
    }

    /// Rejects an order whose authorization payments did not answer by
    /// the payment deadline (its outcome is still learned, and voided).
    pub(crate) async fn time_out_payment(&self, id: OrderId) {
        match self
            .apply(id, SagaEvent::PaymentTimedOut, &Facts::default())
            .await
        {
            Ok(true) => {
                tracing::info!(order_id = %id, "payments did not answer in time; rejecting")
            }
            Ok(false) | Err(ApplyError::Saga(_)) => {}
            Err(e) => {
                tracing::warn!(order_id = %id, error = %e, "could not time out the payment")
            }
        }
    }
}

/// Writes the order event `kind` to the outbox, in the caller's transaction.
async fn publish(
    conn: &mut AnyConnection,
    order: &StoredOrder,
    saga: &Saga,
    facts: &Facts,
    kind: OrderEventKind,
) -> Result<(), sqlx::Error> {
    let order_id = order.id;
    match kind {
        OrderEventKind::Placed => enqueue(
            conn,
            &OrderPlaced {
                order_id,
                customer_id: order.customer_id,
                restaurant_id: order.restaurant_id,
            },
        )
        .await
        .map(|_| ()),
        OrderEventKind::Confirmed => {
            let pickup = facts
                .pickup
                .or(order.pickup)
                .unwrap_or(order.request.delivery_address.location);
            enqueue(
                conn,
                &OrderConfirmed {
                    order_id,
                    customer_id: order.customer_id,
                    restaurant_id: order.restaurant_id,
                    pickup,
                    dropoff: order.request.delivery_address.location,
                },
            )
            .await
            .map(|_| ())
        }
        OrderEventKind::Rejected => enqueue(
            conn,
            &OrderRejected {
                order_id,
                reason: saga.rejection_reason().unwrap_or("rejected").to_owned(),
            },
        )
        .await
        .map(|_| ()),
        OrderEventKind::Cancelled => enqueue(conn, &OrderCancelled { order_id })
            .await
            .map(|_| ()),
        OrderEventKind::Completed => enqueue(conn, &OrderCompleted { order_id })
            .await
            .map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Command;

    /// An orchestrator on a fresh database; its participants are never
    /// called.
    async fn orchestrator(dir: &tempfile::TempDir) -> Orchestrator {
        let url = format!("sqlite://{}/orders.db", dir.path().display());
        let db = platform::db::connect(&url, crate::MIGRATIONS)
            .await
            .expect("connects");
        let nowhere = || {
            Upstream::new(
                "nowhere",
                platform::client::Endpoints::parse("http://127.0.0.1:9"),
                platform::HttpClient::new(platform::client::ClientConfig::default()),
                platform::client::CallPolicy::default(),
            )
        };
        Orchestrator::new(
            db.clone(),
            Outbox::new(db),
            ServiceTokens::fixed("unused".to_owned()),
            Participants {
                restaurants: nowhere(),
                payments: nowhere(),
                delivery: nowhere(),
            },
            Duration::from_secs(60),
        )
    }

    #[tokio::test]
    async fn an_answer_to_an_order_changed_since_it_was_read_is_applied_to_the_stored_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let orchestrator = orchestrator(&dir).await;
        let request: contracts::orders::PlaceOrder = serde_json::from_value(json!({
            "restaurant_id": uuid::Uuid::now_v7(),
            "items": [{ "menu_item_id": uuid::Uuid::now_v7(), "quantity": 1 }],
            "delivery_address": { "line1": "1 Main St", "city": "Springfield",
                                  "location": { "lat": 52.5, "lng": 13.4 } },
            "payment_method": "pm_card_visa",
        }))
        .expect("a request");
        let id = OrderId::new();
        let mut tx = platform::db::begin_write(&orchestrator.db)
            .await
            .expect("begins");
        let placed = store::insert(
            &mut tx,
            id,
            contracts::UserId::new(),
            &request,
            &Saga::new(),
        )
        .await
        .expect("inserts");
        let (_, started) = orchestrator
            .apply_to(&mut tx, placed, SagaEvent::Started, &Facts::default())
            .await
            .expect("starts");
        tx.commit().await.expect("commits");

        // The driver holds `started` while the stock is being reserved; the
        // customer cancels in between.
        assert!(
            orchestrator
                .apply(id, SagaEvent::CancelRequested, &Facts::default())
                .await
                .expect("cancels")
        );
        let answered = orchestrator
            .apply_answer(
                &started,
                &[SagaEvent::StockReserved {
                    subtotal_cents: 1000,
                    delivery_fee_cents: 199,
                }],
                &Facts::default(),
            )
            .await
            .expect("applies");

        // Applied over the order in hand, the reservation would have moved
        // the order on to payment and lost the cancel; applied to the
        // stored one, it is released instead.
        let stored = store::load(
            &mut orchestrator.db.acquire().await.expect("a connection"),
            id,
        )
        .await
        .expect("loads")
        .expect("exists");
        assert_eq!(answered.saga, stored.saga);
        assert_eq!(answered.version, stored.version);
        assert_eq!(
            stored.saga.status(),
            contracts::orders::OrderStatus::CancelPending
        );
        assert!(
            stored
                .saga
                .outstanding()
                .iter()
                .any(|c| c.step() == "release_stock"),
            "{:?}",
            stored.saga.outstanding()
        );
    }

    #[test]
    fn every_step_the_orchestrator_executes_has_its_two_failpoints() {
        for step in Command::CALLS {
            for stage in ["answered", "recorded"] {
                let name = format!("saga.{}.{stage}", step.step());
                assert!(
                    platform::failpoint::KNOWN.iter().any(|(n, _)| *n == name),
                    "{name} is missing from failpoint::KNOWN"
                );
            }
        }
    }

    #[test]
    fn the_fee_grows_per_started_kilometre_up_to_a_cap() {
        assert_eq!(delivery_fee_cents(0.0), 199);
        assert_eq!(delivery_fee_cents(0.1), 249);
        assert_eq!(delivery_fee_cents(2.0), 299);
        assert_eq!(delivery_fee_cents(500.0), 999);
    }
}
