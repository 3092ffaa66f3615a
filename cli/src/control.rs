//! The supervisor's control API, on a random loopback port that only the
//! gateway is told about (`FEASTFAST_CONTROL_URL`). The gateway's
//! `/api/v1/ops/services/{name}/stop|start` forward here; nothing like it
//! exists outside a local `feastfast up` run.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use contracts::ops::ProcessStatus;
use platform::{ApiError, ApiResult, Json, Path, Query};
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::supervisor::{StopMode, Supervisor};

pub(crate) async fn serve(listener: TcpListener, supervisor: Supervisor) {
    let app = Router::new()
        .route("/services", get(list))
        .route("/services/{name}/stop", post(stop))
        .route("/services/{name}/start", post(start))
        .route("/services/{name}/restart", post(restart))
        .with_state(supervisor);
    if let Err(e) = axum::serve(listener, app).await {
        println!("control API stopped: {e}");
    }
}

async fn list(State(supervisor): State<Supervisor>) -> Json<Vec<ProcessStatus>> {
    let mut all = Vec::new();
    for (name, _) in supervisor.names() {
        if let Some(status) = supervisor.status(name).await {
            all.push(status);
        }
    }
    Json(all)
}

#[derive(Deserialize)]
struct StopParams {
    mode: Option<String>,
}

async fn stop(
    State(supervisor): State<Supervisor>,
    Path(name): Path<String>,
    Query(params): Query<StopParams>,
) -> ApiResult<Json<ProcessStatus>> {
    let mode = match params.mode.as_deref() {
        Some("kill") => StopMode::Kill,
        None | Some("graceful") => StopMode::Graceful,
        Some(_) => return Err(ApiError::invalid_field("mode", "must be kill or graceful")),
    };
    supervisor
        .stop(&name, mode)
        .await
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no service named {name:?}")))
}

/// Starts the service and answers once it is ready (or after 15 s).
async fn start(
    State(supervisor): State<Supervisor>,
    Path(name): Path<String>,
) -> ApiResult<Json<ProcessStatus>> {
    let status = supervisor
        .start_service(&name)
        .await
        .ok_or_else(|| ApiError::not_found(format!("no service named {name:?}")))?;
    if let Some(port) = supervisor.port(&name) {
        wait_ready(port, Duration::from_secs(15)).await;
    }
    Ok(Json(supervisor.status(&name).await.unwrap_or(status)))
}

/// Replaces the service's process without downtime; answers once the new
/// one serves and the old one has drained.
async fn restart(
    State(supervisor): State<Supervisor>,
    Path(name): Path<String>,
) -> ApiResult<Json<ProcessStatus>> {
    match supervisor.restart(&name).await {
        None => Err(ApiError::not_found(format!("no service named {name:?}"))),
        Some(Ok(status)) => Ok(Json(status)),
        Some(Err(why)) => Err(ApiError::conflict(format!(
            "{name} was not restarted: {why}"
        ))),
    }
}

/// Polls a service's `/readyz` until it answers 200 or `limit` passes.
pub(crate) async fn wait_ready(port: u16, limit: Duration) -> bool {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let ready = client
            .get(&url)
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}
