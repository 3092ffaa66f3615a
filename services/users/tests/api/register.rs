use platform::testing::assert_problem;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn registering_answers_201_with_the_user_and_no_secret() {
    let app = TestApp::spawn().await;
    let r = app
        .register(json!({"email": "Ada@Example.com", "password": "correct horse", "name": " Ada ", "role": "restaurant_owner"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["name"], "Ada");
    assert_eq!(body["role"], "restaurant_owner");
    assert!(contracts::UserId::parse(body["id"].as_str().expect("id")).is_ok());
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());
}

#[tokio::test]
async fn a_taken_email_is_409_whatever_its_case() {
    let app = TestApp::spawn().await;
    let body = json!({"email": "bob@example.com", "password": "correct horse", "name": "Bob", "role": "customer"});
    assert_eq!(app.register(body).await.status(), StatusCode::CREATED);
    let again = json!({"email": "BOB@example.com", "password": "other password", "name": "Bob 2", "role": "courier"});
    assert_problem(app.register(again).await, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn invalid_input_is_422_naming_every_bad_field_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let r = app
        .register(
            json!({"email": "not-an-email", "password": "short", "name": "  ", "role": "chef"}),
        )
        .await;
    let body = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    for field in ["email", "password", "name", "role"] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    // Nothing was stored: the same e-mail, fixed, registers fine.
    let r = app
        .register(json!({"email": "not-an-email@example.com", "password": "long enough", "name": "N", "role": "courier"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn nobody_registers_as_admin() {
    let app = TestApp::spawn().await;
    let r = app
        .register(json!({"email": "eve@example.com", "password": "correct horse", "name": "Eve", "role": "admin"}))
        .await;
    let body = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "role");
}

#[tokio::test]
async fn a_missing_field_is_422_and_broken_json_is_400() {
    let app = TestApp::spawn().await;
    let r = app
        .register(json!({"email": "a@example.com", "name": "A", "role": "customer"}))
        .await;
    let body = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("password")
    );

    let r = app
        .api
        .request(Method::POST, "/auth/register", None)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("request");
    assert_problem(r, StatusCode::BAD_REQUEST).await;

    let r = app
        .api
        .request(Method::POST, "/auth/register", None)
        .body("email=a@example.com")
        .send()
        .await
        .expect("request");
    assert_problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(1024 * 1024);
    let r = app
        .register(
            json!({"email": "a@example.com", "password": huge, "name": "A", "role": "customer"}),
        )
        .await;
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
}
