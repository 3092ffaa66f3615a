//! The platform's standard behaviour, as seen on this service.

use platform::testing::{
    assert_health, assert_metrics_count, assert_openapi, assert_trace_ids,
    assert_unmatched_requests_are_problems,
};
use reqwest::StatusCode;

use crate::helpers::TestApp;

#[tokio::test]
async fn health_endpoints_answer() {
    let app = TestApp::spawn().await;
    assert_health(&app.running.url, "users").await;
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status() {
    let app = TestApp::spawn().await;
    app.login("nobody@example.com", "whatever1").await;
    assert_metrics_count(&app.running.url, "/auth/login", StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn openapi_describes_the_routes() {
    let app = TestApp::spawn().await;
    assert_openapi(
        &app.running.url,
        &[
            ("/auth/register", "post"),
            ("/auth/login", "post"),
            ("/me", "get"),
            ("/.well-known/jwks.json", "get"),
        ],
        &["User"],
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    assert_unmatched_requests_are_problems(&app.running.url, "/auth/login").await;
}

#[tokio::test]
async fn a_traceparent_is_honoured_and_echoed_as_x_trace_id() {
    let app = TestApp::spawn().await;
    assert_trace_ids(&app.running.url).await;
}
