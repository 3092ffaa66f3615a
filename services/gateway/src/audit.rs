//! `GET /api/v1/ops/audit`: every stateful service's audit
//! (`GET /internal/audit`, `contracts::audit`) in one read, gathered with
//! the gateway's service token, for `feastfast verify`. A service that
//! cannot answer is named with why, never left out in silence.

use std::time::Duration;

use axum::extract::State;
use contracts::audit::PlatformAudit;
use platform::Json;
use serde::de::DeserializeOwned;

use crate::AppState;

/// How long one service may take to list its state.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Every service's audit at one moment; `unavailable` names the services
/// that could not be read.
#[utoipa::path(get, path = "/api/v1/ops/audit",
    responses((status = 200, body = PlatformAudit)))]
pub(crate) async fn audit(State(state): State<AppState>) -> Json<PlatformAudit> {
    let taken_at = platform::time::now();
    let (orders, payments, restaurants, delivery) = tokio::join!(
        read(&state, "orders"),
        read(&state, "payments"),
        read(&state, "restaurants"),
        read(&state, "delivery"),
    );
    let mut audit = PlatformAudit {
        taken_at,
        ..PlatformAudit::default()
    };
    audit.orders = keep(orders, "orders", &mut audit);
    audit.payments = keep(payments, "payments", &mut audit);
    audit.restaurants = keep(restaurants, "restaurants", &mut audit);
    audit.delivery = keep(delivery, "delivery", &mut audit);
    Json(audit)
}

fn keep<T>(read: Result<T, String>, service: &str, audit: &mut PlatformAudit) -> Option<T> {
    read.map_err(|why| audit.unavailable.insert(service.to_owned(), why))
        .ok()
}

/// `service`'s audit, or why it could not be had.
async fn read<T: DeserializeOwned>(state: &AppState, service: &str) -> Result<T, String> {
    let upstream = state
        .upstream(service)
        .ok_or_else(|| "the gateway has no upstream of that name".to_owned())?;
    let response = state
        .internal_get(upstream, "/internal/audit", AUDIT_TIMEOUT)
        .await?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    response
        .json()
        .await
        .map_err(|e| format!("an unreadable audit: {e}"))
}
