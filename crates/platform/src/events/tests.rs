use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use contracts::events::{CloudEvent, Event, FeedPage};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::consumer::{Consumer, ConsumerConfig, Handler, Outcome};
use super::{BoxFuture, INDEXES_MIGRATION, MIGRATION, Outbox, enqueue, feed};
use crate::auth::{JwkSet, ServiceTokens, SigningKey, Verifier};
use crate::client::HttpClient;
use crate::config::HttpConfig;
use crate::db::{self, Db};
use crate::server::{Server, Service};

#[derive(Debug, Serialize, Deserialize)]
struct Cooked {
    dish: String,
}

impl Event for Cooked {
    const TYPE: &'static str = "feastfast.test.cooked.v1";
    const SOURCE: &'static str = "kitchen";
    fn subject(&self) -> String {
        self.dish.clone()
    }
}

/// An event no test consumer wants.
#[derive(Debug, Serialize, Deserialize)]
struct Cleaned {
    station: String,
}

impl Event for Cleaned {
    const TYPE: &'static str = "feastfast.test.cleaned.v1";
    const SOURCE: &'static str = "kitchen";
    fn subject(&self) -> String {
        self.station.clone()
    }
}

async fn clean(db: &Db, outbox: &Outbox, station: &str) {
    let station = station.to_owned();
    emit(db, outbox, &Cleaned { station }).await;
}

const CONSUMER_TABLES: db::MigrationSource =
    (1, "eaten", "CREATE TABLE eaten (dish TEXT NOT NULL)");

async fn database(dir: &tempfile::TempDir, name: &str) -> Db {
    let url = format!("sqlite://{}/{name}.db", dir.path().display());
    db::connect(&url, &[CONSUMER_TABLES, MIGRATION, INDEXES_MIGRATION])
        .await
        .expect("connects")
}

async fn cook(db: &Db, outbox: &Outbox, dish: &str) {
    let dish = dish.to_owned();
    emit(db, outbox, &Cooked { dish }).await;
}

/// Commits `event` to the outbox and wakes the relay.
async fn emit<E: Event>(db: &Db, outbox: &Outbox, event: &E) {
    let mut tx = db.begin().await.expect("begins");
    enqueue(&mut tx, event).await.expect("enqueues");
    tx.commit().await.expect("commits");
    outbox.notify();
}

/// The key that signs the tests' tokens.
fn key() -> &'static SigningKey {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(SigningKey::generate)
}

fn service_token() -> String {
    key()
        .issue_service("diner", Duration::from_secs(600))
        .expect("signs")
}

fn tokens() -> ServiceTokens {
    ServiceTokens::fixed(service_token())
}

/// Serves `outbox`'s feed on a free port; returns its URL.
async fn serve_feed(outbox: &Outbox) -> String {
    let verifier = Verifier::with_keys(&JwkSet {
        keys: vec![key().jwk()],
    })
    .expect("keys");
    let router = feed::router(outbox.clone()).layer(axum::Extension(verifier));
    let service = Service::new("kitchen", router, utoipa::openapi::OpenApi::default());
    let server = Server::bind(&HttpConfig::at([127, 0, 0, 1].into(), 0), service)
        .await
        .expect("binds");
    let url = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run_until_stopped());
    url
}

async fn page(url: &str, query: &str) -> FeedPage {
    reqwest::Client::new()
        .get(format!("{url}/events?{query}"))
        .bearer_auth(service_token())
        .send()
        .await
        .expect("request")
        .error_for_status()
        .expect("200")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn only_committed_events_reach_the_feed_in_commit_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, "kitchen").await;
    let outbox = Outbox::new(db.clone());

    let mut rolled_back = db.begin().await.expect("begins");
    enqueue(
        &mut rolled_back,
        &Cooked {
            dish: "burnt".to_owned(),
        },
    )
    .await
    .expect("enqueues");
    rolled_back.rollback().await.expect("rolls back");
    for dish in ["soup", "bread", "cake"] {
        cook(&db, &outbox, dish).await;
    }
    assert_eq!(outbox.relay_once().await.expect("relays"), 3);

    let url = serve_feed(&outbox).await;
    let all = page(&url, "after=0").await;
    let seen: Vec<(i64, String)> = all
        .entries
        .iter()
        .map(|e| {
            (
                e.position,
                e.event.decode::<Cooked>().expect("decodes").dish,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "soup".to_owned()),
            (2, "bread".to_owned()),
            (3, "cake".to_owned())
        ]
    );
    assert_eq!(all.last_position, 3);
    let rest = page(&url, "after=2&limit=10").await;
    assert_eq!(rest.entries.len(), 1);
    assert_eq!(rest.head, 3);
    assert_eq!(page(&url, "after=0&limit=1").await.head, 3);
    assert_eq!(rest.entries[0].event.source, "feastfast/kitchen");
}

