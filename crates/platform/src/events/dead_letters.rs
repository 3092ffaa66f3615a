//! Operating dead letters: list the events a service's consumers parked,
//! and redrive them once the cause is fixed.
//!
//! Every consuming service mounts [`router`] with its consumers:
//! `GET /internal/dead-letters` lists what is parked (and what was
//! redriven), `POST /internal/dead-letters/redrive` applies each parked
//! event again through the same inbox, so an event applied meanwhile is
//! not applied twice. Both need a service token. `feastfast outbox
//! list-dead <service>` and `feastfast outbox redrive <service>` call them.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::BoxFuture;
use super::consumer::{Consumer, Handler};
use super::transport::Source;
use crate::auth::ServiceCaller;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;

pub use contracts::audit::DeadLetter;

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Redriven {
    pub applied: Vec<String>,
    pub still_failing: Vec<String>,
}

/// A consumer whose dead letters can be redriven.
pub trait Redrive: Send + Sync + 'static {
    fn source(&self) -> &str;
    fn redrive(&self) -> BoxFuture<'_, anyhow::Result<Redriven>>;
}

impl<H: Handler, S: Source> Redrive for Consumer<H, S> {
    fn source(&self) -> &str {
        Consumer::source(self)
    }

    fn redrive(&self) -> BoxFuture<'_, anyhow::Result<Redriven>> {
        Box::pin(Consumer::redrive(self))
    }
}

#[derive(Clone)]
struct Ops {
    db: Db,
    consumers: Arc<Vec<Arc<dyn Redrive>>>,
}

/// The dead-letter routes of a service with `consumers`.
pub fn router<S: Clone + Send + Sync + 'static>(
    db: Db,
    consumers: Vec<Arc<dyn Redrive>>,
) -> Router<S> {
    Router::new()
        .route("/internal/dead-letters", get(list))
        .route("/internal/dead-letters/redrive", post(redrive))
        .with_state(Ops {
            db,
            consumers: Arc::new(consumers),
        })
}

#[derive(sqlx::FromRow)]
struct Row {
    event_id: String,
    source: String,
    position: Option<i64>,
    event: String,
    error: String,
    attempts: i64,
    dead_at: String,
    redriven_at: Option<String>,
}

async fn list(_caller: ServiceCaller, State(ops): State<Ops>) -> ApiResult<Json<Vec<DeadLetter>>> {
    Ok(Json(all(&ops.db).await?))
}

/// Every dead letter of this service, parked or redriven, oldest first.
pub async fn all(db: &Db) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT event_id, source, position, event, error, CAST(attempts AS BIGINT) AS attempts, dead_at, redriven_at \
         FROM dead_letters ORDER BY dead_at, event_id",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DeadLetter {
            kind: serde_json::from_str::<serde_json::Value>(&r.event)
                .ok()
                .and_then(|e| e["type"].as_str().map(str::to_owned))
                .unwrap_or_default(),
            event_id: r.event_id,
            source: r.source,
            position: r.position,
            error: r.error,
            attempts: r.attempts,
            dead_at: r.dead_at,
            redriven_at: r.redriven_at,
        })
        .collect())
}

async fn redrive(_caller: ServiceCaller, State(ops): State<Ops>) -> ApiResult<Json<Redriven>> {
    let mut all = Redriven::default();
    for consumer in ops.consumers.iter() {
        let done = consumer.redrive().await.map_err(|e| {
            ApiError::internal(e.context(format!("redriving {}", consumer.source())))
        })?;
        all.applied.extend(done.applied);
        all.still_failing.extend(done.still_failing);
    }
    Ok(Json(all))
}
