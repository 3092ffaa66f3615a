//! Opening restaurants, reading one, and an owner's own list.

use contracts::identity::Role;
use platform::auth::SigningKey;
use platform::testing::assert_problem;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of, invalid_fields, names, restaurant_body};

#[tokio::test]
async fn an_owner_opens_a_restaurant_that_accepts_orders_automatically_by_default() {
    let app = TestApp::spawn().await;
    let owner = app.owner();

    let r = app
        .create_restaurant(
            Some(&owner.token),
            &json!({
                "name": "  Pizza Palace ",
                "cuisine": "Italian",
                "address": "1 Main Street",
                "location": {"lat": 52.52, "lng": 13.405},
            }),
        )
        .await;

    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.expect("json");
    assert!(contracts::RestaurantId::parse(&id_of(&body)).is_ok());
    assert_eq!(body["name"], "Pizza Palace");
    assert_eq!(body["cuisine"], "Italian");
    assert_eq!(body["address"], "1 Main Street");
    assert_eq!(body["location"], json!({"lat": 52.52, "lng": 13.405}));
    assert_eq!(body["open"], true);
    assert_eq!(body["auto_accept"], true);
}

#[tokio::test]
async fn an_owner_may_choose_to_confirm_orders_by_hand() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let mut body = restaurant_body("Slow Food", "Italian");
    body["auto_accept"] = json!(false);

    let r = app.create_restaurant(Some(&owner.token), &body).await;

    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.expect("json");
    assert_eq!(created["auto_accept"], false);
    let detail = app.detail_json(&id_of(&created)).await;
    assert_eq!(detail["auto_accept"], false);
}

#[tokio::test]
async fn opening_a_restaurant_needs_a_valid_token() {
    let app = TestApp::spawn().await;
    let body = restaurant_body("Pizza Palace", "Italian");

    let r = app.create_restaurant(None, &body).await;
    let r_www = r.headers().get("www-authenticate").cloned();
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    assert_eq!(r_www.expect("a challenge"), "Bearer");

    let r = app.create_restaurant(Some("not.a.token"), &body).await;
    assert_problem(r, StatusCode::UNAUTHORIZED).await;

    // A well-formed token signed by a key the service does not trust.
    let forged = SigningKey::generate()
        .issue(
            contracts::UserId::new(),
            Role::RestaurantOwner,
            std::time::Duration::from_secs(600),
        )
        .expect("signs");
    let r = app.create_restaurant(Some(&forged), &body).await;
    assert_problem(r, StatusCode::UNAUTHORIZED).await;

    assert!(app.list_names("").await.is_empty());
}

#[tokio::test]
async fn only_restaurant_owners_open_restaurants() {
    let app = TestApp::spawn().await;
    let body = restaurant_body("Pizza Palace", "Italian");
    for role in [Role::Customer, Role::Courier, Role::Admin] {
        let caller = app.caller(role);
        let r = app.create_restaurant(Some(&caller.token), &body).await;
        assert_problem(r, StatusCode::FORBIDDEN).await;
    }
    assert!(app.list_names("").await.is_empty());
}

#[tokio::test]
async fn an_invalid_restaurant_is_422_naming_every_bad_field_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.owner();

    let r = app
        .create_restaurant(
            Some(&owner.token),
            &json!({
                "name": "   ",
                "cuisine": "c".repeat(51),
                "address": "a".repeat(201),
                "location": {"lat": 91.0, "lng": 0.0},
            }),
        )
        .await;

    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields = invalid_fields(&problem);
    for field in ["name", "cuisine", "address", "location"] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} missing from {fields:?}"
        );
    }
    assert!(app.list_names("").await.is_empty());
    let mine: Value = app
        .mine(Some(&owner.token))
        .await
        .json()
        .await
        .expect("json");
    assert!(names(&mine).is_empty());
}

#[tokio::test]
async fn names_and_places_are_checked_at_their_limits() {
    let app = TestApp::spawn().await;
    let owner = app.owner();

    let mut longest = restaurant_body(&"n".repeat(100), &"c".repeat(50));
    longest["address"] = json!("a".repeat(200));
    longest["location"] = json!({"lat": -90.0, "lng": 180.0});
    let r = app.create_restaurant(Some(&owner.token), &longest).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let r = app
        .create_restaurant(Some(&owner.token), &restaurant_body(&"n".repeat(101), "c"))
        .await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["name"]);

    let mut body = restaurant_body("Far East", "Fusion");
    body["location"] = json!({"lat": 0.0, "lng": -180.5});
    let r = app.create_restaurant(Some(&owner.token), &body).await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["location"]);
}

#[tokio::test]
async fn broken_json_is_400_and_a_missing_field_is_422() {
    let app = TestApp::spawn().await;
    let owner = app.owner();

    let r = app
        .api
        .request(Method::POST, "/restaurants", Some(&owner.token))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("request");
    assert_problem(r, StatusCode::BAD_REQUEST).await;

    let r = app
        .create_restaurant(
            Some(&owner.token),
            &json!({"name": "No Place", "cuisine": "Any", "address": "Nowhere"}),
        )
        .await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("location")
    );
    assert!(app.list_names("").await.is_empty());
}

#[tokio::test]
async fn anyone_reads_a_restaurant_with_its_menu() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let created = app.seed_restaurant(&owner, "Pizza Palace", "Italian").await;

    let detail = app.detail_json(&id_of(&created)).await;

    for field in [
        "id",
        "name",
        "cuisine",
        "address",
        "location",
        "open",
        "auto_accept",
    ] {
        assert_eq!(detail[field], created[field], "{field}");
    }
    assert_eq!(detail["menu"], json!([]));
}

#[tokio::test]
async fn an_unknown_or_malformed_restaurant_id_is_404() {
    let app = TestApp::spawn().await;
    let unknown = contracts::RestaurantId::new().to_string();
    for id in [unknown.as_str(), "42", "not-a-uuid"] {
        assert_problem(app.detail(id).await, StatusCode::NOT_FOUND).await;
    }
}

#[tokio::test]
async fn mine_lists_only_the_callers_restaurants_in_name_order() {
    let app = TestApp::spawn().await;
    let ada = app.owner();
    let bob = app.owner();
    app.seed_restaurant(&ada, "Zucchini", "Vegan").await;
    app.seed_restaurant(&bob, "Bob's Burgers", "American").await;
    app.seed_restaurant(&ada, "Apple Pie", "Bakery").await;

    let r = app.mine(Some(&ada.token)).await;

    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.expect("json");
    assert_eq!(names(&page), ["Apple Pie", "Zucchini"]);
    assert_eq!(page["next_cursor"], Value::Null);

    let fresh = app.owner();
    let page: Value = app
        .mine(Some(&fresh.token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page, json!({"items": [], "next_cursor": null}));
}

#[tokio::test]
async fn mine_is_for_restaurant_owners_and_is_not_taken_for_an_id() {
    let app = TestApp::spawn().await;
    // Without a token, /restaurants/mine is a 401, not the 404 that
    // /restaurants/{id} would give for the id "mine".
    assert_problem(app.mine(None).await, StatusCode::UNAUTHORIZED).await;
    let customer = app.caller(Role::Customer);
    assert_problem(app.mine(Some(&customer.token)).await, StatusCode::FORBIDDEN).await;
}
