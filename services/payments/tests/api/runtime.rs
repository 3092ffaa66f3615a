//! The platform's standard behaviour and durability, as seen on this
//! service.

use platform::testing::{
    assert_health, assert_metrics_count, assert_openapi, assert_trace_ids,
    assert_unmatched_requests_are_problems,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, authorize_body};

#[tokio::test]
async fn health_reports_the_service_and_its_database() {
    let app = TestApp::spawn().await;
    assert_health(&app.running.url, "payments").await;
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status() {
    let app = TestApp::spawn().await;
    app.command_as(
        "/internal/payments/authorize",
        None,
        Some("k"),
        &authorize_body(&crate::helpers::new_order(), 1, "pm_card_visa"),
    )
    .await;
    assert_metrics_count(
        &app.running.url,
        "/internal/payments/authorize",
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn openapi_describes_the_routes() {
    let app = TestApp::spawn().await;
    assert_openapi(
        &app.running.url,
        &[
            ("/internal/payments/authorize", "post"),
            ("/internal/payments/{order_id}", "get"),
            ("/internal/payments/{order_id}/capture", "post"),
            ("/internal/payments/{order_id}/void", "post"),
            ("/internal/payments/{order_id}/refund", "post"),
        ],
        &[
            "Payment",
            "PaymentStatus",
            "AuthorizeRequest",
            "CaptureRequest",
            "RefundRequest",
        ],
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    assert_unmatched_requests_are_problems(&app.running.url, "/internal/payments/authorize").await;
}

#[tokio::test]
async fn a_traceparent_is_honoured_and_echoed_as_x_trace_id() {
    let app = TestApp::spawn().await;
    assert_trace_ids(&app.running.url).await;
}

#[tokio::test]
async fn payments_answers_and_events_survive_a_restart() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;
    let r = app
        .capture(&order, "capture", &json!({"amount_cents": 700}))
        .await;
    let first_capture = r.bytes().await.expect("body");
    let before = app.payment(&order).await;
    let events = app.events(2).await;
    assert_eq!(events.len(), 2);

    let (dir, key) = app.stop().await;
    let app = TestApp::spawn_in(dir, key).await;

    assert_eq!(app.payment(&order).await, before);
    // The stored answer outlives the process: the repeat is byte for byte
    // the first answer, and changes nothing.
    let r = app
        .capture(&order, "capture", &json!({"amount_cents": 700}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("body"), first_capture);
    // The rules still hold on the reloaded state.
    let r = app.capture(&order, "capture-again", &json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app.refund(&order, "refund", &json!({})).await;
    let refunded: Value = r.json().await.expect("json");
    assert_eq!(refunded["refunded_cents"], 700);
    // The feed keeps its history and goes on from it.
    let after = app.events(3).await;
    assert_eq!(after[..2], events[..]);
    assert_eq!(after[2].kind, "feastfast.payment.refunded.v1");
    assert_eq!(app.ledger(&order).await.len(), 3);
}
