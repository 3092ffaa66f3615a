use std::net::SocketAddr;
use std::time::{Duration, Instant};

use contracts::catalog::Location;
use contracts::events::{CloudEvent, Event, FeedPage};
use contracts::identity::Role;
use contracts::orders::{OrderCancelled, OrderConfirmed};
use contracts::{OrderId, RestaurantId, UserId};
use platform::auth::{JwkSet, ServiceTokens, SigningKey};
use platform::events::{Outbox, Relay, enqueue, feed};
use platform::telemetry::init_for_tests;
use platform::testing::{Api, Running, service_config};
use platform::{Db, HttpConfig, Server, Service, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A restaurant in Berlin, and a customer a short ride away.
pub(crate) const PICKUP: Location = Location {
    lat: 52.5200,
    lng: 13.4050,
};
pub(crate) const DROPOFF: Location = Location {
    lat: 52.5000,
    lng: 13.4200,
};

/// How long a test waits for something the background tasks do.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

fn verifier(key: &SigningKey) -> Verifier {
    Verifier::with_keys(&JwkSet {
        keys: vec![key.jwk()],
    })
    .expect("valid key")
}

/// A stand-in for the orders service: its own outbox, served as a feed.
/// Its address is fixed before it serves, so a test can start delivery
/// while "orders" is still down.
pub(crate) struct FakeOrders {
    pub(crate) url: String,
    addr: SocketAddr,
    db: Db,
    outbox: Outbox,
    key: SigningKey,
    _relay: Relay,
    serving: bool,
}

impl FakeOrders {
    /// Orders, up and serving its feed.
    pub(crate) async fn start(dir: &TempDir, key: &SigningKey) -> FakeOrders {
        let mut orders = Self::down(dir, key).await;
        orders.serve().await;
        orders
    }

    /// Orders with its database, not (yet) serving: its address refuses
    /// connections until [`FakeOrders::serve`].
    pub(crate) async fn down(dir: &TempDir, key: &SigningKey) -> FakeOrders {
        let url = format!("sqlite://{}/orders.db", dir.path().display());
        let db = platform::db::connect(
            &url,
            &[
                platform::events::MIGRATION,
                platform::events::INDEXES_MIGRATION,
            ],
        )
        .await
        .expect("connects");
        let outbox = platform::testing::test_outbox(dir.path(), "orders", db.clone()).await;
        let relay = outbox.start_relay();
        // A free port, released at once: nothing listens there until
        // `serve` binds it again.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        FakeOrders {
            url: format!("http://{addr}"),
            addr,
            db,
            outbox,
            key: key.clone(),
            _relay: relay,
            serving: false,
        }
    }

    /// Serves the feed at the address fixed at creation.
    pub(crate) async fn serve(&mut self) {
        assert!(!self.serving, "orders is already serving");
        let router = feed::router(self.outbox.clone()).layer(axum::Extension(verifier(&self.key)));
        let service = Service::new("orders", router, utoipa::openapi::OpenApi::default());
        let server = Server::bind(&HttpConfig::at(self.addr.ip(), self.addr.port()), service)
            .await
            .expect("binds");
        // Serves until the test's runtime ends.
        tokio::spawn(server.run_until(std::future::pending()));
        self.serving = true;
    }

    async fn publish<E: Event>(&self, event: &E) {
        let mut tx = platform::db::begin_write(&self.db).await.expect("begins");
        enqueue(&mut tx, event).await.expect("enqueues");
        tx.commit().await.expect("commits");
        self.outbox.notify();
    }

    /// Publishes `order.confirmed` for `order`.
    pub(crate) async fn confirm_at(&self, order: OrderId, pickup: Location, dropoff: Location) {
        self.publish(&OrderConfirmed {
            order_id: order,
            customer_id: UserId::new(),
            restaurant_id: RestaurantId::new(),
            pickup,
            dropoff,
        })
        .await;
    }

    /// Publishes `order.confirmed` for a new order from the usual
    /// restaurant to the usual customer; returns the order.
    pub(crate) async fn confirm(&self) -> OrderId {
        let order = OrderId::new();
        self.confirm_at(order, PICKUP, DROPOFF).await;
        order
    }

    pub(crate) async fn cancel(&self, order: OrderId) {
        self.publish(&OrderCancelled { order_id: order }).await;
    }
}

pub(crate) struct TestApp {
    pub(crate) running: Running,
    pub(crate) api: Api,
    pub(crate) dir: TempDir,
    /// Signs the tests' tokens; the service trusts only this key.
    pub(crate) key: SigningKey,
    pub(crate) orders: FakeOrders,
}

