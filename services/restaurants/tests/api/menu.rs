//! Adding menu items and changing them.

use contracts::identity::Role;
use platform::testing::assert_problem;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Caller, TestApp, id_of, invalid_fields};

/// An app with one owner's restaurant.
async fn app_with_restaurant() -> (TestApp, Caller, String) {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let restaurant = app.seed_restaurant(&owner, "Pizza Palace", "Italian").await;
    (app, owner, id_of(&restaurant))
}

fn margherita() -> Value {
    json!({"name": "Margherita", "description": "Tomato, mozzarella, basil", "price_cents": 950})
}

#[tokio::test]
async fn the_owner_adds_an_item_that_is_available_and_unlimited_by_default() {
    let (app, owner, restaurant) = app_with_restaurant().await;

    let r = app
        .add_item(
            Some(&owner.token),
            &restaurant,
            &json!({"name": " Margherita ", "price_cents": 950}),
        )
        .await;

    assert_eq!(r.status(), StatusCode::CREATED);
    let item: Value = r.json().await.expect("json");
    assert!(contracts::MenuItemId::parse(&id_of(&item)).is_ok());
    assert_eq!(item["name"], "Margherita");
    assert_eq!(item["description"], "");
    assert_eq!(item["price_cents"], 950);
    assert_eq!(item["available"], true);
    assert_eq!(item["stock"], Value::Null);
    let detail = app.detail_json(&restaurant).await;
    assert_eq!(detail["menu"], json!([item]));
}

#[tokio::test]
async fn the_menu_lists_every_item_by_name_unavailable_ones_included() {
    let (app, owner, restaurant) = app_with_restaurant().await;
    let tiramisu = app
        .seed_item(
            &owner,
            &restaurant,
            &json!({"name": "Tiramisu", "price_cents": 650, "available": false, "stock": 0}),
        )
        .await;
    let calzone = app
        .seed_item(
            &owner,
            &restaurant,
            &json!({"name": "Calzone", "description": "Folded", "price_cents": 1100, "stock": 12}),
        )
        .await;

    let detail = app.detail_json(&restaurant).await;

    assert_eq!(detail["menu"], json!([calzone, tiramisu]));
    assert_eq!(detail["menu"][1]["available"], false);
    assert_eq!(detail["menu"][1]["stock"], 0);
    assert_eq!(detail["menu"][0]["stock"], 12);
}

#[tokio::test]
async fn only_the_restaurants_owner_adds_items() {
    let (app, _owner, restaurant) = app_with_restaurant().await;

    let r = app.add_item(None, &restaurant, &margherita()).await;
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    let other_owner = app.owner();
    let r = app
        .add_item(Some(&other_owner.token), &restaurant, &margherita())
        .await;
    assert_problem(r, StatusCode::FORBIDDEN).await;
    let customer = app.caller(Role::Customer);
    let r = app
        .add_item(Some(&customer.token), &restaurant, &margherita())
        .await;
    assert_problem(r, StatusCode::FORBIDDEN).await;

    assert_eq!(app.detail_json(&restaurant).await["menu"], json!([]));
}

#[tokio::test]
async fn adding_to_an_unknown_restaurant_is_404() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let unknown = contracts::RestaurantId::new().to_string();
    for id in [unknown.as_str(), "not-a-uuid"] {
        let r = app.add_item(Some(&owner.token), id, &margherita()).await;
        assert_problem(r, StatusCode::NOT_FOUND).await;
    }
}

#[tokio::test]
async fn an_invalid_item_is_422_naming_every_bad_field_and_adds_nothing() {
    let (app, owner, restaurant) = app_with_restaurant().await;

    let r = app
        .add_item(
            Some(&owner.token),
            &restaurant,
            &json!({"name": "", "description": "d".repeat(501), "price_cents": 0, "stock": -1}),
        )
        .await;

    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields = invalid_fields(&problem);
    for field in ["name", "description", "price_cents", "stock"] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} missing from {fields:?}"
        );
    }
    assert_eq!(app.detail_json(&restaurant).await["menu"], json!([]));
}

