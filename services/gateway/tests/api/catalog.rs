use std::time::{Duration, Instant};

use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestPlatform;

async fn create_restaurant(p: &TestPlatform, token: &str, name: &str, cuisine: &str) -> Value {
    let r = p
        .api
        .post(
            "/restaurants",
            Some(token),
            json!({"name": name, "cuisine": cuisine, "address": "1 Main St",
                   "location": {"lat": 52.5, "lng": 13.4}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.expect("json")
}

#[tokio::test]
async fn owners_build_menus_and_anyone_browses_them() {
    let p = TestPlatform::spawn().await;
    let owner = p.token("owner@example.com", "restaurant_owner").await;
    let pizza = create_restaurant(&p, &owner, "Pizza Place", "Italian").await;
    create_restaurant(&p, &owner, "Sushi Spot", "Japanese").await;
    let id = pizza["id"].as_str().expect("id");

    let item = p
        .api
        .post(
            &format!("/restaurants/{id}/menu"),
            Some(&owner),
            json!({"name": "Margherita", "description": "Classic", "price_cents": 950}),
        )
        .await;
    assert_eq!(item.status(), StatusCode::CREATED);
    let item: Value = item.json().await.expect("json");
    let item_id = item["id"].as_str().expect("id");

    let patched = p
        .api
        .patch(
            &format!("/restaurants/{id}/menu/{item_id}"),
            Some(&owner),
            json!({"price_cents": 1050, "stock": 3}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);

    let page: Value = p
        .api
        .get("/restaurants?q=pizza", None)
        .await
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Pizza Place"]);
    let page: Value = p
        .api
        .get("/restaurants?cuisine=japanese", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page["items"][0]["name"], "Sushi Spot");

    let detail: Value = p
        .api
        .get(&format!("/restaurants/{id}"), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["menu"][0]["name"], "Margherita");
    assert_eq!(detail["menu"][0]["price_cents"], 1050);
    assert_eq!(detail["menu"][0]["stock"], 3);
}

#[tokio::test]
async fn writes_need_a_token_and_the_right_role() {
    let p = TestPlatform::spawn().await;
    let body =
        json!({"name": "X", "cuisine": "Y", "address": "Z", "location": {"lat": 0.0, "lng": 0.0}});
    assert_problem(
        p.api.post("/restaurants", None, body.clone()).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let customer = p.token("cust@example.com", "customer").await;
    assert_problem(
        p.api.post("/restaurants", Some(&customer), body).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let owner = p.token("own@example.com", "restaurant_owner").await;
    let other = p.token("other@example.com", "restaurant_owner").await;
    let r = create_restaurant(&p, &owner, "Mine", "Thai").await;
    let id = r["id"].as_str().expect("id");
    let item = json!({"name": "Pad thai", "price_cents": 1100});
    assert_problem(
        p.api
            .post(&format!("/restaurants/{id}/menu"), Some(&other), item)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn a_dead_restaurants_service_is_a_fast_503_naming_it() {
    let mut p = TestPlatform::spawn().await;
    p.stop_service("restaurants").await;
    let start = Instant::now();
    let r = p.api.get("/restaurants", None).await;
    let elapsed = start.elapsed();
    let body = assert_problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["service"], "restaurants");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("restaurants")
    );
    // Refused connections fail at once; far below the 2 s upstream timeout.
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    // Identity still works: users is independent of restaurants.
    p.token("still@example.com", "customer").await;
}

#[tokio::test]
async fn unknown_public_paths_are_404_problems() {
    let p = TestPlatform::spawn().await;
    assert_problem(
        p.api.get("/nothing-here", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let r = p.api.delete("/restaurants", None).await;
    assert_problem(r, StatusCode::METHOD_NOT_ALLOWED).await;
}
