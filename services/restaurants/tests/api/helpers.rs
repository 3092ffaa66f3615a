use std::time::Duration;

use contracts::UserId;
use contracts::identity::Role;
use platform::ServiceConfig;
use platform::Verifier;
use platform::auth::{JwkSet, SigningKey};
use platform::config::HttpConfig;
use platform::telemetry::{LogFormat, init_for_tests};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    pub(crate) dir: TempDir,
    /// Signs the tests' tokens; the service trusts only this key.
    pub(crate) key: SigningKey,
    shutdown: platform::server::ShutdownHandle,
    task: tokio::task::JoinHandle<()>,
}

/// Someone with a token: a new user of some role.
pub(crate) struct Caller {
    pub(crate) token: String,
}

pub(crate) fn config(dir: &TempDir, port: u16) -> restaurants::Config {
    restaurants::Config {
        service: ServiceConfig {
            http: HttpConfig {
                host: [127, 0, 0, 1].into(),
                port,
            },
            database_url: format!("sqlite://{}/restaurants.db", dir.path().display()),
            log_format: LogFormat::Pretty,
            // Nothing listens there: tokens are verified with the test key.
            users_url: "http://127.0.0.1:1".to_owned(),
        },
    }
}

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        Self::spawn_in(
            tempfile::tempdir().expect("tempdir"),
            SigningKey::generate(),
        )
        .await
    }

    /// Starts the service on a database directory, trusting `key` (a
    /// restart keeps both).
    pub(crate) async fn spawn_in(dir: TempDir, key: SigningKey) -> TestApp {
        init_for_tests();
        let verifier = Verifier::with_keys(&JwkSet {
            keys: vec![key.jwk()],
        })
        .expect("valid key");
        let server = restaurants::build_with_verifier(config(&dir, 0), verifier)
            .await
            .expect("builds");
        let base = format!("http://127.0.0.1:{}", server.port());
        let shutdown = server.shutdown_handle();
        let task = tokio::spawn(async move {
            server.run_until_stopped().await.expect("serves");
        });
        TestApp {
            base,
            client: reqwest::Client::new(),
            dir,
            key,
            shutdown,
            task,
        }
    }

    /// Stops gracefully and hands back the data directory and the key.
    pub(crate) async fn stop(self) -> (TempDir, SigningKey) {
        self.shutdown.shutdown();
        self.task.await.expect("server task ends");
        (self.dir, self.key)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new user with `role` and a valid token.
    pub(crate) fn caller(&self, role: Role) -> Caller {
        let token = self
            .key
            .issue(UserId::new(), role, Duration::from_secs(600))
            .expect("signs");
        Caller { token }
    }

    pub(crate) fn owner(&self) -> Caller {
        self.caller(Role::RestaurantOwner)
    }

    pub(crate) async fn create_restaurant(
        &self,
        token: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url("/restaurants")).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    /// Creates a restaurant of `owner` and returns it.
    pub(crate) async fn seed_restaurant(&self, owner: &Caller, name: &str, cuisine: &str) -> Value {
        let r = self
            .create_restaurant(Some(&owner.token), &restaurant_body(name, cuisine))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.expect("json")
    }

    /// `GET /restaurants?{query}`.
    pub(crate) async fn list(&self, query: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/restaurants?{query}")))
            .send()
            .await
            .expect("request")
    }

    /// The names on the page `GET /restaurants?{query}` answers.
    pub(crate) async fn list_names(&self, query: &str) -> Vec<String> {
        let r = self.list(query).await;
        assert_eq!(r.status(), StatusCode::OK);
        let page: Value = r.json().await.expect("json");
        names(&page)
    }

    pub(crate) async fn mine(&self, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url("/restaurants/mine"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub(crate) async fn detail(&self, id: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/restaurants/{id}")))
            .send()
            .await
            .expect("request")
    }

    /// The detail of a restaurant that exists.
    pub(crate) async fn detail_json(&self, id: &str) -> Value {
        let r = self.detail(id).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.expect("json")
    }

    pub(crate) async fn add_item(
        &self,
        token: Option<&str>,
        restaurant: &str,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url(&format!("/restaurants/{restaurant}/menu")))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    /// Adds an item to `restaurant`'s menu and returns it.
    pub(crate) async fn seed_item(&self, owner: &Caller, restaurant: &str, body: &Value) -> Value {
        let r = self.add_item(Some(&owner.token), restaurant, body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.expect("json")
    }

    pub(crate) async fn patch_item(
        &self,
        token: Option<&str>,
        restaurant: &str,
        item: &str,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .patch(self.url(&format!("/restaurants/{restaurant}/menu/{item}")))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }
}

/// A valid `POST /restaurants` body.
pub(crate) fn restaurant_body(name: &str, cuisine: &str) -> Value {
    json!({
        "name": name,
        "cuisine": cuisine,
        "address": "1 Main Street",
        "location": {"lat": 52.52, "lng": 13.405},
    })
}

/// The `id` of a JSON object, as text.
pub(crate) fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

/// The names of a page's items, in order.
pub(crate) fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect()
}

/// The fields named by a validation problem.
pub(crate) fn invalid_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
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