#[tokio::test]
async fn a_price_must_be_positive_whole_cents_within_the_maximum() {
    let (app, owner, restaurant) = app_with_restaurant().await;
    for price in [json!(-150), json!(0), json!(10_000_001)] {
        let body = json!({"name": "Pizza", "price_cents": price});
        let r = app.add_item(Some(&owner.token), &restaurant, &body).await;
        let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(invalid_fields(&problem), ["price_cents"], "{price}");
    }
    // Not an integer: the JSON does not fit, also a 422 naming the field.
    let body = json!({"name": "Pizza", "price_cents": 9.5});
    let r = app.add_item(Some(&owner.token), &restaurant, &body).await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(invalid_fields(&problem), ["price_cents"]);

    assert_eq!(app.detail_json(&restaurant).await["menu"], json!([]));
    let body = json!({"name": "Caviar", "description": "d".repeat(500), "price_cents": 10_000_000});
    let r = app.add_item(Some(&owner.token), &restaurant, &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_owner_changes_a_price() {
    let (app, owner, restaurant) = app_with_restaurant().await;
    let item = app.seed_item(&owner, &restaurant, &margherita()).await;

    let r = app
        .patch_item(
            Some(&owner.token),
            &restaurant,
            &id_of(&item),
            &json!({"price_cents": 1050}),
        )
        .await;

    assert_eq!(r.status(), StatusCode::OK);
    let patched: Value = r.json().await.expect("json");
    let mut expected = item.clone();
    expected["price_cents"] = json!(1050);
    assert_eq!(patched, expected);
    assert_eq!(
        app.detail_json(&restaurant).await["menu"],
        json!([expected])
    );
}

#[tokio::test]
async fn stock_is_set_made_unlimited_with_null_and_set_again() {
    let (app, owner, restaurant) = app_with_restaurant().await;
    let item = app.seed_item(&owner, &restaurant, &margherita()).await;
    let item_id = id_of(&item);
    let patch = |body: Value| {
        let app = &app;
        let (token, restaurant, item_id) = (&owner.token, &restaurant, &item_id);
        async move {
            let r = app
                .patch_item(Some(token), restaurant, item_id, &body)
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.expect("json")
        }
    };

    assert_eq!(patch(json!({"stock": 5})).await["stock"], 5);
    // Absent leaves the stock alone.
    assert_eq!(patch(json!({"name": "Margherita DOP"})).await["stock"], 5);
    assert_eq!(patch(json!({"stock": null})).await["stock"], Value::Null);
    assert_eq!(patch(json!({"stock": 0})).await["stock"], 0);

    let menu = &app.detail_json(&restaurant).await["menu"];
    assert_eq!(menu[0]["stock"], 0);
    assert_eq!(menu[0]["name"], "Margherita DOP");
    assert_eq!(menu[0]["price_cents"], 950);
}

#[tokio::test]
async fn every_field_may_change_at_once_and_an_empty_patch_changes_nothing() {
    let (app, owner, restaurant) = app_with_restaurant().await;
    let item = app.seed_item(&owner, &restaurant, &margherita()).await;
    let item_id = id_of(&item);

    let r = app
        .patch_item(Some(&owner.token), &restaurant, &item_id, &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json"), item);

    let r = app
        .patch_item(
            Some(&owner.token),
            &restaurant,
            &item_id,
            &json!({"name": "Marinara", "description": "", "price_cents": 800, "available": false, "stock": 3}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let patched: Value = r.json().await.expect("json");
    assert_eq!(
        patched,
        json!({"id": item_id, "name": "Marinara", "description": "", "price_cents": 800, "available": false, "stock": 3})
    );
    assert_eq!(app.detail_json(&restaurant).await["menu"], json!([patched]));
}

#[tokio::test]
async fn an_invalid_patch_is_422_and_changes_nothing() {
    let (app, owner, restaurant) = app_with_restaurant().await;
    let item = app.seed_item(&owner, &restaurant, &margherita()).await;
    let item_id = id_of(&item);

    for (body, field) in [
        (json!({"name": "Renamed", "price_cents": 0}), "price_cents"),
        (json!({"name": "Renamed", "price_cents": -1}), "price_cents"),
        (json!({"name": "Renamed", "stock": -1}), "stock"),
        (json!({"name": "  ", "price_cents": 1200}), "name"),
        (
            json!({"description": "d".repeat(501), "available": false}),
            "description",
        ),
        (json!({"available": "yes"}), "available"),
    ] {
        let r = app
            .patch_item(Some(&owner.token), &restaurant, &item_id, &body)
            .await;
        let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(invalid_fields(&problem), [field], "{body}");
    }

    assert_eq!(app.detail_json(&restaurant).await["menu"], json!([item]));
}

#[tokio::test]
async fn broken_json_in_a_patch_is_400() {
    let (app, owner, restaurant) = app_with_restaurant().await;
    let item = app.seed_item(&owner, &restaurant, &margherita()).await;
    let r = app
        .api
        .request(
            Method::PATCH,
            &format!("/restaurants/{restaurant}/menu/{}", id_of(&item)),
            Some(&owner.token),
        )
        .header("content-type", "application/json")
        .body("{\"price_cents\": 1,")
        .send()
        .await
        .expect("request");
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.detail_json(&restaurant).await["menu"], json!([item]));
}

#[tokio::test]
async fn only_the_restaurants_owner_changes_its_items() {
    let (app, owner, restaurant) = app_with_restaurant().await;
    let item = app.seed_item(&owner, &restaurant, &margherita()).await;
    let item_id = id_of(&item);
    let body = json!({"price_cents": 1});

    let r = app.patch_item(None, &restaurant, &item_id, &body).await;
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    for caller in [app.owner(), app.caller(Role::Customer)] {
        let r = app
            .patch_item(Some(&caller.token), &restaurant, &item_id, &body)
            .await;
        assert_problem(r, StatusCode::FORBIDDEN).await;
    }

    assert_eq!(app.detail_json(&restaurant).await["menu"], json!([item]));
}

#[tokio::test]
async fn patching_an_item_that_is_not_on_this_menu_is_404() {
    let (app, owner, restaurant) = app_with_restaurant().await;
    let other = app.seed_restaurant(&owner, "Sushi Bar", "Japanese").await;
    let other_item = app
        .seed_item(
            &owner,
            &id_of(&other),
            &json!({"name": "Maki", "price_cents": 500}),
        )
        .await;
    let body = json!({"price_cents": 1});

    // The owner owns both, but the item belongs to the other restaurant.
    let r = app
        .patch_item(Some(&owner.token), &restaurant, &id_of(&other_item), &body)
        .await;
    assert_problem(r, StatusCode::NOT_FOUND).await;
    let unknown_item = contracts::MenuItemId::new().to_string();
    for item in [unknown_item.as_str(), "not-a-uuid"] {
        let r = app
            .patch_item(Some(&owner.token), &restaurant, item, &body)
            .await;
        assert_problem(r, StatusCode::NOT_FOUND).await;
    }
    let unknown_restaurant = contracts::RestaurantId::new().to_string();
    for id in [unknown_restaurant.as_str(), "not-a-uuid"] {
        let r = app
            .patch_item(Some(&owner.token), id, &id_of(&other_item), &body)
            .await;
        assert_problem(r, StatusCode::NOT_FOUND).await;
    }

    let menu = &app.detail_json(&id_of(&other)).await["menu"];
    assert_eq!(menu[0]["price_cents"], 500);
}
