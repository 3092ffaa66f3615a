//! The platform's standard behaviour, the internal lookup, durability, and
//! independence from the orders service.

use contracts::identity::Role;
use platform::testing::{
    assert_health, assert_openapi, assert_problem, assert_trace_ids,
    assert_unmatched_requests_are_problems,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{FakeOrders, PICKUP, TestApp, north};

#[tokio::test]
async fn health_reports_the_service_and_its_database() {
    let app = TestApp::spawn().await;
    assert_health(&app.running.url, "delivery").await;
}

#[tokio::test]
async fn openapi_describes_the_routes() {
    let app = TestApp::spawn().await;
    assert_openapi(
        &app.running.url,
        &[
            ("/couriers/me", "put"),
            ("/couriers/me/deliveries", "get"),
            ("/deliveries/{id}/pickup", "post"),
            ("/deliveries/{id}/deliver", "post"),
            ("/internal/deliveries/by-order/{order_id}", "get"),
        ],
        &[
            "Courier",
            "CourierUpdate",
            "Delivery",
            "DeliveryStatus",
            "Location",
        ],
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_and_traces_are_kept() {
    let app = TestApp::spawn().await;
    assert_unmatched_requests_are_problems(&app.running.url, "/couriers/me").await;
    assert_trace_ids(&app.running.url).await;
}

#[tokio::test]
async fn the_internal_lookup_by_order_needs_a_service_token() {
    let app = TestApp::spawn().await;
    let order = app.orders.confirm().await;
    let pending = app.wait_status(order, "PENDING").await;
    let path = order.to_string();

    assert_problem(
        app.by_order_with(&path, None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let courier = app.token(Role::Courier);
    assert_problem(
        app.by_order_with(&path, Some(&courier)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let admin = app.token(Role::Admin);
    assert_problem(
        app.by_order_with(&path, Some(&admin)).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let service = app.service_token();
    let r = app.by_order_with(&path, Some(&service)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json"), pending);
    for unknown in [contracts::OrderId::new().to_string(), "nope".to_owned()] {
        assert_problem(
            app.by_order_with(&unknown, Some(&service)).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    // The feed is internal too.
    assert_problem(app.api.get("/events", None).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn couriers_deliveries_and_the_feed_cursor_survive_a_restart() {
    let app = TestApp::spawn().await;
    let courier = app.courier_at(PICKUP).await;
    let done = app.orders.confirm().await;
    let id = app.wait_assigned(done).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for step in ["pickup", "deliver"] {
        assert_eq!(
            app.step(Some(&courier.token), &id, step).await.status(),
            StatusCode::OK
        );
    }
    let active = app.orders.confirm().await;
    let before = app.wait_assigned(active).await;
    app.wait_event::<contracts::delivery::DeliveryAssigned>(active)
        .await;
    let feed_before = app.feed().await;

    let (dir, key, orders) = app.stop().await;
    // Published while delivery is down: picked up when it returns, and not
    // before (the stopped service's consumer stopped with it).
    let while_down = orders.confirm().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let url = format!("sqlite://{}/delivery.db", dir.path().display());
    let db = platform::db::connect(&url, delivery::MIGRATIONS)
        .await
        .expect("connects");
    let created: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE order_id = $1")
        .bind(while_down.to_string())
        .fetch_one(&db)
        .await
        .expect("counts");
    assert_eq!(created, 0);
    db.close().await;
    let app = TestApp::spawn_in(dir, key, orders).await;

    assert_eq!(app.delivery(active).await.expect("delivery"), before);
    let me = app.report(&courier, true, PICKUP).await;
    assert_eq!(me["active_delivery_id"], before["id"]);
    // The old events were not applied again: the delivered order stays
    // delivered, and nothing was announced twice.
    assert_eq!(
        app.delivery(done).await.expect("delivery")["status"],
        "DELIVERED"
    );
    let pending = app.wait_status(while_down, "PENDING").await;
    assert_eq!(pending["order_id"], while_down.to_string());
    assert_eq!(app.feed().await, feed_before);

    // And work goes on: the courier finishes, and takes the next one.
    let active_id = before["id"].as_str().expect("id");
    for step in ["pickup", "deliver"] {
        assert_eq!(
            app.step(Some(&courier.token), active_id, step)
                .await
                .status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        app.wait_assigned(while_down).await["courier_id"],
        courier.id.to_string()
    );
}

#[tokio::test]
async fn delivery_starts_and_serves_without_orders_and_catches_up_once_it_is_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = platform::auth::SigningKey::generate();
    let on_nats =
        platform::testing::test_events_config(dir.path()) != platform::config::EventsConfig::Feed;
    let orders = FakeOrders::down(&dir, &key).await;
    let mut app = TestApp::spawn_in(dir, key, orders).await;

    assert_health(&app.running.url, "delivery").await;
    let courier = app.courier_at(PICKUP).await;
    let me = app.report(&courier, true, north(PICKUP, 0.001)).await;
    assert_eq!(me["available"], true);
    let order = app.orders.confirm().await;
    if on_nats {
        // On NATS the broker holds orders' events: one confirmed while
        // orders itself is down still reaches delivery.
        let delivery = app.wait_assigned(order).await;
        assert_eq!(delivery["courier_id"], courier.id.to_string());
        return;
    }
    // On the feed, an order confirmed while its feed is unreachable waits
    // in orders...
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(app.delivery(order).await.is_none());

    // ...and gets its courier once orders is up.
    app.orders.serve().await;
    let delivery = app.wait_assigned(order).await;
    assert_eq!(delivery["courier_id"], courier.id.to_string());
}
