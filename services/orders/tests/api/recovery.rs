use std::time::Duration;

use contracts::identity::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestWorld, order_body};

#[tokio::test]
async fn with_payments_down_an_order_waits_and_finishes_when_it_returns() {
    let mut w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let customer = w.token(Role::Customer);
    w.stop_payments().await;
    let r = w
        .place(
            &customer,
            "k",
            &order_body(&restaurant, &pizza, &salad, 1, "pm_card_visa"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let order: Value = r.json().await.expect("json");
    assert_eq!(order["status"], "PAYMENT_PENDING");
    let id = order["id"].as_str().expect("id").to_owned();

    w.start_payments().await;
    let confirmed = w
        .wait_for(&customer, &id, "CONFIRMED", Duration::from_secs(10))
        .await;
    assert_eq!(confirmed["payment"]["status"], "authorized");
}

#[tokio::test]
async fn a_saga_interrupted_by_a_restart_finishes_and_authorizes_once() {
    let mut w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let customer = w.token(Role::Customer);
    w.stop_payments().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let order: Value = w
            .place(
                &customer,
                &format!("k{i}"),
                &order_body(&restaurant, &pizza, &salad, 1, "pm_card_visa"),
            )
            .await
            .json()
            .await
            .expect("json");
        ids.push(order["id"].as_str().expect("id").to_owned());
    }
    // orders goes away with three sagas mid-flight, payments comes back,
    // then orders starts again on the same database.
    w.stop_orders().await;
    w.start_payments().await;
    w.start_orders().await;
    for id in &ids {
        w.wait_for(&customer, id, "CONFIRMED", Duration::from_secs(10))
            .await;
        let payment = w.payment(id).await;
        assert_eq!(payment["status"], "authorized", "{payment:#}");
    }
    assert_eq!(w.stock(&restaurant, &pizza).await, Some(2));
}