#[tokio::test]
async fn positions_stay_unique_and_gapless_under_concurrent_writers_and_relays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, "kitchen").await;
    let outbox = Outbox::new(db.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (db, outbox) = (db.clone(), outbox.clone());
        tasks.spawn(async move {
            cook(&db, &outbox, &format!("dish {i}")).await;
            outbox.relay_once().await.expect("relays");
        });
    }
    tasks.join_all().await;
    outbox.relay_once().await.expect("relays");
    let positions: Vec<i64> = sqlx::query_scalar("SELECT position FROM outbox ORDER BY position")
        .fetch_all(&db)
        .await
        .expect("reads");
    assert_eq!(positions, (1..=40).collect::<Vec<i64>>());
    // However the passes overlapped, the head is the last position.
    assert_eq!(*outbox.head().borrow(), 40);
}

#[tokio::test]
async fn on_the_feed_an_event_is_published_by_the_pass_that_positions_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, "kitchen").await;
    let outbox = Outbox::new(db.clone());
    for dish in ["soup", "bread"] {
        cook(&db, &outbox, dish).await;
    }
    assert_eq!(outbox.relay_once().await.expect("relays"), 2);
    let waiting: Vec<(Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT position, published_at FROM outbox ORDER BY position")
            .fetch_all(&db)
            .await
            .expect("reads");
    assert_eq!(waiting.len(), 2);
    assert!(
        waiting
            .iter()
            .all(|(position, at)| position.is_some() && at.is_some()),
        "positioned but not marked published: {waiting:?}"
    );
    // Nothing is left for a publishing pass to hand over.
    assert_eq!(outbox.publish_once().await.expect("publishes"), 0);

    // An event an earlier relay positioned but never marked (it published
    // in a pass of its own) is marked when the relay starts: it is in the
    // feed, and must not count as waiting.
    cook(&db, &outbox, "cake").await;
    sqlx::query("UPDATE outbox SET position = 3 WHERE position IS NULL")
        .execute(&db)
        .await
        .expect("positions by hand");
    let relay = outbox.start_relay();
    let marked = until(Duration::from_secs(5), async || {
        let waiting: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&db)
                .await
                .expect("counts");
        waiting == 0
    })
    .await;
    relay.stop();
    assert!(marked, "the earlier event is still counted as waiting");
}

#[tokio::test]
async fn the_relay_reads_only_what_waits_not_every_event_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, "kitchen").await;
    for sql in [super::relay::UNPUBLISHED, super::relay::BACKLOG] {
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(&db)
                .await
                .expect("plans");
        let steps: Vec<&str> = plan
            .iter()
            .map(|(_, _, _, detail)| detail.as_str())
            .collect();
        assert!(
            steps.iter().any(|s| s.contains("outbox_unpublished")),
            "{sql} does not use the index of unpublished events: {steps:?}"
        );
    }
}

#[tokio::test]
async fn a_waiting_reader_is_woken_by_the_next_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, "kitchen").await;
    let outbox = Outbox::new(db.clone());
    let _relay = outbox.start_relay();
    let url = serve_feed(&outbox).await;

    let start = Instant::now();
    let waiting = tokio::spawn({
        let url = url.clone();
        async move { page(&url, "after=0&wait=5000").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    cook(&db, &outbox, "soup").await;
    let got = waiting.await.expect("joins");
    assert_eq!(got.entries.len(), 1);
    // Answered because of the commit, well before the 5 s wait ran out.
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    let empty = page(&url, "after=1&wait=50").await;
    assert!(empty.entries.is_empty());
    assert_eq!(empty.last_position, 1);
}

#[tokio::test]
async fn bad_feed_parameters_are_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::new(database(&dir, "kitchen").await);
    let url = serve_feed(&outbox).await;
    for (query, status) in [
        ("limit=0", 422),
        ("limit=5000", 422),
        ("after=-1", 422),
        ("after=abc", 400),
    ] {
        let r = reqwest::Client::new()
            .get(format!("{url}/events?{query}"))
            .bearer_auth(service_token())
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), status, "{query}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}

/// Eats dishes into a table; fails on poison.
struct Eater {
    calls: Arc<AtomicU32>,
}

impl Handler for Eater {
    fn wants(&self, kind: &str) -> bool {
        kind == Cooked::TYPE
    }

    fn handle<'a>(
        &'a self,
        tx: &'a mut AnyConnection,
        event: &'a CloudEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let cooked: Cooked = event.decode()?;
            sqlx::query("INSERT INTO eaten (dish) VALUES ($1)")
                .bind(&cooked.dish)
                .execute(&mut *tx)
                .await?;
            anyhow::ensure!(cooked.dish != "poison", "cannot eat poison");
            Ok(())
        })
    }
}

async fn eaten(db: &Db) -> Vec<String> {
    sqlx::query_scalar("SELECT dish FROM eaten ORDER BY dish")
        .fetch_all(db)
        .await
        .expect("reads")
}

fn fast_config(url: &str) -> ConsumerConfig {
    let mut config = ConsumerConfig::new("kitchen", url);
    config.wait = Duration::from_millis(50);
    config.max_attempts = 3;
    config.first_backoff = Duration::from_millis(1);
    config
}

