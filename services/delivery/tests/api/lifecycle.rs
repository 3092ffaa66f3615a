//! A delivery's life: pick-up, drop-off, cancellation, repeats, and the
//! events each step publishes.

use contracts::OrderId;
use contracts::delivery::{CourierMoved, DeliveryAssigned, DeliveryDelivered, DeliveryPickedUp};
use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Courier, DROPOFF, PICKUP, TestApp, id_of, north};

/// A courier at the restaurant, and an order assigned to them.
async fn assigned(app: &TestApp) -> (Courier, OrderId, String) {
    let courier = app.courier_at(PICKUP).await;
    let order = app.orders.confirm().await;
    let delivery = app.wait_assigned(order).await;
    assert_eq!(delivery["courier_id"], courier.id.to_string());
    (courier, order, id_of(&delivery))
}

async fn step_ok(app: &TestApp, courier: &Courier, id: &str, step: &str) -> Value {
    let r = app.step(Some(&courier.token), id, step).await;
    assert_eq!(r.status(), StatusCode::OK, "{step}");
    r.json().await.expect("json")
}

#[tokio::test]
async fn a_courier_picks_up_and_delivers_and_is_free_again() {
    let app = TestApp::spawn().await;
    let (courier, order, id) = assigned(&app).await;

    let picked = step_ok(&app, &courier, &id, "pickup").await;
    assert_eq!(picked["status"], "PICKED_UP");
    assert_eq!(picked["id"], id.as_str());
    assert_eq!(picked["courier_location"]["lat"], PICKUP.lat);
    assert!(picked["eta"].is_string());

    let delivered = step_ok(&app, &courier, &id, "deliver").await;
    assert_eq!(delivered["status"], "DELIVERED");
    assert_eq!(delivered["courier_id"], courier.id.to_string());
    // Once delivered, where the courier goes is no one else's business.
    assert_eq!(delivered["courier_location"], Value::Null);
    assert_eq!(app.delivery(order).await.expect("delivery"), delivered);

    let me = app.report(&courier, true, PICKUP).await;
    assert_eq!(me["active_delivery_id"], Value::Null);
    assert_eq!(
        app.deliveries_of(&courier, "?status=DELIVERED").await.len(),
        1
    );
}

#[tokio::test]
async fn a_step_out_of_order_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (courier, order, id) = assigned(&app).await;

    let problem = assert_problem(
        app.step(Some(&courier.token), &id, "deliver").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("ASSIGNED"),
        "{problem}"
    );
    assert_eq!(
        app.delivery(order).await.expect("delivery")["status"],
        "ASSIGNED"
    );

    step_ok(&app, &courier, &id, "pickup").await;
    assert_problem(
        app.step(Some(&courier.token), &id, "pickup").await,
        StatusCode::CONFLICT,
    )
    .await;
    step_ok(&app, &courier, &id, "deliver").await;
    for step in ["pickup", "deliver"] {
        assert_problem(
            app.step(Some(&courier.token), &id, step).await,
            StatusCode::CONFLICT,
        )
        .await;
    }
    assert_eq!(
        app.delivery(order).await.expect("delivery")["status"],
        "DELIVERED"
    );
}

