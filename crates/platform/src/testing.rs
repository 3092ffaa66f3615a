//! Test support used by every crate's integration tests.
//!
//! What each crate's tests would otherwise write again: a service's test
//! settings ([`service_config`]), a service running in the test's process
//! ([`Running`]), a small HTTP client for it
//! ([`Api`]), the problem+json check ([`assert_problem`]), and the
//! assertions that prove the standard endpoints and behaviour every
//! [`Server`] has (health, metrics, OpenAPI, unmatched requests, trace ids),
//! which each service's tests run against itself.
//!
//! It is library code only so that it can be shared: it panics (through
//! assertions and `expect`) the way a failing test should, and nothing
//! outside tests calls it.

use std::path::Path;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::config::HttpConfig;
use crate::server::ShutdownHandle;
use crate::telemetry::LogFormat;
use crate::{Server, ServiceConfig};

/// The settings of service `name` in a test: loopback on a free port,
/// pretty logs, its SQLite file `<name>.db` in `data_dir`, and the users
/// service (for its JWKS) at `users_url`.
pub fn service_config(data_dir: &Path, name: &str, users_url: &str) -> ServiceConfig {
    let database_url = test_database_url(data_dir, name);
    ServiceConfig {
        http: HttpConfig::at([127, 0, 0, 1].into(), 0),
        // Tests run side by side on one PostgreSQL (100 connections).
        database_pool_max: if database_url.starts_with("postgres") {
            3
        } else {
            crate::db::default_pool_max(&database_url)
        },
        database_url,
        log_format: LogFormat::Pretty,
        users_url: users_url.to_owned(),
        service_secret: TEST_SERVICE_SECRET.to_owned(),
        events: test_events_config(data_dir),
        call_policy: crate::client::CallPolicy::default(),
    }
}

/// The environment variable that moves every service test's events to
/// NATS JetStream: the server's URL, e.g. `nats://127.0.0.1:4222`.
pub const TEST_NATS_ENV: &str = "FEASTFAST_TEST_NATS";

/// The event transport of a test's services: the feed, or, with
/// [`TEST_NATS_ENV`] set, NATS with a prefix of the test's own (`fftest_…`),
/// so its streams never meet another test's.
pub fn test_events_config(data_dir: &Path) -> crate::config::EventsConfig {
    match std::env::var(TEST_NATS_ENV) {
        Ok(url) if !url.is_empty() => crate::config::EventsConfig::Nats {
            url,
            prefix: format!("fftest_{}", test_key(data_dir)),
        },
        _ => crate::config::EventsConfig::Feed,
    }
}

/// The outbox of a fake producer `service` in a test, on the transport the
/// test's services use ([`test_events_config`] of the same `data_dir`).
pub async fn test_outbox(data_dir: &Path, service: &str, db: crate::Db) -> crate::events::Outbox {
    crate::events::transport::Transport::connect(&test_events_config(data_dir), service)
        .await
        .expect("connects to the test's event transport")
        .outbox(db)
}

/// A short key unique to a test's data directory (stable across a restart
/// within the test).
pub fn test_key(data_dir: &Path) -> String {
    let dir = data_dir.to_string_lossy();
    let key: String = dir
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_lowercase() as char)
        .collect();
    key[key.len().saturating_sub(12)..].to_owned()
}

/// The environment variable that moves every service test to PostgreSQL:
/// the server's URL without a database, e.g. `postgres://postgres@127.0.0.1:5432`.
pub const TEST_POSTGRES_ENV: &str = "FEASTFAST_TEST_POSTGRES";

/// A fresh database for one test's service `name`: a SQLite file in
/// `data_dir`, or, with [`TEST_POSTGRES_ENV`] set, a new PostgreSQL database
/// (created on first connect) whose name starts with `fftest_`.
pub fn test_database_url(data_dir: &Path, name: &str) -> String {
    match std::env::var(TEST_POSTGRES_ENV) {
        Ok(server) if !server.is_empty() => {
            // The data directory is unique per test and stable across a
            // restart within the test, so it keys the database.
            let key = test_key(data_dir);
            format!("{}/fftest_{key}_{name}", server.trim_end_matches('/'))
        }
        _ => format!("sqlite://{}/{name}.db", data_dir.display()),
    }
}

/// The service secret every test service shares.
pub const TEST_SERVICE_SECRET: &str = "test-service-secret";

/// A [`Server`] serving on a tokio task until [`Running::stop`].
pub struct Running {
    /// Where it listens: `http://127.0.0.1:<port>`.
    pub url: String,
    shutdown: ShutdownHandle,
    task: JoinHandle<()>,
}

impl Running {
    /// Spawns `server` on the current tokio runtime.
    pub fn start(server: Server) -> Running {
        let url = format!("http://127.0.0.1:{}", server.port());
        let shutdown = server.shutdown_handle();
        let task = tokio::spawn(async move {
            server.run_until_stopped().await.expect("serves");
        });
        Running {
            url,
            shutdown,
            task,
        }
    }

