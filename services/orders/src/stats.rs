//! Counts of orders by status, for the ops view's live counters
//! (`GET /internal/orders/status-counts`, service tokens only).
//!
//! The gateway reads this for `GET /api/v1/ops/overview`; no customer data
//! leaves the service, only one number per status.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use contracts::Problem;
use contracts::orders::OrderStatus;
use platform::auth::ServiceCaller;
use platform::{ApiResult, Json};
use sqlx::Row;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(paths(status_counts))]
pub(crate) struct StatsDoc;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/internal/orders/status-counts", get(status_counts))
}

/// How many orders are in each status right now; every status is present
/// (zero when none is).
#[utoipa::path(get, path = "/internal/orders/status-counts", security(("bearer" = [])),
    responses(
        (status = 200, body = BTreeMap<String, i64>),
        (status = 401, body = Problem),
        (status = 403, description = "not a service token", body = Problem)))]
pub(crate) async fn status_counts(
    _caller: ServiceCaller,
    State(state): State<AppState>,
) -> ApiResult<Json<BTreeMap<String, i64>>> {
    let mut counts: BTreeMap<String, i64> = OrderStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM orders GROUP BY status")
        .fetch_all(&state.db)
        .await?;
    for row in rows {
        let status: String = row.try_get("status")?;
        let n: i64 = row.try_get("n")?;
        counts.insert(status, n);
    }
    Ok(Json(counts))
}
