//! The kitchen side of an order: stock reservations and tickets, owned by
//! the restaurants service.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::Location;
use crate::events::Event;
use crate::{MenuItemId, OrderId, RestaurantId};

/// One line of an order as the customer asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderLine {
    pub menu_item_id: MenuItemId,
    pub quantity: i64,
}

/// The most lines one order may have, and the most of one item.
pub const MAX_LINES: usize = 50;
pub const MAX_QUANTITY: i64 = 99;

/// What is wrong with an order's lines (empty when nothing): one rule for
/// the orders API and the kitchen alike.
pub fn line_errors(lines: &[OrderLine]) -> Vec<crate::FieldError> {
    use crate::FieldError;
    let mut errors = Vec::new();
    if lines.is_empty() {
        errors.push(FieldError::new("items", "must not be empty"));
    }
    if lines.len() > MAX_LINES {
        errors.push(FieldError::new(
            "items",
            format!("must have at most {MAX_LINES} lines"),
        ));
    }
    for (i, line) in lines.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            errors.push(FieldError::new(
                format!("items[{i}].quantity"),
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
        }
    }
    let mut ids: Vec<_> = lines.iter().map(|l| l.menu_item_id).collect();
    ids.sort();
    ids.dedup();
    if ids.len() != lines.len() {
        errors.push(FieldError::new(
            "items",
            "must not repeat an item; add up the quantity",
        ));
    }
    errors
}

/// `POST /internal/orders/{order_id}/reservation`: price the lines and
/// reserve their stock, atomically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReserveRequest {
    pub restaurant_id: RestaurantId,
    pub items: Vec<OrderLine>,
}

/// A priced line: the name and price are the order's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PricedLine {
    pub menu_item_id: MenuItemId,
    pub name: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Reserved,
    Released,
}

/// Stock held for an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reservation {
    pub order_id: OrderId,
    pub restaurant_id: RestaurantId,
    pub restaurant_name: String,
    /// Where the courier picks the order up.
    pub pickup: Location,
    pub items: Vec<PricedLine>,
    pub subtotal_cents: i64,
    pub status: ReservationStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketStatus {
    /// Waiting for the owner (until `accept_by`).
    Pending,
    Accepted,
    Rejected,
    /// Cooked and waiting for the courier.
    Ready,
    Cancelled,
}

/// An order as the kitchen sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ticket {
    pub order_id: OrderId,
    pub restaurant_id: RestaurantId,
    pub items: Vec<PricedLine>,
    pub status: TicketStatus,
    /// Until when the owner may accept (RFC 3339); after it the order is
    /// rejected automatically.
    pub accept_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /restaurants/{id}/tickets/{order_id}/reject`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RejectTicket {
    #[serde(default)]
    pub reason: Option<String>,
}

/// The kitchen accepted an order (the owner, or auto-accept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketAccepted {
    pub order_id: OrderId,
    pub restaurant_id: RestaurantId,
}

impl Event for TicketAccepted {
    const TYPE: &'static str = "feastfast.ticket.accepted.v1";
    const SOURCE: &'static str = "restaurants";
    fn subject(&self) -> String {
        self.order_id.to_string()
    }
}

/// The owner turned an order down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketRejected {
    pub order_id: OrderId,
    pub restaurant_id: RestaurantId,
    pub reason: String,
}

impl Event for TicketRejected {
    const TYPE: &'static str = "feastfast.ticket.rejected.v1";
    const SOURCE: &'static str = "restaurants";
    fn subject(&self) -> String {
        self.order_id.to_string()
    }
}

/// The food is ready for pick-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketReady {
    pub order_id: OrderId,
    pub restaurant_id: RestaurantId,
}

impl Event for TicketReady {
    const TYPE: &'static str = "feastfast.ticket.ready.v1";
    const SOURCE: &'static str = "restaurants";
    fn subject(&self) -> String {
        self.order_id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: MenuItemId, quantity: i64) -> OrderLine {
        OrderLine {
            menu_item_id: id,
            quantity,
        }
    }

    #[test]
    fn good_lines_have_no_errors() {
        assert!(line_errors(&[line(MenuItemId::new(), 1), line(MenuItemId::new(), 99)]).is_empty());
    }

    #[test]
    fn empty_zero_too_many_and_repeated_lines_are_named() {
        let fields = |lines: &[OrderLine]| -> Vec<String> {
            line_errors(lines).into_iter().map(|e| e.field).collect()
        };
        assert_eq!(fields(&[]), ["items"]);
        assert_eq!(fields(&[line(MenuItemId::new(), 0)]), ["items[0].quantity"]);
        assert_eq!(
            fields(&[line(MenuItemId::new(), 1), line(MenuItemId::new(), 100)]),
            ["items[1].quantity"]
        );
        let same = MenuItemId::new();
        assert_eq!(fields(&[line(same, 1), line(same, 2)]), ["items"]);
        let many: Vec<OrderLine> = (0..51).map(|_| line(MenuItemId::new(), 1)).collect();
        assert_eq!(fields(&many), ["items"]);
    }
}