#[tokio::test]
async fn a_consumer_applies_each_event_once_and_parks_poison() {
    let dir = tempfile::tempdir().expect("tempdir");
    let producer = database(&dir, "kitchen").await;
    let outbox = Outbox::new(producer.clone());
    for dish in ["soup", "poison", "cake"] {
        cook(&producer, &outbox, dish).await;
    }
    outbox.relay_once().await.expect("relays");
    let url = serve_feed(&outbox).await;

    let consumer_db = database(&dir, "diner").await;
    let calls = Arc::new(AtomicU32::new(0));
    let consumer = Consumer::new(
        consumer_db.clone(),
        HttpClient::default(),
        tokens(),
        fast_config(&url),
        Eater {
            calls: calls.clone(),
        },
    );
    assert_eq!(consumer.poll_once().await.expect("polls"), 3);
    // Poison rolled back each attempt: only the good dishes were eaten, and
    // the feed moved past it.
    assert_eq!(eaten(&consumer_db).await, ["cake", "soup"]);
    assert_eq!(consumer.cursor().await.expect("cursor"), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 2 + 3);
    let (event_id, attempts): (String, i64) =
        sqlx::query_as("SELECT event_id, attempts FROM dead_letters")
            .fetch_one(&consumer_db)
            .await
            .expect("one dead letter");
    assert_eq!(attempts, 3);

    // Redelivery of an applied event changes nothing.
    let page = page(&url, "after=0").await;
    let soup = &page.entries[0];
    assert_eq!(
        consumer
            .apply(soup.position, &soup.event)
            .await
            .expect("applies"),
        Outcome::Duplicate
    );
    assert_eq!(eaten(&consumer_db).await, ["cake", "soup"]);
    assert_ne!(event_id, soup.event.id);

    // Nothing new: the next poll reads nothing and the cursor stays.
    assert_eq!(consumer.poll_once().await.expect("polls"), 0);
    assert_eq!(consumer.cursor().await.expect("cursor"), 3);
}

#[tokio::test]
async fn on_sqlite_a_consumer_stores_its_cursor_past_unwanted_events_once_a_batch_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let producer = database(&dir, "kitchen").await;
    let outbox = Outbox::new(producer.clone());
    for station in ["grill", "fryer", "sink"] {
        clean(&producer, &outbox, station).await;
    }
    outbox.relay_once().await.expect("relays");
    let url = serve_feed(&outbox).await;
    let diner = database(&dir, "diner").await;
    let consumer = |batch| {
        let mut config = fast_config(&url);
        config.batch = batch;
        Consumer::new(
            diner.clone(),
            HttpClient::default(),
            tokens(),
            config,
            Eater {
                calls: Arc::new(AtomicU32::new(0)),
            },
        )
    };
    let first = consumer(4);

    // Three unwanted events, fewer than a batch: read and skipped, and the
    // stored cursor is not written for them.
    assert_eq!(first.poll_once().await.expect("polls"), 3);
    assert_eq!(first.cursor().await.expect("cursor"), 0);
    // A restarted consumer reads them again and skips them again.
    assert_eq!(consumer(4).poll_once().await.expect("polls"), 3);
    assert!(eaten(&diner).await.is_empty());

    // The first goes on from where it read to, not from the stored cursor;
    // a batch behind, it stores it.
    for station in ["oven", "hob"] {
        clean(&producer, &outbox, station).await;
    }
    outbox.relay_once().await.expect("relays");
    assert_eq!(first.poll_once().await.expect("polls"), 2);
    assert_eq!(first.cursor().await.expect("cursor"), 5);

    // An applied event stores its position with its effect.
    cook(&producer, &outbox, "soup").await;
    outbox.relay_once().await.expect("relays");
    assert_eq!(first.poll_once().await.expect("polls"), 1);
    assert_eq!(first.cursor().await.expect("cursor"), 6);
    assert_eq!(eaten(&diner).await, ["soup"]);
}

#[tokio::test]
async fn a_failed_apply_leaves_the_cursor_where_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let producer = database(&dir, "kitchen").await;
    let outbox = Outbox::new(producer.clone());
    cook(&producer, &outbox, "poison").await;
    outbox.relay_once().await.expect("relays");
    let url = serve_feed(&outbox).await;
    let consumer_db = database(&dir, "diner").await;
    let consumer = Consumer::new(
        consumer_db.clone(),
        HttpClient::default(),
        tokens(),
        fast_config(&url),
        Eater {
            calls: Arc::new(AtomicU32::new(0)),
        },
    );
    let entry = page(&url, "after=0").await.entries.remove(0);
    assert!(consumer.apply(entry.position, &entry.event).await.is_err());
    assert_eq!(consumer.cursor().await.expect("cursor"), 0);
    assert!(eaten(&consumer_db).await.is_empty());
}

