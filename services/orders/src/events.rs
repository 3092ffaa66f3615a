//! What orders consumes: the kitchen's decisions (restaurants feed) and the
//! courier's progress (delivery feed), each turned into a saga event and
//! applied in the consumer's transaction — so the inbox record, the cursor
//! and the saga's new state commit together. The commands an event causes
//! are executed after the commit.

use std::sync::Arc;

use contracts::OrderId;
use contracts::delivery::{DeliveryAssigned, DeliveryDelivered, DeliveryPickedUp};
use contracts::events::{CloudEvent, Event};
use contracts::kitchen::{TicketAccepted, TicketRejected};
use platform::events::BoxFuture;
use platform::events::consumer::Handler;
use sqlx::AnyConnection;

use crate::domain::SagaEvent;
use crate::orchestrator::{ApplyError, Orchestrator};
use crate::store::{Facts, StoredOrder};

/// Applies participants' events to the sagas they concern.
pub(crate) struct SagaEvents {
    pub(crate) orchestrator: Arc<Orchestrator>,
    /// The order the last applied event left, by event id, for
    /// `committed` to drive from (or not at all, when it owes nothing).
    /// One slot: a consumer applies one event at a time, and a redrive
    /// running beside it only misses the shortcut.
    last: std::sync::Mutex<Option<(String, StoredOrder)>>,
}

impl SagaEvents {
    pub(crate) fn new(orchestrator: Arc<Orchestrator>) -> Self {
        Self {
            orchestrator,
            last: std::sync::Mutex::new(None),
        }
    }
}

/// The saga event an incoming event means, and its order.
fn translate(event: &CloudEvent) -> anyhow::Result<Option<(OrderId, SagaEvent)>> {
    Ok(Some(match event.kind.as_str() {
        TicketAccepted::TYPE => (
            event.decode::<TicketAccepted>()?.order_id,
            SagaEvent::TicketAccepted,
        ),
        TicketRejected::TYPE => {
            let e = event.decode::<TicketRejected>()?;
            (e.order_id, SagaEvent::TicketRejected { reason: e.reason })
        }
        DeliveryAssigned::TYPE => {
            let e = event.decode::<DeliveryAssigned>()?;
            (
                e.order_id,
                SagaEvent::CourierAssigned {
                    courier_id: e.courier_id.to_string(),
                },
            )
        }
        DeliveryPickedUp::TYPE => (
            event.decode::<DeliveryPickedUp>()?.order_id,
            SagaEvent::PickedUp,
        ),
        DeliveryDelivered::TYPE => (
            event.decode::<DeliveryDelivered>()?.order_id,
            SagaEvent::Delivered,
        ),
        _ => return Ok(None),
    }))
}

impl Handler for SagaEvents {
    fn wants(&self, kind: &str) -> bool {
        matches!(
            kind,
            TicketAccepted::TYPE
                | TicketRejected::TYPE
                | DeliveryAssigned::TYPE
                | DeliveryPickedUp::TYPE
                | DeliveryDelivered::TYPE
        )
    }

    fn handle<'a>(
        &'a self,
        tx: &'a mut AnyConnection,
        event: &'a CloudEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let Some((order, saga_event)) = translate(event)? else {
                return Ok(());
            };
            // A version race (another writer changed the order between our
            // read and write) is retried here, re-reading in the same
            // transaction; it must not count toward parking the event.
            let mut applied = self
                .orchestrator
                .apply_in(tx, order, saga_event.clone(), &Facts::default())
                .await;
            for _ in 0..5 {
                if !matches!(applied, Err(ApplyError::Contended(_))) {
                    break;
                }
                applied = self
                    .orchestrator
                    .apply_in(tx, order, saga_event.clone(), &Facts::default())
                    .await;
            }
            let left = applied.as_ref().ok().map(|(_, order)| order.clone());
            *self.last.lock().expect("never poisoned") = left.map(|o| (event.id.clone(), o));
            match applied {
                Ok(_) => Ok(()),
                // A late or out-of-place fact (say, an acceptance after the
                // window closed): the saga already decided; record the event
                // as handled and move on.
                Err(ApplyError::Saga(e)) => {
                    tracing::info!(order_id = %order, kind = %event.kind, reason = %e, "event does not change the order");
                    Ok(())
                }
                Err(ApplyError::NotFound(_)) => {
                    tracing::warn!(order_id = %order, kind = %event.kind, "event for an unknown order");
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn committed(&self, event: &CloudEvent) {
        let Ok(Some((id, _))) = translate(event) else {
            return;
        };
        let left = self
            .last
            .lock()
            .expect("never poisoned")
            .take()
            .filter(|(event_id, _)| *event_id == event.id)
            .map(|(_, order)| order);
        // Nothing owed: nothing to drive (a confirmation, say).
        if left
            .as_ref()
            .is_some_and(|order| order.saga.outstanding().is_empty())
        {
            return;
        }
        let orchestrator = self.orchestrator.clone();
        tokio::spawn(async move { orchestrator.drive_from(id, left, None).await });
    }
}
