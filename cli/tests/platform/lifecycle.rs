use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Platform, eventually, free_base_port};

/// The whole story of the first issue: up with demo data, every role,
/// a restaurant with a menu, browse and search, a killed service answering
/// a fast 503 while the rest works, its return with the data intact, a
/// crash healed by the supervisor, and a restart that keeps everything.
#[tokio::test]
async fn the_platform_runs_survives_a_killed_service_and_keeps_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_base_port();
    let p = Platform::start(dir.path(), port);

    // Demo data was seeded and its logins work.
    let listed: Value = p
        .api
        .get("/restaurants?limit=100", None)
        .await
        .json()
        .await
        .expect("json");
    assert!(
        listed["items"].as_array().expect("items").len() >= 6,
        "{listed}"
    );
    p.login("customer@feastfast.test", "feastfast").await;
    p.login("courier@feastfast.test", "feastfast").await;

    // Every role registers; an owner builds a restaurant and its menu.
    let customer = p.register("cleo@example.com", "customer").await;
    p.register("cruz@example.com", "courier").await;
    let owner = p.register("otto@example.com", "restaurant_owner").await;
    let created = p
        .api
        .post(
            "/restaurants",
            Some(&owner),
            json!({"name": "Zebra Noodle House", "cuisine": "Chinese", "address": "1 Test Way",
                   "location": {"lat": 52.52, "lng": 13.40}, "auto_accept": false}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for (name, price) in [("Dan dan noodles", 1090), ("Wontons", 690)] {
        let r = p
            .api
            .post(
                &format!("/restaurants/{id}/menu"),
                Some(&owner),
                json!({"name": name, "price_cents": price}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = p
        .api
        .post("/restaurants", Some(&customer), json!({"name": "N", "cuisine": "C", "address": "A", "location": {"lat": 0.0, "lng": 0.0}}))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Browse and search.
    let found: Value = p
        .api
        .get("/restaurants?q=zebra", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(found["items"][0]["id"], id.as_str());
    let chinese: Value = p
        .api
        .get("/restaurants?cuisine=Chinese", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(chinese["items"].as_array().map(Vec::len), Some(1));
    let detail: Value = p
        .api
        .get(&format!("/restaurants/{id}"), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["menu"].as_array().map(Vec::len), Some(2));

    // Kill restaurants through the ops API: a fast, clear 503, not a hang
    // (for a page the gateway has not seen; a seen one it answers stale).
    let r = p
        .api
        .post("/ops/services/restaurants/stop?mode=kill", None, json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "stopped");
    let start = Instant::now();
    let r = p.api.get("/restaurants?cuisine=Unseen", None).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "503 took {:?}",
        start.elapsed()
    );
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(
        r.json::<Value>().await.expect("json")["service"],
        "restaurants"
    );
    let ops: Value = p
        .api
        .get("/ops/services", None)
        .await
        .json()
        .await
        .expect("json");
    let status_of = |ops: &Value, name: &str| {
        ops.as_array()
            .expect("list")
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["status"].clone())
    };
    assert_eq!(status_of(&ops, "restaurants"), Some(json!("down")));
    assert_eq!(status_of(&ops, "users"), Some(json!("up")));
    // The rest carries on: identity works while restaurants is down.
    p.login("cleo@example.com", "correct horse").await;
    // A stopped service stays stopped: the supervisor does not revive it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        p.api.get("/restaurants", None).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    // Start it again: the data is intact.
    let r = p
        .api
        .post("/ops/services/restaurants/start", None, json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let started: Value = r.json().await.expect("json");
    assert_eq!(started["status"], "running");
    let detail: Value = p
        .api
        .get(&format!("/restaurants/{id}"), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["name"], "Zebra Noodle House");
    assert_eq!(detail["menu"].as_array().map(Vec::len), Some(2));

    // A crash (SIGKILL from outside) is healed by the supervisor.
    let pid = started["pid"].as_i64().expect("pid");
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let back = eventually(Duration::from_secs(15), || async {
        p.api
            .get(&format!("/restaurants/{id}"), None)
            .await
            .status()
            == StatusCode::OK
    })
    .await;
    assert!(
        back,
        "restaurants did not come back:\n{}",
        p.output.lock().expect("lock").join("\n")
    );

    // A clean stop, and a second `up` on the same data keeps everything
    // without seeding twice.
    assert!(p.stop(), "feastfast up did not exit cleanly on SIGTERM");
    let p = Platform::start(dir.path(), port);
    let detail: Value = p
        .api
        .get(&format!("/restaurants/{id}"), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["menu"].as_array().map(Vec::len), Some(2));
    p.login("otto@example.com", "correct horse").await;
    let all: Value = p
        .api
        .get("/restaurants?q=Trattoria&limit=100", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        all["items"].as_array().map(Vec::len),
        Some(1),
        "seeded twice: {all}"
    );
    assert!(p.stop());
}

#[test]
fn a_bad_setting_is_one_clear_line_and_a_failed_exit() {
    let out = Command::new(env!("CARGO_BIN_EXE_feastfast"))
        .args(["serve", "users"])
        .env("PORT", "eighty")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("PORT=\"eighty\""), "{stderr}");
}

#[tokio::test]
async fn dead_letters_are_listed_and_redriven_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_base_port();
    let p = Platform::start(dir.path(), port);
    let run = |action: &str, service: &str, port_offset: u16| {
        Command::new(env!("CARGO_BIN_EXE_feastfast"))
            .args(["outbox", action, service, "--url"])
            .arg(format!("http://127.0.0.1:{}", port + port_offset))
            .arg("--users-url")
            .arg(format!("http://127.0.0.1:{}", port + 1))
            .arg("--data-dir")
            .arg(dir.path())
            // The secret comes from the run's data directory.
            .env_remove("SERVICE_SECRET")
            .output()
            .expect("runs")
    };
    for (service, offset) in [("orders", 3), ("delivery", 5)] {
        let listed = run("list-dead", service, offset);
        assert!(
            listed.status.success(),
            "{}",
            String::from_utf8_lossy(&listed.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&listed.stdout).trim(),
            format!("{service}: 0 dead letters parked (0 in all)")
        );
        let redriven = run("redrive", service, offset);
        assert!(
            redriven.status.success(),
            "{}",
            String::from_utf8_lossy(&redriven.stderr)
        );
        assert!(
            String::from_utf8_lossy(&redriven.stdout)
                .contains("0 redriven and applied, 0 still failing")
        );
    }
    // The outbox and its consumers are observable: depth, age of the oldest
    // unpublished event, consumer lag and parked dead letters, per service.
    for (service, offset, source) in [("orders", 3, "restaurants"), ("delivery", 5, "orders")] {
        let url = format!("http://127.0.0.1:{}/metrics", port + offset);
        let series = [
            "outbox_unpublished ".to_owned(),
            "outbox_oldest_unpublished_seconds ".to_owned(),
            format!("consumer_lag_events{{source=\"{source}\"}} "),
            format!("events_dead_letters_parked{{source=\"{source}\"}} 0"),
        ];
        let exported = |metrics: &str| {
            series
                .iter()
                .all(|s| metrics.lines().any(|l| l.starts_with(s.as_str())))
        };
        // Soon after the start: a JetStream consumer first creates its
        // durable consumer (seen to take up to one long poll, 10 s, on a
        // busy machine).
        let mut metrics = String::new();
        for _ in 0..200 {
            metrics = reqwest::get(&url)
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            if exported(&metrics) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            exported(&metrics),
            "{service} exports {series:?}:\n{metrics}"
        );
    }
    // A service that consumes nothing has no dead-letter API: a clear error.
    let nothing = run("list-dead", "users", 1);
    assert!(!nothing.status.success());
    assert!(p.stop());
}
