//! The operations API: service health, process control in a local run,
//! and the merged public OpenAPI document.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use contracts::Problem;
use contracts::ops::{Health, ProcessStatus, ServiceStatus};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::AppState;
use crate::forward::unavailable;
use crate::routes::{PREFIX, ROUTES};
use platform::{ApiError, ApiResult, Json, Path, Query};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/ops/services", get(services))
        .route("/api/v1/ops/overview", get(crate::overview::overview))
        .route("/api/v1/ops/audit", get(crate::audit::audit))
        .route("/api/v1/ops/services/{name}/stop", post(stop))
        .route("/api/v1/ops/services/{name}/start", post(start))
        .route("/api/v1/ops/services/{name}/restart", post(restart))
        .route("/api/v1/openapi.json", get(public_openapi))
        .route("/api/v1", get(index))
}

/// Where to go from the API's root: a client discovering the API finds its
/// way from here (a person opening the gateway's `/` gets the web UI).
/// `local_run` says whether this is a local `feastfast up` run (process
/// control on, demo logins offered by the UI).
async fn index(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "name": "FeastFast",
        "version": env!("CARGO_PKG_VERSION"),
        "local_run": state.config.control_url.is_some(),
        "links": {
            "api": PREFIX,
            "openapi": "/api/v1/openapi.json",
            "restaurants": "/api/v1/restaurants",
            "services": "/api/v1/ops/services",
        }
    }))
}

#[derive(OpenApi)]
#[openapi(paths(
    services,
    stop,
    start,
    restart,
    public_openapi,
    crate::overview::overview,
    crate::audit::audit
))]
struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Every service's health, version and probe latency.
#[utoipa::path(get, path = "/api/v1/ops/services",
    responses((status = 200, body = Vec<ServiceStatus>)))]
pub(crate) async fn services(State(state): State<AppState>) -> Json<Vec<ServiceStatus>> {
    let probes = state.config.upstreams.iter().flat_map(|u| {
        u.replicas()
            .map(|(name, url)| probe(&state, name, url.to_owned()))
            .collect::<Vec<_>>()
    });
    let mut all = vec![ServiceStatus {
        name: "gateway".to_owned(),
        url: format!(
            "http://{}:{}",
            state.config.http.host, state.config.http.port
        ),
        status: Health::Up,
        version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        latency_ms: Some(0.0),
        detail: None,
    }];
    let mut set = tokio::task::JoinSet::new();
    for (i, fut) in probes.enumerate() {
        let fut = fut;
        set.spawn(async move { (i, fut.await) });
    }
    let mut results: Vec<(usize, ServiceStatus)> = set.join_all().await;
    results.sort_by_key(|(i, _)| *i);
    all.extend(results.into_iter().map(|(_, s)| s));
    Json(all)
}

/// Probes one replica (`name` is its instance name, e.g. `orders-2`).
fn probe(
    state: &AppState,
    name: String,
    url: String,
) -> impl Future<Output = ServiceStatus> + Send + 'static {
    let client = state.client.clone();
    async move {
        let start = Instant::now();
        let answer = client
            .get(&format!("{url}/readyz"))
            .timeout(PROBE_TIMEOUT)
            .send()
            .await;
        let latency_ms = Some((start.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0);
        match answer {
            Ok(response) => {
                let ready = response.status().is_success();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let version = body["version"].as_str().map(str::to_owned);
                ServiceStatus {
                    name,
                    url,
                    status: if ready { Health::Up } else { Health::Degraded },
                    version,
                    latency_ms,
                    detail: (!ready).then(|| format!("readiness: {}", body["status"])),
                }
            }
            Err(e) => ServiceStatus {
                name,
                url,
                status: Health::Down,
                version: None,
                latency_ms: None,
                detail: Some(if e.is_timeout() {
                    "no answer within 1 s".to_owned()
                } else {
                    "connection refused".to_owned()
                }),
            },
        }
    }
}

#[derive(Deserialize)]
struct StopParams {
    mode: Option<String>,
}

/// Stops a service's process (local run only): `mode=kill` sends SIGKILL,
/// `mode=graceful` (the default) SIGTERM.
#[utoipa::path(post, path = "/api/v1/ops/services/{name}/stop",
    params(("name" = String, Path), ("mode" = Option<String>, Query, description = "kill or graceful")),
    responses((status = 200, body = ProcessStatus), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn stop(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<StopParams>,
) -> ApiResult<Json<ProcessStatus>> {
    let mode = params.mode.as_deref().unwrap_or("graceful");
    if !matches!(mode, "kill" | "graceful") {
        return Err(ApiError::invalid_field("mode", "must be kill or graceful"));
    }
    control(&state, &name, &format!("stop?mode={mode}")).await
}

/// Starts a stopped service's process (local run only).
#[utoipa::path(post, path = "/api/v1/ops/services/{name}/start",
    params(("name" = String, Path)),
    responses((status = 200, body = ProcessStatus), (status = 404, body = Problem)))]
