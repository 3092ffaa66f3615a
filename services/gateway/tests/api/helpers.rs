use std::time::Duration;

use platform::ServiceConfig;
use platform::config::HttpConfig;
use platform::server::ShutdownHandle;
use platform::telemetry::{LogFormat, init_for_tests};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

pub(crate) struct Running {
    pub(crate) url: String,
    shutdown: ShutdownHandle,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(server: platform::Server) -> Running {
        let url = format!("http://127.0.0.1:{}", server.port());
        let shutdown = server.shutdown_handle();
        let task = tokio::spawn(async move {
            server.run_until_stopped().await.expect("serves");
        });
        Running {
            url,
            shutdown,
            task,
        }
    }

    pub(crate) async fn stop(self) {
        self.shutdown.shutdown();
        self.task.await.expect("server task ends");
    }
}

pub(crate) struct TestPlatform {
    pub(crate) gateway: Running,
    pub(crate) users: Option<Running>,
    pub(crate) restaurants: Option<Running>,
    pub(crate) client: reqwest::Client,
    /// Holds the services' SQLite files for the test's lifetime.
    _dir: TempDir,
}

fn service_config(dir: &TempDir, name: &str, users_url: &str) -> ServiceConfig {
    ServiceConfig {
        http: HttpConfig {
            host: [127, 0, 0, 1].into(),
            port: 0,
        },
        database_url: format!("sqlite://{}/{name}.db", dir.path().display()),
        log_format: LogFormat::Pretty,
        users_url: users_url.to_owned(),
    }
}

impl TestPlatform {
    pub(crate) async fn spawn() -> TestPlatform {
        Self::spawn_with(None).await
    }

    /// With `control_url`, the gateway believes it runs under `feastfast up`.
    pub(crate) async fn spawn_with(control_url: Option<String>) -> TestPlatform {
        init_for_tests();
        let dir = tempfile::tempdir().expect("tempdir");
        let users = Running::start(
            users::build(users::Config {
                service: service_config(&dir, "users", "http://127.0.0.1:1"),
                token_ttl: Duration::from_secs(600),
            })
            .await
            .expect("users builds"),
        );
        let restaurants = Running::start(
            restaurants::build(restaurants::Config {
                service: service_config(&dir, "restaurants", &users.url),
            })
            .await
            .expect("restaurants builds"),
        );
        let gateway = Running::start(
            gateway::build(gateway_config(&users.url, &restaurants.url, control_url))
                .await
                .expect("gateway builds"),
        );
        TestPlatform {
            gateway,
            users: Some(users),
            restaurants: Some(restaurants),
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// Stops the users or restaurants service (the gateway stays up).
    pub(crate) async fn stop_service(&mut self, name: &str) {
        let running = match name {
            "users" => self.users.take(),
            "restaurants" => self.restaurants.take(),
            other => panic!("no service {other}"),
        };
        if let Some(r) = running {
            r.stop().await;
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.gateway.url)
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    /// Registers and logs in a user with `role`; returns the token.
    pub(crate) async fn token(&self, email: &str, role: &str) -> String {
        let r = self
            .post(
                "/auth/register",
                None,
                json!({"email": email, "password": "correct horse", "name": "Test", "role": role}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = self
            .post(
                "/auth/login",
                None,
                json!({"email": email, "password": "correct horse"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.expect("json")["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }
}

pub(crate) fn gateway_config(
    users: &str,
    restaurants: &str,
    control_url: Option<String>,
) -> gateway::Config {
    gateway::Config {
        http: HttpConfig {
            host: [127, 0, 0, 1].into(),
            port: 0,
        },
        log_format: LogFormat::Pretty,
        upstreams: vec![
            gateway::Upstream {
                name: "users",
                url: users.to_owned(),
            },
            gateway::Upstream {
                name: "restaurants",
                url: restaurants.to_owned(),
            },
        ],
        control_url,
        upstream_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_millis(300),
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
    body
}
