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

/// A client that hangs up while a participant hangs must not leave the
/// saga behind: it goes on, and finishes once the participant answers.
#[tokio::test]
async fn a_client_hanging_up_mid_saga_does_not_strand_the_order() {
    let mut w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let customer = w.token(Role::Customer);
    w.stop_payments().await;
    // Payments "up" but silent: it accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind(("127.0.0.1", w.payments_port))
        .await
        .expect("binds");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let gave_up = w
        .api
        .request(reqwest::Method::POST, "/orders", Some(&customer))
        .header("idempotency-key", "hang-up")
        .json(&order_body(&restaurant, &pizza, &salad, 1, "pm_card_visa"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client was meant to give up");
    let list: Value = w
        .api
        .get("/orders", Some(&customer))
        .await
        .json()
        .await
        .expect("json");
    let id = list["items"][0]["id"]
        .as_str()
        .expect("the order exists")
        .to_owned();

    // The silent payments goes away (its connections with it); the real
    // one comes back on its port.
    held.abort();
    let _ = held.await;
    w.start_payments().await;
    w.wait_for(&customer, &id, "CONFIRMED", Duration::from_secs(20))
        .await;
}
