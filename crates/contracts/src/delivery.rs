//! Delivery: couriers and the deliveries they make, owned by the delivery
//! service.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::Location;
use crate::events::Event;
use crate::{OrderId, UserId};

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    /// Waiting for a free courier.
    Pending,
    Assigned,
    PickedUp,
    Delivered,
    Cancelled,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Assigned => "ASSIGNED",
            DeliveryStatus::PickedUp => "PICKED_UP",
            DeliveryStatus::Delivered => "DELIVERED",
            DeliveryStatus::Cancelled => "CANCELLED",
        }
    }

    /// Whether the courier is still busy with it.
    pub const fn is_active(self) -> bool {
        matches!(self, DeliveryStatus::Assigned | DeliveryStatus::PickedUp)
    }
}

/// A delivery as the API shows it (API.md, Couriers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    pub order_id: OrderId,
    pub status: DeliveryStatus,
    pub courier_id: Option<UserId>,
    pub pickup: Location,
    pub dropoff: Location,
    /// Where the courier was last seen, while one is assigned.
    pub courier_location: Option<Location>,
    /// Estimated arrival at the drop-off (RFC 3339), once a courier is assigned.
    pub eta: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// `PUT /couriers/me`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CourierUpdate {
    pub available: bool,
    pub location: Location,
}

/// A courier as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Courier {
    pub id: UserId,
    pub available: bool,
    pub location: Location,
    /// The delivery the courier holds, if any (at most one).
    pub active_delivery_id: Option<String>,
    pub updated_at: String,
}

/// A courier was assigned to an order's delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAssigned {
    pub order_id: OrderId,
    pub delivery_id: String,
    pub courier_id: UserId,
    pub eta: String,
}

impl Event for DeliveryAssigned {
    const TYPE: &'static str = "feastfast.delivery.assigned.v1";
    const SOURCE: &'static str = "delivery";
    fn subject(&self) -> String {
        self.order_id.to_string()
    }
}

/// The courier has the food.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPickedUp {
    pub order_id: OrderId,
    pub delivery_id: String,
    pub courier_id: UserId,
}

impl Event for DeliveryPickedUp {
    const TYPE: &'static str = "feastfast.delivery.picked_up.v1";
    const SOURCE: &'static str = "delivery";
    fn subject(&self) -> String {
        self.order_id.to_string()
    }
}

/// The food reached the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryDelivered {
    pub order_id: OrderId,
    pub delivery_id: String,
    pub courier_id: UserId,
}

impl Event for DeliveryDelivered {
    const TYPE: &'static str = "feastfast.delivery.delivered.v1";
    const SOURCE: &'static str = "delivery";
    fn subject(&self) -> String {
        self.order_id.to_string()
    }
}

/// A courier on a delivery moved (for the customer's live map).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CourierMoved {
    pub order_id: OrderId,
    pub courier_id: UserId,
    pub location: Location,
}

impl Event for CourierMoved {
    const TYPE: &'static str = "feastfast.courier.moved.v1";
    const SOURCE: &'static str = "delivery";
    fn subject(&self) -> String {
        self.order_id.to_string()
    }
}
