//! The order flow across real processes: every service its own OS process
//! with its own database, driven through the gateway.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Platform, free_base_port, internal_get, production_servers};

const BERLIN_HOME: (f64, f64) = (52.5219, 13.4132);

pub(crate) fn body(restaurant: &str, item: &str, quantity: i64, method: &str) -> Value {
    json!({
        "restaurant_id": restaurant,
        "items": [{"menu_item_id": item, "quantity": quantity}],
        "delivery_address": {"line1": "Alexanderplatz 1", "city": "Berlin",
                             "location": {"lat": BERLIN_HOME.0, "lng": BERLIN_HOME.1}},
        "payment_method": method,
    })
}

pub(crate) async fn place(p: &Platform, token: &str, key: &str, body: &Value) -> reqwest::Response {
    p.api
        .request(reqwest::Method::POST, "/orders", Some(token))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("request")
}

pub(crate) async fn order(p: &Platform, token: &str, id: &str) -> Value {
    p.api
        .get(&format!("/orders/{id}"), Some(token))
        .await
        .json()
        .await
        .expect("json")
}

/// Waits for order `id` to reach `status`; panics with the order after `limit`.
pub(crate) async fn reaches(
    p: &Platform,
    token: &str,
    id: &str,
    status: &str,
    limit: Duration,
) -> Value {
    reached(p, token, id, status, limit)
        .await
        .unwrap_or_else(|why| panic!("{why}"))
}

