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

/// The gateway's edge cache: a page is answered at the edge once seen,
/// a change shows at once (the writer's own through the gateway, anyone's
/// through restaurants' events), and a dead restaurants service leaves the
/// last copy, marked stale.
#[tokio::test]
async fn restaurant_pages_are_served_at_the_edge_fresh_and_stale_when_restaurants_is_down() {
    let mut p = TestPlatform::spawn().await;
    let owner = p.token("edge-owner@example.com", "restaurant_owner").await;
    let r = create_restaurant(&p, &owner, "Edge Noodles", "Asian").await;
    let id = r["id"].as_str().expect("id").to_owned();
    let item: Value = p
        .api
        .post(
            &format!("/restaurants/{id}/menu"),
            Some(&owner),
            json!({"name": "Ramen", "price_cents": 1200, "stock": 5}),
        )
        .await
        .json()
        .await
        .expect("json");
    let item_id = item["id"].as_str().expect("id").to_owned();
    let page = format!("/restaurants/{id}");

    let first = p.api.get(&page, None).await;
    assert_eq!(first.headers()["x-cache"], "miss");
    // The follow of restaurants' events is up within moments of the start.
    let mut hit = false;
    for _ in 0..50 {
        let again = p.api.get(&page, None).await;
        if again.headers()["x-cache"] == "hit" {
            hit = true;
            let body: Value = again.json().await.expect("json");
            assert_eq!(body["menu"][0]["price_cents"], 1200);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(hit, "a seen page is answered at the edge");

    // The owner's change through the gateway: read at once.
    let r = p
        .api
        .patch(
            &format!("/restaurants/{id}/menu/{item_id}"),
            Some(&owner),
            json!({"price_cents": 1350}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = p.api.get(&page, None).await.json().await.expect("json");
    assert_eq!(
        body["menu"][0]["price_cents"], 1350,
        "the writer reads its write"
    );

    // A change made behind the gateway's back (straight at restaurants, as
    // a reservation by orders is): the event drops the page.
    let restaurants = p.restaurants.as_ref().expect("runs").url.clone();
    let seen: Value = p.api.get(&page, None).await.json().await.expect("json");
    assert_eq!(seen["menu"][0]["stock"], 5);
    let r = reqwest::Client::new()
        .patch(format!("{restaurants}/restaurants/{id}/menu/{item_id}"))
        .bearer_auth(&owner)
        .json(&json!({"stock": 4}))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::OK);
    let started = Instant::now();
    let mut shown = Value::Null;
    while started.elapsed() < Duration::from_secs(5) {
        shown = p.api.get(&page, None).await.json().await.expect("json");
        if shown["menu"][0]["stock"] == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(shown["menu"][0]["stock"], 4, "the event dropped the page");
    println!(
        "a change behind the gateway showed after {:?}",
        started.elapsed()
    );

    // Restaurants gone: the page is still answered, never a 503; once the
    // gateway's follow has noticed (at once: its next poll is refused), as
    // the last copy marked stale.
    p.stop_service("restaurants").await;
    let stale = platform::testing::until_stale(&p.api, &page).await;
    assert_eq!(stale["name"], "Edge Noodles");
    assert_eq!(stale["menu"][0]["stock"], 4);
    // A page never seen is a clear 503.
    let unseen = p.api.get("/restaurants?q=nothing-seen", None).await;
    assert_problem(unseen, StatusCode::SERVICE_UNAVAILABLE).await;
}