#[tokio::test]
async fn the_feed_is_for_services_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::new(database(&dir, "kitchen").await);
    let url = serve_feed(&outbox).await;
    let client = reqwest::Client::new();
    let anonymous = client
        .get(format!("{url}/events"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    let user = key()
        .issue(
            contracts::UserId::new(),
            contracts::identity::Role::Admin,
            Duration::from_secs(60),
        )
        .expect("signs");
    let as_user = client
        .get(format!("{url}/events"))
        .bearer_auth(user)
        .send()
        .await
        .expect("request");
    assert_eq!(as_user.status(), reqwest::StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_waiting_reader_does_not_hold_up_a_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::new(database(&dir, "kitchen").await);
    let verifier = Verifier::with_keys(&JwkSet {
        keys: vec![key().jwk()],
    })
    .expect("keys");
    let router = feed::router(outbox.clone()).layer(axum::Extension(verifier));
    let server = Server::bind(
        &HttpConfig::at([127, 0, 0, 1].into(), 0),
        Service::new("kitchen", router, utoipa::openapi::OpenApi::default()),
    )
    .await
    .expect("binds");
    let url = format!("http://127.0.0.1:{}", server.port());
    let stop = server.shutdown_handle();
    let serving = tokio::spawn(server.run_until_stopped());
    let waiting = tokio::spawn(async move { page(&url, "after=0&wait=20000").await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let start = Instant::now();
    stop.shutdown();
    let answered = waiting.await.expect("joins");
    assert!(answered.entries.is_empty());
    serving.await.expect("joins").expect("stops cleanly");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

/// A transport that fails until told otherwise (or takes a batch and then
/// never answers), and remembers what it got.
#[derive(Default)]
struct Flaky {
    failing: std::sync::atomic::AtomicBool,
    hanging: std::sync::atomic::AtomicBool,
    got: std::sync::Mutex<Vec<(i64, String)>>,
}

impl Flaky {
    fn positions(&self) -> Vec<i64> {
        let got = self.got.lock().expect("lock");
        got.iter().map(|(position, _)| *position).collect()
    }
}

impl super::transport::Publisher for Flaky {
    fn publish<'a>(
        &'a self,
        entries: &'a [contracts::events::FeedEntry],
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            anyhow::ensure!(!self.failing.load(Ordering::SeqCst), "broker unreachable");
            self.got
                .lock()
                .expect("lock")
                .extend(entries.iter().map(|e| (e.position, e.event.id.clone())));
            if self.hanging.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "flaky"
    }
}

/// One event as the outbox holds it.
#[derive(sqlx::FromRow)]
struct OutboxRow {
    position: Option<i64>,
    published_at: Option<String>,
    attempts: i64,
    last_error: Option<String>,
}

/// What the outbox holds, in id order.
async fn outbox_rows(db: &Db) -> Vec<OutboxRow> {
    sqlx::query_as("SELECT position, published_at, attempts, last_error FROM outbox ORDER BY id")
        .fetch_all(db)
        .await
        .expect("reads")
}

/// Each event's position and whether it is marked published, in id order.
async fn positions_published(db: &Db) -> Vec<(Option<i64>, bool)> {
    outbox_rows(db)
        .await
        .into_iter()
        .map(|r| (r.position, r.published_at.is_some()))
        .collect()
}

#[tokio::test]
async fn the_relay_hands_events_to_the_transport_in_order_and_retries_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, "kitchen").await;
    relay_retries_failures_in_order(&db).await;
}

/// A refused batch is recorded on its events (the pass fails) and handed
/// over again, in position order, with what came after it.
async fn relay_retries_failures_in_order(db: &Db) {
    let flaky = Arc::new(Flaky::default());
    flaky.failing.store(true, Ordering::SeqCst);
    let outbox = Outbox::with_publisher(db.clone(), flaky.clone());
    for dish in ["soup", "bread"] {
        cook(db, &outbox, dish).await;
    }
    let refused = outbox
        .relay_once()
        .await
        .expect_err("the transport refuses");
    assert!(format!("{refused:#}").contains("broker unreachable"));
    for row in outbox_rows(db).await {
        assert!(row.published_at.is_none());
        assert_eq!(row.attempts, 1);
        let error = row.last_error.expect("recorded");
        assert!(error.contains("broker unreachable"));
    }

    flaky.failing.store(false, Ordering::SeqCst);
    cook(db, &outbox, "cake").await;
    assert_eq!(outbox.relay_once().await.expect("hands over"), 3);
    assert_eq!(flaky.positions(), [1, 2, 3]);
    assert_eq!(outbox.publish_once().await.expect("nothing left"), 0);
    assert_eq!(
        positions_published(db).await,
        [(Some(1), true), (Some(2), true), (Some(3), true)]
    );
}

/// A PostgreSQL database for the tests of PostgreSQL's own paths, with
/// [`crate::testing::TEST_POSTGRES_ENV`] set; `None` (the test skips) without.
async fn postgres(dir: &tempfile::TempDir, name: &str) -> Option<Db> {
    if std::env::var(crate::testing::TEST_POSTGRES_ENV).map_or(true, |v| v.is_empty()) {
        eprintln!(
            "skipped: set {}=postgres://postgres@127.0.0.1:5432 to run the PostgreSQL tests",
            crate::testing::TEST_POSTGRES_ENV
        );
        return None;
    }
    let url = crate::testing::test_database_url(dir.path(), name);
    Some(
        db::connect(&url, &[CONSUMER_TABLES, MIGRATION, INDEXES_MIGRATION])
            .await
            .expect("connects"),
    )
}

#[tokio::test]
async fn on_postgres_the_relay_hands_a_batch_over_in_the_transaction_that_positions_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(db) = postgres(&dir, "kitchen").await else {
        return;
    };
    relay_retries_failures_in_order(&db).await;
    // A refused batch was never positioned: its transaction rolled back.
    let flaky = Arc::new(Flaky::default());
    let outbox = Outbox::with_publisher(db.clone(), flaky.clone());

    // A relay that dies after the hand-over, before its commit: the batch
    // stays unpositioned and goes out again, the same events (here, with
    // nothing committed in between, at the same positions), and the
    // transport drops the copies by event id.
    for dish in ["tea", "jam"] {
        cook(&db, &outbox, dish).await;
    }
    flaky.hanging.store(true, Ordering::SeqCst);
    let died = tokio::time::timeout(Duration::from_millis(500), outbox.relay_once()).await;
    assert!(died.is_err(), "the pass hangs in the hand-over");
    let first = flaky.got.lock().expect("lock").clone();
    assert_eq!(first.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [4, 5]);
    assert_eq!(
        positions_published(&db).await[3..],
        [(None, false), (None, false)],
        "nothing committed"
    );

    flaky.hanging.store(false, Ordering::SeqCst);
    flaky.got.lock().expect("lock").clear();
    assert_eq!(outbox.relay_once().await.expect("hands over"), 5);
    assert_eq!(*flaky.got.lock().expect("lock"), first);
    assert!(positions_published(&db).await.iter().all(|r| r.1));
}

#[tokio::test]
async fn on_postgres_what_an_earlier_relay_left_unpublished_goes_out_once_the_transport_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(db) = postgres(&dir, "kitchen").await else {
        return;
    };
    let flaky = Arc::new(Flaky::default());
    flaky.failing.store(true, Ordering::SeqCst);
    let outbox = Outbox::with_publisher(db.clone(), flaky.clone());
    // Positioned by an earlier relay (a version that published in a pass
    // of its own), never published.
    cook(&db, &outbox, "soup").await;
    sqlx::query("UPDATE outbox SET position = 1")
        .execute(&db)
        .await
        .expect("positions");
    // The relay starts while the transport is away, and keeps trying: each
    // pass takes the leftover first, then what is new.
    let relay = outbox.start_relay();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(flaky.positions().is_empty());
    flaky.failing.store(false, Ordering::SeqCst);
    cook(&db, &outbox, "bread").await;
    let both = until(Duration::from_secs(15), async || {
        flaky.positions() == [1, 2]
    })
    .await;
    relay.finish().await;
    assert!(both, "handed over: {:?}", flaky.positions());
    assert!(positions_published(&db).await.iter().all(|r| r.1));
}

