//! Couriers report availability and location, and list their deliveries.

use contracts::identity::Role;
use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PICKUP, TestApp, north, update};

#[tokio::test]
async fn a_courier_reports_and_updates_availability_and_location() {
    let app = TestApp::spawn().await;
    let courier = app.new_courier();

    let first = app.report(&courier, true, PICKUP).await;
    assert_eq!(first["id"], courier.id.to_string());
    assert_eq!(first["available"], true);
    assert_eq!(first["location"]["lat"], PICKUP.lat);
    assert_eq!(first["location"]["lng"], PICKUP.lng);
    assert_eq!(first["active_delivery_id"], Value::Null);
    assert!(first["updated_at"].is_string());

    // The same PUT again updates the one courier; it does not create another.
    let moved = north(PICKUP, 0.01);
    let second = app.report(&courier, false, moved).await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["available"], false);
    assert_eq!(second["location"]["lat"], moved.lat);
}

#[tokio::test]
async fn an_invalid_location_or_body_is_422_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let courier = app.new_courier();
    app.report(&courier, true, PICKUP).await;
    for body in [
        json!({"available": true, "location": {"lat": 91.0, "lng": 13.0}}),
        json!({"available": true, "location": {"lat": 52.0, "lng": -180.5}}),
        json!({"available": true}),
        json!({"available": "yes", "location": {"lat": 52.0, "lng": 13.0}}),
    ] {
        let problem = assert_problem(
            app.put_me(Some(&courier.token), &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(problem["errors"].is_array(), "{problem}");
    }
    let invalid = assert_problem(
        app.put_me(
            Some(&courier.token),
            &json!({"available": true, "location": {"lat": 91.0, "lng": 13.0}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(invalid["errors"][0]["field"], "location");
    let unchanged = app.report(&courier, true, PICKUP).await;
    assert_eq!(unchanged["location"]["lat"], PICKUP.lat);
}

#[tokio::test]
async fn courier_routes_need_a_courier_token() {
    let app = TestApp::spawn().await;
    let body = update(true, PICKUP);
    let some_id = uuid::Uuid::now_v7().to_string();

    assert_problem(app.put_me(None, &body).await, StatusCode::UNAUTHORIZED).await;
    assert_problem(app.my_deliveries(None, "").await, StatusCode::UNAUTHORIZED).await;
    assert_problem(
        app.step(None, &some_id, "pickup").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_problem(
        app.put_me(Some("not-a-token"), &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    for role in [Role::Customer, Role::RestaurantOwner, Role::Admin] {
        let token = app.token(role);
        assert_problem(app.put_me(Some(&token), &body).await, StatusCode::FORBIDDEN).await;
        assert_problem(
            app.my_deliveries(Some(&token), "").await,
            StatusCode::FORBIDDEN,
        )
        .await;
        for step in ["pickup", "deliver"] {
            assert_problem(
                app.step(Some(&token), &some_id, step).await,
                StatusCode::FORBIDDEN,
            )
            .await;
        }
    }
    // A service token is not a courier either.
    assert_problem(
        app.put_me(Some(&app.service_token()), &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn the_delivery_list_shows_only_ones_own_and_filters_by_status() {
    let app = TestApp::spawn().await;
    let courier = app.courier_at(PICKUP).await;
    let other = app.new_courier();
    // Before any delivery: an empty list, also for one who never reported.
    assert!(app.deliveries_of(&courier, "").await.is_empty());
    assert!(app.deliveries_of(&other, "").await.is_empty());

    let order = app.orders.confirm().await;
    let assigned = app.wait_assigned(order).await;

    let all = app.deliveries_of(&courier, "").await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0], assigned);
    assert_eq!(
        app.deliveries_of(&courier, "?status=ASSIGNED").await.len(),
        1
    );
    // The filter is case-insensitive, like the other services' filters.
    assert_eq!(
        app.deliveries_of(&courier, "?status=assigned").await.len(),
        1
    );
    assert!(
        app.deliveries_of(&courier, "?status=DELIVERED")
            .await
            .is_empty()
    );
    assert!(app.deliveries_of(&other, "").await.is_empty());

    let problem = assert_problem(
        app.my_deliveries(Some(&courier.token), "?status=LOST")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "status");
}
