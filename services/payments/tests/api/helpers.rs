use std::time::{Duration, Instant};

use contracts::events::{CloudEvent, FeedPage};
use contracts::identity::Role;
use contracts::{OrderId, UserId};
use platform::auth::{JwkSet, SigningKey};
use platform::telemetry::init_for_tests;
use platform::testing::{Api, Running, service_config};
use platform::{Db, Verifier};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

pub(crate) struct TestApp {
    pub(crate) running: Running,
    pub(crate) api: Api,
    pub(crate) dir: TempDir,
    /// Signs the tests' tokens; the service trusts only this key.
    pub(crate) key: SigningKey,
    /// A service token, as the orders service presents.
    pub(crate) token: String,
    /// The service's database, opened beside it to count what it recorded.
    db: Db,
}

pub(crate) fn config(dir: &TempDir) -> payments::Config {
    payments::Config {
        // Nothing listens at users_url: tokens are verified with the test key.
        service: service_config(dir.path(), "payments", "http://127.0.0.1:1"),
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
        let running = Running::start(
            payments::build_with_verifier(config(&dir), verifier)
                .await
                .expect("builds"),
        );
        let db = platform::db::connect(&config(&dir).service.database_url, payments::MIGRATIONS)
            .await
            .expect("opens the service's database");
        let token = key
            .issue_service("orders", Duration::from_secs(600))
            .expect("signs");
        TestApp {
            api: Api::new(&running.url),
            running,
            dir,
            key,
            token,
            db,
        }
    }

    /// Stops gracefully and hands back the data directory and the key.
    pub(crate) async fn stop(self) -> (TempDir, SigningKey) {
        self.db.close().await;
        self.running.stop().await;
        (self.dir, self.key)
    }

    /// A customer's token: valid, but not a service's.
    pub(crate) fn user_token(&self) -> String {
        self.key
            .issue(UserId::new(), Role::Customer, Duration::from_secs(600))
            .expect("signs")
    }

    /// `POST path` with `body`, the service token and `key` as the
    /// Idempotency-Key.
    pub(crate) async fn command(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.command_as(path, Some(&self.token), Some(key), body)
            .await
    }

    /// `POST path` with `body`, and a token and an Idempotency-Key only if
    /// given.
    pub(crate) async fn command_as(
        &self,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self.api.request(Method::POST, path, token).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("request")
    }

    /// `POST /internal/payments/authorize`, keyed `<order>:authorize`.
    pub(crate) async fn authorize(
        &self,
        order: &str,
        amount_cents: i64,
        method: &str,
    ) -> reqwest::Response {
        self.command(
            "/internal/payments/authorize",
            &format!("{order}:authorize"),
            &authorize_body(order, amount_cents, method),
        )
        .await
    }

    /// Authorizes a new order with `pm_card_visa`; returns the order id.
    pub(crate) async fn authorized_order(&self, amount_cents: i64) -> String {
        let order = new_order();
        let r = self.authorize(&order, amount_cents, "pm_card_visa").await;
        assert_eq!(r.status(), StatusCode::OK);
        let payment: Value = r.json().await.expect("json");
        assert_eq!(payment["status"], "authorized");
        order
    }

    /// Authorizes and captures `amount_cents` for a new order; returns the
    /// order id.
    pub(crate) async fn captured_order(&self, amount_cents: i64) -> String {
        let order = self.authorized_order(amount_cents).await;
        let r = self.capture(&order, "capture", &json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
        order
    }

    /// `POST /internal/payments/{order}/capture`, keyed `<order>:<step>`.
    pub(crate) async fn capture(&self, order: &str, step: &str, body: &Value) -> reqwest::Response {
        self.command(
            &format!("/internal/payments/{order}/capture"),
            &format!("{order}:{step}"),
            body,
        )
        .await
    }

    /// `POST /internal/payments/{order}/void`, keyed `<order>:<step>`.
    pub(crate) async fn void(&self, order: &str, step: &str) -> reqwest::Response {
        self.api
            .request(
                Method::POST,
                &format!("/internal/payments/{order}/void"),
                Some(&self.token),
            )
            .header("Idempotency-Key", format!("{order}:{step}"))
            .send()
            .await
            .expect("request")
    }

    /// `POST /internal/payments/{order}/refund`, keyed `<order>:<step>`.
    pub(crate) async fn refund(&self, order: &str, step: &str, body: &Value) -> reqwest::Response {
        self.command(
            &format!("/internal/payments/{order}/refund"),
            &format!("{order}:{step}"),
            body,
        )
        .await
    }

    /// `GET /internal/payments/{order}` with `token`.
    pub(crate) async fn get_as(&self, order: &str, token: Option<&str>) -> reqwest::Response {
        self.api
            .get(&format!("/internal/payments/{order}"), token)
            .await
    }

    /// The payment of `order`, which must exist.
    pub(crate) async fn payment(&self, order: &str) -> Value {
        let r = self.get_as(order, Some(&self.token)).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.expect("json")
    }

    /// The ledger entries of `order`'s payment as `(kind, amount_cents)`,
    /// in order.
    pub(crate) async fn ledger(&self, order: &str) -> Vec<(String, i64)> {
        sqlx::query_as(
            "SELECT l.kind, l.amount_cents FROM ledger_entries l \
             JOIN payments p ON p.id = l.payment_id \
             WHERE p.order_id = $1 ORDER BY l.id",
        )
        .bind(order)
        .fetch_all(&self.db)
        .await
        .expect("reads the ledger")
    }

    /// How many rows `table` has (a table name from these tests, not input).
    pub(crate) async fn count(&self, table: &'static str) -> i64 {
        let sql = match table {
            "payments" => "SELECT COUNT(*) FROM payments",
            "ledger_entries" => "SELECT COUNT(*) FROM ledger_entries",
            "idempotency_keys" => "SELECT COUNT(*) FROM idempotency_keys",
            "outbox" => "SELECT COUNT(*) FROM outbox",
            other => panic!("no table {other} here"),
        };
        sqlx::query_scalar(sql)
            .fetch_one(&self.db)
            .await
            .expect("counts")
    }

    /// Asserts nothing at all was recorded: no payment, ledger entry, key
    /// or event.
    pub(crate) async fn assert_nothing_recorded(&self) {
        for table in ["payments", "ledger_entries", "idempotency_keys", "outbox"] {
            assert_eq!(self.count(table).await, 0, "{table}");
        }
    }

    /// The feed's events, waiting (a few seconds at most) until there are
    /// at least `n`.
    pub(crate) async fn events(&self, n: usize) -> Vec<CloudEvent> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.api.get("/events?after=0", Some(&self.token)).await;
            assert_eq!(r.status(), StatusCode::OK);
            let page: FeedPage = r.json().await.expect("a feed page");
            if page.entries.len() >= n || Instant::now() > deadline {
                return page.entries.into_iter().map(|e| e.event).collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A new order id.
pub(crate) fn new_order() -> String {
    OrderId::new().to_string()
}

/// A `POST /internal/payments/authorize` body.
pub(crate) fn authorize_body(order: &str, amount_cents: i64, method: &str) -> Value {
    json!({"order_id": order, "amount_cents": amount_cents, "payment_method": method})
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