/// On PostgreSQL each relayed event leaves a dead version behind (this
/// machine's server, like many, does not vacuum on its own), and the
/// outbox's statistics are those of an empty table. A pass must still read
/// what waits, not the whole table nor every dead version's page.
#[tokio::test]
async fn on_postgres_a_relay_pass_reads_what_waits_not_every_event_relayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(db) = postgres(&dir, "kitchen").await else {
        return;
    };
    let flaky = Arc::new(Flaky::default());
    let outbox = Outbox::with_publisher(db.clone(), flaky.clone());
    cook(&db, &outbox, "soup").await;
    sqlx::query(
        "INSERT INTO outbox (id, type, subject, event, created_at, attempts) \
         SELECT id || '-' || LPAD(CAST(n AS TEXT), 4, '0'), type, subject, event, created_at, 0 \
         FROM outbox, generate_series(1, 1999) AS n",
    )
    .execute(&db)
    .await
    .expect("copies the event");
    // Four full batches, then a pass with nothing to do, as between orders.
    for _ in 0..5 {
        outbox.relay_once().await.expect("relays");
    }
    assert_eq!(flaky.positions().len(), 2000);

    // The next pass, as the relay runs it, explained.
    let mut tx = db.begin().await.expect("begins");
    sqlx::query(super::relay::LOCK)
        .execute(&mut *tx)
        .await
        .expect("locks");
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, BUFFERS) {}",
        super::relay::POSITION_AND_HAND_OVER
    )))
    .bind(crate::time::now())
    .fetch_all(&mut *tx)
    .await
    .expect("explains");
    tx.rollback().await.expect("rolls back");
    let plan = plan.join("\n");
    for walk in ["Seq Scan on outbox", "Bitmap Heap Scan on outbox"] {
        assert!(!plan.contains(walk), "the pass walks the outbox: {plan}");
    }
    // The whole pass's buffers (the first count is the top node's): a few
    // index pages, where a walk read every page the 2,000 events fill.
    let buffers: u32 = plan
        .split("shared hit=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no buffer count in {plan}"));
    assert!(buffers < 40, "the pass read {buffers} buffers: {plan}");
}