#[tokio::test]
async fn another_couriers_or_an_unknown_delivery_is_404() {
    let app = TestApp::spawn().await;
    let (_courier, order, id) = assigned(&app).await;
    let other = app.courier_at(north(PICKUP, 0.01)).await;

    for step in ["pickup", "deliver"] {
        assert_problem(
            app.step(Some(&other.token), &id, step).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        let unknown = uuid::Uuid::now_v7().to_string();
        assert_problem(
            app.step(Some(&other.token), &unknown, step).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_problem(
            app.step(Some(&other.token), "not-a-uuid", step).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    assert_eq!(
        app.delivery(order).await.expect("delivery")["status"],
        "ASSIGNED"
    );
}

#[tokio::test]
async fn a_cancellation_before_pickup_cancels_and_frees_the_courier() {
    let app = TestApp::spawn().await;
    let (courier, order, id) = assigned(&app).await;

    app.orders.cancel(order).await;
    let cancelled = app.wait_status(order, "CANCELLED").await;
    assert_eq!(cancelled["id"], id.as_str());
    assert_problem(
        app.step(Some(&courier.token), &id, "pickup").await,
        StatusCode::CONFLICT,
    )
    .await;
    let me = app.report(&courier, true, PICKUP).await;
    assert_eq!(me["active_delivery_id"], Value::Null);

    // Free again: the next order is theirs.
    let next = app.orders.confirm().await;
    assert_eq!(
        app.wait_assigned(next).await["courier_id"],
        courier.id.to_string()
    );
}

#[tokio::test]
async fn a_cancellation_of_a_pending_delivery_means_no_courier_ever_gets_it() {
    let app = TestApp::spawn().await;
    let order = app.orders.confirm().await;
    app.wait_status(order, "PENDING").await;
    app.orders.cancel(order).await;
    app.wait_status(order, "CANCELLED").await;

    let courier = app.courier_at(PICKUP).await;
    let next = app.orders.confirm().await;
    app.wait_assigned(next).await;
    let mine = app.deliveries_of(&courier, "").await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["order_id"], next.to_string());
    assert_eq!(
        app.delivery(order).await.expect("delivery")["status"],
        "CANCELLED"
    );
}

#[tokio::test]
async fn a_cancellation_after_pickup_leaves_the_delivery_on_its_way() {
    let app = TestApp::spawn().await;
    let (courier, order, id) = assigned(&app).await;
    step_ok(&app, &courier, &id, "pickup").await;

    app.orders.cancel(order).await;
    // The feed is ordered: once a later order's delivery exists, the
    // cancellation before it has been applied.
    let marker = app.orders.confirm().await;
    app.wait_for(marker, "created", |_| true).await;

    assert_eq!(
        app.delivery(order).await.expect("delivery")["status"],
        "PICKED_UP"
    );
    let delivered = step_ok(&app, &courier, &id, "deliver").await;
    assert_eq!(delivered["status"], "DELIVERED");
}

#[tokio::test]
async fn a_repeated_order_confirmation_creates_one_delivery() {
    let app = TestApp::spawn().await;
    let order = OrderId::new();
    app.orders.confirm_at(order, PICKUP, DROPOFF).await;
    // The same order confirmed again (another event, as a retried saga
    // step would publish), even with other places.
    app.orders
        .confirm_at(order, north(PICKUP, 1.0), north(DROPOFF, 1.0))
        .await;
    let marker = app.orders.confirm().await;
    app.wait_for(marker, "created", |_| true).await;
    let first = app.delivery(order).await.expect("delivery");
    assert_eq!(first["pickup"]["lat"], PICKUP.lat);

    // Two couriers for what should be two deliveries: one each, and the
    // order is announced as assigned once.
    let a = app.courier_at(PICKUP).await;
    let b = app.courier_at(north(PICKUP, 0.01)).await;
    let assigned = app.wait_assigned(order).await;
    assert_eq!(assigned["id"], first["id"]);
    app.wait_assigned(marker).await;
    let held = app.deliveries_of(&a, "").await.len() + app.deliveries_of(&b, "").await.len();
    assert_eq!(held, 2);
    let subject = order.to_string();
    let announcements = app
        .feed()
        .await
        .into_iter()
        .filter(|e| e.is::<DeliveryAssigned>() && e.subject.as_deref() == Some(subject.as_str()))
        .count();
    assert_eq!(announcements, 1);
}

#[tokio::test]
async fn every_step_is_announced_on_the_feed() {
    let app = TestApp::spawn().await;
    let (courier, order, id) = assigned(&app).await;
    let delivery = app.delivery(order).await.expect("delivery");

    let assigned: DeliveryAssigned = app.wait_event(order).await;
    assert_eq!(assigned.order_id, order);
    assert_eq!(assigned.delivery_id, id);
    assert_eq!(assigned.courier_id, courier.id);
    assert_eq!(Some(assigned.eta.as_str()), delivery["eta"].as_str());

    // Moving while holding the order is announced; reporting the same spot
    // again is not a move.
    let moved_to = north(PICKUP, 0.003);
    app.report(&courier, true, moved_to).await;
    app.report(&courier, false, moved_to).await;
    let moved: CourierMoved = app.wait_event(order).await;
    assert_eq!(moved.courier_id, courier.id);
    assert_eq!(moved.location, moved_to);
    assert_eq!(
        app.delivery(order).await.expect("delivery")["courier_location"]["lat"],
        moved_to.lat
    );

    step_ok(&app, &courier, &id, "pickup").await;
    let picked: DeliveryPickedUp = app.wait_event(order).await;
    assert_eq!(
        (picked.delivery_id.as_str(), picked.courier_id),
        (id.as_str(), courier.id)
    );
    step_ok(&app, &courier, &id, "deliver").await;
    let delivered: DeliveryDelivered = app.wait_event(order).await;
    assert_eq!(delivered.delivery_id, id);

    // After the delivery, moving announces nothing (given the relay time
    // to publish anything it might have).
    app.report(&courier, true, north(PICKUP, 0.02)).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let feed = app.feed().await;
    let kinds: Vec<&str> = feed.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "feastfast.delivery.assigned.v1",
            "feastfast.courier.moved.v1",
            "feastfast.delivery.picked_up.v1",
            "feastfast.delivery.delivered.v1",
        ]
    );
    for event in &feed {
        assert_eq!(event.source, "feastfast/delivery");
        assert_eq!(event.subject.as_deref(), Some(order.to_string().as_str()));
    }
}

#[tokio::test]
async fn the_saga_cancels_a_delivery_only_before_pick_up() {
    let app = TestApp::spawn().await;
    let cancel = |order: OrderId, token: Option<String>| {
        let api = platform::testing::Api::new(&app.running.url);
        async move {
            api.post(
                &format!("/internal/deliveries/by-order/{order}/cancel"),
                token.as_deref(),
                serde_json::json!({}),
            )
            .await
        }
    };
    // Before pick-up: cancelled, the courier free again; twice is fine.
    let (courier, order, _) = assigned(&app).await;
    assert_problem(cancel(order, None).await, StatusCode::UNAUTHORIZED).await;
    for _ in 0..2 {
        let r = cancel(order, Some(app.service_token())).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.json::<Value>().await.expect("json")["status"],
            "CANCELLED"
        );
    }
    assert_eq!(
        app.report(&courier, true, PICKUP).await["active_delivery_id"],
        Value::Null
    );

    // After pick-up: refused, the delivery carries on.
    let next = app.orders.confirm().await;
    let delivery = app.wait_assigned(next).await;
    let id = id_of(&delivery);
    step_ok(&app, &courier, &id, "pickup").await;
    assert_problem(
        cancel(next, Some(app.service_token())).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        app.delivery(next).await.expect("delivery")["status"],
        "PICKED_UP"
    );

    // No delivery (yet): 404, so the saga goes ahead.
    assert_problem(
        cancel(OrderId::new(), Some(app.service_token())).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}
