//! The platform's standard behaviour and durability, as seen on this
//! service.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of};

#[tokio::test]
async fn health_reports_the_service_and_its_database() {
    let app = TestApp::spawn().await;
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["service"], "restaurants");
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn openapi_describes_the_routes() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for (path, method) in [
        ("/restaurants", "get"),
        ("/restaurants", "post"),
        ("/restaurants/mine", "get"),
        ("/restaurants/{id}", "get"),
        ("/restaurants/{id}/menu", "post"),
        ("/restaurants/{id}/menu/{item_id}", "patch"),
    ] {
        assert!(
            doc["paths"][path].get(method).is_some(),
            "{method} {path} missing"
        );
    }
    for schema in [
        "Restaurant",
        "RestaurantDetail",
        "MenuItem",
        "NewRestaurant",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} missing"
        );
    }
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
