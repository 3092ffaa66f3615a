//! Following a producer's events in memory, from its head when the
//! gateway starts (it owns nothing durable): the live order pages
//! (`live.rs`) and the edge cache (`edge.rs`) listen.
//!
//! On the feed transport a follow keeps its cursor across failures, so a
//! producer that was away is resumed where it left off; on NATS a plain
//! subscription misses what was published while it was down, so each new
//! subscription starts afresh. Listeners are told which.

use std::sync::Arc;
use std::time::Duration;

use contracts::events::CloudEvent;
use futures_util::StreamExt;
use platform::events::transport::{HttpFeed, Source};

/// What a follow tells the one listening.
pub(crate) trait Listener: Send + Sync + 'static {
    /// One event, in the producer's order.
    fn event(&self, event: &CloudEvent);
    /// The follow is (again) receiving events; `resumed`: without missing
    /// any since it was last connected.
    fn connected(&self, _resumed: bool) {}
    /// The follow cannot receive events for now.
    fn lost(&self) {}
}

/// Follows a producer's feed from its current head. Retries forever: a
/// producer that is down only means no events from it until it returns.
pub(crate) fn feed(listener: Arc<dyn Listener>, feed: HttpFeed) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut after: Option<i64> = None;
        let mut connected = false;
        loop {
            let from = match after {
                Some(a) => a,
                None => match feed.fetch(0, 1, Duration::ZERO).await {
                    Ok(page) => {
                        after = Some(page.head);
                        listener.connected(false);
                        connected = true;
                        continue;
                    }
                    Err(_) => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            match feed.fetch(from, 500, Duration::from_secs(10)).await {
                Ok(page) => {
                    if !connected {
                        listener.connected(true);
                        connected = true;
                    }
                    for entry in &page.entries {
                        listener.event(&entry.event);
                    }
                    after = Some(page.last_position);
                }
                Err(_) => {
                    if connected {
                        listener.lost();
                        connected = false;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    })
}

/// Follows `producer`'s events on NATS as they are published (a plain
/// subscription: nothing durable, like the feed from its head).
/// Subscribes again after a failure.
pub(crate) fn nats(
    listener: Arc<dyn Listener>,
    nats: platform::events::nats::Nats,
    producer: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match nats.live(producer).await {
                Ok(mut messages) => {
                    listener.connected(false);
                    while let Some(message) = messages.next().await {
                        if let Ok(event) = serde_json::from_slice::<CloudEvent>(&message.payload) {
                            listener.event(&event);
                        }
                    }
                    listener.lost();
                }
                Err(e) => tracing::debug!(producer, error = %e, "cannot follow NATS; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}
