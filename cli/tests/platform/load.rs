//! The CI smoke load: `feastfast load` (the built binary) through a whole
//! platform with its simulators, every operation of the mix, zero errors;
//! on SQLite files, and in production mode (PostgreSQL + NATS) in CI's
//! production pass, where the harness starts every platform that way.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Platform, free_base_port};

#[tokio::test]
async fn a_smoke_load_runs_every_operation_through_the_platform_without_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Platform::start_with(
        &dir.path().join("data"),
        free_base_port(),
        &["--sim-speed", "100"],
    );
    smoke_load(&p, dir.path()).await;
}

/// 15 s at 50/s of every operation: zero errors, every operation ran, the
/// summary printed, and every order placed a new order.
async fn smoke_load(p: &Platform, scratch: &Path) {
    let gateway = p.api.url("").trim_end_matches("/api/v1").to_owned();
    let report_path = scratch.join("load.json");

    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_feastfast"))
        .args([
            "load",
            "--gateway",
            &gateway,
            "--rate",
            "50",
            "--duration",
            "15s",
        ])
        .args([
            "--mix",
            "browse=55,search=10,track=25,order=10",
            "--customers",
            "4",
        ])
        .arg("--json")
        .arg(&report_path)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the load ends by itself")
        .expect("runs feastfast load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "feastfast load failed:\n{stdout}\n{stderr}"
    );

    let report: Value =
        serde_json::from_slice(&std::fs::read(&report_path).expect("the JSON report"))
            .expect("json");
    let step = &report["steps"][0];
    assert_eq!(step["scheduled"], 750, "{step:#}");
    assert_eq!(step["sent"], 750, "{step:#}");
    assert_eq!(step["errors"], 0, "{step:#}");
    for op in ["browse", "search", "track", "order"] {
        let s = &step["operations"][op];
        assert!(
            s["count"].as_u64().is_some_and(|n| n > 0),
            "{op} never ran: {step:#}"
        );
        assert_eq!(s["errors"], 0, "{op}: {step:#}");
        assert!(
            s["latency_ms"]["p99"].as_f64().is_some_and(|p| p > 0.0),
            "{op}: {s:#}"
        );
    }
    // Orders go to auto-accepting restaurants with unlimited items, so
    // none is rejected.
    let outcomes = step["operations"]["order"]["outcomes"]
        .as_object()
        .expect("order outcomes");
    assert!(!outcomes.contains_key("REJECTED"), "{outcomes:?}");
    assert!(
        stdout.lines().any(|l| l.starts_with("all ")),
        "the summary table is printed"
    );

    // Every order operation placed a new order (no idempotency key was
    // reused, which would replay an earlier one): the customers own those
    // plus the one each got before the clock started, to track.
    let placed = step["operations"]["order"]["count"]
        .as_u64()
        .expect("count");
    let mut owned = 0;
    for i in 0..4 {
        let token = p
            .login(&format!("load{i}@load.feastfast.test"), "load-generator")
            .await;
        owned += count_orders(p, &token).await;
    }
    assert_eq!(owned, placed + 4);
}

async fn count_orders(p: &Platform, token: &str) -> u64 {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/orders?limit=100&cursor={c}"),
            None => "/orders?limit=100".to_owned(),
        };
        let page: Value = p
            .api
            .get(&path, Some(token))
            .await
            .json()
            .await
            .expect("json");
        count += page["items"].as_array().expect("items").len() as u64;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return count,
        }
    }
}
