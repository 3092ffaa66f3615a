//! `POST /internal/payments/authorize`.

use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, authorize_body, invalid_fields, new_order};

#[tokio::test]
async fn a_visa_token_authorizes_the_amount() {
    let app = TestApp::spawn().await;
    let order = new_order();

    let r = app.authorize(&order, 2599, "pm_card_visa").await;

    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().get("idempotent-replayed").is_none());
    let payment: Value = r.json().await.expect("json");
    assert_eq!(payment["order_id"], order.as_str());
    assert_eq!(payment["status"], "authorized");
    assert_eq!(payment["amount_cents"], 2599);
    assert_eq!(payment["captured_cents"], 0);
    assert_eq!(payment["refunded_cents"], 0);
    assert_eq!(payment["payment_method"], "pm_card_visa");
    assert_eq!(payment["decline_reason"], Value::Null);
    assert!(payment["id"].as_str().is_some_and(|id| id.len() == 36));
    assert_eq!(payment["created_at"], payment["updated_at"]);
    assert_eq!(app.ledger(&order).await, [("authorize".to_owned(), 2599)]);
}

/// A decline is the processor's answer, not an error: 200, recorded.
async fn assert_declined(method: &str, reason: &str) {
    let app = TestApp::spawn().await;
    let order = new_order();

    let r = app.authorize(&order, 1500, method).await;

    assert_eq!(r.status(), StatusCode::OK);
    let payment: Value = r.json().await.expect("json");
    assert_eq!(payment["status"], "declined");
    assert_eq!(payment["decline_reason"], reason);
    assert_eq!(payment["amount_cents"], 1500);
    assert_eq!(payment["captured_cents"], 0);
    assert_eq!(payment["payment_method"], method);
    assert_eq!(app.payment(&order).await, payment);
    assert_eq!(app.ledger(&order).await, [("decline".to_owned(), 1500)]);
}

#[tokio::test]
async fn a_declined_card_is_answered_with_its_reason() {
    assert_declined("pm_card_chargeDeclined", "card_declined").await;
}

#[tokio::test]
async fn insufficient_funds_is_answered_with_its_reason() {
    assert_declined(
        "pm_card_chargeDeclinedInsufficientFunds",
        "insufficient_funds",
    )
    .await;
}

#[tokio::test]
async fn amounts_must_be_positive_and_bounded_and_nothing_is_recorded() {
    let app = TestApp::spawn().await;
    let order = new_order();
    for amount in [0, -1, 100_000_000] {
        let r = app.authorize(&order, amount, "pm_card_visa").await;
        let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(invalid_fields(&problem), ["amount_cents"], "{amount}");
    }
    // Not an integer, or absent: the body has the wrong shape.
    for body in [
        json!({"order_id": order, "amount_cents": 12.5, "payment_method": "pm_card_visa"}),
        json!({"order_id": order, "payment_method": "pm_card_visa"}),
    ] {
        let r = app
            .command("/internal/payments/authorize", "k", &body)
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    app.assert_nothing_recorded().await;
}

#[tokio::test]
async fn unknown_payment_methods_are_refused_and_nothing_is_recorded() {
    let app = TestApp::spawn().await;
    let order = new_order();
    for method in ["pm_card_mastercard", "", "PM_CARD_VISA", "visa", "tok_visa"] {
        let r = app.authorize(&order, 1000, method).await;
        let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(invalid_fields(&problem), ["payment_method"], "{method}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("pm_card_visa")),
            "{problem}"
        );
    }
    app.assert_nothing_recorded().await;
}

#[tokio::test]
async fn card_numbers_are_refused_without_being_repeated_and_nothing_is_recorded() {
    let app = TestApp::spawn().await;
    let order = new_order();
    for number in [
        "4242424242424242",
        "4242 4242 4242 4242",
        "4000-0000-0000-0002",
        "378282246310005",
    ] {
        let r = app.authorize(&order, 1000, number).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let text = r.text().await.expect("text");
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        assert!(!text.contains(number), "{text}");
        assert!(!text.contains(&digits), "{text}");
        let problem: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(invalid_fields(&problem), ["payment_method"]);
        assert_eq!(
            problem["errors"][0]["message"],
            "card numbers are refused; send a payment method token"
        );
    }
    app.assert_nothing_recorded().await;
}

#[tokio::test]
async fn every_invalid_field_is_named_at_once() {
    let app = TestApp::spawn().await;
    let r = app.authorize(&new_order(), 0, "pm_card_amex").await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["amount_cents", "payment_method"]);
    app.assert_nothing_recorded().await;
}

#[tokio::test]
async fn an_order_id_must_be_an_id() {
    let app = TestApp::spawn().await;
    let r = app
        .command(
            "/internal/payments/authorize",
            "k",
            &authorize_body("order-1", 1000, "pm_card_visa"),
        )
        .await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["order_id"]);
    app.assert_nothing_recorded().await;
}

#[tokio::test]
async fn an_order_is_authorized_once() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;
    let before = app.payment(&order).await;

    // Another key is another command: it may not authorize the order again.
    let r = app
        .command(
            "/internal/payments/authorize",
            &format!("{order}:authorize-again"),
            &authorize_body(&order, 1000, "pm_card_visa"),
        )
        .await;

    let problem = assert_problem(r, StatusCode::CONFLICT).await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("already has a payment")),
        "{problem}"
    );
    assert_eq!(app.payment(&order).await, before);
    assert_eq!(app.ledger(&order).await.len(), 1);
}

#[tokio::test]
async fn a_declined_order_is_not_authorized_again() {
    let app = TestApp::spawn().await;
    let order = new_order();
    let r = app.authorize(&order, 1000, "pm_card_chargeDeclined").await;
    assert_eq!(r.status(), StatusCode::OK);

    let r = app
        .command(
            "/internal/payments/authorize",
            &format!("{order}:retry-with-visa"),
            &authorize_body(&order, 1000, "pm_card_visa"),
        )
        .await;

    assert_problem(r, StatusCode::CONFLICT).await;
    assert_eq!(app.payment(&order).await["status"], "declined");
}
