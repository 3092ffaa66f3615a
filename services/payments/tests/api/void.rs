//! `POST /internal/payments/{order_id}/void`: releases an uncaptured
//! authorization; safe to repeat.

use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, new_order};

#[tokio::test]
async fn a_void_releases_the_authorization() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(2500).await;

    let r = app.void(&order, "void").await;

    assert_eq!(r.status(), StatusCode::OK);
    let payment: Value = r.json().await.expect("json");
    assert_eq!(payment["status"], "voided");
    assert_eq!(payment["amount_cents"], 2500);
    assert_eq!(payment["captured_cents"], 0);
    assert_eq!(app.payment(&order).await, payment);
    assert_eq!(
        app.ledger(&order).await,
        [("authorize".to_owned(), 2500), ("void".to_owned(), 2500)]
    );
}

#[tokio::test]
async fn voiding_again_answers_the_payment_unchanged_and_records_nothing() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(2500).await;
    assert_eq!(app.void(&order, "void").await.status(), StatusCode::OK);
    let voided = app.payment(&order).await;

    // A compensation repeated under a new key (say, a second rejection path).
    let r = app.void(&order, "void-again").await;

    assert_eq!(r.status(), StatusCode::OK);
    let payment: Value = r.json().await.expect("json");
    assert_eq!(payment, voided);
    assert_eq!(app.ledger(&order).await.len(), 2);
    assert_eq!(app.count("outbox").await, 2);
}

#[tokio::test]
async fn voiding_a_declined_payment_answers_it_unchanged() {
    let app = TestApp::spawn().await;
    let order = new_order();
    let r = app
        .authorize(&order, 800, "pm_card_chargeDeclinedInsufficientFunds")
        .await;
    let declined: Value = r.json().await.expect("json");

    let r = app.void(&order, "void").await;

    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json"), declined);
    assert_eq!(app.ledger(&order).await, [("decline".to_owned(), 800)]);
}

#[tokio::test]
async fn a_captured_payment_is_refunded_not_voided() {
    let app = TestApp::spawn().await;
    let order = app.captured_order(1000).await;
    let captured = app.payment(&order).await;

    let r = app.void(&order, "void").await;

    let problem = assert_problem(r, StatusCode::CONFLICT).await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("refund it instead")),
        "{problem}"
    );
    assert_eq!(app.payment(&order).await, captured);

    // Also after a partial refund.
    let r = app
        .refund(&order, "refund", &json!({"amount_cents": 100}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_problem(app.void(&order, "void-2").await, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn voiding_an_order_without_a_payment_is_404() {
    let app = TestApp::spawn().await;
    assert_problem(app.void(&new_order(), "void").await, StatusCode::NOT_FOUND).await;
    app.assert_nothing_recorded().await;
}
