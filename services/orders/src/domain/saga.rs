//! The order saga: one order's way through stock, payment, kitchen and
//! delivery, as a pure state machine.
//!
//! [`Saga::apply`] takes the saga's state and one [`SagaEvent`] (the result
//! of a command, or something that happened elsewhere) and returns the next
//! state and the [`Command`]s to execute. It performs no I/O and reads no
//! clock: the orders service persists the returned state, executes the
//! commands (idempotent calls keyed `<order id>:<step>`, or outbox events)
//! and feeds their results back in.
//!
//! # Outstanding commands
//!
//! The saga records, for each participant, where that participant's step
//! stands ([`StockState`], [`PaymentState`], [`TicketState`]). A command is
//! outstanding exactly while its step is in flight in that record, and one
//! event acknowledges it:
//!
//! | command        | in flight while        | acknowledged by                                   |
//! |----------------|------------------------|---------------------------------------------------|
//! | `ReserveStock` | `StockState::Reserving` | `StockReserved` or `StockUnavailable`             |
//! | `ReleaseStock` | `StockState::Releasing` | `StockReleased`                                   |
//! | `Authorize`    | `PaymentState::Authorizing` | `PaymentAuthorized` or `PaymentDeclined`      |
//! | `Void`         | `PaymentState::Voiding` | `PaymentVoided`                                   |
//! | `Capture`      | `PaymentState::Capturing` | `PaymentCaptured`                               |
//! | `CreateTicket` | `TicketState::Creating` | `TicketCreated` (or `TicketAccepted`/`TicketRejected`, which imply it) |
//! | `CancelTicket` | `TicketState::Cancelling` | `TicketCancelled`                               |
//!
//! `apply` returns exactly the commands that became outstanding (plus any
//! `Publish`), so what it asks for and what [`Saga::outstanding`] re-issues
//! after a crash cannot disagree. `Publish` is never outstanding: the
//! orchestrator writes it to the outbox in the transaction that stores the
//! new state, so it cannot be lost.
//!
//! # Transitions
//!
//! | from | event | to | commands |
//! |------|-------|----|----------|
//! | (new) `PENDING` | `Started` | `PENDING` | `ReserveStock`, publish `placed` |
//! | `PENDING` | `StockReserved` | `PAYMENT_PENDING` | `Authorize{subtotal+fee}` |
//! | `PENDING` | `StockUnavailable` | `REJECTED` | publish `rejected` |
//! | `PAYMENT_PENDING` | `PaymentAuthorized` | `AWAITING_RESTAURANT` | `CreateTicket` |
//! | `PAYMENT_PENDING` | `PaymentDeclined` | `REJECTED` | `ReleaseStock`, publish `rejected` |
//! | `PAYMENT_PENDING` | `PaymentTimedOut` | `REJECTED` | `ReleaseStock`³, publish `rejected` |
//! | `AWAITING_RESTAURANT` | `TicketCreated` | `AWAITING_RESTAURANT` | — |
//! | `AWAITING_RESTAURANT` | `TicketAccepted` | `CONFIRMED` | publish `confirmed` |
//! | `AWAITING_RESTAURANT` | `TicketRejected` | `REJECTED` | `Void`, `ReleaseStock`, publish `rejected` |
//! | `AWAITING_RESTAURANT` | `AcceptanceTimedOut` | `REJECTED` | `CancelTicket`¹, `Void`, `ReleaseStock`, publish `rejected` |
//! | `CONFIRMED` | `CourierAssigned` | `COURIER_ASSIGNED` | — |
//! | `COURIER_ASSIGNED` | `PickedUp` | `PICKED_UP` | `Capture{authorized}` |
//! | `PICKED_UP` | `Delivered` | `DELIVERED` | publish `completed` (a capture still owed stays owed) |
//! | `PENDING` … `COURIER_ASSIGNED` | `CancelRequested` | `CANCEL_PENDING` | the compensations owed², publish `cancelled` |
//! | `CANCEL_PENDING` | the last acknowledgement | `CANCELLED` | — |
//! | `CANCEL_PENDING`, `CANCELLED` | `CancelRequested` | unchanged | — (a retried request) |
//! | `PICKED_UP`, `DELIVERED`, `REJECTED` | `CancelRequested` | `Err(CannotCancel)` | — |
//!
//! A later fact implies the earlier ones of the same participant, so a
//! consumer that delivers one order's events out of sequence cannot strand
//! it: `TicketAccepted` implies `TicketCreated`, `PickedUp` implies
//! `CourierAssigned` (`CONFIRMED` → `PICKED_UP`), `Delivered` implies
//! `PickedUp` (and commands the capture).
//!
//! ¹ Once the ticket exists: a ticket still being created is cancelled when
//! its creation is acknowledged. ² `CancelTicket` for a created ticket,
//! `Void` for an authorization, `ReleaseStock` for reserved stock; a step
//! still in flight is compensated when its result arrives (a reservation
//! that arrives after the cancel is released, an authorization voided), never
//! advanced: `CANCEL_PENDING` is the semantic lock. The status moves to
//! `CANCEL_PENDING` at once, even with a step in flight, because the cancel
//! is decided then (and the API answers a cancel with `CANCEL_PENDING` or
//! `CANCELLED`).
//!
//! ³ The authorization stays in flight: payments never answered, so it is
//! asked again (same key) until it does, and an authorization that turns
//! out to have happened is voided. Rejecting is the customer's answer; the
//! money is settled when payments is back.
//!
//! Compensations are listed in the reverse order of the steps they undo.
//!
//! There is no refund: the capture happens at pick-up, after which the order
//! can be neither cancelled nor rejected, so the saga never holds captured
//! money it must give back. Refunding a delivered order is a support action,
//! outside the saga.
//!
//! # Invariants (property-tested in `saga/proptests.rs`)
//!
//! - A capture is commanded only for a live authorization, for exactly its
//!   amount, and at most once; an authorization is commanded at most once.
//! - A `REJECTED` or `CANCELLED` order whose compensations are all
//!   acknowledged holds no authorization, no stock and no open ticket.
//! - `DELIVERED`, `REJECTED` and `CANCELLED` are final: no event changes the
//!   status of an order that reached one of them.
//! - An event repeating a fact the saga has recorded is accepted and changes
//!   nothing; an event that cannot happen in the current state is an error
//!   and changes nothing (`apply` takes `&self`).

