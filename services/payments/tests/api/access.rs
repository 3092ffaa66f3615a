//! Who may call: services only, and every command names itself.

use platform::testing::assert_problem;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, authorize_body, new_order};

/// Every command route of `order`, with a body it accepts.
fn commands(order: &str) -> Vec<(String, serde_json::Value)> {
    vec![
        (
            "/internal/payments/authorize".to_owned(),
            authorize_body(order, 1000, "pm_card_visa"),
        ),
        (format!("/internal/payments/{order}/capture"), json!({})),
        (format!("/internal/payments/{order}/void"), json!({})),
        (format!("/internal/payments/{order}/refund"), json!({})),
    ]
}

#[tokio::test]
async fn every_route_refuses_a_request_without_a_token() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;
    for (path, body) in commands(&order) {
        let r = app
            .command_as(&path, None, Some(&format!("{order}:x")), &body)
            .await;
        let problem = assert_problem(r, StatusCode::UNAUTHORIZED).await;
        assert!(problem["detail"].is_string(), "{path}");
    }
    assert_problem(app.get_as(&order, None).await, StatusCode::UNAUTHORIZED).await;
    assert_problem(
        app.get_as(&order, Some("not-a-token")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // Only the one authorization happened.
    assert_eq!(app.count("ledger_entries").await, 1);
}

#[tokio::test]
async fn every_route_refuses_a_users_token() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;
    let user = app.user_token();
    for (path, body) in commands(&order) {
        let r = app
            .command_as(&path, Some(&user), Some(&format!("{order}:x")), &body)
            .await;
        let problem = assert_problem(r, StatusCode::FORBIDDEN).await;
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("service token")),
            "{path}: {problem}"
        );
    }
    assert_problem(app.get_as(&order, Some(&user)).await, StatusCode::FORBIDDEN).await;
    assert_eq!(app.count("ledger_entries").await, 1);
}

#[tokio::test]
async fn every_command_needs_an_idempotency_key() {
    let app = TestApp::spawn().await;
    let order = new_order();
    for (path, body) in commands(&order) {
        let r = app.command_as(&path, Some(&app.token), None, &body).await;
        let problem = assert_problem(r, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("Idempotency-Key")),
            "{path}: {problem}"
        );
    }
    app.assert_nothing_recorded().await;
}

#[tokio::test]
async fn an_idempotency_key_is_short_visible_ascii_and_single() {
    let app = TestApp::spawn().await;
    let order = new_order();
    let body = authorize_body(&order, 1000, "pm_card_visa");
    for key in ["x".repeat(256), "has space".to_owned(), String::new()] {
        let r = app
            .command_as(
                "/internal/payments/authorize",
                Some(&app.token),
                Some(&key),
                &body,
            )
            .await;
        assert_problem(r, StatusCode::BAD_REQUEST).await;
    }
    let r = app
        .api
        .request(
            Method::POST,
            "/internal/payments/authorize",
            Some(&app.token),
        )
        .header("Idempotency-Key", "a")
        .header("Idempotency-Key", "b")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    app.assert_nothing_recorded().await;

    // The longest key accepted.
    let r = app
        .command_as(
            "/internal/payments/authorize",
            Some(&app.token),
            Some(&"k".repeat(255)),
            &body,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_problem() {
    let app = TestApp::spawn().await;
    let r = app
        .api
        .request(
            Method::POST,
            "/internal/payments/authorize",
            Some(&app.token),
        )
        .header("Idempotency-Key", "k")
        .header("content-type", "application/json")
        .body("{\"order_id\": ")
        .send()
        .await
        .expect("request");
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    app.assert_nothing_recorded().await;
}