async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ProcessStatus>> {
    control(&state, &name, "start").await
}

/// Replaces a service's process without downtime (local run only): the
/// new process starts beside the old one on the same port, and only once
/// it is ready is the old one drained (readiness off, in-flight requests
/// finished) and stopped. 409 if the service is not running or its new
/// process did not come up (the old one then keeps serving).
#[utoipa::path(post, path = "/api/v1/ops/services/{name}/restart",
    params(("name" = String, Path)),
    responses((status = 200, body = ProcessStatus), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn restart(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ProcessStatus>> {
    control(&state, &name, "restart").await
}

async fn control(state: &AppState, name: &str, action: &str) -> ApiResult<Json<ProcessStatus>> {
    let Some(control_url) = &state.config.control_url else {
        return Err(ApiError::not_found(
            "process control exists only in a local `feastfast up` run",
        ));
    };
    if name == "gateway" {
        let verb = if action == "restart" {
            "restart"
        } else {
            "stop"
        };
        return Err(ApiError::conflict(format!(
            "the gateway serves this API and cannot {verb} itself; {verb} `feastfast up` instead"
        )));
    }
    let known = state
        .config
        .upstreams
        .iter()
        .any(|u| u.replicas().any(|(replica, _)| replica == name));
    if !known {
        return Err(ApiError::not_found(format!(
            "there is no service named {name:?}"
        )));
    }
    let response = state
        .client
        .post(&format!("{control_url}/services/{name}/{action}"))
        // A restart waits up to 15 s for the new process, then drains the
        // old one for up to 10 s.
        .timeout(Duration::from_secs(40))
        .send()
        .await
        .map_err(|e| unavailable("supervisor", e))?;
    if response.status() == reqwest::StatusCode::CONFLICT {
        let problem: Value = response.json().await.unwrap_or_default();
        return Err(ApiError::conflict(
            problem["detail"]
                .as_str()
                .unwrap_or("the supervisor refused"),
        ));
    }
    if !response.status().is_success() {
        let status = response.status();
        let detail = response.text().await.unwrap_or_default();
        return Err(ApiError::internal(anyhow::anyhow!(
            "the supervisor answered {status}: {detail}"
        )));
    }
    let status = response
        .json::<ProcessStatus>()
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("bad supervisor answer: {e}")))?;
    if action == "start" || action == "restart" {
        // It answers again (the supervisor waited until it was ready):
        // calls need not wait out the breaker's cooldown to find out.
        for upstream in state.upstreams.iter() {
            let replica_of_it = state
                .config
                .upstreams
                .iter()
                .any(|u| u.name == upstream.name() && u.replicas().any(|(r, _)| r == name));
            if replica_of_it {
                upstream.reset_breaker();
            }
        }
    }
    Ok(Json(status))
}

/// The public API of FeastFast: every service's OpenAPI paths that the
/// gateway routes, under `/api/v1`, plus the operations API. A service that
/// is down is named in the description and its paths are missing.
#[utoipa::path(get, path = "/api/v1/openapi.json",
    responses((status = 200, description = "an OpenAPI 3.1 document")))]
async fn public_openapi(State(state): State<AppState>) -> Json<Value> {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let mut missing = Vec::new();
    for upstream in &state.config.upstreams {
        let doc: Option<Value> = match state
            .client
            .get(&upstream.endpoints.url("/openapi.json"))
            .timeout(PROBE_TIMEOUT)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.json().await.ok(),
            _ => None,
        };
        let Some(doc) = doc else {
            missing.push(upstream.name);
            continue;
        };
        for route in ROUTES.iter().filter(|r| r.service == upstream.name) {
            let Some(item) = doc["paths"][route.path].as_object() else {
                continue;
            };
            let kept: Map<String, Value> = route
                .methods
                .iter()
                .filter_map(|(m, _)| {
                    item.get(m.as_str())
                        .map(|op| (m.as_str().to_owned(), op.clone()))
                })
                .collect();
            paths.insert(format!("{PREFIX}{}", route.path), Value::Object(kept));
        }
        if let Some(s) = doc["components"]["schemas"].as_object() {
            schemas.extend(s.clone());
        }
    }
    let own = serde_json::to_value(openapi()).unwrap_or(Value::Null);
    if let Some(p) = own["paths"].as_object() {
        paths.extend(p.clone());
    }
    if let Some(s) = own["components"]["schemas"].as_object() {
        schemas.extend(s.clone());
    }
    let mut description = "The public API of FeastFast, through the gateway.".to_owned();
    if !missing.is_empty() {
        description.push_str(&format!(
            " Unavailable while this was generated (their paths are missing): {}.",
            missing.join(", ")
        ));
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": { "title": "FeastFast API", "version": env!("CARGO_PKG_VERSION"), "description": description },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }
        },
    }))
}
