use platform::testing::assert_problem;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestPlatform;

#[tokio::test]
async fn register_login_and_me_through_the_gateway() {
    let p = TestPlatform::spawn().await;
    let token = p.token("ada@example.com", "customer").await;
    let r = p.api.get("/me", Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["role"], "customer");
}

#[tokio::test]
async fn upstream_errors_pass_through_unchanged() {
    let p = TestPlatform::spawn().await;
    p.token("bob@example.com", "customer").await;
    let again = p
        .api
        .post(
            "/auth/register",
            None,
            json!({"email": "bob@example.com", "password": "correct horse", "name": "B", "role": "customer"}),
        )
        .await;
    assert_problem(again, StatusCode::CONFLICT).await;
    let bad = p
        .api
        .post(
            "/auth/register",
            None,
            json!({"email": "nope", "password": "x", "name": "", "role": "chef"}),
        )
        .await;
    let body = assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(4));
    let wrong = p
        .api
        .post(
            "/auth/login",
            None,
            json!({"email": "bob@example.com", "password": "wrong password"}),
        )
        .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_missing_or_bad_token_is_refused_at_the_gateway() {
    let p = TestPlatform::spawn().await;
    let r = p.api.get("/me", None).await;
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    assert_problem(
        p.api.get("/me", Some("garbage")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let forged = platform::auth::SigningKey::generate()
        .issue(
            contracts::UserId::new(),
            contracts::identity::Role::Admin,
            std::time::Duration::from_secs(60),
        )
        .expect("signs");
    assert_problem(
        p.api.get("/me", Some(&forged)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn tokens_keep_working_while_users_is_down() {
    let mut p = TestPlatform::spawn().await;
    let token = p.token("cy@example.com", "restaurant_owner").await;
    // The first authenticated call caches the keys at the gateway and at
    // restaurants.
    assert_eq!(
        p.api.get("/restaurants/mine", Some(&token)).await.status(),
        StatusCode::OK
    );
    p.stop_service("users").await;

    assert_eq!(
        p.api.get("/restaurants/mine", Some(&token)).await.status(),
        StatusCode::OK
    );
    let login = p
        .api
        .post(
            "/auth/login",
            None,
            json!({"email": "cy@example.com", "password": "correct horse"}),
        )
        .await;
    let body = assert_problem(login, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["service"], "users");
}

#[tokio::test]
async fn malformed_json_is_a_400_problem_from_the_service() {
    let p = TestPlatform::spawn().await;
    let r = p
        .api
        .request(Method::POST, "/auth/register", None)
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .expect("request");
    assert_problem(r, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn the_trace_travels_to_the_upstream() {
    let p = TestPlatform::spawn().await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let r = p
        .api
        .request(Method::POST, "/auth/login", None)
        .header("traceparent", format!("00-{trace}-b7ad6b7169203331-01"))
        .json(&json!({"email": "nobody@example.com", "password": "whatever1"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.headers()["x-trace-id"], trace);
    // The problem document was written by the users service: it saw the trace.
    let body = assert_problem(r, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["trace_id"], trace);
}
