//! Live order pages: `GET /api/v1/orders/{id}/stream`, server-sent events.
//!
//! The gateway follows the orders and delivery events (`follow.rs`) and
//! wakes the streams of
//! the order an event is about; a woken stream re-reads the composed order
//! (as `GET /orders/{id}` answers it, with the caller's own token, so the
//! same access rules apply) and sends it when it changed. A slow tick is
//! the safety net for a missed wake-up. Each status change and each courier
//! move thus reaches the browser within a few milliseconds of its event.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::AppState;
use crate::routes::Auth;

/// Wakes the streams of one order.
#[derive(Default)]
pub(crate) struct Hub {
    topics: Mutex<HashMap<String, broadcast::Sender<()>>>,
}

impl Hub {
    fn subscribe(&self, order: &str) -> broadcast::Receiver<()> {
        let mut topics = self.topics.lock().expect("the hub lock is never poisoned");
        // Forget orders nobody watches any more.
        topics.retain(|_, tx| tx.receiver_count() > 0);
        topics
            .entry(order.to_owned())
            .or_insert_with(|| broadcast::channel(16).0)
            .subscribe()
    }

    fn wake(&self, order: &str) {
        if let Some(tx) = self
            .topics
            .lock()
            .expect("the hub lock is never poisoned")
            .get(order)
        {
            let _ = tx.send(());
        }
    }
}

/// The follows of the orders and delivery events wake the streams of
/// each event's subject.
impl crate::follow::Listener for Hub {
    fn event(&self, event: &contracts::events::CloudEvent) {
        if let Some(subject) = &event.subject {
            self.wake(subject);
        }
    }
}

/// How often a stream looks even without a wake-up.
const TICK: Duration = Duration::from_secs(2);

/// The composed order, as `GET /orders/{id}` answers the caller.
async fn read(
    state: &AppState,
    authorization: &HeaderValue,
    order: &str,
) -> Result<Value, Response> {
    let request = Request::builder()
        .uri(format!("/api/v1/orders/{order}"))
        .header(header::AUTHORIZATION, authorization)
        .body(Body::empty())
        .map_err(|e| platform::ApiError::internal(anyhow::anyhow!("{e}")).into_response())?;
    let response = crate::compose::order(state, Auth::Token, request).await;
    if !response.status().is_success() {
        return Err(response);
    }
    let bytes = axum::body::to_bytes(response.into_body(), 1024 * 1024)
        .await
        .map_err(|e| platform::ApiError::internal(anyhow::anyhow!("{e}")).into_response())?;
    serde_json::from_slice(&bytes)
        .map_err(|e| platform::ApiError::internal(anyhow::anyhow!("{e}")).into_response())
}

fn is_final(order: &Value) -> bool {
    matches!(
        order["status"].as_str(),
        Some("DELIVERED" | "REJECTED" | "CANCELLED")
    )
}

/// `GET /api/v1/orders/{id}/stream`: the order now, then again each time
/// it changes, until it is final.
pub(crate) async fn stream(state: &AppState, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    if let Err(e) = state.verifier.verify_header(&parts).await {
        return platform::ApiError::from(e).into_response();
    }
    let Some(authorization) = parts.headers.get(header::AUTHORIZATION).cloned() else {
        return platform::ApiError::unauthorized("missing bearer token").into_response();
    };
    let order = parts
        .uri
        .path()
        .trim_end_matches("/stream")
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    // Subscribe before the first read, so no change falls in between.
    let wakeups = state.hub.subscribe(&order);
    let first = match read(state, &authorization, &order).await {
        Ok(first) => first,
        Err(response) => return response,
    };
    let state = state.clone();
    struct Watch {
        state: AppState,
        authorization: HeaderValue,
        order: String,
        wakeups: broadcast::Receiver<()>,
        last: Option<Value>,
        done: bool,
    }
    let watch = Watch {
        state,
        authorization,
        order,
        wakeups,
        last: None,
        done: false,
    };
    let events = stream::unfold((watch, Some(first)), |(mut w, pending)| async move {
        if w.done {
            return None;
        }
        let mut next = pending;
        while next.is_none() {
            tokio::select! {
                _ = w.wakeups.recv() => {}
                () = tokio::time::sleep(TICK) => {}
            }
            match read(&w.state, &w.authorization, &w.order).await {
                Ok(order) if Some(&order) != w.last.as_ref() => next = Some(order),
                Ok(_) => {}
                // The order became unreadable (say, the token expired): end.
                Err(_) => return None,
            }
        }
        let order = next?;
        w.done = is_final(&order);
        w.last = Some(order.clone());
        let event = Event::default().event("order").json_data(&order).ok()?;
        Some((Ok::<_, std::convert::Infallible>(event), (w, None)))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
