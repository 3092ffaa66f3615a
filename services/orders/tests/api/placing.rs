use std::time::Duration;

use contracts::identity::Role;
use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestWorld, order_body, statuses};

#[tokio::test]
async fn an_order_goes_from_placed_to_delivered_and_is_captured_once() {
    let w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let customer = w.token(Role::Customer);

    let r = w
        .place(
            &customer,
            "k-1",
            &order_body(&restaurant, &pizza, &salad, 2, "pm_card_visa"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let order: Value = r.json().await.expect("json");
    let id = order["id"].as_str().expect("id").to_owned();
    assert_eq!(order["status"], "CONFIRMED", "{order:#}");
    assert_eq!(
        statuses(&order),
        [
            "PENDING",
            "PAYMENT_PENDING",
            "AWAITING_RESTAURANT",
            "CONFIRMED"
        ]
    );
    // The snapshot of names and prices, and the money.
    assert_eq!(order["items"][0]["name"], "Pizza");
    assert_eq!(order["items"][0]["unit_price_cents"], 1000);
    assert_eq!(order["subtotal_cents"], 2 * 1000 + 650);
    let fee = order["delivery_fee_cents"].as_i64().expect("fee");
    assert!(fee >= 199, "{fee}");
    assert_eq!(order["total_cents"], 2650 + fee);
    assert_eq!(order["payment"]["status"], "authorized");
    assert_eq!(w.stock(&restaurant, &pizza).await, Some(3));

    w.delivery.deliver(&id).await;
    let delivered = w
        .wait_for(&customer, &id, "DELIVERED", Duration::from_secs(10))
        .await;
    assert_eq!(
        statuses(&delivered),
        [
            "PENDING",
            "PAYMENT_PENDING",
            "AWAITING_RESTAURANT",
            "CONFIRMED",
            "COURIER_ASSIGNED",
            "PICKED_UP",
            "DELIVERED"
        ]
    );
    // The capture happens at pick-up; it may trail the delivered event.
    w.payment_reaches(&id, "captured").await;
    let payment = w.payment(&id).await;
    assert_eq!(payment["status"], "captured", "{payment:#}");
    assert_eq!(payment["captured_cents"], delivered["total_cents"]);
    assert_eq!(
        w.order(&customer, &id).await["payment"]["status"],
        "captured"
    );

    // What orders published, in order (the relay orders the last commit
    // into the feed a moment after it happens).
    let mut feed = Value::Null;
    for _ in 0..100 {
        feed = w
            .api
            .get("/events?after=0&wait=200", Some(&w.service_token()))
            .await
            .json()
            .await
            .expect("json");
        let last = feed["entries"].as_array().and_then(|e| e.last().cloned());
        if last.is_some_and(|e| e["event"]["type"] == "feastfast.order.completed.v1") {
            break;
        }
    }
    let entries = feed["entries"].as_array().expect("entries");
    let (moves, lifecycle): (Vec<&Value>, Vec<&Value>) = entries
        .iter()
        .partition(|e| e["event"]["type"] == "feastfast.order.status_changed.v1");
    let types: Vec<&str> = lifecycle
        .iter()
        .map(|e| e["event"]["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [
            "feastfast.order.placed.v1",
            "feastfast.order.confirmed.v1",
            "feastfast.order.completed.v1"
        ]
    );
    // Every status move is announced, in order, for live views.
    let moved: Vec<&str> = moves
        .iter()
        .map(|e| e["event"]["data"]["status"].as_str().expect("status"))
        .collect();
    assert_eq!(
        moved,
        [
            "PAYMENT_PENDING",
            "AWAITING_RESTAURANT",
            "CONFIRMED",
            "COURIER_ASSIGNED",
            "PICKED_UP",
            "DELIVERED"
        ]
    );
    let confirmed = &lifecycle[1]["event"]["data"];
    assert_eq!(confirmed["dropoff"]["lat"], 52.50);
    assert_eq!(confirmed["pickup"]["lat"], 52.52);
}

#[tokio::test]
async fn the_same_key_and_body_answer_the_same_order() {
    let w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let customer = w.token(Role::Customer);
    let body = order_body(&restaurant, &pizza, &salad, 1, "pm_card_visa");
    let first = w.place(&customer, "same", &body).await;
    let code = first.status();
    let first: Value = first.json().await.expect("json");
    let again = w.place(&customer, "same", &body).await;
    assert_eq!(again.status(), code);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["id"], first["id"]);
    // One order, one reservation, one authorization.
    assert_eq!(w.stock(&restaurant, &pizza).await, Some(4));
    let list: Value = w
        .api
        .get("/orders", Some(&customer))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));

    let other = order_body(&restaurant, &pizza, &salad, 2, "pm_card_visa");
    assert_problem(
        w.place(&customer, "same", &other).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // Keys are per customer: another customer's "same" is a new order.
    let someone = w.token(Role::Customer);
    let theirs: Value = w
        .place(&someone, "same", &body)
        .await
        .json()
        .await
        .expect("json");
    assert_ne!(theirs["id"], first["id"]);
}

