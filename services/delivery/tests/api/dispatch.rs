//! The dispatcher: the nearest free courier, one delivery per courier, and
//! retries until a courier is free.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use contracts::OrderId;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PICKUP, TestApp, north};

/// Longer than two dispatch ticks (500 ms each): time enough for the
/// dispatcher to have assigned anything it could.
const A_WHILE: Duration = Duration::from_millis(1200);

#[tokio::test]
async fn a_confirmed_order_gets_the_nearest_available_courier() {
    let app = TestApp::spawn().await;
    // The far courier reports first, so being first is not what wins.
    let far = app.courier_at(north(PICKUP, 0.05)).await;
    let near_at = north(PICKUP, 0.002);
    let near = app.courier_at(near_at).await;
    // Nearer still, but not taking work.
    let resting = app.new_courier();
    app.report(&resting, false, PICKUP).await;

    let order = app.orders.confirm().await;
    let delivery = app.wait_assigned(order).await;

    assert_eq!(delivery["courier_id"], near.id.to_string());
    assert_eq!(delivery["order_id"], order.to_string());
    assert_eq!(delivery["pickup"]["lat"], PICKUP.lat);
    assert_eq!(delivery["courier_location"]["lat"], near_at.lat);
    assert!(
        delivery["eta"]
            .as_str()
            .is_some_and(|eta| eta > delivery["created_at"].as_str().expect("created_at"))
    );
    // The far courier is still free: a second order goes to them.
    let second = app.orders.confirm().await;
    let delivery = app.wait_assigned(second).await;
    assert_eq!(delivery["courier_id"], far.id.to_string());
}

#[tokio::test]
async fn the_eta_covers_the_ride_to_the_restaurant_and_on_to_the_customer() {
    let app = TestApp::spawn().await;
    // About 11.1 km to the restaurant, then about 2.4 km to the customer:
    // some 32 minutes at 25 km/h.
    app.courier_at(north(PICKUP, 0.1)).await;
    let order = app.orders.confirm().await;
    let delivery = app.wait_assigned(order).await;
    let eta = delivery["eta"].as_str().expect("eta");
    let earliest = platform::time::from_now(Duration::from_secs(30 * 60));
    let latest = platform::time::from_now(Duration::from_secs(35 * 60));
    assert!(
        earliest.as_str() < eta && eta < latest.as_str(),
        "{earliest} < {eta} < {latest}"
    );
}

#[tokio::test]
async fn without_a_free_courier_a_delivery_waits_and_is_assigned_once_one_is() {
    let app = TestApp::spawn().await;
    let courier = app.new_courier();
    app.report(&courier, false, PICKUP).await;

    let order = app.orders.confirm().await;
    let pending = app.wait_status(order, "PENDING").await;
    assert_eq!(pending["courier_id"], Value::Null);
    assert_eq!(pending["eta"], Value::Null);
    assert_eq!(pending["courier_location"], Value::Null);
    tokio::time::sleep(A_WHILE).await;
    assert_eq!(
        app.delivery(order).await.expect("delivery")["status"],
        "PENDING"
    );

    let start = Instant::now();
    app.report(&courier, true, PICKUP).await;
    let assigned = app.wait_assigned(order).await;
    assert_eq!(assigned["courier_id"], courier.id.to_string());
    assert_eq!(assigned["id"], pending["id"]);
    // Woken by the courier, not left to a distant retry.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_courier_holds_one_delivery_at_a_time_and_gets_the_next_when_done() {
    let app = TestApp::spawn().await;
    let courier = app.courier_at(PICKUP).await;
    let first = app.orders.confirm().await;
    let second = app.orders.confirm().await;

    // Oldest first.
    let assigned = app.wait_assigned(first).await;
    assert_eq!(assigned["courier_id"], courier.id.to_string());
    let waiting = app.wait_status(second, "PENDING").await;
    tokio::time::sleep(A_WHILE).await;
    assert_eq!(
        app.delivery(second).await.expect("delivery")["status"],
        "PENDING"
    );
    let me = app.report(&courier, true, PICKUP).await;
    assert_eq!(me["active_delivery_id"], assigned["id"]);

    let id = assigned["id"].as_str().expect("id");
    for step in ["pickup", "deliver"] {
        let r = app.step(Some(&courier.token), id, step).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let next = app.wait_assigned(second).await;
    assert_eq!(next["courier_id"], courier.id.to_string());
    assert_eq!(next["id"], waiting["id"]);
}

#[tokio::test]
async fn the_database_refuses_a_second_active_delivery_for_a_courier() {
    let app = TestApp::spawn().await;
    let courier = app.courier_at(PICKUP).await;
    let first = app.orders.confirm().await;
    let second = app.orders.confirm().await;
    app.wait_assigned(first).await;
    app.wait_status(second, "PENDING").await;

    // Whatever the code above it does, the schema itself says no.
    let url = platform::testing::test_database_url(app.dir.path(), "delivery");
    let db = platform::db::connect(&url, delivery::MIGRATIONS)
        .await
        .expect("connects");
    let err = sqlx::query(
        "UPDATE deliveries SET status = 'ASSIGNED', courier_id = $1 WHERE order_id = $2",
    )
    .bind(courier.id.to_string())
    .bind(second.to_string())
    .execute(&db)
    .await
    .expect_err("a second active delivery");
    assert!(platform::db::is_unique_violation(&err), "{err}");
}

#[tokio::test]
async fn many_orders_and_couriers_at_once_never_double_book_anyone() {
    let app = TestApp::spawn().await;
    let mut couriers = Vec::new();
    for i in 0..3 {
        couriers.push(app.courier_at(north(PICKUP, 0.001 * f64::from(i))).await);
    }
    let mut orders: Vec<OrderId> = Vec::new();
    for _ in 0..8 {
        orders.push(app.orders.confirm().await);
    }
    for order in &orders {
        app.wait_for(*order, "created", |_| true).await;
    }
    let start = Instant::now();
    let snapshot = loop {
        let mut deliveries = Vec::new();
        for order in &orders {
            deliveries.push(app.delivery(*order).await.expect("delivery"));
        }
        let assigned = deliveries
            .iter()
            .filter(|d| d["status"] == "ASSIGNED")
            .count();
        if assigned == 3 || start.elapsed() > Duration::from_secs(5) {
            break deliveries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(A_WHILE).await;
    let assigned: Vec<&Value> = snapshot
        .iter()
        .filter(|d| d["status"] == "ASSIGNED")
        .collect();
    assert_eq!(assigned.len(), 3, "{snapshot:?}");
    let holders: HashSet<&str> = assigned
        .iter()
        .map(|d| d["courier_id"].as_str().expect("courier"))
        .collect();
    assert_eq!(holders.len(), 3);
    // The three oldest orders went first; the rest still wait.
    for (i, order) in orders.iter().enumerate() {
        let status = &app.delivery(*order).await.expect("delivery")["status"];
        assert_eq!(
            status,
            if i < 3 { "ASSIGNED" } else { "PENDING" },
            "order {i}"
        );
    }
    for courier in &couriers {
        assert_eq!(app.deliveries_of(courier, "").await.len(), 1);
    }
}
