//! Audit: what each stateful service tells an invariant checker about
//! itself (`GET /internal/audit`, service token), and what the gateway
//! gathers from all of them in one read (`GET /api/v1/ops/audit`), which
//! `feastfast verify` checks across services.
//!
//! Compact on purpose: one row per order and per fact another service
//! must agree with (statuses, amounts, counts), nothing a customer typed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::delivery::DeliveryStatus;
use crate::kitchen::{ReservationStatus, TicketStatus};
use crate::orders::OrderStatus;
use crate::payments::PaymentStatus;
use crate::{OrderId, UserId};

/// One event a consumer parked after its last attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetter {
    pub event_id: String,
    /// The producing service.
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub position: Option<i64>,
    pub error: String,
    pub attempts: i64,
    pub dead_at: String,
    /// When an operator applied it again; `None` while it is parked.
    pub redriven_at: Option<String>,
}

/// A service's events: what its outbox has not published yet, and what
/// its consumers parked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventsAudit {
    /// Events committed but not yet published.
    pub outbox_unpublished: i64,
    /// How long the oldest of them has waited, in seconds.
    pub outbox_oldest_seconds: Option<f64>,
    /// Dead letters still parked (not redriven).
    pub dead_letters: Vec<DeadLetter>,
}

/// One order as its saga stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderAudit {
    pub id: OrderId,
    pub status: OrderStatus,
    pub created_at: String,
    /// When the saga last changed.
    pub updated_at: String,
    /// The saga's commands issued and not yet acknowledged (their step
    /// names); empty when the saga waits for nobody.
    pub outstanding: Vec<String>,
    /// While the order waits for the restaurant: when its acceptance
    /// window closes (the saga decides by then).
    pub decide_by: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrdersAudit {
    pub orders: Vec<OrderAudit>,
    pub events: EventsAudit,
}

/// How many ledger entries of one kind a payment has, and their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tally {
    pub count: i64,
    pub cents: i64,
}

/// One order's payment and its ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentAudit {
    pub order_id: OrderId,
    pub status: PaymentStatus,
    pub authorized_cents: i64,
    pub captured_cents: i64,
    pub authorizations: Tally,
    pub captures: Tally,
    pub voids: Tally,
    pub refunds: Tally,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PaymentsAudit {
    pub payments: Vec<PaymentAudit>,
    pub events: EventsAudit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReservationAudit {
    pub order_id: OrderId,
    pub status: ReservationStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TicketAudit {
    pub order_id: OrderId,
    pub status: TicketStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RestaurantsAudit {
    pub reservations: Vec<ReservationAudit>,
    pub tickets: Vec<TicketAudit>,
    pub events: EventsAudit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAudit {
    pub order_id: OrderId,
    pub courier_id: Option<UserId>,
    pub status: DeliveryStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveriesAudit {
    pub deliveries: Vec<DeliveryAudit>,
    pub events: EventsAudit,
}

/// Every stateful service's audit, read by the gateway at one moment. A
/// service that could not answer is `null` here and named, with why, in
/// `unavailable`: never silently left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlatformAudit {
    /// When the gateway gathered it (RFC 3339): the "now" of every age.
    pub taken_at: String,
    pub orders: Option<OrdersAudit>,
    pub payments: Option<PaymentsAudit>,
    pub restaurants: Option<RestaurantsAudit>,
    pub delivery: Option<DeliveriesAudit>,
    /// Service name → why its audit could not be read.
    pub unavailable: BTreeMap<String, String>,
}