#[tokio::test]
async fn on_postgres_replicas_relays_hand_events_over_once_each_in_position_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(db) = postgres(&dir, "kitchen").await else {
        return;
    };
    let flaky = Arc::new(Flaky::default());
    let replicas = [
        Outbox::with_publisher(db.clone(), flaky.clone()),
        Outbox::with_publisher(db.clone(), flaky.clone()),
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (db, outbox) = (db.clone(), replicas[i % 2].clone());
        tasks.spawn(async move {
            cook(&db, &outbox, &format!("dish {i}")).await;
            outbox.relay_once().await.expect("relays");
        });
    }
    tasks.join_all().await;
    replicas[0].relay_once().await.expect("relays");
    assert_eq!(flaky.positions(), (1..=40).collect::<Vec<i64>>());
    assert!(positions_published(&db).await.iter().all(|r| r.1));
}

/// Eats everything, poison too once it is allowed.
struct Picky {
    poison_ok: Arc<std::sync::atomic::AtomicBool>,
}

impl Handler for Picky {
    fn wants(&self, kind: &str) -> bool {
        kind == Cooked::TYPE
    }

    fn handle<'a>(
        &'a self,
        tx: &'a mut AnyConnection,
        event: &'a CloudEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let cooked: Cooked = event.decode()?;
            anyhow::ensure!(
                cooked.dish != "poison" || self.poison_ok.load(Ordering::SeqCst),
                "cannot eat poison yet"
            );
            sqlx::query("INSERT INTO eaten (dish) VALUES ($1)")
                .bind(&cooked.dish)
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_parked_event_is_listed_and_a_redrive_after_the_fix_applies_it_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let producer = database(&dir, "kitchen").await;
    let outbox = Outbox::new(producer.clone());
    for dish in ["soup", "poison", "cake"] {
        cook(&producer, &outbox, dish).await;
    }
    outbox.relay_once().await.expect("relays");
    let url = serve_feed(&outbox).await;

    let diner = database(&dir, "diner").await;
    let poison_ok = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer = Arc::new(Consumer::new(
        diner.clone(),
        HttpClient::default(),
        tokens(),
        fast_config(&url),
        Picky {
            poison_ok: poison_ok.clone(),
        },
    ));
    assert_eq!(consumer.poll_once().await.expect("polls"), 3);
    assert_eq!(eaten(&diner).await, ["cake", "soup"]);

    // The operations API of the consuming service.
    let verifier = Verifier::with_keys(&JwkSet {
        keys: vec![key().jwk()],
    })
    .expect("keys");
    let consumers: Vec<Arc<dyn super::dead_letters::Redrive>> = vec![consumer.clone()];
    let router =
        super::dead_letters::router(diner.clone(), consumers).layer(axum::Extension(verifier));
    let server = Server::bind(
        &HttpConfig::at([127, 0, 0, 1].into(), 0),
        Service::new("diner", router, utoipa::openapi::OpenApi::default()),
    )
    .await
    .expect("binds");
    let ops = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run_until_stopped());
    let client = reqwest::Client::new();
    let listed: Vec<super::dead_letters::DeadLetter> = client
        .get(format!("{ops}/internal/dead-letters"))
        .bearer_auth(service_token())
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, Cooked::TYPE);
    assert!(listed[0].error.contains("cannot eat poison"));
    assert!(listed[0].redriven_at.is_none());
    let anonymous = client
        .get(format!("{ops}/internal/dead-letters"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);

    let redrive = || async {
        client
            .post(format!("{ops}/internal/dead-letters/redrive"))
            .bearer_auth(service_token())
            .send()
            .await
            .expect("request")
            .json::<super::dead_letters::Redriven>()
            .await
            .expect("json")
    };
    // Not fixed yet: it stays parked.
    let before_fix = redrive().await;
    assert_eq!(before_fix.still_failing.len(), 1);
    assert!(before_fix.applied.is_empty());

    // Fixed: applied exactly once, however often redriven.
    poison_ok.store(true, Ordering::SeqCst);
    assert_eq!(redrive().await.applied, [listed[0].event_id.clone()]);
    assert_eq!(redrive().await, super::dead_letters::Redriven::default());
    assert_eq!(eaten(&diner).await, ["cake", "poison", "soup"]);
    assert_eq!(consumer.cursor().await.expect("cursor"), 3);
}

// --- NATS JetStream -------------------------------------------------------

