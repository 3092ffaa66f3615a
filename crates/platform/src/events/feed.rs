//! The `feed` transport: a producer serves its outbox as an ordered
//! long-poll feed, `GET /events?after=<position>&limit=<n>&wait=<ms>`.
//!
//! The answer holds the events after `after`, in position order. When there
//! are none, it waits up to `wait` ms for the next one, so a consumer sees
//! an event within milliseconds of its commit without polling hard.
//!
//! The feed carries every event of the service (addresses included), so it
//! is internal: callers present a service token.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use contracts::events::{CloudEvent, FeedEntry, FeedPage};
use serde::Deserialize;

use super::Outbox;
use crate::auth::ServiceCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};

/// The most a consumer may ask for at once.
pub const MAX_LIMIT: i64 = 1000;
/// The longest a request may wait for news.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// How long a waiting reader lingers after the news, for more to join it.
const LINGER: Duration = Duration::from_millis(5);

#[derive(Deserialize)]
struct FeedParams {
    #[serde(default)]
    after: i64,
    limit: Option<i64>,
    wait: Option<u64>,
}

/// The route serving `outbox`'s feed.
pub fn router<S: Clone + Send + Sync + 'static>(outbox: Outbox) -> Router<S> {
    Router::new()
        .route("/events", get(events))
        .with_state(outbox)
}

async fn events(
    _caller: ServiceCaller,
    draining: Option<axum::Extension<crate::server::Draining>>,
    State(outbox): State<Outbox>,
    Query(params): Query<FeedParams>,
) -> ApiResult<Json<FeedPage>> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    if params.after < 0 {
        return Err(ApiError::invalid_field("after", "must not be negative"));
    }
    let wait = Duration::from_millis(params.wait.unwrap_or(0)).min(MAX_WAIT);
    let mut head = outbox.head();
    // A reader that is caught up with the head this process knows asks
    // for news: reading first would find nothing (the common case, as a
    // consumer asks again right after each page), so it waits at once. The
    // head lags the database only where another replica's relay positions
    // events, and then by at most the relay's tick.
    let caught_up = *head.borrow() <= params.after && !wait.is_zero();
    let mut entries = if caught_up {
        Vec::new()
    } else {
        read(&outbox, params.after, limit).await?
    };
    if entries.is_empty() && !wait.is_zero() {
        // Wait for the relay to move the head past `after` (or time out),
        // then read again.
        // ... or for the server to start shutting down: a long poll must
        // not hold the drain up.
        let shutdown = async {
            match draining {
                Some(axum::Extension(d)) => d.started().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = async {
                if tokio::time::timeout(wait, head.wait_for(|h| *h > params.after)).await.is_ok() {
                    // News: let what commits right behind it join the page,
                    // so a busy producer is read in batches, not one
                    // request per event.
                    tokio::time::sleep(LINGER).await;
                }
            } => {}
            () = shutdown => {}
        }
        entries = read(&outbox, params.after, limit).await?;
    }
    let last_position = entries.last().map_or(params.after, |e| e.position);
    let head = (*head.borrow()).max(last_position);
    Ok(Json(FeedPage {
        entries,
        last_position,
        head,
    }))
}

async fn read(outbox: &Outbox, after: i64, limit: i64) -> ApiResult<Vec<FeedEntry>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT position, event FROM outbox WHERE position > $1 ORDER BY position LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(outbox.db())
    .await?;
    rows.into_iter()
        .map(|(position, json)| {
            let event: CloudEvent = serde_json::from_str(&json).map_err(|e| {
                ApiError::internal(anyhow::anyhow!(
                    "outbox row {position} is not an event: {e}"
                ))
            })?;
            Ok(FeedEntry { position, event })
        })
        .collect()
}