use contracts::orders::OrderStatus;
use serde::{Deserialize, Serialize};

/// What the saga has done about the order's stock (held by `restaurants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockState {
    /// The saga has not started.
    NotRequested,
    /// `ReserveStock` is outstanding.
    Reserving,
    Reserved,
    /// The restaurant could not supply the items; nothing is held.
    Unavailable,
    /// `ReleaseStock` is outstanding.
    Releasing,
    Released,
}

/// What the saga has done about the payment (held by `payments`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PaymentState {
    NotRequested,
    /// `Authorize` is outstanding.
    Authorizing {
        amount_cents: i64,
    },
    Authorized {
        amount_cents: i64,
    },
    /// The card was declined; nothing is held.
    Declined,
    /// `Void` is outstanding; the funds are still held.
    Voiding {
        amount_cents: i64,
    },
    Voided {
        amount_cents: i64,
    },
    /// `Capture` is outstanding; the funds are still held.
    Capturing {
        amount_cents: i64,
    },
    Captured {
        amount_cents: i64,
    },
}

/// What the saga has done about the kitchen ticket (held by `restaurants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    NotRequested,
    /// `CreateTicket` is outstanding.
    Creating,
    /// Created; the restaurant has not decided.
    Open,
    Accepted,
    /// The restaurant rejected it; the ticket is closed, nothing to cancel.
    Rejected,
    /// `CancelTicket` is outstanding.
    Cancelling,
    Cancelled,
}

/// Why an order was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCause {
    StockUnavailable,
    PaymentDeclined,
    TicketRejected,
    AcceptanceTimedOut,
    /// Payments did not answer within the order's payment deadline.
    PaymentTimedOut,
}

/// The prices the stock reservation quoted (the order's snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub subtotal_cents: i64,
    pub delivery_fee_cents: i64,
}