/// The NATS server for the JetStream tests ([`crate::testing::TEST_NATS_ENV`]),
/// with a prefix of the test's own; `None` (with the reason printed) when
/// none is configured (CI's production pass always configures one).
async fn nats_for(service: &str, prefix: &str) -> Option<super::nats::Nats> {
    let url = match std::env::var(crate::testing::TEST_NATS_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            eprintln!(
                "skipped: set {}=nats://127.0.0.1:4222 to run the JetStream tests",
                crate::testing::TEST_NATS_ENV
            );
            return None;
        }
    };
    Some(
        super::nats::Nats::connect(&url, prefix, service)
            .await
            .expect("connects to NATS"),
    )
}

fn unique_prefix() -> String {
    format!("fftest_{}", uuid::Uuid::now_v7().simple())
}

async fn until(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn on_nats_events_are_published_once_and_poison_is_parked_then_redriven_once() {
    let prefix = unique_prefix();
    let Some(kitchen) = nats_for("kitchen", &prefix).await else {
        return;
    };
    let diner_nats = nats_for("diner", &prefix).await.expect("connects");
    let dir = tempfile::tempdir().expect("tempdir");
    let producer = database(&dir, "kitchen").await;
    let publisher = kitchen.publisher();
    let outbox = Outbox::with_publisher(producer.clone(), Arc::new(publisher.clone()));
    for dish in ["soup", "poison", "cake"] {
        cook(&producer, &outbox, dish).await;
    }
    clean(&producer, &outbox, "grill").await;
    assert_eq!(outbox.relay_once().await.expect("hands over"), 4);

    // A relay that crashed before marking its batch publishes it again: the
    // stream keeps one copy of each event (Nats-Msg-Id).
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT position, event FROM outbox ORDER BY position")
            .fetch_all(&producer)
            .await
            .expect("reads");
    let entries: Vec<contracts::events::FeedEntry> = rows
        .iter()
        .map(|(position, json)| contracts::events::FeedEntry {
            position: *position,
            event: serde_json::from_str(json).expect("event"),
        })
        .collect();
    super::transport::Publisher::publish(&publisher, &entries)
        .await
        .expect("publishes again");
    let mut stream = kitchen.ensure_stream("kitchen").await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 4);
    assert_eq!(
        stream.cached_info().config.subjects,
        [format!("{prefix}.kitchen.>")]
    );

    let diner = database(&dir, "diner").await;
    let poison_ok = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut config = fast_config("http://unused.invalid");
    config.wait = Duration::from_millis(200);
    config.max_backoff = Duration::from_millis(20);
    let (consumer, task) = Consumer::new(
        diner.clone(),
        HttpClient::default(),
        tokens(),
        config,
        Picky {
            poison_ok: poison_ok.clone(),
        },
    )
    .start_on(&super::transport::Transport::Nats(diner_nats.clone()));
    let parked = until(Duration::from_secs(20), async || {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters")
            .fetch_one(&diner)
            .await
            .expect("reads");
        n == 1
    })
    .await;
    assert!(parked, "the poison event is parked after its attempts");
    // The rest kept flowing past it.
    assert!(
        until(Duration::from_secs(10), async || eaten(&diner).await
            == ["cake", "soup"])
        .await
    );
    let (attempts, position): (i64, i64) =
        sqlx::query_as("SELECT attempts, position FROM dead_letters")
            .fetch_one(&diner)
            .await
            .expect("reads");
    assert_eq!(attempts, 3, "parked after the configured attempts");
    assert_eq!(position, 2, "the stream sequence of the poison event");
    // Acked once parked: nothing is left for the durable consumer.
    assert!(
        until(Duration::from_secs(10), async || diner_nats
            .durable("kitchen", super::nats::ACK_WAIT)
            .await
            .expect("durable")
            .pending()
            .await
            .expect("info")
            == 0)
        .await
    );
    // On JetStream the acks are the consumer's position: the event it does
    // not want was acked without a transaction, and no cursor is stored.
    let (cursors, inbox): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM consumer_cursors), (SELECT COUNT(*) FROM inbox)",
    )
    .fetch_one(&diner)
    .await
    .expect("reads");
    assert_eq!((cursors, inbox), (0, 2));

    // After the fix a redrive applies it exactly once.
    poison_ok.store(true, Ordering::SeqCst);
    assert_eq!(consumer.redrive().await.expect("redrives").applied.len(), 1);
    assert_eq!(
        consumer.redrive().await.expect("redrives"),
        super::dead_letters::Redriven::default()
    );
    assert_eq!(eaten(&diner).await, ["cake", "poison", "soup"]);
    task.abort();
    let _ = kitchen.delete_stream("kitchen").await;
}

