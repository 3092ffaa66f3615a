//! The degraded-mode table (docs/RESILIENCE.md), one test per row: a
//! service is down → what still works → what the user sees → what happens
//! on its return. Each asserts the business outcome, not only statuses.
//! (Delivery down is `orders::with_delivery_down_customers_still_order_and_get_a_courier_when_it_returns`.)

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Platform, free_base_port, internal_get};
use crate::orders::{body, id, ops, order, place, reaches, restaurant, stock};

/// Asserts `response` is a fast 503 problem naming `service`.
async fn unavailable(response: reqwest::Response, service: &str) -> Value {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let problem: Value = response.json().await.expect("a problem document");
    assert_eq!(problem["service"], service, "{problem:#}");
    problem
}

#[tokio::test]
async fn users_down_existing_tokens_still_work_and_sign_in_is_a_clear_503() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Platform::start(dir.path(), free_base_port());
    let (_, kitchen, dish) = restaurant(&p, "owner-u@example.com", 10).await;
    let customer = p.register("loyal@example.com", "customer").await;
    let first = place(
        &p,
        &customer,
        "u1",
        &body(&kitchen, &dish, 1, "pm_card_visa"),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);

    ops(&p, "/ops/services/users/stop?mode=kill").await;
    // Signing in needs users: a clear, fast 503.
    let started = Instant::now();
    let r = p
        .api
        .post(
            "/auth/login",
            None,
            json!({"email": "loyal@example.com", "password": "correct horse"}),
        )
        .await;
    unavailable(r, "users").await;
    assert!(started.elapsed() < Duration::from_secs(2), "no hang");
    // A signed-in customer carries on: keys are cached everywhere.
    assert_eq!(
        p.api.get("/restaurants", None).await.status(),
        StatusCode::OK
    );
    let r = place(
        &p,
        &customer,
        "u2",
        &body(&kitchen, &dish, 1, "pm_card_visa"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o = r.json::<Value>().await.expect("json");
    assert_eq!(o["status"], "CONFIRMED", "{o:#}");
    let mine = p.api.get("/orders", Some(&customer)).await;
    assert_eq!(mine.status(), StatusCode::OK);
    // A forged token is still refused (no key, no entry).
    let r = p.api.get("/orders", Some("not.a.token")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    ops(&p, "/ops/services/users/start").await;
    p.login("loyal@example.com", "correct horse").await;
}

#[tokio::test]
async fn restaurants_down_pages_seen_are_served_stale_others_are_a_clear_503_and_orders_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Platform::start(dir.path(), free_base_port());
    let (_, kitchen, dish) = restaurant(&p, "owner-r@example.com", 10).await;
    let customer = p.register("browser@example.com", "customer").await;
    // The customer looked at the kitchen's page before the outage.
    let page = format!("/restaurants/{kitchen}");
    assert_eq!(p.api.get(&page, None).await.status(), StatusCode::OK);

    ops(&p, "/ops/services/restaurants/stop?mode=kill").await;
    // That page is still answered, from the gateway's edge cache, marked
    // stale once the gateway has noticed restaurants is gone.
    let stale = platform::testing::until_stale(&p.api, &page).await;
    assert_eq!(stale["menu"][0]["stock"], 10);
    // A page nobody looked at is a clear, fast 503.
    let started = Instant::now();
    let r = p.api.get("/restaurants?cuisine=Test", None).await;
    unavailable(r, "restaurants").await;
    assert!(started.elapsed() < Duration::from_secs(1), "no hang");
    // An order is taken and waits for the kitchen's service.
    let r = place(
        &p,
        &customer,
        "r1",
        &body(&kitchen, &dish, 2, "pm_card_visa"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let o = id(&r.json::<Value>().await.expect("json"));
    assert_eq!(order(&p, &customer, &o).await["status"], "PENDING");

    ops(&p, "/ops/services/restaurants/start").await;
    let confirmed = reaches(&p, &customer, &o, "CONFIRMED", Duration::from_secs(20)).await;
    assert_eq!(confirmed["payment"]["status"], "authorized");
    assert_eq!(stock(&p, &kitchen).await, Some(8), "reserved once");
}

#[tokio::test]
async fn payments_down_orders_wait_and_finish_on_its_return_or_are_rejected_at_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_base_port();
    let p = Platform::start_with_env(
        dir.path(),
        port,
        &["--no-sim"],
        &[("PAYMENT_DEADLINE_MS", "5000")],
    );
    let (_, kitchen, dish) = restaurant(&p, "owner-p@example.com", 10).await;
    let customer = p.register("waiting@example.com", "customer").await;

    ops(&p, "/ops/services/payments/stop?mode=kill").await;
    let r = place(
        &p,
        &customer,
        "p1",
        &body(&kitchen, &dish, 1, "pm_card_visa"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "the order is taken");
    let late = id(&r.json::<Value>().await.expect("json"));
    assert_eq!(
        order(&p, &customer, &late).await["status"],
        "PAYMENT_PENDING"
    );
    assert_eq!(stock(&p, &kitchen).await, Some(9), "held while it waits");

    // Past the deadline: rejected cleanly, the stock back on the shelf.
    let rejected = reaches(&p, &customer, &late, "REJECTED", Duration::from_secs(15)).await;
    assert!(
        rejected["rejection_reason"]
            .as_str()
            .is_some_and(|r| r.contains("in time")),
        "{rejected:#}"
    );
    let mut released = false;
    for _ in 0..50 {
        if stock(&p, &kitchen).await == Some(10) {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(released, "the rejected order's stock was released");

    // Within the deadline: it waits, and finishes when payments returns.
    let r = place(
        &p,
        &customer,
        "p2",
        &body(&kitchen, &dish, 1, "pm_card_visa"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let patient = id(&r.json::<Value>().await.expect("json"));
    ops(&p, "/ops/services/payments/start").await;
    let confirmed = reaches(
        &p,
        &customer,
        &patient,
        "CONFIRMED",
        Duration::from_secs(20),
    )
    .await;
    let (_, payment) =
        internal_get(port, "payments", &format!("/internal/payments/{patient}")).await;
    assert_eq!(payment["status"], "authorized", "{payment:#}");
    assert_eq!(payment["amount_cents"], confirmed["total_cents"]);

    // The rejected order holds no money: its authorization, unanswered at
    // the deadline, is asked again once payments answers (same key, so at
    // most one), and what it authorized is voided.
    let mut payment = Value::Null;
    for _ in 0..150 {
        payment = internal_get(port, "payments", &format!("/internal/payments/{late}"))
            .await
            .1;
        if payment["status"] == "voided" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(payment["status"], "voided", "{payment:#}");
    assert_eq!(
        order(&p, &customer, &late).await["status"],
        "REJECTED",
        "a late authorization does not revive it"
    );
    assert_eq!(
        stock(&p, &kitchen).await,
        Some(9),
        "only the confirmed order holds stock"
    );
}

#[tokio::test]
async fn orders_down_browsing_goes_on_and_its_sagas_resume_on_return() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Platform::start(dir.path(), free_base_port());
    let (_, kitchen, dish) = restaurant(&p, "owner-o@example.com", 10).await;
    let customer = p.register("steady@example.com", "customer").await;
    // An order left mid-saga: payments is down when it is placed.
    ops(&p, "/ops/services/payments/stop?mode=kill").await;
    let r = place(
        &p,
        &customer,
        "o1",
        &body(&kitchen, &dish, 1, "pm_card_visa"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let o = id(&r.json::<Value>().await.expect("json"));

    ops(&p, "/ops/services/orders/stop?mode=kill").await;
    // Browsing does not need orders.
    assert_eq!(
        p.api.get("/restaurants", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        p.api
            .get(&format!("/restaurants/{kitchen}"), None)
            .await
            .status(),
        StatusCode::OK
    );
    // Ordering and the order page do: a clear, fast 503.
    let started = Instant::now();
    let r = p.api.get(&format!("/orders/{o}"), Some(&customer)).await;
    unavailable(r, "orders").await;
    let r = place(
        &p,
        &customer,
        "o2",
        &body(&kitchen, &dish, 1, "pm_card_visa"),
    )
    .await;
    unavailable(r, "orders").await;
    assert!(started.elapsed() < Duration::from_secs(2), "no hang");

    ops(&p, "/ops/services/payments/start").await;
    ops(&p, "/ops/services/orders/start").await;
    let confirmed = reaches(&p, &customer, &o, "CONFIRMED", Duration::from_secs(20)).await;
    assert_eq!(confirmed["payment"]["status"], "authorized");
    // The refused order was not taken: only the first one holds stock.
    assert_eq!(stock(&p, &kitchen).await, Some(9));
}