    /// Shuts the server down gracefully and waits until it has finished.
    pub async fn stop(self) {
        self.shutdown.shutdown();
        self.task.await.expect("server task ends");
    }
}

/// A small HTTP client for one base URL (with an optional path prefix such
/// as `/api/v1`); a request with a token carries it as a bearer token.
#[derive(Clone, Debug)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    /// A client for paths directly below `base_url`.
    pub fn new(base_url: &str) -> Api {
        Api::with_prefix(base_url, "")
    }

    /// A client for paths below `base_url` followed by `prefix`.
    pub fn with_prefix(base_url: &str, prefix: &str) -> Api {
        Api {
            client: reqwest::Client::new(),
            base: format!("{base_url}{prefix}"),
        }
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to build further (headers, a raw body), with `token` if
    /// one is given.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let req = self.client.request(method, self.url(path));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        send(self.request(Method::GET, path, token)).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        send(self.request(Method::POST, path, token).json(&body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        send(self.request(Method::PATCH, path, token).json(&body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        send(self.request(Method::DELETE, path, token)).await
    }
}

async fn send(request: RequestBuilder) -> Response {
    request.send().await.expect("request")
}

/// Asserts a problem+json answer with `status` (a trace id, a FeastFast
/// problem type and a title), and returns its body.
pub async fn assert_problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("x-trace-id"));
    let body: Value = response.json().await.expect("problem body");
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:feastfast:problem:"))
    );
    assert!(body["title"].is_string());
    body
}

/// Asserts `/livez` and `/readyz` answer 200, and that readiness names
/// `service` and a healthy database.
pub async fn assert_health(base_url: &str, service: &str) {
    let api = Api::new(base_url);
    let live = api.get("/livez", None).await;
    assert_eq!(live.status(), StatusCode::OK);
    let ready = api.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["service"], service);
    assert_eq!(body["checks"]["database"], "ok");
}

/// Asserts `/metrics` counts requests to `route` answered with `status`
/// (so at least one must have been made) and has latency histograms.
pub async fn assert_metrics_count(base_url: &str, route: &str, status: StatusCode) {
    let text = metrics(base_url).await;
    let route = format!("route=\"{route}\"");
    let status = format!("status=\"{}\"", status.as_u16());
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains(&route)
            && l.contains(&status)),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
}

/// Asserts `/openapi.json` is an OpenAPI 3 document describing every
/// `(path, method)` operation and every named schema.
pub async fn assert_openapi(base_url: &str, operations: &[(&str, &str)], schemas: &[&str]) {
    let doc: Value = Api::new(base_url)
        .get("/openapi.json", None)
        .await
        .json()
        .await
        .expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for (path, method) in operations {
        assert!(
            doc["paths"][path].get(method).is_some(),
            "{method} {path} missing"
        );
    }
    for schema in schemas {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} missing"
        );
    }
}

/// Asserts an unknown path is a 404 problem and `DELETE route` (a route
/// without that method) a 405 problem.
pub async fn assert_unmatched_requests_are_problems(base_url: &str, route: &str) {
    let api = Api::new(base_url);
    assert_problem(api.get("/nope", None).await, StatusCode::NOT_FOUND).await;
    assert_problem(
        api.delete(route, None).await,
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
}

/// Asserts a valid incoming `traceparent` keeps its trace id as
/// `x-trace-id`, a request without one gets a fresh id, and a problem
/// document names its response's trace.
pub async fn assert_trace_ids(base_url: &str) {
    let api = Api::new(base_url);
    let r = send(api.request(Method::GET, "/livez", None).header(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ))
    .await;
    assert_eq!(
        r.headers()["x-trace-id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let r = api.get("/livez", None).await;
    let generated = trace_id(&r);
    assert_eq!(generated.len(), 32);
    // An error's problem document names the same trace.
    let r = api.get("/nope", None).await;
    let trace = trace_id(&r);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["trace_id"], trace);
}

fn trace_id(response: &Response) -> String {
    response.headers()["x-trace-id"]
        .to_str()
        .expect("a trace id is ascii")
        .to_owned()
}

/// The service's `/metrics` text.
pub async fn metrics(base_url: &str) -> String {
    Api::new(base_url)
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("text")
}

/// `GET path` until the gateway answers it from its edge cache marked
/// stale (its upstream is gone); each answer must be a 200. Returns the
/// stale body. Panics after 15 s: on NATS the gateway's follow of the
/// events outlives the producer, so its copy stays fresh until its ttl
/// (10 s) and only then turns stale.
pub async fn until_stale(api: &Api, path: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let r = api.get(path, None).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        if r.headers().contains_key("x-feastfast-stale") {
            let body: Value = r.json().await.expect("json");
            assert_eq!(body["stale"], true, "{body:#}");
            return body;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{path} never marked stale"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
