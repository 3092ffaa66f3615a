//! Crashes at every failpoint of the saga, the relay and the consumer
//! (`platform::failpoint`), each in a platform of its own: the service
//! aborts there, the supervisor restarts it clean, the orders reach their
//! end, and `feastfast verify` finds every invariant kept. And one
//! platform whose data is tampered with, where verify must find it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Platform, database_url, eventually, free_base_port};
use crate::orders::{body, id, online_courier, place, reached, reaches, restaurant};

/// Every point the story below reaches, with the service it crashes.
const POINTS: &[&str] = &[
    "orders:saga.reserve_stock.answered",
    "orders:saga.reserve_stock.recorded",
    "orders:saga.authorize.answered",
    "orders:saga.authorize.recorded",
    "orders:saga.create_ticket.answered",
    "orders:saga.create_ticket.recorded",
    "orders:saga.cancel_ticket.answered",
    "orders:saga.cancel_ticket.recorded",
    "orders:saga.void.answered",
    "orders:saga.void.recorded",
    "orders:saga.release_stock.answered",
    "orders:saga.release_stock.recorded",
    "orders:saga.capture.answered",
    "orders:saga.capture.recorded",
    "orders:relay.published",
    "payments:relay.published",
    "orders:consumer.applied",
    "delivery:consumer.applied",
];

