use std::time::{Duration, Instant};

use platform::HttpClient;
use platform::auth::{JwkSet, Verifier};
use platform::testing::assert_problem;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn login_gives_a_bearer_token_that_the_jwks_verifies() {
    let app = TestApp::spawn().await;
    app.register(json!({"email": "cat@example.com", "password": "correct horse", "name": "Cat", "role": "courier"}))
        .await;
    let r = app.login("CAT@example.com", "correct horse").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    let token = body["access_token"].as_str().expect("token");

    // Another service verifies it with nothing but the published keys.
    let verifier = Verifier::remote(HttpClient::default(), app.api.url("/.well-known/jwks.json"));
    let identity = verifier.verify(token).await.expect("verifies");
    assert_eq!(identity.role, contracts::identity::Role::Courier);

    let jwks: JwkSet = app
        .api
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .expect("jwks");
    assert_eq!(jwks.keys.len(), 1);
    let text = serde_json::to_string(&jwks).expect("serialises");
    assert!(
        text.contains("\"crv\":\"Ed25519\"") && !text.contains("\"d\""),
        "{text}"
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_the_same_401() {
    let app = TestApp::spawn().await;
    app.customer_token("dan@example.com").await;
    let wrong = assert_problem(
        app.login("dan@example.com", "not the password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown = assert_problem(
        app.login("nobody@example.com", "not the password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong["detail"], unknown["detail"]);
}

/// An unknown e-mail must cost the same argon2 work as a wrong password, so
/// response times do not reveal which e-mails have accounts. Without the
/// dummy hash the unknown case is about 100x faster; the bound is loose
/// enough for a busy machine and tight enough to catch that.
#[tokio::test]
async fn unknown_email_takes_as_long_as_a_wrong_password() {
    let app = TestApp::spawn().await;
    app.customer_token("eve@example.com").await;
    async fn median(app: &TestApp, email: &str) -> Duration {
        let mut times = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            let r = app.login(email, "not the password").await;
            times.push(start.elapsed());
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        times.sort();
        times[2]
    }
    let wrong = median(&app, "eve@example.com").await;
    let unknown = median(&app, "nobody@example.com").await;
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.33..3.0).contains(&ratio),
        "unknown e-mail {unknown:?} vs wrong password {wrong:?}"
    );
}

#[tokio::test]
async fn me_answers_the_tokens_own_account() {
    let app = TestApp::spawn().await;
    let token = app.customer_token("fay@example.com").await;
    let r = app.me(Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["email"], "fay@example.com");
    assert_eq!(me["role"], "customer");
}

#[tokio::test]
async fn me_without_a_valid_token_is_401() {
    let app = TestApp::spawn().await;
    let r = app.me(None).await;
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    assert_problem(app.me(Some("not.a.token")).await, StatusCode::UNAUTHORIZED).await;

    // A token signed by some other key is refused.
    let foreign = platform::auth::SigningKey::generate()
        .issue(
            contracts::UserId::new(),
            contracts::identity::Role::Admin,
            Duration::from_secs(60),
        )
        .expect("signs");
    assert_problem(app.me(Some(&foreign)).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn tokens_and_accounts_survive_a_restart() {
    let app = TestApp::spawn().await;
    let token = app.customer_token("gus@example.com").await;
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir).await;
    assert_eq!(app.me(Some(&token)).await.status(), StatusCode::OK);
    assert_eq!(
        app.login("gus@example.com", "correct horse").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_service_gets_a_service_token_for_the_shared_secret_only() {
    let app = TestApp::spawn().await;
    let r = app
        .api
        .post(
            "/internal/token",
            None,
            json!({"service": "orders", "secret": platform::testing::TEST_SERVICE_SECRET}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let verifier = Verifier::remote(HttpClient::default(), app.api.url("/.well-known/jwks.json"));
    let claims = verifier.verify_claims(&token).await.expect("verifies");
    assert_eq!(claims.role, contracts::identity::Role::Service);
    assert_eq!(claims.svc.as_deref(), Some("orders"));

    let wrong = app
        .api
        .post(
            "/internal/token",
            None,
            json!({"service": "orders", "secret": "guess"}),
        )
        .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED).await;
    let nameless = app
        .api
        .post(
            "/internal/token",
            None,
            json!({"service": "Not A Name!", "secret": "guess"}),
        )
        .await;
    assert_problem(nameless, StatusCode::UNPROCESSABLE_ENTITY).await;
}