impl Quote {
    /// What the customer pays: subtotal plus delivery fee.
    pub fn total_cents(&self) -> i64 {
        // `StockReserved` refuses quotes whose sum overflows, so a stored
        // quote always adds up.
        self.subtotal_cents.saturating_add(self.delivery_fee_cents)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Rejection {
    cause: RejectionCause,
    reason: String,
}

/// An input of the saga: the result of a [`Command`], or something another
/// participant, the customer or a timer did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SagaEvent {
    /// The order was created: start the saga.
    Started,
    StockReserved {
        subtotal_cents: i64,
        delivery_fee_cents: i64,
    },
    StockUnavailable {
        reason: String,
    },
    PaymentAuthorized {
        amount_cents: i64,
    },
    PaymentDeclined {
        reason: String,
    },
    TicketCreated,
    TicketAccepted,
    TicketRejected {
        reason: String,
    },
    /// The restaurant's acceptance window closed (a timer, not a human).
    AcceptanceTimedOut,
    /// The payment deadline passed with the authorization unanswered (a
    /// timer: payments is down or too slow).
    PaymentTimedOut,
    CourierAssigned {
        courier_id: String,
    },
    PickedUp,
    PaymentCaptured,
    Delivered,
    /// The customer asked to cancel.
    CancelRequested,
    StockReleased,
    PaymentVoided,
    TicketCancelled,
}

impl SagaEvent {
    /// The event's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            SagaEvent::Started => "Started",
            SagaEvent::StockReserved { .. } => "StockReserved",
            SagaEvent::StockUnavailable { .. } => "StockUnavailable",
            SagaEvent::PaymentAuthorized { .. } => "PaymentAuthorized",
            SagaEvent::PaymentDeclined { .. } => "PaymentDeclined",
            SagaEvent::TicketCreated => "TicketCreated",
            SagaEvent::TicketAccepted => "TicketAccepted",
            SagaEvent::TicketRejected { .. } => "TicketRejected",
            SagaEvent::AcceptanceTimedOut => "AcceptanceTimedOut",
            SagaEvent::PaymentTimedOut => "PaymentTimedOut",
            SagaEvent::CourierAssigned { .. } => "CourierAssigned",
            SagaEvent::PickedUp => "PickedUp",
            SagaEvent::PaymentCaptured => "PaymentCaptured",
            SagaEvent::Delivered => "Delivered",
            SagaEvent::CancelRequested => "CancelRequested",
            SagaEvent::StockReleased => "StockReleased",
            SagaEvent::PaymentVoided => "PaymentVoided",
            SagaEvent::TicketCancelled => "TicketCancelled",
        }
    }
}

/// An order event the orchestrator publishes through the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEventKind {
    /// `order.placed`.
    Placed,
    /// `order.confirmed`: delivery starts looking for a courier.
    Confirmed,
    /// `order.rejected`.
    Rejected,
    /// `order.cancelled`: delivery frees the courier, restaurants learn of it.
    Cancelled,
    /// `order.completed`: delivered.
    Completed,
}

/// An output of the saga, for the orchestrator to execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    ReserveStock,
    ReleaseStock,
    Authorize {
        amount_cents: i64,
    },
    Void,
    Capture {
        amount_cents: i64,
    },
    CreateTicket,
    CancelTicket,
    /// Write this order event to the outbox with the new state.
    Publish(OrderEventKind),
}

impl Command {
    /// One of each command that calls a participant (all but `Publish`);
    /// amounts are placeholders.
    pub const CALLS: [Command; 7] = [
        Command::ReserveStock,
        Command::ReleaseStock,
        Command::Authorize { amount_cents: 1 },
        Command::Void,
        Command::Capture { amount_cents: 1 },
        Command::CreateTicket,
        Command::CancelTicket,
    ];

    /// The step's name in the participant's idempotency key
    /// (`<order id>:<step>`): one key per step, so a re-issued command
    /// returns the first result.
    pub fn step(&self) -> &'static str {
        match self {
            Command::ReserveStock => "reserve_stock",
            Command::ReleaseStock => "release_stock",
            Command::Authorize { .. } => "authorize",
            Command::Void => "void",
            Command::Capture { .. } => "capture",
            Command::CreateTicket => "create_ticket",
            Command::CancelTicket => "cancel_ticket",
            Command::Publish(OrderEventKind::Placed) => "publish_placed",
            Command::Publish(OrderEventKind::Confirmed) => "publish_confirmed",
            Command::Publish(OrderEventKind::Rejected) => "publish_rejected",
            Command::Publish(OrderEventKind::Cancelled) => "publish_cancelled",
            Command::Publish(OrderEventKind::Completed) => "publish_completed",
        }
    }
}

/// Why the saga refused an event. The event changed nothing; the caller
/// logs it and carries on (an API cancel answers `409` for `CannotCancel`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SagaError {
    #[error("an order that is {status} can no longer be cancelled")]
    CannotCancel { status: OrderStatus },
    #[error("{event} does not apply to an order that is {status}")]
    Unexpected {
        event: &'static str,
        status: OrderStatus,
    },
    /// A repeated result disagrees with the first one: a participant broke
    /// its idempotency contract.
    #[error("{event} contradicts what the saga recorded: {detail}")]
    Contradicts { event: &'static str, detail: String },
    #[error("{event} is invalid: {detail}")]
    Invalid { event: &'static str, detail: String },
}

/// One order's saga state: what each participant holds for it, and the
/// order's status. Persisted as JSON by the orders service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saga {
    status: OrderStatus,
    stock: StockState,
    quote: Option<Quote>,
    payment: PaymentState,
    ticket: TicketState,
    courier_id: Option<String>,
    rejection: Option<Rejection>,
}