/// Platforms run at once: they mostly wait (on the saga, the restart
/// back-off, verify's re-reads), so a few share two cores well.
const AT_ONCE: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_crash_at_any_failpoint_the_orders_finish_and_verify_finds_nothing_wrong() {
    let every_saga_point = platform::failpoint::KNOWN
        .iter()
        .filter(|(name, _)| name.starts_with("saga."))
        .all(|(name, _)| POINTS.iter().any(|p| p.ends_with(name)));
    assert!(every_saga_point, "a saga failpoint is missing from POINTS");

    let started = Instant::now();
    let mut failed = Vec::new();
    for batch in POINTS.chunks(AT_ONCE) {
        let mut runs = tokio::task::JoinSet::new();
        for point in batch {
            runs.spawn(async move { (point, crash_and_recover(point).await) });
        }
        for (point, outcome) in runs.join_all().await {
            if let Err(why) = outcome {
                failed.push(format!("{point}: {why}"));
            }
        }
    }
    println!("{} failpoints in {:.0?}", POINTS.len(), started.elapsed());
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// One platform with `point` armed: the story, the crash, the recovery,
/// a clean verify. `Err` says what went wrong, with the platform's output.
async fn crash_and_recover(point: &'static str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_base_port();
    let path = dir.path().to_owned();
    let p = tokio::task::spawn_blocking(move || {
        Platform::start_with_env(
            &path,
            port,
            &["--no-sim"],
            &[(platform::failpoint::ENV, point)],
        )
    })
    .await
    .map_err(|e| format!("the platform did not start: {e}"))?;
    let started = Instant::now();
    let result = async {
        let (a, b) = story(&p).await?;
        let service = point.split(':').next().expect("a service");
        let crashed = format!("{service}: exited unexpectedly");
        let saw_crash = eventually(Duration::from_secs(5), || async {
            p.output
                .lock()
                .expect("lock")
                .iter()
                .any(|l| l.starts_with(&crashed))
        })
        .await;
        if !saw_crash {
            return Err(format!("{service} never crashed"));
        }
        let name = point.split(':').nth(1).expect("a point");
        let log = std::fs::read_to_string(dir.path().join(format!("logs/{service}.log")))
            .unwrap_or_default();
        if !log.contains(&format!("failpoint {name} hit")) {
            return Err(format!("{service} crashed, but not at {name}"));
        }
        let (ok, report) = verify(port, &["--wait", "30s"]).await;
        if !ok || !report.contains("0 violations") {
            return Err(format!("verify failed:\n{report}"));
        }
        println!(
            "{point}: crashed, recovered (orders {a} cancelled, {b} delivered), verified in {:.1?}",
            started.elapsed()
        );
        Ok(())
    }
    .await;
    result.map_err(|why| {
        format!(
            "{why}\n--- feastfast up said:\n{}",
            p.output.lock().expect("lock").join("\n")
        )
    })
}

/// Runs every saga step once: order A is placed (reserve, authorize,
/// ticket), gets a courier and is cancelled (cancel ticket, void, release);
/// order B is placed, picked up (capture) and delivered. Every call is
/// retried while a crashed service restarts. Answers (A, B).
async fn story(p: &Platform) -> Result<(String, String), String> {
    let (_, kitchen, dish) = restaurant(p, "chef@example.com", 10).await;
    let courier = online_courier(p, "rider@example.com").await;
    let customer = p.register("eater@example.com", "customer").await;
    let limit = Duration::from_secs(30);

    let a = placed(p, &customer, "a", &body(&kitchen, &dish, 1, "pm_card_visa")).await?;
    reached(p, &customer, &a, "COURIER_ASSIGNED", limit).await?;
    retried(p, &customer, &format!("/orders/{a}/cancel")).await?;
    reached(p, &customer, &a, "CANCELLED", limit).await?;

    let b = placed(p, &customer, "b", &body(&kitchen, &dish, 1, "pm_card_visa")).await?;
    reached(p, &customer, &b, "COURIER_ASSIGNED", limit).await?;
    // Delivery may be restarting (its own failpoint): ask until it answers.
    let deadline = Instant::now() + limit;
    let delivery = loop {
        let mine: Value = p
            .api
            .get("/couriers/me/deliveries", Some(&courier))
            .await
            .json()
            .await
            .unwrap_or(Value::Null);
        let found = mine["items"]
            .as_array()
            .and_then(|items| items.iter().find(|d| d["order_id"] == b.as_str()))
            .map(id);
        match found {
            Some(delivery) => break delivery,
            None if Instant::now() > deadline => {
                return Err(format!("the courier never saw the delivery of {b}: {mine}"));
            }
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    retried(p, &courier, &format!("/deliveries/{delivery}/pickup")).await?;
    retried(p, &courier, &format!("/deliveries/{delivery}/deliver")).await?;
    let done = reached(p, &customer, &b, "DELIVERED", limit).await?;
    let captured = eventually(limit, || async {
        let o: Value = p
            .api
            .get(&format!("/orders/{b}"), Some(&customer))
            .await
            .json()
            .await
            .unwrap_or(Value::Null);
        o["payment"]["status"] == "captured"
    })
    .await;
    if !captured {
        return Err(format!("{b} was delivered but never captured: {done:#}"));
    }
    Ok((a, b))
}

/// Places an order under `key` until orders answers it (a crash midway
/// answers 5xx; the same key then finds the same order).
async fn placed(p: &Platform, token: &str, key: &str, order: &Value) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = place(p, token, key, order).await;
        let status = r.status();
        if status == StatusCode::CREATED || status == StatusCode::ACCEPTED {
            return Ok(id(&r.json::<Value>().await.map_err(|e| e.to_string())?));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "placing {key}: {status} {}",
                r.text().await.unwrap_or_default()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A bodiless `POST path` repeated until it answers 200 (a cancel is
/// idempotent; a pick-up or delivery goes to delivery, which answers).
async fn retried(p: &Platform, token: &str, path: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = p.api.post(path, Some(token), json!({})).await;
        if r.status() == StatusCode::OK {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{path}: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `feastfast verify` against the platform on `port`: (success, output).
pub(crate) async fn verify(port: u16, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_feastfast"))
        .args(["verify", "--gateway", &format!("http://127.0.0.1:{port}")])
        .args(args)
        .output()
        .await
        .expect("feastfast verify runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Verify can fail: a second authorization and a capture before any
/// pick-up, written straight into payments' database, are both found.
#[tokio::test]
async fn verify_finds_a_capture_and_an_authorization_written_behind_the_sagas_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_base_port();
    let p = Platform::start(dir.path(), port);
    let (_, kitchen, dish) = restaurant(&p, "chef@example.com", 10).await;
    let customer = p.register("eater@example.com", "customer").await;
    let o = placed(
        &p,
        &customer,
        "k",
        &body(&kitchen, &dish, 1, "pm_card_visa"),
    )
    .await
    .expect("placed");
    reaches(&p, &customer, &o, "CONFIRMED", Duration::from_secs(10)).await;
    let (ok, report) = verify(port, &["--wait", "10s"]).await;
    assert!(ok && report.contains("0 violations"), "{report}");

    let db = platform::db::connect(&database_url(dir.path(), "payments"), payments::MIGRATIONS)
        .await
        .expect("connects to payments' database");
    for kind in ["capture", "authorize"] {
        sqlx::query(
            "INSERT INTO ledger_entries (id, payment_id, kind, amount_cents, idempotency_key, at) \
             SELECT $1, id, $2, authorized_cents, $3, $4 FROM payments WHERE order_id = $5",
        )
        .bind(format!("tampered-{kind}"))
        .bind(kind)
        .bind(format!("tampered:{kind}"))
        .bind("2026-01-01T00:00:00.000Z")
        .bind(&o)
        .execute(&db)
        .await
        .expect("tampers");
    }

    let (ok, report) = verify(port, &[]).await;
    assert!(!ok, "verify passed tampered data:\n{report}");
    let line = |rule: &str| {
        report
            .lines()
            .any(|l| l.starts_with(&format!("order {o}: {rule}")))
    };
    assert!(line("capture without pick-up"), "{report}");
    assert!(line("authorized twice"), "{report}");
    assert!(report.contains("2 violations"), "{report}");
}
