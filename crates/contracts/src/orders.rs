//! Orders: the order as the API shows it, the request that places one, and
//! the events the orders service publishes. The status names are part of
//! the public contract (`API.md`), so their JSON form is pinned by a test.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::Location;
use crate::events::Event;
use crate::{OrderId, RestaurantId, UserId};

/// Where an order is in its saga (DESIGN §2).
///
/// `PENDING`, `PAYMENT_PENDING` and `CANCEL_PENDING` mean a step is in
/// flight; `DELIVERED`, `REJECTED` and `CANCELLED` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed; stock is being reserved.
    Pending,
    /// Stock reserved; the payment is being authorized.
    PaymentPending,
    /// Paid (authorized); waiting for the restaurant to accept.
    AwaitingRestaurant,
    /// The restaurant accepted; waiting for a courier.
    Confirmed,
    CourierAssigned,
    /// The courier has the food; the payment is captured.
    PickedUp,
    Delivered,
    /// The order could not go ahead; `rejection_reason` says why.
    Rejected,
    /// The customer cancelled; compensations are still running.
    CancelPending,
    Cancelled,
}

impl OrderStatus {
    /// Every status, in the order of the happy path, then the failures.
    pub const ALL: [OrderStatus; 10] = [
        OrderStatus::Pending,
        OrderStatus::PaymentPending,
        OrderStatus::AwaitingRestaurant,
        OrderStatus::Confirmed,
        OrderStatus::CourierAssigned,
        OrderStatus::PickedUp,
        OrderStatus::Delivered,
        OrderStatus::Rejected,
        OrderStatus::CancelPending,
        OrderStatus::Cancelled,
    ];

    /// The wire name, e.g. `PAYMENT_PENDING` (the same as its JSON form).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::PaymentPending => "PAYMENT_PENDING",
            OrderStatus::AwaitingRestaurant => "AWAITING_RESTAURANT",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::CourierAssigned => "COURIER_ASSIGNED",
            OrderStatus::PickedUp => "PICKED_UP",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::CancelPending => "CANCEL_PENDING",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the food goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAddress {
    pub line1: String,
    pub city: String,
    pub location: Location,
}

/// `POST /orders` (with an `Idempotency-Key` header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlaceOrder {
    pub restaurant_id: RestaurantId,
    pub items: Vec<crate::kitchen::OrderLine>,
    pub delivery_address: DeliveryAddress,
    /// A payment method token: `pm_card_visa`, `pm_card_chargeDeclined`,
    /// `pm_card_chargeDeclinedInsufficientFunds`.
    pub payment_method: String,
}

/// The payment part of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderPayment {
    /// `pending`, `authorized`, `declined`, `voided` or `captured`.
    pub status: String,
}

/// One status change of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntry {
    pub status: OrderStatus,
    pub at: String,
}

/// An order as the API shows it (API.md, Orders).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Order {
    pub id: OrderId,
    pub status: OrderStatus,
    pub customer_id: UserId,
    pub restaurant_id: RestaurantId,
    /// The names and prices as they were when the order was placed.
    pub items: Vec<crate::kitchen::PricedLine>,
    pub subtotal_cents: i64,
    pub delivery_fee_cents: i64,
    pub total_cents: i64,
    pub payment: OrderPayment,
    /// The delivery part, composed by the gateway from the delivery
    /// service; `null` until a delivery exists (or while delivery is down).
    #[schema(value_type = Option<Object>)]
    pub delivery: Option<serde_json::Value>,
    pub delivery_address: DeliveryAddress,
    /// Where the food is picked up, once the restaurant quoted the order.
    pub pickup: Option<Location>,
    pub rejection_reason: Option<String>,
    pub timeline: Vec<TimelineEntry>,
    pub created_at: String,
    pub updated_at: String,
}

macro_rules! order_event {
    ($(#[$doc:meta])* $name:ident, $type:literal { $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            pub order_id: OrderId,
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        impl Event for $name {
            const TYPE: &'static str = $type;
            const SOURCE: &'static str = "orders";
            fn subject(&self) -> String {
                self.order_id.to_string()
            }
        }
    };
}

order_event!(
    /// A customer placed an order (the saga starts).
    OrderPlaced, "feastfast.order.placed.v1" {
        customer_id: UserId,
        restaurant_id: RestaurantId,
    }
);
order_event!(
    /// The restaurant accepted a paid order: it needs a courier.
    OrderConfirmed, "feastfast.order.confirmed.v1" {
        customer_id: UserId,
        restaurant_id: RestaurantId,
        /// The restaurant.
        pickup: Location,
        /// The customer's address.
        dropoff: Location,
    }
);
order_event!(
    /// The order could not go ahead.
    OrderRejected, "feastfast.order.rejected.v1" {
        reason: String,
    }
);
order_event!(
    /// The customer cancelled before pick-up: any courier is freed.
    OrderCancelled, "feastfast.order.cancelled.v1" {}
);
order_event!(
    /// The order was delivered.
    OrderCompleted, "feastfast.order.completed.v1" {}
);
order_event!(
    /// The order moved to another status (every move, for live views).
    OrderStatusChanged, "feastfast.order.status_changed.v1" {
        status: OrderStatus,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_screaming_snake_case_json() {
        let json = serde_json::to_value(OrderStatus::ALL).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!([
                "PENDING",
                "PAYMENT_PENDING",
                "AWAITING_RESTAURANT",
                "CONFIRMED",
                "COURIER_ASSIGNED",
                "PICKED_UP",
                "DELIVERED",
                "REJECTED",
                "CANCEL_PENDING",
                "CANCELLED"
            ])
        );
    }

    #[test]
    fn every_status_reads_back_and_displays_as_its_wire_name() {
        for status in OrderStatus::ALL {
            let json = serde_json::to_string(&status).expect("serialises");
            assert_eq!(json, format!("\"{status}\""));
            let back: OrderStatus = serde_json::from_str(&json).expect("deserialises");
            assert_eq!(back, status);
        }
    }

    #[test]
    fn unknown_or_differently_cased_statuses_are_refused() {
        assert!(serde_json::from_str::<OrderStatus>("\"Pending\"").is_err());
        assert!(serde_json::from_str::<OrderStatus>("\"SHIPPED\"").is_err());
    }
}
