//! Admission and the call path: the per-client rate limit, load shedding,
//! and an upstream's circuit breaker as a client and the ops view see it.

use std::time::{Duration, Instant};

use axum::Router;
use platform::testing::{Api, Running, assert_problem};
use reqwest::StatusCode;

use crate::helpers::{TestPlatform, gateway_config};

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds")
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after_and_probes_are_never_limited() {
    let p = TestPlatform::spawn().await;
    let users = p.users.as_ref().expect("users runs").url.clone();
    let restaurants = p.restaurants.as_ref().expect("runs").url.clone();
    let mut config = gateway_config(&users, &restaurants, None);
    config.admission = gateway::AdmissionConfig {
        max_in_flight: 100,
        rate_per_client: 2,
        burst: 5,
    };
    let gateway = Running::start(gateway::build(config).await.expect("builds"));
    let api = Api::with_prefix(&gateway.url, "/api/v1");

    for _ in 0..5 {
        assert_eq!(api.get("/restaurants", None).await.status(), StatusCode::OK);
    }
    let refused = api.get("/restaurants", None).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        (1..=1).contains(&retry_after(&refused)),
        "2/s: the next in 0.5 s, said as 1 s"
    );
    let problem = assert_problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(problem["type"], "urn:feastfast:problem:rate-limited");

    // Probes and metrics are outside the limit.
    for path in ["/livez", "/readyz", "/metrics"] {
        let r = reqwest::get(format!("{}{path}", gateway.url))
            .await
            .expect("answers");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    // After the wait, the client is served again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(api.get("/restaurants", None).await.status(), StatusCode::OK);
    let metrics = platform::testing::metrics(&gateway.url).await;
    assert!(
        metrics.contains("gateway_rejected_total{reason=\"rate_limited\"} 1"),
        "{metrics}"
    );
}

/// A restaurants service that takes `delay` to list restaurants.
async fn slow_upstream(delay: Duration) -> Running {
    let router = Router::new().route(
        "/restaurants",
        axum::routing::get(move || async move {
            tokio::time::sleep(delay).await;
            axum::Json(serde_json::json!({"items": [], "next_cursor": null}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    Running::start(platform::Server::with_listener(
        listener,
        platform::Service::new("slow", router, utoipa::openapi::OpenApi::default()),
    ))
}

#[tokio::test]
async fn a_saturated_gateway_sheds_at_once_instead_of_queueing() {
    let p = TestPlatform::spawn().await;
    let users = p.users.as_ref().expect("users runs").url.clone();
    let slow = slow_upstream(Duration::from_millis(800)).await;
    let mut config = gateway_config(&users, &slow.url, None);
    config.admission = gateway::AdmissionConfig {
        max_in_flight: 2,
        rate_per_client: 0,
        burst: 0,
    };
    let gateway = Running::start(gateway::build(config).await.expect("builds"));
    let api = Api::with_prefix(&gateway.url, "/api/v1");

    let busy: Vec<_> = (0..2)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.get("/restaurants", None).await.status() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let shed = api.get("/restaurants", None).await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "answered at once"
    );
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after(&shed), 1);
    let problem = assert_problem(shed, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(problem["type"], "urn:feastfast:problem:overloaded");
    // What it took on is served in full.
    for task in busy {
        assert_eq!(task.await.expect("joins"), StatusCode::OK);
    }
    assert_eq!(api.get("/restaurants", None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_dead_upstream_trips_its_breaker_visible_in_metrics_and_the_ops_view() {
    let p = TestPlatform::spawn().await;
    let users = p.users.as_ref().expect("users runs").url.clone();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        format!("http://127.0.0.1:{}", l.local_addr().expect("bound").port())
    };
    let gateway = Running::start(
        gateway::build(gateway_config(&users, &dead, None))
            .await
            .expect("builds"),
    );
    let api = Api::with_prefix(&gateway.url, "/api/v1");
    // Every upstream's breaker is shown from the start, closed.
    let metrics = platform::testing::metrics(&gateway.url).await;
    for upstream in ["users", "restaurants"] {
        assert!(
            metrics.contains(&format!(
                "client_breaker_state{{upstream=\"{upstream}\"}} 0"
            )),
            "{metrics}"
        );
    }

    // Each GET is tried up to three times: two calls make five failures.
    for _ in 0..2 {
        let r = api.get("/restaurants", None).await;
        let problem = assert_problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(problem["service"], "restaurants");
    }
    let started = Instant::now();
    let r = api.get("/restaurants", None).await;
    assert!(started.elapsed() < Duration::from_millis(50), "fails fast");
    let problem = assert_problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(problem["service"], "restaurants");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("calls fail fast"),
        "{problem:#}"
    );
    let metrics = platform::testing::metrics(&gateway.url).await;
    assert!(
        metrics.contains("client_breaker_state{upstream=\"restaurants\"} 2"),
        "{metrics}"
    );
    let overview: serde_json::Value = api
        .get("/ops/overview", None)
        .await
        .json()
        .await
        .expect("json");
    let gateway_row = overview["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["name"] == "gateway")
        .expect("the gateway's row")
        .clone();
    let open = gateway_row["metrics"]["breakers"]
        .as_array()
        .expect("breakers")
        .iter()
        .any(|b| {
            b["name"] == "client_breaker_state"
                && b["labels"]["upstream"] == "restaurants"
                && b["value"] == 2.0
        });
    assert!(open, "{gateway_row:#}");
    // Users is untouched by the restaurants breaker.
    assert_eq!(
        api.post(
            "/auth/login",
            None,
            serde_json::json!({"email": "nobody@example.com", "password": "wrong password"})
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
}