impl Default for Saga {
    fn default() -> Self {
        Self::new()
    }
}

impl Saga {
    /// A saga for a freshly created order: `PENDING`, nothing asked of
    /// anyone yet. Apply [`SagaEvent::Started`] to begin.
    pub fn new() -> Self {
        Self {
            status: OrderStatus::Pending,
            stock: StockState::NotRequested,
            quote: None,
            payment: PaymentState::NotRequested,
            ticket: TicketState::NotRequested,
            courier_id: None,
            rejection: None,
        }
    }

    /// The next state after `event`, and the commands it makes necessary.
    ///
    /// The commands are those that became outstanding, followed by at most
    /// one `Publish`. On `Err` nothing changed.
    pub fn apply(&self, event: SagaEvent) -> Result<(Saga, Vec<Command>), SagaError> {
        let before = self.outstanding();
        let mut next = self.clone();
        let published = next.step(event)?;
        next.settle();
        let mut commands: Vec<Command> = next
            .outstanding()
            .into_iter()
            .filter(|command| !before.contains(command))
            .collect();
        commands.extend(published.map(Command::Publish));
        Ok((next, commands))
    }

    /// The commands issued and not yet acknowledged, for the orchestrator to
    /// re-issue after a crash (participants answer a repeat with the first
    /// result). Compensations come in the reverse order of the steps they
    /// undo: ticket, payment, stock.
    pub fn outstanding(&self) -> Vec<Command> {
        let ticket = match self.ticket {
            TicketState::Creating => Some(Command::CreateTicket),
            TicketState::Cancelling => Some(Command::CancelTicket),
            _ => None,
        };
        let payment = match self.payment {
            PaymentState::Authorizing { amount_cents } => Some(Command::Authorize { amount_cents }),
            PaymentState::Voiding { .. } => Some(Command::Void),
            PaymentState::Capturing { amount_cents } => Some(Command::Capture { amount_cents }),
            _ => None,
        };
        let stock = match self.stock {
            StockState::Reserving => Some(Command::ReserveStock),
            StockState::Releasing => Some(Command::ReleaseStock),
            _ => None,
        };
        [ticket, payment, stock].into_iter().flatten().collect()
    }

    pub fn status(&self) -> OrderStatus {
        self.status
    }

    /// Whether the status can no longer change.
    pub fn is_final(&self) -> bool {
        is_final(self.status)
    }

    pub fn stock(&self) -> StockState {
        self.stock
    }

    pub fn payment(&self) -> PaymentState {
        self.payment
    }

    pub fn ticket(&self) -> TicketState {
        self.ticket
    }

    /// The prices the reservation quoted, once stock was reserved.
    pub fn quote(&self) -> Option<Quote> {
        self.quote
    }

    pub fn courier_id(&self) -> Option<&str> {
        self.courier_id.as_deref()
    }

    pub fn rejection_cause(&self) -> Option<RejectionCause> {
        self.rejection.as_ref().map(|r| r.cause)
    }

    /// Why the order was rejected, for the customer.
    pub fn rejection_reason(&self) -> Option<&str> {
        self.rejection.as_ref().map(|r| r.reason.as_str())
    }

    /// Whether the customer's cancel was accepted.
    pub fn cancel_requested(&self) -> bool {
        matches!(
            self.status,
            OrderStatus::CancelPending | OrderStatus::Cancelled
        )
    }

    /// Whether the stock is held (reserved and not yet released).
    pub fn stock_reserved(&self) -> bool {
        matches!(self.stock, StockState::Reserved | StockState::Releasing)
    }

    /// The amount the payment provider authorized, whatever happened since.
    pub fn authorized_cents(&self) -> Option<i64> {
        match self.payment {
            PaymentState::Authorized { amount_cents }
            | PaymentState::Voiding { amount_cents }
            | PaymentState::Voided { amount_cents }
            | PaymentState::Capturing { amount_cents }
            | PaymentState::Captured { amount_cents } => Some(amount_cents),
            PaymentState::NotRequested
            | PaymentState::Authorizing { .. }
            | PaymentState::Declined => None,
        }
    }

