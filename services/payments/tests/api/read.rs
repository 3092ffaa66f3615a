//! `GET /internal/payments/{order_id}`.

use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, new_order};

#[tokio::test]
async fn a_payment_is_read_by_its_order() {
    let app = TestApp::spawn().await;
    let order = app.authorized_order(1000).await;
    let r = app
        .capture(&order, "capture", &json!({"amount_cents": 900}))
        .await;
    let captured: Value = r.json().await.expect("json");
    let r = app
        .refund(&order, "refund", &json!({"amount_cents": 100}))
        .await;
    let refunded: Value = r.json().await.expect("json");

    let payment = app.payment(&order).await;

    assert_eq!(payment, refunded);
    assert_eq!(payment["id"], captured["id"]);
    assert_eq!(payment["status"], "partially_refunded");
    assert_eq!(payment["amount_cents"], 1000);
    assert_eq!(payment["captured_cents"], 900);
    assert_eq!(payment["refunded_cents"], 100);
    let fields: Vec<&String> = payment.as_object().expect("object").keys().collect();
    assert_eq!(
        fields,
        [
            "amount_cents",
            "captured_cents",
            "created_at",
            "decline_reason",
            "id",
            "order_id",
            "payment_method",
            "refunded_cents",
            "status",
            "updated_at"
        ]
    );
}

#[tokio::test]
async fn an_order_without_a_payment_is_404() {
    let app = TestApp::spawn().await;
    for order in [new_order(), "nope".to_owned()] {
        let r = app.get_as(&order, Some(&app.token)).await;
        assert_problem(r, StatusCode::NOT_FOUND).await;
    }
}
