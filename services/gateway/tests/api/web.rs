//! The web UI at `/` and the ops view's overview.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestPlatform, gateway_config, gateway_with};
use crate::ops::fake;
use platform::testing::{Api, Running, assert_problem};

#[tokio::test]
async fn the_root_is_the_web_ui_with_revalidating_caching() {
    let p = TestPlatform::spawn().await;
    let root = Api::new(&p.gateway.url);

    let r = root.get("/", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let etag = r.headers()["etag"].clone();
    let html = r.text().await.expect("text");
    assert!(html.contains(r#"src="/web/js/app.js""#), "{html}");

    let again = root
        .request(reqwest::Method::GET, "/", None)
        .header("if-none-match", etag)
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let js = root.get("/web/js/views/order.js", None).await;
    assert_eq!(js.status(), StatusCode::OK);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/javascript")
    );
    assert!(js.text().await.expect("text").contains("/stream"));

    // Only the UI's own files, and the API's unknown paths stay problems.
    assert_problem(
        root.get("/web/../Cargo.toml", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        root.get("/web/secret.txt", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        root.get("/api/v1/no-such-thing", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(root.get("/api/nope", None).await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn with_a_web_dir_the_files_come_from_disk() {
    let p = TestPlatform::spawn().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("index.html"), "<p>edited</p>").expect("writes");
    let users = p.users.as_ref().expect("users runs").url.clone();
    let restaurants = p.restaurants.as_ref().expect("runs").url.clone();
    let mut config = gateway_config(&users, &restaurants, None);
    config.web_dir = Some(dir.path().to_owned());
    let gateway = Running::start(gateway::build(config).await.expect("gateway builds"));
    let root = Api::new(&gateway.url);

    assert_eq!(
        root.get("/", None).await.text().await.expect("text"),
        "<p>edited</p>"
    );
    // A listed file missing from the directory is a logged 500, not a hang.
    assert_problem(
        root.get("/web/style.css", None).await,
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
}

#[tokio::test]
async fn the_overview_reads_real_figures_and_says_what_it_cannot_read() {
    let p = TestPlatform::spawn().await;
    // Some traffic for users to count.
    let _ = p.token("ops@example.com", "customer").await;
    let orders = fake(
        "/internal/orders/status-counts",
        200,
        json!({"CONFIRMED": 2, "DELIVERED": 5}),
    )
    .await;
    // Two replicas of orders: each instance is a row of its own.
    let (api, _gateway) = gateway_with(&p, &[("orders", &format!("{orders},{orders}"))]).await;

    let r = api.get("/ops/overview", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let o: Value = r.json().await.expect("json");
    assert_eq!(o["local_run"], false);
    assert_eq!(o["orders_by_status"]["DELIVERED"], 5, "{o:#}");
    let service = |name: &str| {
        o["services"]
            .as_array()
            .expect("services")
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {o:#}"))
    };
    let users = service("users");
    assert_eq!(users["status"], "up");
    assert!(
        users["metrics"]["requests_total"].as_f64().expect("number") >= 2.0,
        "{users:#}"
    );
    assert!(
        users["metrics"]["latency_count"].as_f64().expect("number") >= 2.0,
        "{users:#}"
    );
    // The services of this test share one process, hence one metrics
    // registry: every breaker in it (the gateway's) is closed.
    assert!(
        users["metrics"]["breakers"]
            .as_array()
            .expect("list")
            .iter()
            .filter(|b| b["name"] == "client_breaker_state")
            .all(|b| b["value"] == 0.0),
        "{users:#}"
    );
    // The stand-in orders service has no /metrics: no figures, not zeros.
    assert_eq!(service("orders")["metrics"], Value::Null, "{o:#}");
    assert_eq!(service("orders-2")["url"], orders.as_str(), "{o:#}");
    assert_eq!(service("orders-2")["metrics"], Value::Null, "{o:#}");
    let edges = o["edges"].as_array().expect("edges");
    assert!(
        edges
            .iter()
            .any(|e| e["from"] == "gateway" && e["to"] == "users" && e["kind"] == "call")
    );
    assert!(
        edges
            .iter()
            .any(|e| e["from"] == "orders" && e["to"] == "gateway" && e["kind"] == "event")
    );
    // Payments is not an upstream of this gateway: no edge to it.
    assert!(!edges.iter().any(|e| e["to"] == "payments"), "{o:#}");

    // Without an orders service, no counts (rather than zeros).
    let o: Value = p
        .api
        .get("/ops/overview", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(o["orders_by_status"], Value::Null);
}
