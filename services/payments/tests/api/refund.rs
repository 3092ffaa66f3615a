//! `POST /internal/payments/{order_id}/refund`: only after a capture, and
//! never more than it.

use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, invalid_fields, new_order};

#[tokio::test]
async fn a_refund_gives_back_the_whole_capture_by_default() {
    let app = TestApp::spawn().await;
    let order = app.captured_order(1200).await;

    let r = app.refund(&order, "refund", &json!({})).await;

    assert_eq!(r.status(), StatusCode::OK);
    let payment: Value = r.json().await.expect("json");
    assert_eq!(payment["status"], "refunded");
    assert_eq!(payment["captured_cents"], 1200);
    assert_eq!(payment["refunded_cents"], 1200);
    assert_eq!(app.ledger(&order).await[2], ("refund".to_owned(), 1200));
}

#[tokio::test]
async fn partial_refunds_add_up_to_at_most_the_capture() {
    let app = TestApp::spawn().await;
    let order = app.captured_order(1000).await;

    let r = app
        .refund(&order, "refund-1", &json!({"amount_cents": 300}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let payment: Value = r.json().await.expect("json");
    assert_eq!(payment["status"], "partially_refunded");
    assert_eq!(payment["refunded_cents"], 300);

    let r = app
        .refund(&order, "refund-2", &json!({"amount_cents": 701}))
        .await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["amount_cents"]);
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("700")),
        "{problem}"
    );

    let r = app
        .refund(&order, "refund-2", &json!({"amount_cents": 700}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let payment: Value = r.json().await.expect("json");
    assert_eq!(payment["status"], "refunded");
    assert_eq!(payment["refunded_cents"], 1000);

    // Nothing is left to refund.
    for body in [json!({}), json!({"amount_cents": 1})] {
        let r = app.refund(&order, "refund-3", &body).await;
        assert_problem(r, StatusCode::CONFLICT).await;
    }
    assert_eq!(
        app.ledger(&order).await,
        [
            ("authorize".to_owned(), 1000),
            ("capture".to_owned(), 1000),
            ("refund".to_owned(), 300),
            ("refund".to_owned(), 700)
        ]
    );
}

#[tokio::test]
async fn refunds_are_bounded_by_the_capture_not_the_authorization() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;
    let r = app
        .capture(&order, "capture", &json!({"amount_cents": 600}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    let r = app
        .refund(&order, "refund", &json!({"amount_cents": 601}))
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let r = app.refund(&order, "refund", &json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.payment(&order).await["refunded_cents"], 600);
}

#[tokio::test]
async fn a_refund_amount_must_be_positive() {
    let app = TestApp::spawn().await;
    let order = app.captured_order(1000).await;
    for amount in [0, -1] {
        let r = app
            .refund(&order, "refund", &json!({"amount_cents": amount}))
            .await;
        let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(invalid_fields(&problem), ["amount_cents"]);
    }
    assert_eq!(app.payment(&order).await["refunded_cents"], 0);
}

#[tokio::test]
async fn an_uncaptured_authorization_is_voided_not_refunded() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;

    let r = app.refund(&order, "refund", &json!({})).await;

    let problem = assert_problem(r, StatusCode::CONFLICT).await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("void")),
        "{problem}"
    );
    assert_eq!(app.payment(&order).await["status"], "authorized");
}

#[tokio::test]
async fn voided_and_declined_payments_have_nothing_to_refund() {
    let app = TestApp::spawn().await;
    let voided = app.authorized_order(1000).await;
    assert_eq!(app.void(&voided, "void").await.status(), StatusCode::OK);
    let declined = new_order();
    let r = app
        .authorize(&declined, 1000, "pm_card_chargeDeclined")
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    for order in [&voided, &declined] {
        let r = app.refund(order, "refund", &json!({})).await;
        assert_problem(r, StatusCode::CONFLICT).await;
    }
}

#[tokio::test]
async fn refunding_an_order_without_a_payment_is_404() {
    let app = TestApp::spawn().await;
    let r = app.refund(&new_order(), "refund", &json!({})).await;
    assert_problem(r, StatusCode::NOT_FOUND).await;
    app.assert_nothing_recorded().await;
}