#[tokio::test]
async fn on_nats_replicas_share_one_durable_consumer_and_apply_each_event_once() {
    let prefix = unique_prefix();
    let Some(kitchen) = nats_for("kitchen", &prefix).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let producer = database(&dir, "kitchen").await;
    let outbox = Outbox::with_publisher(producer.clone(), Arc::new(kitchen.publisher()));
    let diner = database(&dir, "diner").await;
    let calls = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let nats = nats_for("diner", &prefix).await.expect("connects");
        let mut config = fast_config("http://unused.invalid");
        config.wait = Duration::from_millis(200);
        config.batch = 5;
        let (_, task) = Consumer::new(
            diner.clone(),
            HttpClient::default(),
            tokens(),
            config,
            Eater {
                calls: calls.clone(),
            },
        )
        .start_on(&super::transport::Transport::Nats(nats));
        tasks.push(task);
    }
    let relay = outbox.start_relay();
    for i in 0..60 {
        cook(&producer, &outbox, &format!("dish{i:02}")).await;
    }
    let all = until(Duration::from_secs(30), async || {
        eaten(&diner).await.len() >= 60
    })
    .await;
    assert!(all, "every event applied: {}", eaten(&diner).await.len());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dishes = eaten(&diner).await;
    assert_eq!(dishes.len(), 60, "no event applied twice");
    let expected: Vec<String> = (0..60).map(|i| format!("dish{i:02}")).collect();
    assert_eq!(dishes, expected);
    for task in tasks {
        task.abort();
    }
    relay.stop();
    let _ = kitchen.delete_stream("kitchen").await;
}

/// Takes an event and never finishes with it: a consumer that dies
/// holding its batch. Says when it has one.
struct Stuck {
    holding: Arc<tokio::sync::Notify>,
}

impl Handler for Stuck {
    fn wants(&self, kind: &str) -> bool {
        kind == Cooked::TYPE
    }

    fn handle<'a>(
        &'a self,
        _tx: &'a mut AnyConnection,
        _event: &'a CloudEvent,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.holding.notify_one();
            std::future::pending().await
        })
    }
}

#[tokio::test]
async fn on_nats_what_a_crashed_consumer_held_is_delivered_again_after_the_ack_wait() {
    let prefix = unique_prefix();
    let Some(kitchen) = nats_for("kitchen", &prefix).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let producer = database(&dir, "kitchen").await;
    let outbox = Outbox::with_publisher(producer.clone(), Arc::new(kitchen.publisher()));
    for dish in ["soup", "cake"] {
        cook(&producer, &outbox, dish).await;
    }
    assert_eq!(outbox.relay_once().await.expect("hands over"), 2);

    // The first replica takes the batch under the 30 s NATS default, and
    // crashes holding it.
    let diner = database(&dir, "diner").await;
    let holding = Arc::new(tokio::sync::Notify::new());
    let mut config = fast_config("http://unused.invalid");
    config.ack_wait = Duration::from_secs(30);
    let (_, first) = Consumer::new(
        diner.clone(),
        HttpClient::default(),
        tokens(),
        config,
        Stuck {
            holding: holding.clone(),
        },
    )
    .start_on(&super::transport::Transport::Nats(
        nats_for("diner", &prefix).await.expect("connects"),
    ));
    tokio::time::timeout(Duration::from_secs(10), holding.notified())
        .await
        .expect("the first replica takes an event");
    first.abort();

    // Its successor (the restarted service) brings a shorter ack wait: the
    // durable consumer takes it, and what the first held comes back well
    // before the 30 s it was taken under.
    let mut config = fast_config("http://unused.invalid");
    config.ack_wait = Duration::from_secs(1);
    let (_, second) = Consumer::new(
        diner.clone(),
        HttpClient::default(),
        tokens(),
        config,
        Eater {
            calls: Arc::new(AtomicU32::new(0)),
        },
    )
    .start_on(&super::transport::Transport::Nats(
        nats_for("diner", &prefix).await.expect("connects"),
    ));
    let redelivered = until(Duration::from_secs(15), async || {
        eaten(&diner).await == ["cake", "soup"]
    })
    .await;
    assert!(redelivered, "applied: {:?}", eaten(&diner).await);
    let durable = nats_for("diner", &prefix)
        .await
        .expect("connects")
        .durable("kitchen", Duration::from_secs(1))
        .await
        .expect("durable");
    assert_eq!(
        durable.ack_wait().await.expect("info"),
        Duration::from_secs(1)
    );
    second.abort();
    let _ = kitchen.delete_stream("kitchen").await;
}

/// A transport that takes its time, and says when a batch arrived.
#[derive(Default)]
struct Slow {
    entered: tokio::sync::Notify,
}

impl super::transport::Publisher for Slow {
    fn publish<'a>(
        &'a self,
        _entries: &'a [contracts::events::FeedEntry],
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.entered.notify_one();
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "slow"
    }
}

#[tokio::test]
async fn a_graceful_stop_lets_the_relay_finish_the_batch_in_hand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(&dir, "kitchen").await;
    let slow = Arc::new(Slow::default());
    let outbox = Outbox::with_publisher(db.clone(), slow.clone());
    for dish in ["soup", "bread", "cake"] {
        cook(&db, &outbox, dish).await;
    }
    let relay = outbox.start_relay();
    // The batch (all three) is with the transport: stop now.
    slow.entered.notified().await;
    let started = Instant::now();
    relay.finish().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let unpublished: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&db)
            .await
            .expect("reads");
    assert_eq!(
        unpublished, 0,
        "the batch in hand was recorded as published"
    );
}
