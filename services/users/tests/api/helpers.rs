use std::time::Duration;

use platform::telemetry::init_for_tests;
use platform::testing::{Api, Running, service_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

pub(crate) struct TestApp {
    pub(crate) running: Running,
    pub(crate) api: Api,
    pub(crate) dir: TempDir,
}

pub(crate) fn config(dir: &TempDir) -> users::Config {
    users::Config {
        service: service_config(dir.path(), "users", "http://127.0.0.1:1"),
        token_ttl: Duration::from_secs(600),
    }
}

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        Self::spawn_in(tempfile::tempdir().expect("tempdir")).await
    }

    /// Starts the service on a database directory (a restart keeps `dir`).
    pub(crate) async fn spawn_in(dir: TempDir) -> TestApp {
        init_for_tests();
        let running = Running::start(users::build(config(&dir)).await.expect("builds"));
        TestApp {
            api: Api::new(&running.url),
            running,
            dir,
        }
    }

    /// Stops gracefully and hands back the data directory.
    pub(crate) async fn stop(self) -> TempDir {
        self.running.stop().await;
        self.dir
    }

    pub(crate) async fn register(&self, body: Value) -> reqwest::Response {
        self.api.post("/auth/register", None, body).await
    }

    pub(crate) async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.api
            .post(
                "/auth/login",
                None,
                json!({ "email": email, "password": password }),
            )
            .await
    }

    /// Registers `email` as a customer and returns a token.
    pub(crate) async fn customer_token(&self, email: &str) -> String {
        let r = self
            .register(json!({"email": email, "password": "correct horse", "name": "Ada", "role": "customer"}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = self.login(email, "correct horse").await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.expect("json")["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    pub(crate) async fn me(&self, token: Option<&str>) -> reqwest::Response {
        self.api.get("/me", token).await
    }
}
