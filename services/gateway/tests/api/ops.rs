use axum::Router;
use axum::routing::post;
use platform::testing::assert_problem;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestPlatform, gateway_with};

/// A bodiless `POST`, as the ops API's process control is called.
async fn ops_post(p: &TestPlatform, path: &str) -> reqwest::Response {
    p.api
        .request(Method::POST, path, None)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn ops_reports_each_service_and_sees_one_go_down() {
    let mut p = TestPlatform::spawn().await;
    let list: Value = p
        .api
        .get("/ops/services", None)
        .await
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["gateway", "users", "restaurants"]);
    for s in list.as_array().expect("list") {
        assert_eq!(s["status"], "up", "{s}");
        assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
        assert!(s["latency_ms"].is_number());
    }

    p.stop_service("restaurants").await;
    let list: Value = p
        .api
        .get("/ops/services", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list[2]["name"], "restaurants");
    assert_eq!(list[2]["status"], "down");
    assert_eq!(list[1]["status"], "up");
}

#[tokio::test]
async fn process_control_is_absent_outside_a_local_run() {
    let p = TestPlatform::spawn().await;
    let r = ops_post(&p, "/ops/services/restaurants/stop?mode=kill").await;
    assert_problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn process_control_is_forwarded_to_the_supervisor() {
    // A stand-in for `feastfast up`'s control API that records the call.
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = calls.clone();
    let control = Router::new().route(
        "/services/{name}/{action}",
        post(move |axum::extract::Path((name, action)): axum::extract::Path<(String, String)>,
                   axum::extract::RawQuery(q): axum::extract::RawQuery| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(format!("{name} {action} {}", q.unwrap_or_default()));
                axum::Json(json!({"name": name, "status": if action == "stop" { "stopped" } else { "running" }, "pid": null}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let control_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, control).await.expect("serves") });

    let p = TestPlatform::spawn_with(Some(control_url)).await;
    let r = ops_post(&p, "/ops/services/restaurants/stop?mode=kill").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "stopped");
    let r = ops_post(&p, "/ops/services/restaurants/start").await;
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "running");

    let r = ops_post(&p, "/ops/services/restaurants/stop?mode=explode").await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let r = ops_post(&p, "/ops/services/nosuch/stop").await;
    assert_problem(r, StatusCode::NOT_FOUND).await;
    let r = ops_post(&p, "/ops/services/gateway/stop").await;
    assert_problem(r, StatusCode::CONFLICT).await;

    assert_eq!(
        *calls.lock().expect("lock"),
        ["restaurants stop mode=kill", "restaurants start "]
    );
}

#[tokio::test]
async fn the_public_openapi_merges_every_services_routes() {
    let p = TestPlatform::spawn().await;
    let doc: Value = p
        .api
        .get("/openapi.json", None)
        .await
        .json()
        .await
        .expect("json");
    for path in [
        "/api/v1/auth/register",
        "/api/v1/me",
        "/api/v1/restaurants",
        "/api/v1/restaurants/{id}/menu",
        "/api/v1/restaurants/{id}/tickets",
        "/api/v1/restaurants/{id}/tickets/{order_id}/accept",
        "/api/v1/ops/services",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    // Internal paths are not public.
    assert!(doc["paths"].get("/api/v1/.well-known/jwks.json").is_none());
    assert!(doc["components"]["schemas"].get("User").is_some());
}

#[tokio::test]
async fn the_root_points_the_way() {
    let p = TestPlatform::spawn().await;
    let r = platform::testing::Api::new(&p.gateway.url)
        .get("/api/v1", None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let index: Value = r.json().await.expect("json");
    assert_eq!(index["local_run"], false);
    assert_eq!(index["links"]["openapi"], "/api/v1/openapi.json");
    assert_eq!(index["links"]["services"], "/api/v1/ops/services");
}

/// A stand-in service answering fixed JSON on one path.
pub(crate) async fn fake(path: &'static str, status: u16, body: Value) -> String {
    let app = Router::new().route(
        path,
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    axum::http::StatusCode::from_u16(status).expect("status"),
                    axum::Json(body),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serves") });
    url
}

#[tokio::test]
async fn the_order_page_carries_its_delivery_and_survives_without_it() {
    let orders = fake(
        "/orders/{id}",
        200,
        json!({"id": "o-1", "status": "COURIER_ASSIGNED", "delivery": null}),
    )
    .await;
    let delivery = fake(
        "/internal/deliveries/by-order/{id}",
        200,
        json!({"id": "d-1", "status": "ASSIGNED", "courier_id": "c-1", "courier_location": {"lat": 1.0, "lng": 2.0}, "eta": "2026-01-01T00:00:00.000Z"}),
    )
    .await;
    let p = TestPlatform::spawn().await;
    let customer = p.token("pat@example.com", "customer").await;

    let (composed, _gateway) =
        crate::helpers::gateway_with(&p, &[("orders", &orders), ("delivery", &delivery)]).await;
    let order: Value = composed
        .get("/orders/o-1", Some(&customer))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(order["delivery"]["courier_id"], "c-1");
    assert_eq!(order["delivery"]["courier_location"]["lat"], 1.0);
    assert!(order.get("degraded").is_none());

    // Delivery down: the order still answers, and says what is missing.
    let (dead, _other) = crate::helpers::gateway_with(
        &p,
        &[("orders", &orders), ("delivery", "http://127.0.0.1:1")],
    )
    .await;
    let r = dead.get("/orders/o-1", Some(&customer)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let order: Value = r.json().await.expect("json");
    assert!(order["delivery"].is_null());
    assert_eq!(order["degraded"], json!(["delivery"]));
    // And without a token the gateway refuses before asking anyone.
    assert_eq!(
        dead.get("/orders/o-1", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_audit_gathers_every_service_and_names_those_it_could_not_read() {
    let p = TestPlatform::spawn().await;
    // Payments is configured but nothing listens there.
    let (api, _gateway) = gateway_with(&p, &[("payments", "http://127.0.0.1:1")]).await;

    let r = api.get("/ops/audit", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let audit: contracts::audit::PlatformAudit = r.json().await.expect("an audit");
    let restaurants = audit.restaurants.expect("restaurants answered");
    assert!(restaurants.reservations.is_empty());
    assert_eq!(restaurants.events.outbox_unpublished, 0);
    assert!(audit.payments.is_none());
    assert!(
        audit.unavailable["payments"].contains("refused")
            || audit.unavailable["payments"].contains("connect"),
        "{:?}",
        audit.unavailable
    );
    // Not even configured: still named, never skipped in silence.
    assert!(audit.unavailable.contains_key("orders"));
    assert!(audit.unavailable.contains_key("delivery"));
}
