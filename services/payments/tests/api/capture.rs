//! `POST /internal/payments/{order_id}/capture`: at most the authorization,
//! at most once.

use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, invalid_fields, new_order};

#[tokio::test]
async fn a_capture_takes_the_whole_authorization_by_default() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1800).await;

    let r = app.capture(&order, "capture", &json!({})).await;

    assert_eq!(r.status(), StatusCode::OK);
    let payment: Value = r.json().await.expect("json");
    assert_eq!(payment["status"], "captured");
    assert_eq!(payment["amount_cents"], 1800);
    assert_eq!(payment["captured_cents"], 1800);
    assert_eq!(payment["refunded_cents"], 0);
    assert!(payment["updated_at"].as_str() >= payment["created_at"].as_str());
    assert_eq!(app.payment(&order).await, payment);
    assert_eq!(
        app.ledger(&order).await,
        [("authorize".to_owned(), 1800), ("capture".to_owned(), 1800)]
    );
}

#[tokio::test]
async fn a_capture_may_take_less_than_authorized() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1800).await;

    let r = app
        .capture(&order, "capture", &json!({"amount_cents": 1500}))
        .await;

    assert_eq!(r.status(), StatusCode::OK);
    let payment: Value = r.json().await.expect("json");
    assert_eq!(payment["status"], "captured");
    assert_eq!(payment["amount_cents"], 1800);
    assert_eq!(payment["captured_cents"], 1500);
    assert_eq!(app.ledger(&order).await[1], ("capture".to_owned(), 1500));
}

#[tokio::test]
async fn a_capture_never_exceeds_the_authorization() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1800).await;
    let before = app.payment(&order).await;

    let r = app
        .capture(&order, "capture", &json!({"amount_cents": 1801}))
        .await;

    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["amount_cents"]);
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("1800")),
        "{problem}"
    );
    assert_eq!(app.payment(&order).await, before);
    assert_eq!(app.ledger(&order).await.len(), 1);
}

#[tokio::test]
async fn a_capture_amount_must_be_positive() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1800).await;
    for amount in [0, -100] {
        let r = app
            .capture(&order, "capture", &json!({"amount_cents": amount}))
            .await;
        let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(invalid_fields(&problem), ["amount_cents"]);
    }
    assert_eq!(app.payment(&order).await["status"], "authorized");
}

#[tokio::test]
async fn a_payment_is_captured_only_once() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;
    let r = app
        .capture(&order, "capture", &json!({"amount_cents": 400}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let captured = app.payment(&order).await;

    // A second capture is another command (another key): refused, even for
    // the rest of the authorization.
    for body in [json!({}), json!({"amount_cents": 600})] {
        let r = app.capture(&order, "capture-again", &body).await;
        let problem = assert_problem(r, StatusCode::CONFLICT).await;
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("already captured")),
            "{problem}"
        );
    }

    assert_eq!(app.payment(&order).await, captured);
    assert_eq!(
        app.ledger(&order).await,
        [("authorize".to_owned(), 1000), ("capture".to_owned(), 400)]
    );
}

#[tokio::test]
async fn a_voided_authorization_cannot_be_captured() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;
    assert_eq!(app.void(&order, "void").await.status(), StatusCode::OK);

    let r = app.capture(&order, "capture", &json!({})).await;

    let problem = assert_problem(r, StatusCode::CONFLICT).await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("voided")),
        "{problem}"
    );
    assert_eq!(app.payment(&order).await["captured_cents"], 0);
}

#[tokio::test]
async fn a_declined_payment_cannot_be_captured() {
    let app = TestApp::spawn().await;
    let order = new_order();
    let r = app.authorize(&order, 1000, "pm_card_chargeDeclined").await;
    assert_eq!(r.status(), StatusCode::OK);

    let r = app.capture(&order, "capture", &json!({})).await;

    assert_problem(r, StatusCode::CONFLICT).await;
    assert_eq!(app.ledger(&order).await, [("decline".to_owned(), 1000)]);
}

#[tokio::test]
async fn capturing_an_order_without_a_payment_is_404() {
    let app = TestApp::spawn().await;
    for order in [new_order(), "not-an-order".to_owned()] {
        let r = app.capture(&order, "capture", &json!({})).await;
        assert_problem(r, StatusCode::NOT_FOUND).await;
    }
    app.assert_nothing_recorded().await;
}
