use std::time::Duration;

use platform::config::HttpConfig;
use platform::telemetry::{LogFormat, init_for_tests};
use platform::testing::{Api, Running, service_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

pub(crate) struct TestPlatform {
    /// Serves `api` for the test's lifetime.
    pub(crate) gateway: Running,
    pub(crate) users: Option<Running>,
    pub(crate) restaurants: Option<Running>,
    /// The gateway's public `/api/v1`.
    pub(crate) api: Api,
    /// Holds the services' SQLite files for the test's lifetime.
    _dir: TempDir,
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
                service: service_config(dir.path(), "users", "http://127.0.0.1:1"),
                token_ttl: Duration::from_secs(600),
            })
            .await
            .expect("users builds"),
        );
        let restaurants = Running::start(
            restaurants::build(restaurants::Config::new(service_config(
                dir.path(),
                "restaurants",
                &users.url,
            )))
            .await
            .expect("restaurants builds"),
        );
        let gateway = Running::start(
            gateway::build(gateway_config(&users.url, &restaurants.url, control_url))
                .await
                .expect("gateway builds"),
        );
        TestPlatform {
            api: Api::with_prefix(&gateway.url, "/api/v1"),
            gateway,
            users: Some(users),
            restaurants: Some(restaurants),
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

    /// Registers and logs in a user with `role`; returns the token.
    pub(crate) async fn token(&self, email: &str, role: &str) -> String {
        let r = self
            .api
            .post(
                "/auth/register",
                None,
                json!({"email": email, "password": "correct horse", "name": "Test", "role": role}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = self
            .api
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
        http: HttpConfig::at([127, 0, 0, 1].into(), 0),
        log_format: LogFormat::Pretty,
        upstreams: vec![
            gateway::Upstream::new("users", users),
            gateway::Upstream::new("restaurants", restaurants),
        ],
        control_url,
        call_policy: platform::client::CallPolicy {
            timeout: Duration::from_secs(2),
            ..Default::default()
        },
        admission: gateway::AdmissionConfig::default(),
        connect_timeout: Duration::from_millis(300),
        service_secret: platform::testing::TEST_SERVICE_SECRET.to_owned(),
        // No orders or delivery behind this gateway: no events to follow.
        events: platform::config::EventsConfig::Feed,
        web_dir: None,
    }
}

/// Another gateway in front of this platform's users, with `extra`
/// upstreams (name, URL) added: its `/api/v1` client, and the running
/// gateway (serving until dropped).
pub(crate) async fn gateway_with(
    p: &TestPlatform,
    extra: &[(&'static str, &str)],
) -> (Api, Running) {
    let users = p.users.as_ref().expect("users runs").url.clone();
    let restaurants = p
        .restaurants
        .as_ref()
        .expect("restaurants runs")
        .url
        .clone();
    let mut config = gateway_config(&users, &restaurants, None);
    for (name, url) in extra {
        config.upstreams.push(gateway::Upstream::new(name, url));
    }
    let running = Running::start(gateway::build(config).await.expect("gateway builds"));
    (Api::with_prefix(&running.url, "/api/v1"), running)
}
