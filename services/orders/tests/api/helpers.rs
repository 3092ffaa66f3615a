use std::net::TcpListener as StdListener;
use std::path::Path;
use std::time::{Duration, Instant};

use contracts::UserId;
use contracts::delivery::{DeliveryAssigned, DeliveryDelivered, DeliveryPickedUp};
use contracts::events::Event;
use contracts::identity::Role;
use platform::auth::{JwkSet, ServiceTokens, SigningKey};
use platform::client::Endpoints;
use platform::config::HttpConfig;
use platform::events::{Outbox, enqueue};
use platform::telemetry::init_for_tests;
use platform::testing::{Api, Running, service_config};
use platform::{Server, Service, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

pub(crate) struct TestWorld {
    pub(crate) dir: TempDir,
    pub(crate) key: SigningKey,
    pub(crate) orders: Option<Running>,
    pub(crate) restaurants: Running,
    pub(crate) payments: Option<Running>,
    /// Fixed, so payments can be stopped and started again where orders
    /// expects it.
    pub(crate) payments_port: u16,
    orders_port: u16,
    pub(crate) delivery: FakeDelivery,
    pub(crate) api: Api,
    pub(crate) accept_window: Duration,
}

/// The delivery service's feed, written by the test.
pub(crate) struct FakeDelivery {
    pub(crate) url: String,
    /// When set, the fake's couriers have every order in hand: a cancel of
    /// the delivery is refused (409), as the real delivery service does
    /// after pick-up.
    pub(crate) picked_up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    outbox: Outbox,
    db: platform::Db,
    _running: Running,
}

impl FakeDelivery {
    async fn start(dir: &Path, key: &SigningKey) -> FakeDelivery {
        let db = platform::db::connect(
            &format!("sqlite://{}/fake-delivery.db", dir.display()),
            &[
                platform::events::MIGRATION,
                platform::events::INDEXES_MIGRATION,
            ],
        )
        .await
        .expect("connects");
        let outbox = platform::testing::test_outbox(dir, "delivery", db.clone()).await;
        let _relay = outbox.start_relay();
        let picked_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = picked_up.clone();
        let cancel = axum::Router::new().route(
            "/internal/deliveries/by-order/{id}/cancel",
            axum::routing::post(move || {
                let gone = flag.load(std::sync::atomic::Ordering::SeqCst);
                async move {
                    if gone {
                        platform::ApiError::conflict(
                            "the delivery is PICKED_UP; it can no longer be cancelled",
                        )
                    } else {
                        platform::ApiError::not_found("no delivery for that order")
                    }
                }
            }),
        );
        let router = platform::events::feed::router(outbox.clone())
            .merge(cancel)
            .layer(axum::Extension(verifier(key)));
        let running = Running::start(
            Server::bind(
                &local(0),
                Service::new("delivery", router, utoipa::openapi::OpenApi::default()),
            )
            .await
            .expect("binds"),
        );
        FakeDelivery {
            url: running.url.clone(),
            picked_up,
            outbox,
            db,
            _running: running,
        }
    }

    pub(crate) async fn publish<E: Event>(&self, event: &E) {
        let mut tx = self.db.begin().await.expect("begins");
        enqueue(&mut tx, event).await.expect("enqueues");
        tx.commit().await.expect("commits");
        self.outbox.notify();
    }

    /// A courier takes `order` all the way to the door.
    pub(crate) async fn deliver(&self, order: &str) {
        let order_id = contracts::OrderId::parse(order).expect("order id");
        let courier_id = UserId::new();
        let delivery_id = uuid::Uuid::now_v7().to_string();
        self.publish(&DeliveryAssigned {
            order_id,
            delivery_id: delivery_id.clone(),
            courier_id,
            eta: platform::time::now(),
        })
        .await;
        self.publish(&DeliveryPickedUp {
            order_id,
            delivery_id: delivery_id.clone(),
            courier_id,
        })
        .await;
        self.publish(&DeliveryDelivered {
            order_id,
            delivery_id,
            courier_id,
        })
        .await;
    }
}

fn local(port: u16) -> HttpConfig {
    HttpConfig::at([127, 0, 0, 1].into(), port)
}

fn verifier(key: &SigningKey) -> Verifier {
    Verifier::with_keys(&JwkSet {
        keys: vec![key.jwk()],
    })
    .expect("valid key")
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("addr")
        .port()
}

impl TestWorld {
    pub(crate) async fn spawn() -> TestWorld {
        Self::spawn_with(Duration::from_secs(120)).await
    }

    pub(crate) async fn spawn_with(accept_window: Duration) -> TestWorld {
        init_for_tests();
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SigningKey::generate();
        let restaurants = Running::start(
            restaurants::build_with_verifier(
                restaurants::Config {
                    accept_window,
                    ..restaurants::Config::new(service_config(
                        dir.path(),
                        "restaurants",
                        "http://127.0.0.1:1",
                    ))
                },
                verifier(&key),
            )
            .await
            .expect("restaurants builds"),
        );
        let delivery = FakeDelivery::start(dir.path(), &key).await;
        let mut world = TestWorld {
            api: Api::new("http://127.0.0.1:1"),
            dir,
            key,
            orders: None,
            restaurants,
            payments: None,
            payments_port: free_port(),
            orders_port: free_port(),
            delivery,
            accept_window,
        };
        world.start_payments().await;
        world.start_orders().await;
        world
    }

    pub(crate) async fn start_payments(&mut self) {
        let mut config = service_config(self.dir.path(), "payments", "http://127.0.0.1:1");
        config.http = local(self.payments_port);
        let server = payments::build_with_verifier(
            payments::Config { service: config },
            verifier(&self.key),
        )
        .await
        .expect("payments builds");
        self.payments = Some(Running::start(server));
    }

    pub(crate) async fn stop_payments(&mut self) {
        if let Some(p) = self.payments.take() {
            p.stop().await;
        }
    }

    pub(crate) async fn start_orders(&mut self) {
        let mut service = service_config(self.dir.path(), "orders", "http://127.0.0.1:1");
        service.http = local(self.orders_port);
        let config = orders::Config {
            service,
            restaurants_url: Endpoints::parse(&self.restaurants.url),
            payments_url: Endpoints::parse(&format!("http://127.0.0.1:{}", self.payments_port)),
            delivery_url: Endpoints::parse(&self.delivery.url),
            decision_deadline: Duration::from_secs(2),
            sweep_interval: Duration::from_millis(100),
            payment_deadline: Duration::from_secs(60),
        };
        let tokens = ServiceTokens::fixed(self.service_token());
        let server = orders::build_with(config, verifier(&self.key), tokens)
            .await
            .expect("orders builds");
        let running = Running::start(server);
        self.api = Api::new(&running.url);
        self.orders = Some(running);
    }

    pub(crate) async fn stop_orders(&mut self) {
        if let Some(o) = self.orders.take() {
            o.stop().await;
        }
    }

    pub(crate) fn service_token(&self) -> String {
        self.key
            .issue_service("orders", Duration::from_secs(3600))
            .expect("signs")
    }

    pub(crate) fn token(&self, role: Role) -> String {
        self.key
            .issue(UserId::new(), role, Duration::from_secs(3600))
            .expect("signs")
    }

    /// A restaurant with a pizza (stock 5) and a salad (unlimited); returns
    /// (owner token, restaurant id, pizza id, salad id).
    pub(crate) async fn restaurant(&self, auto_accept: bool) -> (String, String, String, String) {
        let owner = self.token(Role::RestaurantOwner);
        let api = Api::new(&self.restaurants.url);
        let r: Value = api
            .post(
                "/restaurants",
                Some(&owner),
                json!({"name": "Luigi's", "cuisine": "Italian", "address": "1 Via Roma",
                       "location": {"lat": 52.52, "lng": 13.40}, "auto_accept": auto_accept}),
            )
            .await
            .json()
            .await
            .expect("json");
        let id = r["id"].as_str().expect("id").to_owned();
        let mut items = Vec::new();
        for body in [
            json!({"name": "Pizza", "price_cents": 1000, "stock": 5}),
            json!({"name": "Salad", "price_cents": 650}),
        ] {
            let item: Value = api
                .post(&format!("/restaurants/{id}/menu"), Some(&owner), body)
                .await
                .json()
                .await
                .expect("json");
            items.push(item["id"].as_str().expect("id").to_owned());
        }
        (owner, id, items[0].clone(), items[1].clone())
    }

    pub(crate) async fn stock(&self, restaurant: &str, item: &str) -> Option<i64> {
        let detail: Value = Api::new(&self.restaurants.url)
            .get(&format!("/restaurants/{restaurant}"), None)
            .await
            .json()
            .await
            .expect("json");
        detail["menu"]
            .as_array()
            .expect("menu")
            .iter()
            .find(|i| i["id"] == item)
            .and_then(|i| i["stock"].as_i64())
    }

    /// What payments holds for `order` (`null` when it has none).
    pub(crate) async fn payment(&self, order: &str) -> Value {
        let r = Api::new(&format!("http://127.0.0.1:{}", self.payments_port))
            .get(
                &format!("/internal/payments/{order}"),
                Some(&self.service_token()),
            )
            .await;
        if r.status() == StatusCode::NOT_FOUND {
            return Value::Null;
        }
        r.json().await.expect("json")
    }

    /// Waits (a few seconds at most) until payments holds `order` in
    /// `status`; compensations and captures run just after the decision.
    pub(crate) async fn payment_reaches(&self, order: &str, status: &str) {
        for _ in 0..100 {
            if self.payment(order).await["status"] == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (a few seconds at most) until `item` has `stock` left.
    pub(crate) async fn stock_reaches(&self, restaurant: &str, item: &str, stock: i64) {
        for _ in 0..100 {
            if self.stock(restaurant, item).await == Some(stock) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn place(&self, customer: &str, key: &str, body: &Value) -> reqwest::Response {
        self.api
            .request(reqwest::Method::POST, "/orders", Some(customer))
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub(crate) async fn order(&self, customer: &str, id: &str) -> Value {
        let r = self.api.get(&format!("/orders/{id}"), Some(customer)).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.expect("json")
    }

    /// The owner's `action` (accept or reject) on order `id`'s ticket. The
    /// saga enters AWAITING_RESTAURANT before its CreateTicket call lands, so
    /// a 404 (no ticket yet) is retried for a while.
    pub(crate) async fn decide_ticket(
        &self,
        owner: &str,
        restaurant: &str,
        id: &str,
        action: &str,
        body: Value,
    ) -> reqwest::Response {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = Api::new(&self.restaurants.url)
                .post(
                    &format!("/restaurants/{restaurant}/tickets/{id}/{action}"),
                    Some(owner),
                    body.clone(),
                )
                .await;
            if r.status() != StatusCode::NOT_FOUND || Instant::now() >= deadline {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until order `id` has `status` (or fails after `limit`).
    pub(crate) async fn wait_for(
        &self,
        customer: &str,
        id: &str,
        status: &str,
        limit: Duration,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let order = self.order(customer, id).await;
            if order["status"] == status {
                return order;
            }
            assert!(
                Instant::now() < deadline,
                "order never reached {status}: {order:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An order body for `restaurant` with `pizzas` pizzas and one salad.
pub(crate) fn order_body(
    restaurant: &str,
    pizza: &str,
    salad: &str,
    pizzas: i64,
    method: &str,
) -> Value {
    json!({
        "restaurant_id": restaurant,
        "items": [{"menu_item_id": pizza, "quantity": pizzas}, {"menu_item_id": salad, "quantity": 1}],
        "delivery_address": {"line1": "5 Home Street", "city": "Berlin", "location": {"lat": 52.50, "lng": 13.42}},
        "payment_method": method,
    })
}

pub(crate) fn statuses(order: &Value) -> Vec<String> {
    order["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["status"].as_str().expect("status").to_owned())
        .collect()
}
