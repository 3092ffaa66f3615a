//! The platform's standard behaviour, as seen on this service.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem};

#[tokio::test]
async fn health_endpoints_answer() {
    let app = TestApp::spawn().await;
    let live = app
        .client
        .get(app.url("/livez"))
        .send()
        .await
        .expect("request");
    assert_eq!(live.status(), StatusCode::OK);
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["service"], "users");
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status() {
    let app = TestApp::spawn().await;
    app.login("nobody@example.com", "whatever1").await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains("route=\"/auth/login\"")
            && l.contains("status=\"401\"")),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn openapi_describes_the_routes() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/auth/register",
        "/auth/login",
        "/me",
        "/.well-known/jwks.json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(doc["components"]["schemas"].get("User").is_some());
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/nope"))
        .send()
        .await
        .expect("request");
    assert_problem(r, StatusCode::NOT_FOUND).await;
    let r = app
        .client
        .delete(app.url("/auth/login"))
        .send()
        .await
        .expect("request");
    assert_problem(r, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn a_traceparent_is_honoured_and_echoed_as_x_trace_id() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/livez"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .expect("request");
    assert_eq!(
        r.headers()["x-trace-id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let r = app
        .client
        .get(app.url("/livez"))
        .send()
        .await
        .expect("request");
    let generated = r.headers()["x-trace-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(generated.len(), 32);
    // An error's problem document names the same trace.
    let r = app
        .client
        .get(app.url("/nope"))
        .send()
        .await
        .expect("request");
    let trace = r.headers()["x-trace-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["trace_id"], trace);
}