    /// Whether an authorization still holds the customer's funds: neither
    /// voided nor captured yet.
    pub fn authorization_live(&self) -> bool {
        matches!(
            self.payment,
            PaymentState::Authorized { .. }
                | PaymentState::Voiding { .. }
                | PaymentState::Capturing { .. }
        )
    }

    /// The amount captured, once the capture is acknowledged.
    pub fn captured_cents(&self) -> Option<i64> {
        match self.payment {
            PaymentState::Captured { amount_cents } => Some(amount_cents),
            _ => None,
        }
    }

    /// Whether a ticket is open at the restaurant (created, not rejected,
    /// not yet cancelled).
    pub fn ticket_open(&self) -> bool {
        matches!(
            self.ticket,
            TicketState::Open | TicketState::Accepted | TicketState::Cancelling
        )
    }

    /// Whether the order stopped going forward and only undoes what it did.
    fn compensating(&self) -> bool {
        matches!(
            self.status,
            OrderStatus::Rejected | OrderStatus::CancelPending | OrderStatus::Cancelled
        )
    }

    fn unexpected(&self, event: &'static str) -> SagaError {
        SagaError::Unexpected {
            event,
            status: self.status,
        }
    }

    /// Applies `event` to `self` in place; returns the order event to
    /// publish, if any. `apply` runs it on a copy, so an error leaves the
    /// saga untouched even if it strikes half-way.
    fn step(&mut self, event: SagaEvent) -> Result<Option<OrderEventKind>, SagaError> {
        let name = event.name();
        if self.stock == StockState::NotRequested && event != SagaEvent::Started {
            return Err(self.unexpected(name));
        }
        match event {
            SagaEvent::Started => Ok(self.on_started()),
            SagaEvent::StockReserved {
                subtotal_cents,
                delivery_fee_cents,
            } => self.on_stock_reserved(
                name,
                Quote {
                    subtotal_cents,
                    delivery_fee_cents,
                },
            ),
            SagaEvent::StockUnavailable { reason } => self.on_stock_unavailable(name, reason),
            SagaEvent::PaymentAuthorized { amount_cents } => {
                self.on_payment_authorized(name, amount_cents)
            }
            SagaEvent::PaymentDeclined { reason } => self.on_payment_declined(name, reason),
            SagaEvent::TicketCreated => self.on_ticket_created(name),
            SagaEvent::TicketAccepted => self.on_ticket_accepted(name),
            SagaEvent::TicketRejected { reason } => self.on_ticket_rejected(name, reason),
            SagaEvent::AcceptanceTimedOut => self.on_acceptance_timed_out(name),
            SagaEvent::PaymentTimedOut => self.on_payment_timed_out(name),
            SagaEvent::CourierAssigned { courier_id } => self.on_courier_assigned(name, courier_id),
            SagaEvent::PickedUp => self.on_picked_up(name),
            SagaEvent::PaymentCaptured => self.on_payment_captured(name),
            SagaEvent::Delivered => self.on_delivered(name),
            SagaEvent::CancelRequested => self.on_cancel_requested(),
            SagaEvent::StockReleased => self.on_stock_released(name),
            SagaEvent::PaymentVoided => self.on_payment_voided(name),
            SagaEvent::TicketCancelled => self.on_ticket_cancelled(name),
        }
    }

    /// A cancelled order is done once nothing it asked for is outstanding:
    /// every compensation acknowledged, every in-flight step answered.
    fn settle(&mut self) {
        if self.status == OrderStatus::CancelPending && self.outstanding().is_empty() {
            self.status = OrderStatus::Cancelled;
        }
    }

    /// Stops the order going forward and owes the compensation of every
    /// step that took effect. A step still in flight is left to finish: its
    /// handler compensates the result when it arrives, because undoing a
    /// step before it is known to have happened could race its retry.
    fn compensate(&mut self) {
        self.ticket = match self.ticket {
            TicketState::Open | TicketState::Accepted => TicketState::Cancelling,
            other => other,
        };
        self.payment = match self.payment {
            PaymentState::Authorized { amount_cents } => PaymentState::Voiding { amount_cents },
            other => other,
        };
        self.stock = match self.stock {
            StockState::Reserved => StockState::Releasing,
            other => other,
        };
    }

    fn reject(&mut self, cause: RejectionCause, reason: String) -> Option<OrderEventKind> {
        self.status = OrderStatus::Rejected;
        self.rejection = Some(Rejection { cause, reason });
        self.compensate();
        Some(OrderEventKind::Rejected)
    }

