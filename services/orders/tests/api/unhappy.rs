use std::time::Duration;

use contracts::identity::Role;
use platform::testing::{Api, assert_problem};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestWorld, order_body, statuses};

#[tokio::test]
async fn a_declined_card_rejects_the_order_and_gives_the_stock_back() {
    let w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let customer = w.token(Role::Customer);
    let r = w
        .place(
            &customer,
            "k",
            &order_body(
                &restaurant,
                &pizza,
                &salad,
                2,
                "pm_card_chargeDeclinedInsufficientFunds",
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let order: Value = r.json().await.expect("json");
    assert_eq!(order["status"], "REJECTED");
    assert_eq!(order["rejection_reason"], "insufficient_funds");
    assert_eq!(order["payment"]["status"], "declined");
    let id = order["id"].as_str().expect("id");
    // The release runs right after the decision.
    w.stock_reaches(&restaurant, &pizza, 5).await;
    assert_eq!(w.stock(&restaurant, &pizza).await, Some(5));
    assert_eq!(w.payment(id).await["captured_cents"], 0);
}

#[tokio::test]
async fn too_little_stock_rejects_with_the_reason() {
    let w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let customer = w.token(Role::Customer);
    let order: Value = w
        .place(
            &customer,
            "k",
            &order_body(&restaurant, &pizza, &salad, 6, "pm_card_visa"),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(order["status"], "REJECTED");
    assert!(
        order["rejection_reason"]
            .as_str()
            .expect("reason")
            .contains("only 5 left"),
        "{order:#}"
    );
    assert_eq!(
        w.payment(order["id"].as_str().expect("id")).await,
        Value::Null
    );
}

#[tokio::test]
async fn cancelling_before_pick_up_voids_and_releases_but_not_after() {
    let w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let customer = w.token(Role::Customer);
    let order: Value = w
        .place(
            &customer,
            "k1",
            &order_body(&restaurant, &pizza, &salad, 2, "pm_card_visa"),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = order["id"].as_str().expect("id").to_owned();
    let r = w
        .api
        .post(&format!("/orders/{id}/cancel"), Some(&customer), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cancelled = w
        .wait_for(&customer, &id, "CANCELLED", Duration::from_secs(10))
        .await;
    assert!(statuses(&cancelled).contains(&"CANCEL_PENDING".to_owned()));
    assert_eq!(w.payment(&id).await["status"], "voided");
    assert_eq!(w.stock(&restaurant, &pizza).await, Some(5));
    // Cancelling again is harmless.
    assert_eq!(
        w.api
            .post(&format!("/orders/{id}/cancel"), Some(&customer), json!({}))
            .await
            .status(),
        StatusCode::OK
    );

    let order: Value = w
        .place(
            &customer,
            "k2",
            &order_body(&restaurant, &pizza, &salad, 1, "pm_card_visa"),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = order["id"].as_str().expect("id").to_owned();
    // Delivery only ever hears of confirmed orders.
    w.wait_for(&customer, &id, "CONFIRMED", Duration::from_secs(10))
        .await;
    w.delivery.deliver(&id).await;
    w.wait_for(&customer, &id, "DELIVERED", Duration::from_secs(10))
        .await;
    assert_problem(
        w.api
            .post(&format!("/orders/{id}/cancel"), Some(&customer), json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn a_restaurant_that_says_no_rejects_the_order_and_voids_the_payment() {
    let w = TestWorld::spawn().await;
    let (owner, restaurant, pizza, salad) = w.restaurant(false).await;
    let customer = w.token(Role::Customer);
    let order: Value = w
        .place(
            &customer,
            "k",
            &order_body(&restaurant, &pizza, &salad, 1, "pm_card_visa"),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = order["id"].as_str().expect("id").to_owned();
    // Decided within the deadline on a quiet machine; waited for on a busy one.
    w.wait_for(
        &customer,
        &id,
        "AWAITING_RESTAURANT",
        Duration::from_secs(10),
    )
    .await;
    let r = w
        .decide_ticket(
            &owner,
            &restaurant,
            &id,
            "reject",
            json!({"reason": "oven broken"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let rejected = w
        .wait_for(&customer, &id, "REJECTED", Duration::from_secs(10))
        .await;
    assert_eq!(rejected["rejection_reason"], "oven broken");
    w.payment_reaches(&id, "voided").await;
    assert_eq!(w.payment(&id).await["status"], "voided");
    // The release is the last compensation of the round, after the void.
    w.stock_reaches(&restaurant, &pizza, 5).await;
    assert_eq!(w.stock(&restaurant, &pizza).await, Some(5));
}

#[tokio::test]
async fn an_owner_accepting_confirms_the_order() {
    let w = TestWorld::spawn().await;
    let (owner, restaurant, pizza, salad) = w.restaurant(false).await;
    let customer = w.token(Role::Customer);
    let order: Value = w
        .place(
            &customer,
            "k",
            &order_body(&restaurant, &pizza, &salad, 1, "pm_card_visa"),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = order["id"].as_str().expect("id").to_owned();
    w.wait_for(
        &customer,
        &id,
        "AWAITING_RESTAURANT",
        Duration::from_secs(10),
    )
    .await;
    let r = w
        .decide_ticket(&owner, &restaurant, &id, "accept", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    w.wait_for(&customer, &id, "CONFIRMED", Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn a_restaurant_that_never_answers_is_rejected_by_the_timer() {
    let w = TestWorld::spawn_with(Duration::from_secs(1)).await;
    assert_eq!(w.accept_window, Duration::from_secs(1));
    let (owner, restaurant, pizza, salad) = w.restaurant(false).await;
    let customer = w.token(Role::Customer);
    let order: Value = w
        .place(
            &customer,
            "k",
            &order_body(&restaurant, &pizza, &salad, 1, "pm_card_visa"),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = order["id"].as_str().expect("id").to_owned();
    let rejected = w
        .wait_for(&customer, &id, "REJECTED", Duration::from_secs(10))
        .await;
    assert!(rejected["rejection_reason"].is_string());
    w.payment_reaches(&id, "voided").await;
    assert_eq!(w.payment(&id).await["status"], "voided");
    let tickets: Value = Api::new(&w.restaurants.url)
        .get(&format!("/restaurants/{restaurant}/tickets"), Some(&owner))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(tickets["items"][0]["status"], "CANCELLED");
}

#[tokio::test]
async fn a_cancel_racing_the_pick_up_is_refused_when_the_courier_has_the_food() {
    let w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let customer = w.token(Role::Customer);
    let order: Value = w
        .place(
            &customer,
            "k",
            &order_body(&restaurant, &pizza, &salad, 1, "pm_card_visa"),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = order["id"].as_str().expect("id").to_owned();
    w.wait_for(&customer, &id, "CONFIRMED", Duration::from_secs(10))
        .await;
    // Delivery has it picked up; orders has not heard yet.
    w.delivery
        .picked_up
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let r = w
        .api
        .post(&format!("/orders/{id}/cancel"), Some(&customer), json!({}))
        .await;
    assert_problem(r, StatusCode::CONFLICT).await;
    let order = w.order(&customer, &id).await;
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(w.payment(&id).await["status"], "authorized");
}
