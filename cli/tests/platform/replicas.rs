//! Replicas in production mode: two processes each of orders, payments and
//! delivery on one PostgreSQL and NATS, 500 orders placed at once, one
//! replica of orders and one of payments killed (SIGKILL) midway; then the
//! invariants across the services' databases.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use platform::testing::Api;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Platform, free_base_port, production_servers};
use crate::orders::{body, restaurant};

const ORDERS: usize = 500;
const AT_ONCE: usize = 25;

/// Rows of `sql` in database `db` of `server` (one line each, `|`-separated).
fn psql(server: &str, db: &str, sql: &str) -> Vec<String> {
    let out = std::process::Command::new("psql")
        .arg(format!("{server}/{db}"))
        .args(["-Atc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {db}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Places one order, retrying with the same key while the platform cannot
/// answer (a replica killed under the request): the key makes a retry safe.
async fn place_until_answered(api: Api, token: String, key: String, order: Value) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = api
            .request(reqwest::Method::POST, "/orders", Some(&token))
            .header("idempotency-key", &key)
            .json(&order)
            .send()
            .await;
        if let Ok(r) = answer {
            let status = r.status();
            if status == StatusCode::CREATED || status == StatusCode::ACCEPTED {
                let v: Value = r.json().await.expect("json");
                return v["id"].as_str().expect("id").to_owned();
            }
            assert!(
                status.is_server_error(),
                "order {key}: {status} {}",
                r.text().await.unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "order {key} never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn on_postgres_replicas_share_the_work_and_a_killed_one_loses_nothing() {
    let Some((server, nats_url)) = production_servers() else {
        println!(
            "skipped: set {} and {} to run it",
            platform::testing::TEST_POSTGRES_ENV,
            platform::testing::TEST_NATS_ENV
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!("fftest_rep{}", std::process::id());
    let p = Platform::start_with(
        dir.path(),
        free_base_port(),
        &[
            "--sim-speed",
            "1000",
            "--prep-secs",
            "5",
            "--postgres",
            &server,
            "--database-prefix",
            &prefix,
            "--nats",
            &nats_url,
            "--nats-prefix",
            &prefix,
            "--replicas",
            "orders=2,payments=2,delivery=2",
        ],
    );
    let services: Value = p
        .api
        .get("/ops/services", None)
        .await
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = services
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for replica in ["orders", "orders-2", "payments-2", "delivery-2"] {
        assert!(names.contains(&replica), "{replica} in {names:?}");
    }

    let (_, kitchen, dish) = restaurant(&p, "repowner@example.com", 1_000_000).await;
    let customer = p.register("repcustomer@example.com", "customer").await;
    // Couriers waiting at the kitchen besides the three simulated ones:
    // the dispatchers of both delivery replicas compete for them.
    for i in 0..10 {
        let courier = p
            .register(&format!("repcourier{i}@example.com"), "courier")
            .await;
        let r = p
            .api
            .request(reqwest::Method::PUT, "/couriers/me", Some(&courier))
            .json(&json!({"available": true, "location": {"lat": 52.5301, "lng": 13.4101}}))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::OK);
    }

    let started = Instant::now();
    let order = body(&kitchen, &dish, 1, "pm_card_visa");
    let mut ids = Vec::with_capacity(ORDERS);
    let mut killed = false;
    for batch in 0..ORDERS.div_ceil(AT_ONCE) {
        if !killed && batch * AT_ONCE >= ORDERS * 2 / 5 {
            // Midway, with sagas in flight: SIGKILL one replica each of
            // orders and payments while the next batch is being placed.
            for replica in ["orders-2", "payments-2"] {
                let r = p
                    .api
                    .post(
                        &format!("/ops/services/{replica}/stop?mode=kill"),
                        None,
                        json!({}),
                    )
                    .await;
                assert_eq!(r.status(), StatusCode::OK, "kill {replica}");
            }
            killed = true;
        }
        let mut placing = tokio::task::JoinSet::new();
        for i in batch * AT_ONCE..((batch + 1) * AT_ONCE).min(ORDERS) {
            placing.spawn(place_until_answered(
                p.api.clone(),
                customer.clone(),
                format!("rep-{i}"),
                order.clone(),
            ));
        }
        ids.extend(placing.join_all().await);
    }
    let placed_in = started.elapsed();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ORDERS, "one order per key");

    // Every saga finishes on the surviving replicas (a killed replica's
    // leases expire and the sweeper takes its sagas over).
    let db = |service: &str| format!("{prefix}_{service}");
    let decided = {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let undecided = psql(
                &server,
                &db("orders"),
                "SELECT count(*) FROM orders WHERE status IN ('PENDING', 'PAYMENT_PENDING', 'AWAITING_RESTAURANT') OR outstanding > 0",
            );
            if undecided == ["0"] || Instant::now() > deadline {
                break undecided;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    if decided != ["0"] {
        // Say why before failing: where the sagas stand, and what the
        // services logged last.
        let states = psql(
            &server,
            &db("orders"),
            "SELECT status, outstanding, count(*) FROM orders GROUP BY 1, 2 ORDER BY 1, 2",
        );
        for log in ["orders", "payments", "restaurants", "delivery"] {
            let text = std::fs::read_to_string(dir.path().join("logs").join(format!("{log}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            eprintln!(
                "--- {log}.log (last lines, newest first)\n{}",
                tail.join("\n")
            );
        }
        panic!(
            "sagas left unfinished: {decided:?}; by status and outstanding commands: {states:?}"
        );
    }

    // Nothing lost, nothing twice.
    let stored: HashSet<String> = psql(&server, &db("orders"), "SELECT id FROM orders")
        .into_iter()
        .collect();
    assert_eq!(stored.len(), ORDERS, "exactly the placed orders exist");
    assert!(ids.iter().all(|id| stored.contains(id)));
    let statuses = psql(
        &server,
        &db("orders"),
        "SELECT status, count(*) FROM orders GROUP BY status ORDER BY status",
    );
    assert!(
        statuses.iter().all(|s| !s.starts_with("REJECTED")),
        "every order was accepted: {statuses:?}"
    );
    let payments = psql(
        &server,
        &db("payments"),
        "SELECT p.order_id, \
                count(*) FILTER (WHERE l.kind = 'authorize'), \
                count(*) FILTER (WHERE l.kind = 'capture') \
         FROM payments p JOIN ledger_entries l ON l.payment_id = p.id GROUP BY p.order_id",
    );
    assert_eq!(payments.len(), ORDERS, "one payment per order");
    for row in &payments {
        let cols: Vec<&str> = row.split('|').collect();
        assert_eq!(cols[1], "1", "exactly one authorization: {row}");
        assert!(
            cols[2] == "0" || cols[2] == "1",
            "at most one capture: {row}"
        );
    }
    let twice = psql(
        &server,
        &db("delivery"),
        "SELECT order_id FROM deliveries GROUP BY order_id HAVING count(*) > 1",
    );
    assert!(twice.is_empty(), "orders with two deliveries: {twice:?}");
    let deliveries = psql(&server, &db("delivery"), "SELECT count(*) FROM deliveries");
    assert_eq!(deliveries, [ORDERS.to_string()], "one delivery per order");

    // No courier ever held two active deliveries: replay delivery's
    // published history of assignments and hand-overs.
    let mut active: HashMap<String, i32> = HashMap::new();
    let mut assignments = 0;
    for event in psql(
        &server,
        &db("delivery"),
        "SELECT event FROM outbox WHERE position IS NOT NULL ORDER BY position",
    ) {
        let event: Value = serde_json::from_str(&event).expect("event json");
        let courier = event["data"]["courier_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match event["type"].as_str() {
            Some("feastfast.delivery.assigned.v1") => {
                assignments += 1;
                let held = active.entry(courier.clone()).or_default();
                *held += 1;
                assert!(*held <= 1, "courier {courier} held two deliveries");
            }
            Some("feastfast.delivery.delivered.v1") => {
                *active.entry(courier).or_default() -= 1;
            }
            _ => {}
        }
    }
    assert!(assignments >= 13, "every courier got work: {assignments}");
    for service in ["orders", "delivery"] {
        let parked = psql(
            &server,
            &db(service),
            "SELECT count(*) FROM dead_letters WHERE redriven_at IS NULL",
        );
        assert_eq!(parked, ["0"], "{service} parked events");
    }
    println!(
        "{ORDERS} orders placed in {:.1} s with orders-2 and payments-2 killed midway; {statuses:?}; {assignments} assignments",
        placed_in.as_secs_f64()
    );

    assert!(p.stop());
    let nats = platform::events::nats::Nats::connect(&nats_url, &prefix, "test")
        .await
        .expect("connects");
    for (name, _) in nats.streams().await.unwrap_or_default() {
        let _ = nats.delete_stream_named(&name).await;
    }
}
