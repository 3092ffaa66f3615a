//! What the delivery service consumes: the orders feed.
//!
//! `order.confirmed` creates the order's pending delivery (once, however
//! often the event arrives: the order id is unique) and wakes the
//! dispatcher; `order.cancelled` cancels it unless the courier already has
//! the food, which frees the courier. Both run inside the consumer's
//! transaction, with the inbox record and the cursor move.
//!
//! What it publishes (`delivery.assigned`, `delivery.picked_up`,
//! `delivery.delivered`, `courier.moved`) is enqueued by the code that
//! makes the change, in the same transaction: see `routes` and `dispatch`.

use std::sync::Arc;

use contracts::events::{CloudEvent, Event};
use contracts::orders::{OrderCancelled, OrderConfirmed};
use platform::events::BoxFuture;
use platform::events::consumer::Handler;
use sqlx::AnyConnection;
use tokio::sync::Notify;

use crate::store;

/// Applies the orders service's events.
pub(crate) struct OrdersHandler {
    /// The dispatcher's wake-up.
    pub(crate) dispatch: Arc<Notify>,
}

impl Handler for OrdersHandler {
    fn wants(&self, kind: &str) -> bool {
        kind == OrderConfirmed::TYPE || kind == OrderCancelled::TYPE
    }

    fn handle<'a>(
        &'a self,
        tx: &'a mut AnyConnection,
        event: &'a CloudEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            if event.is::<OrderConfirmed>() {
                let confirmed: OrderConfirmed = event.decode()?;
                if store::insert_delivery(tx, &confirmed).await? {
                    tracing::info!(order_id = %confirmed.order_id, "delivery created; waiting for a courier");
                }
            } else {
                let cancelled: OrderCancelled = event.decode()?;
                if store::cancel_for_order(tx, cancelled.order_id).await? {
                    tracing::info!(order_id = %cancelled.order_id, "delivery cancelled");
                }
            }
            // Either may give the dispatcher work: a new delivery, or a
            // courier freed by a cancellation. The wake-up comes before
            // this transaction commits, which the dispatcher allows for
            // (see `dispatch`).
            self.dispatch.notify_one();
            Ok(())
        })
    }
}
