//! The platform's standard behaviour and durability, as seen on this
//! service.

use platform::testing::{
    assert_health, assert_metrics_count, assert_openapi, assert_trace_ids,
    assert_unmatched_requests_are_problems,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, id_of};

#[tokio::test]
async fn health_reports_the_service_and_its_database() {
    let app = TestApp::spawn().await;
    assert_health(&app.running.url, "restaurants").await;
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status() {
    let app = TestApp::spawn().await;
    app.mine(None).await;
    assert_metrics_count(
        &app.running.url,
        "/restaurants/mine",
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn openapi_describes_the_routes() {
    let app = TestApp::spawn().await;
    assert_openapi(
        &app.running.url,
        &[
            ("/restaurants", "get"),
            ("/restaurants", "post"),
            ("/restaurants/mine", "get"),
            ("/restaurants/{id}", "get"),
            ("/restaurants/{id}/menu", "post"),
            ("/restaurants/{id}/menu/{item_id}", "patch"),
        ],
        &[
            "Restaurant",
            "RestaurantDetail",
            "MenuItem",
            "NewRestaurant",
        ],
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    assert_unmatched_requests_are_problems(&app.running.url, "/restaurants").await;
}

#[tokio::test]
async fn a_traceparent_is_honoured_and_echoed_as_x_trace_id() {
    let app = TestApp::spawn().await;
    assert_trace_ids(&app.running.url).await;
}

#[tokio::test]
async fn restaurants_and_menus_survive_a_restart() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let restaurant = app.seed_restaurant(&owner, "Pizza Palace", "Italian").await;
    let id = id_of(&restaurant);
    app.seed_item(
        &owner,
        &id,
        &json!({"name": "Margherita", "price_cents": 950, "stock": 4, "available": false}),
    )
    .await;
    let before = app.detail_json(&id).await;

    let (dir, key) = app.stop().await;
    let app = TestApp::spawn_in(dir, key).await;

    assert_eq!(app.detail_json(&id).await, before);
    assert_eq!(app.list_names("").await, ["Pizza Palace"]);
    // The owner's token (same key) still owns it after the restart.
    let r = app
        .patch_item(
            Some(&owner.token),
            &id,
            &id_of(&before["menu"][0]),
            &json!({"available": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}
