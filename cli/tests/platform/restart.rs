//! Zero-downtime restarts: `feastfast restart <service>` under a steady
//! load of browsing and ordering, with not one failed request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{Platform, free_base_port};
use crate::orders::{body, id, reaches, restaurant};

/// What the steady load saw.
#[derive(Default)]
struct Tally {
    browsed: AtomicU64,
    ordered: AtomicU64,
    failures: std::sync::Mutex<Vec<String>>,
    orders: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    /// `r` if it answered one of `expected`; else records why not.
    async fn answered(
        &self,
        what: &str,
        r: reqwest::Result<reqwest::Response>,
        expected: &[StatusCode],
    ) -> Option<reqwest::Response> {
        let why = match r {
            Ok(r) if expected.contains(&r.status()) => return Some(r),
            Ok(r) => format!(
                "{what}: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ),
            Err(e) => format!("{what}: {e}"),
        };
        self.failures.lock().expect("lock").push(why);
        None
    }
}

fn restart(port: u16, service: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_feastfast"))
        .args([
            "restart",
            service,
            "--gateway",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .expect("runs feastfast restart");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "restart {service}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The process answering on the service's port (`/readyz` says its pid).
async fn pid_of(port: u16, service: &str) -> u64 {
    let offset = if service == "payments" { 4 } else { 3 };
    let ready: Value = reqwest::get(format!("http://127.0.0.1:{}/readyz", port + offset))
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    ready["pid"].as_u64().expect("a pid")
}

#[tokio::test]
async fn restarting_payments_and_orders_under_load_fails_no_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_base_port();
    let p = Platform::start(dir.path(), port);
    let (_, kitchen, dish) = restaurant(&p, "owner-z@example.com", 100_000).await;
    let customer = p.register("steady-z@example.com", "customer").await;
    // The gateway shows every upstream's breaker from its start, closed.
    let metrics = platform::testing::metrics(&format!("http://127.0.0.1:{port}")).await;
    for upstream in ["users", "restaurants", "orders", "payments", "delivery"] {
        assert!(
            metrics.contains(&format!(
                "client_breaker_state{{upstream=\"{upstream}\"}} 0"
            )),
            "{metrics}"
        );
    }

    let tally = Arc::new(Tally::default());
    let running = Arc::new(AtomicBool::new(true));
    let mut load = Vec::new();
    // Two browsers (a few hundred pages a second) and a customer ordering.
    for _ in 0..2 {
        let (api, tally, running, kitchen) = (
            p.api.clone(),
            tally.clone(),
            running.clone(),
            kitchen.clone(),
        );
        load.push(tokio::spawn(async move {
            while running.load(Ordering::SeqCst) {
                for path in ["/restaurants".to_owned(), format!("/restaurants/{kitchen}")] {
                    let r = api.request(reqwest::Method::GET, &path, None).send().await;
                    let ok = [StatusCode::OK];
                    if tally
                        .answered(&format!("GET {path}"), r, &ok)
                        .await
                        .is_some()
                    {
                        tally.browsed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                // A steady pace, well under the gateway's per-client rate
                // limit (the edge cache answers pages in microseconds).
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    {
        let (api, tally, running, order) = (
            p.api.clone(),
            tally.clone(),
            running.clone(),
            body(&kitchen, &dish, 1, "pm_card_visa"),
        );
        let customer = customer.clone();
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while running.load(Ordering::SeqCst) {
                n += 1;
                let r = api
                    .request(reqwest::Method::POST, "/orders", Some(&customer))
                    .header("idempotency-key", format!("z{n}"))
                    .json(&order)
                    .send()
                    .await;
                let taken = [StatusCode::CREATED, StatusCode::ACCEPTED];
                if let Some(r) = tally.answered("POST /orders", r, &taken).await {
                    let o: Value = r.json().await.expect("json");
                    tally.orders.lock().expect("lock").push(id(&o));
                    tally.ordered.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    for service in ["payments", "orders"] {
        let before = pid_of(port, service).await;
        let said = tokio::task::spawn_blocking({
            let service = service.to_owned();
            move || restart(port, &service)
        })
        .await
        .expect("joins");
        assert!(said.contains("restarted without downtime"), "{said}");
        let after = pid_of(port, service).await;
        assert_ne!(before, after, "{service} runs a new process");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    running.store(false, Ordering::SeqCst);
    for task in load {
        task.await.expect("joins");
    }

    let failures = tally.failures.lock().expect("lock").clone();
    let (browsed, ordered) = (
        tally.browsed.load(Ordering::SeqCst),
        tally.ordered.load(Ordering::SeqCst),
    );
    println!("through two restarts: {browsed} pages browsed, {ordered} orders placed");
    assert!(
        failures.is_empty(),
        "{} failed: {failures:#?}",
        failures.len()
    );
    assert!(
        browsed > 50 && ordered > 10,
        "the load ran: {browsed} / {ordered}"
    );
    // Every order taken goes on to be confirmed.
    let orders = tally.orders.lock().expect("lock").clone();
    for o in &orders {
        reaches(&p, &customer, o, "CONFIRMED", Duration::from_secs(20)).await;
    }
}
