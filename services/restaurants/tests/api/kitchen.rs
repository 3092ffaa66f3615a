//! Reservations and tickets: what the order saga and the owners rely on.

use std::time::Duration;

use contracts::identity::Role;
use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Caller, TestApp, id_of};

/// A restaurant with a dish in stock 3 and a dish without a stock limit.
struct Kitchen {
    owner: Caller,
    restaurant: String,
    stocked: String,
    unlimited: String,
}

async fn kitchen(app: &TestApp, auto_accept: bool) -> Kitchen {
    let owner = app.owner();
    let r = app
        .create_restaurant(
            Some(&owner.token),
            &json!({"name": "Kitchen", "cuisine": "Test", "address": "1 St",
                    "location": {"lat": 52.5, "lng": 13.4}, "auto_accept": auto_accept}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let restaurant = id_of(&r.json::<Value>().await.expect("json"));
    let stocked = id_of(
        &app.seed_item(
            &owner,
            &restaurant,
            &json!({"name": "Truffle pasta", "price_cents": 1800, "stock": 3}),
        )
        .await,
    );
    let unlimited = id_of(
        &app.seed_item(
            &owner,
            &restaurant,
            &json!({"name": "Bread", "price_cents": 300}),
        )
        .await,
    );
    Kitchen {
        owner,
        restaurant,
        stocked,
        unlimited,
    }
}

fn order() -> String {
    contracts::OrderId::new().to_string()
}

async fn reserve(app: &TestApp, order: &str, body: &Value) -> reqwest::Response {
    app.api
        .post(
            &format!("/internal/orders/{order}/reservation"),
            Some(&app.service_token()),
            body.clone(),
        )
        .await
}

fn lines(k: &Kitchen, stocked: i64, unlimited: i64) -> Value {
    json!({"restaurant_id": k.restaurant, "items": [
        {"menu_item_id": k.stocked, "quantity": stocked},
        {"menu_item_id": k.unlimited, "quantity": unlimited},
    ]})
}

async fn stock_of(app: &TestApp, k: &Kitchen) -> Option<i64> {
    let detail = app.detail_json(&k.restaurant).await;
    detail["menu"]
        .as_array()
        .expect("menu")
        .iter()
        .find(|i| i["id"] == k.stocked.as_str())
        .and_then(|i| i["stock"].as_i64())
}

async fn post_internal(app: &TestApp, path: &str) -> reqwest::Response {
    app.api
        .post(path, Some(&app.service_token()), json!({}))
        .await
}

#[tokio::test]
async fn a_reservation_prices_the_lines_and_holds_the_stock() {
    let app = TestApp::spawn().await;
    let k = kitchen(&app, true).await;
    let o = order();
    let r = reserve(&app, &o, &lines(&k, 2, 3)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let res: Value = r.json().await.expect("json");
    assert_eq!(res["subtotal_cents"], 2 * 1800 + 3 * 300);
    assert_eq!(res["restaurant_name"], "Kitchen");
    assert_eq!(res["pickup"]["lat"], 52.5);
    assert_eq!(res["items"][0]["name"], "Truffle pasta");
    assert_eq!(res["items"][0]["unit_price_cents"], 1800);
    assert_eq!(res["status"], "reserved");
    assert_eq!(stock_of(&app, &k).await, Some(1));

    // The same request again is the same answer, and reserves nothing more.
    let again: Value = reserve(&app, &o, &lines(&k, 2, 3))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again, res);
    assert_eq!(stock_of(&app, &k).await, Some(1));
    // Another request under the same order is a conflict.
    assert_problem(
        reserve(&app, &o, &lines(&k, 1, 1)).await,
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn too_little_stock_or_an_unavailable_dish_reserves_nothing() {
    let app = TestApp::spawn().await;
    let k = kitchen(&app, true).await;
    let body = assert_problem(
        reserve(&app, &order(), &lines(&k, 4, 1)).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("only 3 left"),
        "{body}"
    );
    assert_eq!(stock_of(&app, &k).await, Some(3));

    let r = app
        .patch_item(
            Some(&k.owner.token),
            &k.restaurant,
            &k.unlimited,
            &json!({"available": false}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = assert_problem(
        reserve(&app, &order(), &lines(&k, 1, 1)).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("Bread is not available"),
        "{body}"
    );
    assert_eq!(stock_of(&app, &k).await, Some(3));

    let elsewhere = json!({"restaurant_id": contracts::RestaurantId::new(), "items": [{"menu_item_id": k.stocked, "quantity": 1}]});
    assert_problem(
        reserve(&app, &order(), &elsewhere).await,
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn malformed_reservations_are_422() {
    let app = TestApp::spawn().await;
    let k = kitchen(&app, true).await;
    for body in [
        json!({"restaurant_id": k.restaurant, "items": []}),
        lines(&k, 0, 1),
        lines(&k, 100, 1),
        json!({"restaurant_id": k.restaurant, "items": [
            {"menu_item_id": k.stocked, "quantity": 1}, {"menu_item_id": k.stocked, "quantity": 1}]}),
    ] {
        assert_problem(
            reserve(&app, &order(), &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    assert_eq!(stock_of(&app, &k).await, Some(3));
}

#[tokio::test]
async fn of_many_orders_for_the_last_item_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let k = kitchen(&app, true).await;
    let r = app
        .patch_item(
            Some(&k.owner.token),
            &k.restaurant,
            &k.stocked,
            &json!({"stock": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json!({"restaurant_id": k.restaurant, "items": [{"menu_item_id": k.stocked, "quantity": 1}]});
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (api, token, body) = (
            platform::testing::Api::new(&app.running.url),
            app.service_token(),
            body.clone(),
        );
        racing.spawn(async move {
            api.post(
                &format!("/internal/orders/{}/reservation", order()),
                Some(&token),
                body,
            )
            .await
            .status()
        });
    }
    let statuses = racing.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        9,
        "{statuses:?}"
    );
    assert_eq!(stock_of(&app, &k).await, Some(0));
}

#[tokio::test]
async fn concurrent_identical_reservations_hold_the_stock_once() {
    let app = TestApp::spawn().await;
    let k = kitchen(&app, true).await;
    let o = order();
    let body = lines(&k, 1, 1);
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (api, token, o, body) = (
            platform::testing::Api::new(&app.running.url),
            app.service_token(),
            o.clone(),
            body.clone(),
        );
        pending.spawn(async move {
            api.post(
                &format!("/internal/orders/{o}/reservation"),
                Some(&token),
                body,
            )
            .await
            .status()
        });
    }
    for status in pending.join_all().await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(stock_of(&app, &k).await, Some(2));
}

#[tokio::test]
async fn releasing_gives_the_stock_back_once() {
    let app = TestApp::spawn().await;
    let k = kitchen(&app, true).await;
    let o = order();
    assert_eq!(
        reserve(&app, &o, &lines(&k, 3, 1)).await.status(),
        StatusCode::OK
    );
    assert_eq!(stock_of(&app, &k).await, Some(0));
    for _ in 0..2 {
        let r = post_internal(&app, &format!("/internal/orders/{o}/reservation/release")).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(stock_of(&app, &k).await, Some(3));
    // An order that never reserved: nothing to give back, and no error.
    let r = post_internal(
        &app,
        &format!("/internal/orders/{}/reservation/release", order()),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // A released order gets no ticket.
    let r = post_internal(&app, &format!("/internal/orders/{o}/ticket")).await;
    assert_problem(r, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn internal_endpoints_need_a_service_token() {
    let app = TestApp::spawn().await;
    let k = kitchen(&app, true).await;
    let path = format!("/internal/orders/{}/reservation", order());
    let r = app.api.post(&path, None, lines(&k, 1, 1)).await;
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    let customer = app.caller(Role::Customer);
    let r = app
        .api
        .post(&path, Some(&customer.token), lines(&k, 1, 1))
        .await;
    assert_problem(r, StatusCode::FORBIDDEN).await;
    assert_eq!(stock_of(&app, &k).await, Some(3));
}

/// Every change a restaurant's page shows is announced with it (the
/// gateway's edge cache drops the page on it); a change that shows
/// nothing (an unlimited dish reserved) is not.
#[tokio::test]
async fn what_a_page_shows_changing_is_announced_and_nothing_else() {
    let app = TestApp::spawn().await;
    let k = kitchen(&app, true).await;
    let changed = "feastfast.restaurant.changed.v1";
    let announced = |n| {
        let app = &app;
        async move { feed_of(app, changed, n).await }
    };
    // Created, and two dishes added.
    assert_eq!(announced(3).await.len(), 3);

    // Only the unlimited dish: nothing shown moved.
    let o1 = order();
    let r = reserve(
        &app,
        &o1,
        &json!({"restaurant_id": k.restaurant,
        "items": [{"menu_item_id": k.unlimited, "quantity": 2}]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    post_internal(&app, &format!("/internal/orders/{o1}/reservation/release")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(announced(3).await.len(), 3);

    // The counted dish: reserved, then released (once, however often asked).
    let o2 = order();
    assert_eq!(
        reserve(
            &app,
            &o2,
            &json!({"restaurant_id": k.restaurant,
                "items": [{"menu_item_id": k.stocked, "quantity": 1}]})
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(announced(4).await.len(), 4);
    for _ in 0..2 {
        post_internal(&app, &format!("/internal/orders/{o2}/reservation/release")).await;
    }
    assert_eq!(announced(5).await.len(), 5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(announced(6).await.len(), 5);

    // The owner changes a dish.
    let r = app
        .api
        .patch(
            &format!("/restaurants/{}/menu/{}", k.restaurant, k.unlimited),
            Some(&k.owner.token),
            json!({"price_cents": 350}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let all = announced(6).await;
    assert_eq!(all.len(), 6);
    assert!(
        all.iter().all(|(_, subject)| *subject == k.restaurant),
        "{all:?}"
    );
}

/// The (type, subject) of every ticket event on the feed, once it holds
/// `count` (the relay orders commits into the feed a moment after they
/// happen), or whatever it holds after a few seconds.
async fn feed_types(app: &TestApp, count: usize) -> Vec<(String, String)> {
    feed_of(app, "feastfast.ticket.", count).await
}

/// [`feed_types`] for the events whose type starts with `prefix`.
async fn feed_of(app: &TestApp, prefix: &str, count: usize) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let page: Value = app
            .api
            .get("/events?after=0&wait=500", Some(&app.service_token()))
            .await
            .json()
            .await
            .expect("json");
        let seen: Vec<(String, String)> = page["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                (
                    e["event"]["type"].as_str().expect("type").to_owned(),
                    e["event"]["subject"].as_str().expect("subject").to_owned(),
                )
            })
            .filter(|(kind, _)| kind.starts_with(prefix))
            .collect();
        if seen.len() >= count || std::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_auto_accepting_kitchen_accepts_at_once_and_says_so() {
    let app = TestApp::spawn().await;
    let k = kitchen(&app, true).await;
    let o = order();
    reserve(&app, &o, &lines(&k, 1, 1)).await;
    let r = post_internal(&app, &format!("/internal/orders/{o}/ticket")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let ticket: Value = r.json().await.expect("json");
    assert_eq!(ticket["status"], "ACCEPTED");
    assert_eq!(ticket["items"][0]["name"], "Truffle pasta");
    // A repeat answers the same ticket and announces nothing new.
    let again: Value = post_internal(&app, &format!("/internal/orders/{o}/ticket"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["status"], "ACCEPTED");
    assert_eq!(
        feed_types(&app, 1).await,
        [("feastfast.ticket.accepted.v1".to_owned(), o.clone())]
    );
}

#[tokio::test]
async fn an_owner_works_a_ticket_from_pending_to_ready() {
    let app = TestApp::spawn().await;
    let k = kitchen(&app, false).await;
    let o = order();
    reserve(&app, &o, &lines(&k, 1, 1)).await;
    let ticket: Value = post_internal(&app, &format!("/internal/orders/{o}/ticket"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ticket["status"], "PENDING");
    assert!(
        ticket["accept_by"].as_str().expect("accept_by")
            > ticket["created_at"].as_str().expect("created_at")
    );

    let base = format!("/restaurants/{}/tickets", k.restaurant);
    let pending: Value = app
        .api
        .get(&format!("{base}?status=pending"), Some(&k.owner.token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(pending["items"][0]["order_id"], o.as_str());

    // Not before it is accepted; not by another owner.
    assert_problem(
        app.api
            .post(
                &format!("{base}/{o}/ready"),
                Some(&k.owner.token),
                json!({}),
            )
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    let other = app.owner();
    assert_problem(
        app.api
            .post(&format!("{base}/{o}/accept"), Some(&other.token), json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_problem(
        app.api.get(&base, Some(&other.token)).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let r = app
        .api
        .post(
            &format!("{base}/{o}/accept"),
            Some(&k.owner.token),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_problem(
        app.api
            .post(
                &format!("{base}/{o}/accept"),
                Some(&k.owner.token),
                json!({}),
            )
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    let r = app
        .api
        .post(
            &format!("{base}/{o}/ready"),
            Some(&k.owner.token),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "READY");
    assert_eq!(
        feed_types(&app, 2).await,
        [
            ("feastfast.ticket.accepted.v1".to_owned(), o.clone()),
            ("feastfast.ticket.ready.v1".to_owned(), o.clone()),
        ]
    );
}

#[tokio::test]
async fn an_owner_rejects_with_a_reason_and_the_saga_can_cancel() {
    let app = TestApp::spawn().await;
    let k = kitchen(&app, false).await;
    let (o1, o2) = (order(), order());
    for o in [&o1, &o2] {
        reserve(&app, o, &lines(&k, 1, 1)).await;
        post_internal(&app, &format!("/internal/orders/{o}/ticket")).await;
    }
    let base = format!("/restaurants/{}/tickets", k.restaurant);
    let r = app
        .api
        .post(
            &format!("{base}/{o1}/reject"),
            Some(&k.owner.token),
            json!({"reason": "out of truffles"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let rejected: Value = r.json().await.expect("json");
    assert_eq!(rejected["status"], "REJECTED");
    assert_eq!(rejected["rejection_reason"], "out of truffles");

    for _ in 0..2 {
        let r = post_internal(&app, &format!("/internal/orders/{o2}/ticket/cancel")).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let cancelled: Value = app
        .api
        .get(&format!("{base}?status=CANCELLED"), Some(&k.owner.token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(cancelled["items"][0]["order_id"], o2.as_str());
    assert_problem(
        app.api
            .post(
                &format!("{base}/{o2}/accept"),
                Some(&k.owner.token),
                json!({}),
            )
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    let types = feed_types(&app, 1).await;
    assert_eq!(
        types,
        [("feastfast.ticket.rejected.v1".to_owned(), o1.clone())]
    );
    assert_problem(
        app.api
            .get(&format!("{base}?status=COOKING"), Some(&k.owner.token))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[tokio::test]
async fn after_the_window_an_owner_can_no_longer_accept() {
    let app = TestApp::spawn_with(
        tempfile::tempdir().expect("tempdir"),
        platform::auth::SigningKey::generate(),
        Duration::from_secs(1),
    )
    .await;
    let k = kitchen(&app, false).await;
    let o = order();
    reserve(&app, &o, &lines(&k, 1, 1)).await;
    post_internal(&app, &format!("/internal/orders/{o}/ticket")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = app
        .api
        .post(
            &format!("/restaurants/{}/tickets/{o}/accept", k.restaurant),
            Some(&k.owner.token),
            json!({}),
        )
        .await;
    let body = assert_problem(r, StatusCode::CONFLICT).await;
    assert!(
        body["detail"].as_str().expect("detail").contains("window"),
        "{body}"
    );
}
