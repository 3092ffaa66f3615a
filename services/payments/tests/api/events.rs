//! The events the payments service publishes on its feed.

use contracts::events::CloudEvent;
use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, new_order};

/// `(type, subject)` of each event.
fn kinds(events: &[CloudEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e.kind.clone(), e.subject.clone().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn every_change_publishes_its_event_in_order() {
    let app = TestApp::spawn().await;
    let paid = app.authorized_order(1000).await;
    let r = app
        .capture(&paid, "capture", &json!({"amount_cents": 800}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .refund(&paid, "refund", &json!({"amount_cents": 300}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let voided = app.authorized_order(500).await;
    assert_eq!(app.void(&voided, "void").await.status(), StatusCode::OK);
    let payment_id = app.payment(&paid).await["id"].clone();

    let events = app.events(5).await;

    let t = |what: &str| format!("feastfast.payment.{what}.v1");
    assert_eq!(
        kinds(&events),
        [
            (t("authorized"), paid.clone()),
            (t("captured"), paid.clone()),
            (t("refunded"), paid.clone()),
            (t("authorized"), voided.clone()),
            (t("voided"), voided.clone()),
        ]
    );
    assert!(events.iter().all(|e| e.source == "feastfast/payments"));
    let data: Vec<_> = events.iter().map(|e| e.data.clone()).collect();
    assert_eq!(
        data[..3],
        [
            json!({"order_id": paid, "payment_id": payment_id, "amount_cents": 1000}),
            json!({"order_id": paid, "payment_id": payment_id, "amount_cents": 800}),
            json!({"order_id": paid, "payment_id": payment_id, "amount_cents": 300}),
        ]
    );
    assert_eq!(data[4]["amount_cents"], 500);
}

#[tokio::test]
async fn a_decline_publishes_its_reason() {
    let app = TestApp::spawn().await;
    let order = new_order();
    let r = app
        .authorize(&order, 650, "pm_card_chargeDeclinedInsufficientFunds")
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    let events = app.events(1).await;

    assert_eq!(
        kinds(&events),
        [("feastfast.payment.declined.v1".to_owned(), order.clone())]
    );
    assert_eq!(events[0].data["reason"], "insufficient_funds");
    assert_eq!(events[0].data["amount_cents"], 650);
}

#[tokio::test]
async fn refused_and_repeated_commands_publish_nothing() {
    let app = TestApp::spawn().await;
    let order = app.captured_order(1000).await;
    // Repeats, refusals, and a void of a payment that holds nothing.
    app.authorize(&order, 1000, "pm_card_visa").await;
    app.capture(&order, "capture", &json!({})).await;
    app.capture(&order, "capture-again", &json!({})).await;
    app.void(&order, "void").await;
    app.refund(&order, "refund", &json!({"amount_cents": 5000}))
        .await;
    let declined = new_order();
    app.authorize(&declined, 100, "pm_card_chargeDeclined")
        .await;
    app.void(&declined, "void").await;

    // The outbox holds every event committed, published or not.
    assert_eq!(app.count("outbox").await, 3);
    let events = app.events(3).await;
    assert_eq!(
        kinds(&events),
        [
            ("feastfast.payment.authorized.v1".to_owned(), order.clone()),
            ("feastfast.payment.captured.v1".to_owned(), order.clone()),
            ("feastfast.payment.declined.v1".to_owned(), declined.clone()),
        ]
    );
}

#[tokio::test]
async fn the_feed_is_for_services_only() {
    let app = TestApp::spawn().await;
    assert_problem(
        app.api.get("/events?after=0", None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_problem(
        app.api
            .get("/events?after=0", Some(&app.user_token()))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
}