    fn on_started(&mut self) -> Option<OrderEventKind> {
        if self.stock != StockState::NotRequested {
            // Already started: a repeat.
            return None;
        }
        self.stock = StockState::Reserving;
        Some(OrderEventKind::Placed)
    }

    fn on_stock_reserved(
        &mut self,
        name: &'static str,
        quote: Quote,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        let invalid = |detail: &str| SagaError::Invalid {
            event: name,
            detail: detail.to_owned(),
        };
        if quote.subtotal_cents <= 0 {
            return Err(invalid("the subtotal must be positive"));
        }
        if quote.delivery_fee_cents < 0 {
            return Err(invalid("the delivery fee must not be negative"));
        }
        let Some(total_cents) = quote.subtotal_cents.checked_add(quote.delivery_fee_cents) else {
            return Err(invalid("the total overflows"));
        };
        match (self.stock, self.status) {
            (StockState::Reserving, OrderStatus::Pending) => {
                self.quote = Some(quote);
                self.stock = StockState::Reserved;
                self.status = OrderStatus::PaymentPending;
                self.payment = PaymentState::Authorizing {
                    amount_cents: total_cents,
                };
                Ok(None)
            }
            (StockState::Reserving, OrderStatus::CancelPending) => {
                // Cancelled while the reservation was in flight: it went
                // through, so give it back instead of going on to payment.
                self.quote = Some(quote);
                self.stock = StockState::Releasing;
                Ok(None)
            }
            (StockState::Reserved | StockState::Releasing | StockState::Released, _) => {
                if self.quote == Some(quote) {
                    Ok(None)
                } else {
                    Err(SagaError::Contradicts {
                        event: name,
                        detail: format!("the reservation was quoted as {:?}", self.quote),
                    })
                }
            }
            _ => Err(self.unexpected(name)),
        }
    }

    fn on_stock_unavailable(
        &mut self,
        name: &'static str,
        reason: String,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        match (self.stock, self.status) {
            (StockState::Reserving, OrderStatus::Pending) => {
                self.stock = StockState::Unavailable;
                Ok(self.reject(RejectionCause::StockUnavailable, reason))
            }
            (StockState::Reserving, OrderStatus::CancelPending) => {
                // The customer's cancel came first, so the order ends
                // CANCELLED (`settle`), not REJECTED; nothing was held.
                self.stock = StockState::Unavailable;
                Ok(None)
            }
            (StockState::Unavailable, _) => Ok(None),
            _ => Err(self.unexpected(name)),
        }
    }

    fn on_payment_authorized(
        &mut self,
        name: &'static str,
        amount_cents: i64,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        match (self.payment, self.status) {
            (
                PaymentState::Authorizing {
                    amount_cents: asked,
                },
                _,
            ) if asked != amount_cents => Err(SagaError::Contradicts {
                event: name,
                detail: format!("asked to authorize {asked} cents, got {amount_cents}"),
            }),
            (PaymentState::Authorizing { .. }, OrderStatus::PaymentPending) => {
                self.payment = PaymentState::Authorized { amount_cents };
                self.status = OrderStatus::AwaitingRestaurant;
                self.ticket = TicketState::Creating;
                Ok(None)
            }
            (PaymentState::Authorizing { .. }, _) if self.compensating() => {
                // Cancelled (or rejected for a payment that never answered)
                // while the authorization was in flight: void it instead of
                // going on to the kitchen.
                self.payment = PaymentState::Voiding { amount_cents };
                Ok(None)
            }
            (
                PaymentState::Authorized {
                    amount_cents: known,
                }
                | PaymentState::Voiding {
                    amount_cents: known,
                }
                | PaymentState::Voided {
                    amount_cents: known,
                }
                | PaymentState::Capturing {
                    amount_cents: known,
                }
                | PaymentState::Captured {
                    amount_cents: known,
                },
                _,
            ) => {
                if known == amount_cents {
                    Ok(None)
                } else {
                    Err(SagaError::Contradicts {
                        event: name,
                        detail: format!("{known} cents were authorized, not {amount_cents}"),
                    })
                }
            }
            _ => Err(self.unexpected(name)),
        }
    }

    fn on_payment_declined(
        &mut self,
        name: &'static str,
        reason: String,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        match (self.payment, self.status) {
            (PaymentState::Authorizing { .. }, OrderStatus::PaymentPending) => {
                self.payment = PaymentState::Declined;
                Ok(self.reject(RejectionCause::PaymentDeclined, reason))
            }
            (PaymentState::Authorizing { .. }, _) if self.compensating() => {
                // The cancel (or the payment deadline) already released the
                // stock; nothing else held.
                self.payment = PaymentState::Declined;
                Ok(None)
            }
            (PaymentState::Declined, _) => Ok(None),
            _ => Err(self.unexpected(name)),
        }
    }