#[tokio::test]
async fn a_missing_key_or_bad_input_is_refused_and_changes_nothing() {
    let w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let customer = w.token(Role::Customer);
    let r = w
        .api
        .post(
            "/orders",
            Some(&customer),
            order_body(&restaurant, &pizza, &salad, 1, "pm_card_visa"),
        )
        .await;
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    for (method, field) in [
        ("pm_bitcoin", "payment_method"),
        ("4242 4242 4242 4242", "payment_method"),
    ] {
        let body = assert_problem(
            w.place(
                &customer,
                &format!("k-{method}"),
                &order_body(&restaurant, &pizza, &salad, 1, method),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], field);
        assert!(
            !body.to_string().contains("4242 4242"),
            "the card number is never echoed"
        );
    }
    let zero = order_body(&restaurant, &pizza, &salad, 0, "pm_card_visa");
    assert_problem(
        w.place(&customer, "k-zero", &zero).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let r = w
        .api
        .request(reqwest::Method::POST, "/orders", Some(&customer))
        .header("idempotency-key", "k-json")
        .header("content-type", "application/json")
        .body("{\"restaurant_id\":")
        .send()
        .await
        .expect("request");
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    assert_eq!(w.stock(&restaurant, &pizza).await, Some(5));
    let list: Value = w
        .api
        .get("/orders", Some(&customer))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn only_customers_order_and_each_sees_only_their_own() {
    let w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let body = order_body(&restaurant, &pizza, &salad, 1, "pm_card_visa");
    assert_problem(
        w.place(&w.token(Role::Courier), "k", &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_problem(w.api.get("/orders", None).await, StatusCode::UNAUTHORIZED).await;

    let alice = w.token(Role::Customer);
    let bob = w.token(Role::Customer);
    let order: Value = w
        .place(&alice, "k", &body)
        .await
        .json()
        .await
        .expect("json");
    let id = order["id"].as_str().expect("id");
    assert_problem(
        w.api.get(&format!("/orders/{id}"), Some(&bob)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        w.api
            .post(
                &format!("/orders/{id}/cancel"),
                Some(&bob),
                serde_json::json!({}),
            )
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let admin = w.token(Role::Admin);
    assert_eq!(
        w.api
            .get(&format!("/orders/{id}"), Some(&admin))
            .await
            .status(),
        StatusCode::OK
    );
    let bobs: Value = w
        .api
        .get("/orders", Some(&bob))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(bobs["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn orders_list_newest_first_across_pages() {
    let w = TestWorld::spawn().await;
    let (_, restaurant, pizza, salad) = w.restaurant(true).await;
    let customer = w.token(Role::Customer);
    let mut ids = Vec::new();
    for i in 0..3 {
        let o: Value = w
            .place(
                &customer,
                &format!("k{i}"),
                &order_body(&restaurant, &pizza, &salad, 1, "pm_card_visa"),
            )
            .await
            .json()
            .await
            .expect("json");
        ids.push(o["id"].as_str().expect("id").to_owned());
    }
    ids.reverse();
    let first: Value = w
        .api
        .get("/orders?limit=2", Some(&customer))
        .await
        .json()
        .await
        .expect("json");
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let second: Value = w
        .api
        .get(&format!("/orders?limit=2&cursor={cursor}"), Some(&customer))
        .await
        .json()
        .await
        .expect("json");
    let seen: Vec<&str> = first["items"]
        .as_array()
        .expect("items")
        .iter()
        .chain(second["items"].as_array().expect("items"))
        .map(|o| o["id"].as_str().expect("id"))
        .collect();
    assert_eq!(seen, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(second["next_cursor"].is_null());
    assert_problem(
        w.api.get("/orders?limit=0", Some(&customer)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}
