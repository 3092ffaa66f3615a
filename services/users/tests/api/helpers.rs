use std::time::Duration;

use platform::ServiceConfig;
use platform::config::HttpConfig;
use platform::telemetry::{LogFormat, init_for_tests};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    pub(crate) dir: TempDir,
    shutdown: platform::server::ShutdownHandle,
    task: tokio::task::JoinHandle<()>,
}

pub(crate) fn config(dir: &TempDir, port: u16) -> users::Config {
    users::Config {
        service: ServiceConfig {
            http: HttpConfig {
                host: [127, 0, 0, 1].into(),
                port,
            },
            database_url: format!("sqlite://{}/users.db", dir.path().display()),
            log_format: LogFormat::Pretty,
            users_url: "http://127.0.0.1:1".to_owned(),
        },
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
        let server = users::build(config(&dir, 0)).await.expect("builds");
        let base = format!("http://127.0.0.1:{}", server.port());
        let shutdown = server.shutdown_handle();
        let task = tokio::spawn(async move {
            server.run_until_stopped().await.expect("serves");
        });
        TestApp {
            base,
            client: reqwest::Client::new(),
            dir,
            shutdown,
            task,
        }
    }

    /// Stops gracefully and hands back the data directory.
    pub(crate) async fn stop(self) -> TempDir {
        self.shutdown.shutdown();
        self.task.await.expect("server task ends");
        self.dir
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn register(&self, body: Value) -> reqwest::Response {
        self.client
            .post(self.url("/auth/register"))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub(crate) async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request")
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
        let mut req = self.client.get(self.url("/me"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }
}

/// Asserts a problem+json answer with `status`, and returns its body.
pub(crate) async fn assert_problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("x-trace-id"));
    let body: Value = response.json().await.expect("problem body");
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:feastfast:problem:"))
    );
    assert!(body["title"].is_string());
    body
}