/// A courier with a token.
pub(crate) struct Courier {
    pub(crate) id: UserId,
    pub(crate) token: String,
}

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        init_for_tests();
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SigningKey::generate();
        let orders = FakeOrders::start(&dir, &key).await;
        Self::spawn_in(dir, key, orders).await
    }

    /// Starts the service on a data directory, trusting `key` and reading
    /// `orders`' feed (a restart keeps all three).
    pub(crate) async fn spawn_in(dir: TempDir, key: SigningKey, orders: FakeOrders) -> TestApp {
        init_for_tests();
        // Nothing listens at users_url: tokens are verified with the test
        // key, and the service token is fixed.
        let config = delivery::Config::new(
            service_config(dir.path(), "delivery", "http://127.0.0.1:1"),
            &orders.url,
        );
        let tokens = ServiceTokens::fixed(
            key.issue_service("delivery", Duration::from_secs(600))
                .expect("signs"),
        );
        let running = Running::start(
            delivery::build_with(config, verifier(&key), tokens)
                .await
                .expect("builds"),
        );
        TestApp {
            api: Api::new(&running.url),
            running,
            dir,
            key,
            orders,
        }
    }

    /// Stops gracefully and hands back what a restart needs.
    pub(crate) async fn stop(self) -> (TempDir, SigningKey, FakeOrders) {
        self.running.stop().await;
        (self.dir, self.key, self.orders)
    }

    /// A token for a new user with `role`.
    pub(crate) fn token(&self, role: Role) -> String {
        self.key
            .issue(UserId::new(), role, Duration::from_secs(600))
            .expect("signs")
    }

    /// A service token, as the gateway would present.
    pub(crate) fn service_token(&self) -> String {
        self.key
            .issue_service("gateway", Duration::from_secs(600))
            .expect("signs")
    }

    /// A new courier who has not reported yet.
    pub(crate) fn new_courier(&self) -> Courier {
        let id = UserId::new();
        let token = self
            .key
            .issue(id, Role::Courier, Duration::from_secs(600))
            .expect("signs");
        Courier { id, token }
    }

    /// `PUT /couriers/me`.
    pub(crate) async fn put_me(&self, token: Option<&str>, body: &Value) -> reqwest::Response {
        self.api
            .request(reqwest::Method::PUT, "/couriers/me", token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Reports `courier` at `at`, available or not; returns the courier.
    pub(crate) async fn report(&self, courier: &Courier, available: bool, at: Location) -> Value {
        let r = self
            .put_me(Some(&courier.token), &update(available, at))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.expect("json")
    }

    /// A courier available at `at`.
    pub(crate) async fn courier_at(&self, at: Location) -> Courier {
        let courier = self.new_courier();
        self.report(&courier, true, at).await;
        courier
    }

    /// `GET /couriers/me/deliveries{query}`.
    pub(crate) async fn my_deliveries(
        &self,
        token: Option<&str>,
        query: &str,
    ) -> reqwest::Response {
        self.api
            .get(&format!("/couriers/me/deliveries{query}"), token)
            .await
    }

    /// The items of the courier's delivery list.
    pub(crate) async fn deliveries_of(&self, courier: &Courier, query: &str) -> Vec<Value> {
        let r = self.my_deliveries(Some(&courier.token), query).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.expect("json");
        body["items"].as_array().expect("items").clone()
    }

    /// `POST /deliveries/{id}/{step}` (`pickup` or `deliver`).
    pub(crate) async fn step(
        &self,
        token: Option<&str>,
        id: &str,
        step: &str,
    ) -> reqwest::Response {
        self.api
            .post(&format!("/deliveries/{id}/{step}"), token, json!({}))
            .await
    }

    /// `GET /internal/deliveries/by-order/{order}` with `token`.
    pub(crate) async fn by_order_with(
        &self,
        order: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        self.api
            .get(&format!("/internal/deliveries/by-order/{order}"), token)
            .await
    }

    /// The delivery of `order`, if there is one.
    pub(crate) async fn delivery(&self, order: OrderId) -> Option<Value> {
        let r = self
            .by_order_with(&order.to_string(), Some(&self.service_token()))
            .await;
        match r.status() {
            StatusCode::OK => Some(r.json().await.expect("json")),
            StatusCode::NOT_FOUND => None,
            other => panic!("by-order answered {other}"),
        }
    }

    /// Waits (at most [`PATIENCE`]) until `order`'s delivery satisfies
    /// `done`, and returns it.
    pub(crate) async fn wait_for(
        &self,
        order: OrderId,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let delivery = self.delivery(order).await;
            if let Some(d) = &delivery
                && done(d)
            {
                return d.clone();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "order {order}: still not {what} after {PATIENCE:?}: {delivery:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `order` has a delivery in `status`, and returns it.
    pub(crate) async fn wait_status(&self, order: OrderId, status: &str) -> Value {
        self.wait_for(order, status, |d| d["status"] == status)
            .await
    }

    /// Waits until `order` is assigned, and returns the delivery.
    pub(crate) async fn wait_assigned(&self, order: OrderId) -> Value {
        self.wait_status(order, "ASSIGNED").await
    }

    /// Every event on the service's own feed so far, in order.
    pub(crate) async fn feed(&self) -> Vec<CloudEvent> {
        let r = self
            .api
            .get("/events?after=0&limit=1000", Some(&self.service_token()))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let page: FeedPage = r.json().await.expect("feed page");
        page.entries.into_iter().map(|e| e.event).collect()
    }

    /// Waits until the feed holds an event of type `E` about `order`.
    pub(crate) async fn wait_event<E: Event>(&self, order: OrderId) -> E {
        let start = Instant::now();
        loop {
            let subject = order.to_string();
            if let Some(e) = self
                .feed()
                .await
                .into_iter()
                .find(|e| e.is::<E>() && e.subject.as_deref() == Some(subject.as_str()))
            {
                return e.decode().expect("decodes");
            }
            assert!(
                start.elapsed() < PATIENCE,
                "no {} about {order} after {PATIENCE:?}",
                E::TYPE
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A `PUT /couriers/me` body.
pub(crate) fn update(available: bool, at: Location) -> Value {
    json!({"available": available, "location": {"lat": at.lat, "lng": at.lng}})
}

/// `at`, moved `north` degrees of latitude.
pub(crate) fn north(at: Location, degrees: f64) -> Location {
    Location {
        lat: at.lat + degrees,
        lng: at.lng,
    }
}

/// The `id` of a JSON object, as text.
pub(crate) fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}