/// Waits for order `id` to reach `status`; after `limit`, says where it is.
pub(crate) async fn reached(
    p: &Platform,
    token: &str,
    id: &str,
    status: &str,
    limit: Duration,
) -> Result<Value, String> {
    let deadline = Instant::now() + limit;
    loop {
        let o = order(p, token, id).await;
        if o["status"] == status {
            return Ok(o);
        }
        if Instant::now() >= deadline {
            return Err(format!("order never reached {status}: {o:#}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn ops(p: &Platform, path: &str) -> Value {
    let r = p
        .api
        .request(reqwest::Method::POST, path, None)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.expect("json")
}

/// A restaurant of a fresh owner with one stocked dish: (owner, restaurant, dish).
pub(crate) async fn restaurant(p: &Platform, email: &str, stock: i64) -> (String, String, String) {
    let owner = p.register(email, "restaurant_owner").await;
    let r: Value = p
        .api
        .post(
            "/restaurants",
            Some(&owner),
            json!({"name": format!("Test kitchen {email}"), "cuisine": "Test", "address": "1 Test St",
                   "location": {"lat": 52.5300, "lng": 13.4100}}),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = r["id"].as_str().expect("id").to_owned();
    let dish: Value = p
        .api
        .post(
            &format!("/restaurants/{id}/menu"),
            Some(&owner),
            json!({"name": "Dumplings", "price_cents": 900, "stock": stock}),
        )
        .await
        .json()
        .await
        .expect("json");
    (owner, id, dish["id"].as_str().expect("id").to_owned())
}

/// A fresh courier, online near the test kitchens: their token.
pub(crate) async fn online_courier(p: &Platform, email: &str) -> String {
    let courier = p.register(email, "courier").await;
    let r = p
        .api
        .request(reqwest::Method::PUT, "/couriers/me", Some(&courier))
        .json(&json!({"available": true, "location": {"lat": 52.53, "lng": 13.41}}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    courier
}

pub(crate) async fn stock(p: &Platform, restaurant: &str) -> Option<i64> {
    let detail: Value = p
        .api
        .get(&format!("/restaurants/{restaurant}"), None)
        .await
        .json()
        .await
        .expect("json");
    detail["menu"][0]["stock"].as_i64()
}

/// Waits (at most 10 s) until `restaurant`'s page shows `expected` stock
/// for its first dish. The page comes from the gateway's edge cache, which
/// drops it when restaurants' change event arrives: milliseconds after the
/// change, not before the saga's next step.
pub(crate) async fn stock_shows(p: &Platform, restaurant: &str, expected: i64) {
    let shown = crate::harness::eventually(Duration::from_secs(10), || async {
        stock(p, restaurant).await == Some(expected)
    })
    .await;
    assert!(
        shown,
        "the page still shows {:?} in stock, not {expected}",
        stock(p, restaurant).await
    );
}

/// The first dish of the seeded restaurant matching `query`: (restaurant, dish).
async fn demo_dish(p: &Platform, query: &str) -> (String, String) {
    let found: Value = p
        .api
        .get(&format!("/restaurants?q={query}"), None)
        .await
        .json()
        .await
        .expect("json");
    let restaurant = id(&found["items"][0]);
    let detail: Value = p
        .api
        .get(&format!("/restaurants/{restaurant}"), None)
        .await
        .json()
        .await
        .expect("json");
    let dish = id(&detail["menu"][0]);
    (restaurant, dish)
}

pub(crate) fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn with_the_simulators_an_order_rides_to_the_door_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Platform::start_with(dir.path(), free_base_port(), &["--sim-speed", "200"]);
    let customer = p.login("customer@feastfast.test", "feastfast").await;
    let (sakura, roll) = demo_dish(&p, "sakura").await;

    let r = place(
        &p,
        &customer,
        "sim-1",
        &body(&sakura, &roll, 2, "pm_card_visa"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o = id(&r.json::<Value>().await.expect("json"));
    let delivered = reaches(&p, &customer, &o, "DELIVERED", Duration::from_secs(60)).await;
    let statuses: Vec<&str> = delivered["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["status"].as_str().expect("status"))
        .collect();
    assert_eq!(
        statuses,
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
    assert_eq!(delivered["delivery"]["status"], "DELIVERED");
    let captured = crate::harness::eventually(Duration::from_secs(10), || async {
        order(&p, &customer, &o).await["payment"]["status"] == "captured"
    })
    .await;
    assert!(captured, "the payment was not captured: {delivered:#}");
}

#[tokio::test]
async fn a_courier_picks_up_and_delivers_and_a_cancel_after_pick_up_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Platform::start(dir.path(), free_base_port());
    let (_, kitchen, dish) = restaurant(&p, "chef@example.com", 10).await;
    let courier = online_courier(&p, "rider@example.com").await;
    let customer = p.register("eater@example.com", "customer").await;

    let o = id(&place(
        &p,
        &customer,
        "k1",
        &body(&kitchen, &dish, 1, "pm_card_visa"),
    )
    .await
    .json::<Value>()
    .await
    .expect("json"));
    let assigned = reaches(
        &p,
        &customer,
        &o,
        "COURIER_ASSIGNED",
        Duration::from_secs(15),
    )
    .await;
    let delivery = assigned["delivery"]["id"]
        .as_str()
        .expect("delivery id")
        .to_owned();
    let mine: Value = p
        .api
        .get("/couriers/me/deliveries", Some(&courier))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(mine["items"][0]["order_id"], o.as_str());

    // Deliver before pick-up: wrong state.
    let r = p
        .api
        .post(
            &format!("/deliveries/{delivery}/deliver"),
            Some(&courier),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = p
        .api
        .post(
            &format!("/deliveries/{delivery}/pickup"),
            Some(&courier),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    reaches(&p, &customer, &o, "PICKED_UP", Duration::from_secs(10)).await;
    let r = p
        .api
        .post(&format!("/orders/{o}/cancel"), Some(&customer), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = p
        .api
        .post(
            &format!("/deliveries/{delivery}/deliver"),
            Some(&courier),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let done = reaches(&p, &customer, &o, "DELIVERED", Duration::from_secs(10)).await;
    assert_eq!(done["payment"]["status"], "captured");
}

#[tokio::test]
async fn declines_cancels_replays_and_the_last_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Platform::start(dir.path(), free_base_port());
    let (_, kitchen, dish) = restaurant(&p, "owner2@example.com", 3).await;
    let customer = p.register("diner@example.com", "customer").await;

    // Declined: rejected, nothing captured, the stock back.
    let r = place(
        &p,
        &customer,
        "declined",
        &body(&kitchen, &dish, 1, "pm_card_chargeDeclined"),
    )
    .await;
    let declined: Value = r.json().await.expect("json");
    assert_eq!(declined["status"], "REJECTED");
    assert_eq!(declined["payment"]["status"], "declined");
    stock_shows(&p, &kitchen, 3).await;

    // The same key and body: the same order.
    let again: Value = place(
        &p,
        &customer,
        "declined",
        &body(&kitchen, &dish, 1, "pm_card_chargeDeclined"),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(again["id"], declined["id"]);

    // Cancelled before pick-up (no courier is online): voided, stock back.
    let o = id(&place(
        &p,
        &customer,
        "cancel",
        &body(&kitchen, &dish, 2, "pm_card_visa"),
    )
    .await
    .json::<Value>()
    .await
    .expect("json"));
    reaches(&p, &customer, &o, "CONFIRMED", Duration::from_secs(10)).await;
    stock_shows(&p, &kitchen, 1).await;
    let r = p
        .api
        .post(&format!("/orders/{o}/cancel"), Some(&customer), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cancelled = reaches(&p, &customer, &o, "CANCELLED", Duration::from_secs(10)).await;
    assert_eq!(cancelled["payment"]["status"], "voided");
    stock_shows(&p, &kitchen, 3).await;

    // Three left, four customers want all three at once: exactly one wins.
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..4 {
        let api = platform::testing::Api::new(p.api.url("").trim_end_matches("/api/v1"));
        let token = p
            .register(&format!("racer{i}@example.com"), "customer")
            .await;
        let b = body(&kitchen, &dish, 3, "pm_card_visa");
        racing.spawn(async move {
            let r = api
                .request(reqwest::Method::POST, "/api/v1/orders", Some(&token))
                .header("idempotency-key", "race")
                .json(&b)
                .send()
                .await
                .expect("request");
            r.json::<Value>().await.expect("json")["status"]
                .as_str()
                .expect("status")
                .to_owned()
        });
    }
    let outcomes = racing.join_all().await;
    assert_eq!(
        outcomes.iter().filter(|s| *s != "REJECTED").count(),
        1,
        "{outcomes:?}"
    );
    stock_shows(&p, &kitchen, 0).await;
}

#[tokio::test]
async fn with_delivery_down_customers_still_order_and_get_a_courier_when_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Platform::start(dir.path(), free_base_port());
    let (_, kitchen, dish) = restaurant(&p, "owner3@example.com", 10).await;
    online_courier(&p, "rider3@example.com").await;
    let customer = p.register("hungry@example.com", "customer").await;

    ops(&p, "/ops/services/delivery/stop?mode=kill").await;
    // Browse, order and pay all work.
    assert_eq!(
        p.api.get("/restaurants", None).await.status(),
        StatusCode::OK
    );
    let r = place(
        &p,
        &customer,
        "k",
        &body(&kitchen, &dish, 1, "pm_card_visa"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o = id(&r.json::<Value>().await.expect("json"));
    let confirmed = reaches(&p, &customer, &o, "CONFIRMED", Duration::from_secs(10)).await;
    assert_eq!(confirmed["payment"]["status"], "authorized");
    assert_eq!(confirmed["degraded"], json!(["delivery"]));

    ops(&p, "/ops/services/delivery/start").await;
    let started = Instant::now();
    reaches(
        &p,
        &customer,
        &o,
        "COURIER_ASSIGNED",
        Duration::from_secs(20),
    )
    .await;
    println!(
        "courier assigned {:?} after delivery returned",
        started.elapsed()
    );
}

#[tokio::test]
async fn sagas_cut_off_by_a_killed_orders_service_finish_once_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_base_port();
    let p = Platform::start(dir.path(), port);
    let (_, kitchen, dish) = restaurant(&p, "owner4@example.com", 10).await;
    let customer = p.register("patient@example.com", "customer").await;

    ops(&p, "/ops/services/payments/stop?mode=kill").await;
    let mut orders = Vec::new();
    for i in 0..3 {
        let r = place(
            &p,
            &customer,
            &format!("k{i}"),
            &body(&kitchen, &dish, 1, "pm_card_visa"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let o: Value = r.json().await.expect("json");
        assert_eq!(o["status"], "PAYMENT_PENDING");
        orders.push(id(&o));
    }
    ops(&p, "/ops/services/orders/stop?mode=kill").await;
    ops(&p, "/ops/services/payments/start").await;
    ops(&p, "/ops/services/orders/start").await;

    // Internal view: one payment per order, for the order's total.
    for o in &orders {
        let confirmed = reaches(&p, &customer, o, "CONFIRMED", Duration::from_secs(20)).await;
        let (_, payment) = internal_get(port, "payments", &format!("/internal/payments/{o}")).await;
        assert_eq!(payment["status"], "authorized", "{payment:#}");
        assert_eq!(payment["amount_cents"], confirmed["total_cents"]);
    }
    stock_shows(&p, &kitchen, 7).await;
}

/// Production mode, `up --postgres … --nats …`: the same platform on
/// PostgreSQL, one database per service, with its events on NATS
/// JetStream, one stream per producer. Runs when FEASTFAST_TEST_POSTGRES and
/// FEASTFAST_TEST_NATS name servers (CI's production pass); skipped, saying
/// so, otherwise.
#[tokio::test]
async fn on_postgres_and_nats_each_service_has_its_database_and_stream_and_orders_arrive() {
    let Some((server, nats_url)) = production_servers() else {
        println!(
            "skipped: set {} and {} to run it",
            platform::testing::TEST_POSTGRES_ENV,
            platform::testing::TEST_NATS_ENV
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!("fftest_up{}", std::process::id());
    let p = Platform::start_with(
        dir.path(),
        free_base_port(),
        &[
            "--sim-speed",
            "200",
            "--prep-secs",
            "20",
            "--postgres",
            &server,
            "--database-prefix",
            &prefix,
            "--nats",
            &nats_url,
            "--nats-prefix",
            &prefix,
        ],
    );
    let (owner, kitchen, dish) = restaurant(&p, "pgowner@example.com", 5).await;
    let customer = p.register("pgcustomer@example.com", "customer").await;
    let r = place(
        &p,
        &customer,
        "pg",
        &body(&kitchen, &dish, 2, "pm_card_visa"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o = id(&r.json::<Value>().await.expect("json"));
    reaches(&p, &customer, &o, "CONFIRMED", Duration::from_secs(10)).await;
    stock_shows(&p, &kitchen, 3).await;
    // The kitchen is the test's (no simulator cooks for it): mark it ready,
    // then a simulated courier takes it to the door over JetStream events.
    let ready = p
        .api
        .post(
            &format!("/restaurants/{kitchen}/tickets/{o}/ready"),
            Some(&owner),
            json!({}),
        )
        .await;
    assert_eq!(ready.status(), StatusCode::OK);
    let delivered = reaches(&p, &customer, &o, "DELIVERED", Duration::from_secs(60)).await;
    assert_eq!(delivered["payment"]["status"], "captured");

    let nats = platform::events::nats::Nats::connect(&nats_url, &prefix, "test")
        .await
        .expect("connects");
    for producer in ["restaurants", "orders", "payments", "delivery"] {
        let messages = nats.stream_messages(producer).await.expect("stream info");
        assert!(
            messages.is_some_and(|n| n > 0),
            "{producer}'s stream holds its events: {messages:?}"
        );
    }

    let listed = std::process::Command::new("psql")
        .arg(format!("{server}/postgres"))
        .args([
            "-Atc",
            &format!("SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%' ORDER BY 1"),
        ])
        .output()
        .expect("psql runs");
    let names = String::from_utf8_lossy(&listed.stdout);
    let expected: Vec<String> = [
        "delivery",
        "gateway",
        "orders",
        "payments",
        "restaurants",
        "users",
    ]
    .iter()
    .map(|s| format!("{prefix}_{s}"))
    .filter(|n| !n.ends_with("_gateway"))
    .collect();
    assert_eq!(names.lines().collect::<Vec<_>>(), expected, "{names}");
    assert!(p.stop());
    for producer in ["users", "restaurants", "orders", "payments", "delivery"] {
        let _ = nats.delete_stream(producer).await;
    }
}

/// Reads an order's event stream until it ends (or `limit`); the orders
/// it carried, in order.
async fn follow_stream(p: &Platform, token: &str, order: &str, limit: Duration) -> Vec<Value> {
    let mut response = p
        .api
        .request(
            reqwest::Method::GET,
            &format!("/orders/{order}/stream"),
            Some(token),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/event-stream")
    );
    let deadline = Instant::now() + limit;
    let mut text = String::new();
    while Instant::now() < deadline {
        match tokio::time::timeout_at(deadline.into(), response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

#[tokio::test]
async fn the_order_stream_pushes_every_move_and_the_courier_on_the_map() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Platform::start_with(dir.path(), free_base_port(), &["--sim-speed", "100"]);
    let customer = p.login("customer@feastfast.test", "feastfast").await;
    let (curry, dish) = demo_dish(&p, "curry").await;
    let o = id(&place(
        &p,
        &customer,
        "live",
        &body(&curry, &dish, 1, "pm_card_visa"),
    )
    .await
    .json::<Value>()
    .await
    .expect("json"));

    // Others cannot watch it; nobody without a token can.
    let stranger = p.register("nosy@example.com", "customer").await;
    let r = p
        .api
        .get(&format!("/orders/{o}/stream"), Some(&stranger))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        p.api
            .get(&format!("/orders/{o}/stream"), None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let seen = follow_stream(&p, &customer, &o, Duration::from_secs(90)).await;
    let mut statuses: Vec<&str> = seen
        .iter()
        .map(|v| v["status"].as_str().expect("status"))
        .collect();
    statuses.dedup();
    let tail: Vec<&str> = statuses
        .iter()
        .copied()
        .skip_while(|s| *s != "COURIER_ASSIGNED")
        .collect();
    assert_eq!(
        tail,
        ["COURIER_ASSIGNED", "PICKED_UP", "DELIVERED"],
        "{statuses:?}"
    );
    // The courier moved on the map: several positions while on the way.
    let positions = seen
        .iter()
        .filter_map(|v| v["delivery"]["courier_location"].as_object().cloned())
        .collect::<Vec<_>>();
    assert!(positions.len() >= 2, "{positions:?}");
    assert_eq!(seen.last().expect("events")["status"], "DELIVERED");
}