    fn on_ticket_created(
        &mut self,
        name: &'static str,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        match self.ticket {
            TicketState::Creating => {
                // A rejection or cancel that came while the ticket was being
                // created deferred its cancellation until now.
                self.ticket = if self.compensating() {
                    TicketState::Cancelling
                } else {
                    TicketState::Open
                };
                Ok(None)
            }
            TicketState::NotRequested => Err(self.unexpected(name)),
            // Every later state implies the ticket was created: a repeat.
            TicketState::Open
            | TicketState::Accepted
            | TicketState::Rejected
            | TicketState::Cancelling
            | TicketState::Cancelled => Ok(None),
        }
    }

    fn on_ticket_accepted(
        &mut self,
        name: &'static str,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        match (self.ticket, self.status) {
            // An auto-accepting restaurant's `ticket.accepted` may overtake
            // the acknowledgement of `CreateTicket`: acceptance implies
            // creation, so it confirms either way.
            (TicketState::Creating | TicketState::Open, OrderStatus::AwaitingRestaurant) => {
                self.ticket = TicketState::Accepted;
                self.status = OrderStatus::Confirmed;
                Ok(Some(OrderEventKind::Confirmed))
            }
            (TicketState::Creating, _) if self.compensating() => {
                // Too late to confirm, but it tells us the ticket exists,
                // so its deferred cancellation can go ahead.
                self.ticket = TicketState::Cancelling;
                Ok(None)
            }
            (TicketState::Accepted, _) => Ok(None),
            // After a rejection or cancel the acceptance is late: the
            // ticket's cancellation is already owed, nothing more to do.
            _ => Err(self.unexpected(name)),
        }
    }

    fn on_ticket_rejected(
        &mut self,
        name: &'static str,
        reason: String,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        match (self.ticket, self.status) {
            (TicketState::Creating | TicketState::Open, OrderStatus::AwaitingRestaurant) => {
                // The restaurant closed the ticket itself: nothing to cancel.
                self.ticket = TicketState::Rejected;
                Ok(self.reject(RejectionCause::TicketRejected, reason))
            }
            (TicketState::Creating, _) if self.compensating() => {
                self.ticket = TicketState::Rejected;
                Ok(None)
            }
            (TicketState::Rejected, _) => Ok(None),
            _ => Err(self.unexpected(name)),
        }
    }

    fn on_acceptance_timed_out(
        &mut self,
        name: &'static str,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        if self.status == OrderStatus::AwaitingRestaurant {
            Ok(self.reject(
                RejectionCause::AcceptanceTimedOut,
                "the restaurant did not accept the order in time".to_owned(),
            ))
        } else if self.rejection_cause() == Some(RejectionCause::AcceptanceTimedOut) {
            Ok(None)
        } else {
            // The restaurant decided, or the customer cancelled, first.
            Err(self.unexpected(name))
        }
    }

    fn on_payment_timed_out(
        &mut self,
        name: &'static str,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        match (self.payment, self.status) {
            (PaymentState::Authorizing { .. }, OrderStatus::PaymentPending) => Ok(self.reject(
                RejectionCause::PaymentTimedOut,
                "the payment could not be authorized in time; nothing was charged".to_owned(),
            )),
            _ if self.rejection_cause() == Some(RejectionCause::PaymentTimedOut) => Ok(None),
            // Payments answered, or the customer cancelled, first.
            _ => Err(self.unexpected(name)),
        }
    }

    fn on_courier_assigned(
        &mut self,
        name: &'static str,
        courier_id: String,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        if courier_id.trim().is_empty() {
            return Err(SagaError::Invalid {
                event: name,
                detail: "the courier id is empty".to_owned(),
            });
        }
        if self.courier_id.as_deref() == Some(courier_id.as_str()) {
            return Ok(None);
        }
        match (self.status, &self.courier_id) {
            (OrderStatus::Confirmed, _) => {
                self.status = OrderStatus::CourierAssigned;
                self.courier_id = Some(courier_id);
                Ok(None)
            }
            // Delivery may hand the order to another courier before
            // pick-up; the latest assignment is the one that counts. After a
            // pick-up that overtook it, the assignment only names the courier.
            (OrderStatus::CourierAssigned, _)
            | (OrderStatus::PickedUp | OrderStatus::Delivered, None) => {
                self.courier_id = Some(courier_id);
                Ok(None)
            }
            _ => Err(self.unexpected(name)),
        }
    }

    fn on_picked_up(&mut self, name: &'static str) -> Result<Option<OrderEventKind>, SagaError> {
        match self.status {
            // A pick-up implies the assignment, which a consumer that does
            // not keep one order's events in sequence may deliver later.
            OrderStatus::Confirmed | OrderStatus::CourierAssigned => {
                self.pick_up()?;
                Ok(None)
            }
            OrderStatus::PickedUp | OrderStatus::Delivered => Ok(None),
            _ => Err(self.unexpected(name)),
        }
    }

    fn on_delivered(&mut self, name: &'static str) -> Result<Option<OrderEventKind>, SagaError> {
        match self.status {
            OrderStatus::Confirmed | OrderStatus::CourierAssigned | OrderStatus::PickedUp => {
                // A delivery implies the pick-up, even when its report has
                // not arrived yet.
                if self.status != OrderStatus::PickedUp {
                    self.pick_up()?;
                }
                // The capture may still be outstanding: delivery and
                // payments report independently, and the delivered fact must
                // not wait for (or be lost to) a slow capture, which stays
                // owed.
                self.status = OrderStatus::Delivered;
                Ok(Some(OrderEventKind::Completed))
            }
            OrderStatus::Delivered => Ok(None),
            _ => Err(self.unexpected(name)),
        }
    }

    /// The food left the restaurant: now the money is earned.
    fn pick_up(&mut self) -> Result<(), SagaError> {
        let PaymentState::Authorized { amount_cents } = self.payment else {
            // A confirmed order always holds an authorization; a stored
            // state saying otherwise is corrupt, and capturing is unsafe.
            return Err(SagaError::Contradicts {
                event: "PickedUp",
                detail: format!("there is nothing to capture: {:?}", self.payment),
            });
        };
        self.status = OrderStatus::PickedUp;
        self.payment = PaymentState::Capturing { amount_cents };
        Ok(())
    }

    fn on_payment_captured(
        &mut self,
        name: &'static str,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        match self.payment {
            PaymentState::Capturing { amount_cents } => {
                self.payment = PaymentState::Captured { amount_cents };
                Ok(None)
            }
            PaymentState::Captured { .. } => Ok(None),
            _ => Err(self.unexpected(name)),
        }
    }

    fn on_cancel_requested(&mut self) -> Result<Option<OrderEventKind>, SagaError> {
        match self.status {
            OrderStatus::Pending
            | OrderStatus::PaymentPending
            | OrderStatus::AwaitingRestaurant
            | OrderStatus::Confirmed
            | OrderStatus::CourierAssigned => {
                self.status = OrderStatus::CancelPending;
                self.compensate();
                // `order.cancelled` goes out now, not at CANCELLED: it is
                // what frees the courier and tells the restaurant.
                Ok(Some(OrderEventKind::Cancelled))
            }
            // The cancel was already accepted: a retry of the request.
            OrderStatus::CancelPending | OrderStatus::Cancelled => Ok(None),
            // Once picked up, the food is on its way and the payment
            // captured; a rejected order has nothing left to cancel.
            OrderStatus::PickedUp | OrderStatus::Delivered | OrderStatus::Rejected => {
                Err(SagaError::CannotCancel {
                    status: self.status,
                })
            }
        }
    }

    fn on_stock_released(
        &mut self,
        name: &'static str,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        match self.stock {
            StockState::Releasing => {
                self.stock = StockState::Released;
                Ok(None)
            }
            StockState::Released => Ok(None),
            _ => Err(self.unexpected(name)),
        }
    }

    fn on_payment_voided(
        &mut self,
        name: &'static str,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        match self.payment {
            PaymentState::Voiding { amount_cents } => {
                self.payment = PaymentState::Voided { amount_cents };
                Ok(None)
            }
            PaymentState::Voided { .. } => Ok(None),
            _ => Err(self.unexpected(name)),
        }
    }

    fn on_ticket_cancelled(
        &mut self,
        name: &'static str,
    ) -> Result<Option<OrderEventKind>, SagaError> {
        match self.ticket {
            TicketState::Cancelling => {
                self.ticket = TicketState::Cancelled;
                Ok(None)
            }
            TicketState::Cancelled => Ok(None),
            _ => Err(self.unexpected(name)),
        }
    }
}

fn is_final(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Delivered | OrderStatus::Rejected | OrderStatus::Cancelled
    )
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
