use std::time::Duration;

use contracts::UserId;
use contracts::identity::Role;
use platform::Verifier;
use platform::auth::{JwkSet, SigningKey};
use platform::telemetry::init_for_tests;
use platform::testing::{Api, Running, service_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

pub(crate) struct TestApp {
    pub(crate) running: Running,
    pub(crate) api: Api,
    pub(crate) dir: TempDir,
    /// Signs the tests' tokens; the service trusts only this key.
    pub(crate) key: SigningKey,
}

/// Someone with a token: a new user of some role.
pub(crate) struct Caller {
    pub(crate) token: String,
}

pub(crate) fn config(dir: &TempDir) -> restaurants::Config {
    // Nothing listens at users_url: tokens are verified with the test key.
    restaurants::Config::new(service_config(
        dir.path(),
        "restaurants",
        "http://127.0.0.1:1",
    ))
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
        Self::spawn_with(dir, key, Duration::from_secs(120)).await
    }

    /// Starts the service with an acceptance window of `window`.
    pub(crate) async fn spawn_with(dir: TempDir, key: SigningKey, window: Duration) -> TestApp {
        init_for_tests();
        let verifier = Verifier::with_keys(&JwkSet {
            keys: vec![key.jwk()],
        })
        .expect("valid key");
        let running = Running::start(
            restaurants::build_with_verifier(
                restaurants::Config {
                    accept_window: window,
                    ..config(&dir)
                },
                verifier,
            )
            .await
            .expect("builds"),
        );
        TestApp {
            api: Api::new(&running.url),
            running,
            dir,
            key,
        }
    }

    /// Stops gracefully and hands back the data directory and the key.
    pub(crate) async fn stop(self) -> (TempDir, SigningKey) {
        self.running.stop().await;
        (self.dir, self.key)
    }

    /// A new user with `role` and a valid token.
    pub(crate) fn caller(&self, role: Role) -> Caller {
        let token = self
            .key
            .issue(UserId::new(), role, Duration::from_secs(600))
            .expect("signs");
        Caller { token }
    }

    /// A service token, as the orders service would present.
    pub(crate) fn service_token(&self) -> String {
        self.key
            .issue_service("orders", Duration::from_secs(600))
            .expect("signs")
    }

    pub(crate) fn owner(&self) -> Caller {
        self.caller(Role::RestaurantOwner)
    }

    pub(crate) async fn create_restaurant(
        &self,
        token: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        self.api.post("/restaurants", token, body.clone()).await
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
        self.api.get(&format!("/restaurants?{query}"), None).await
    }

    /// The names on the page `GET /restaurants?{query}` answers.
    pub(crate) async fn list_names(&self, query: &str) -> Vec<String> {
        let r = self.list(query).await;
        assert_eq!(r.status(), StatusCode::OK);
        let page: Value = r.json().await.expect("json");
        names(&page)
    }

    pub(crate) async fn mine(&self, token: Option<&str>) -> reqwest::Response {
        self.api.get("/restaurants/mine", token).await
    }

    pub(crate) async fn detail(&self, id: &str) -> reqwest::Response {
        self.api.get(&format!("/restaurants/{id}"), None).await
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
        self.api
            .post(
                &format!("/restaurants/{restaurant}/menu"),
                token,
                body.clone(),
            )
            .await
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
        self.api
            .patch(
                &format!("/restaurants/{restaurant}/menu/{item}"),
                token,
                body.clone(),
            )
            .await
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
