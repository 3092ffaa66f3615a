//! The client stack against real servers on loopback: breaker, retries,
//! deadline propagation, concurrency limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use reqwest::Method;

use super::{
    BreakerConfig, BreakerState, CallError, CallPolicy, Endpoints, HttpClient, Idempotency,
    Upstream,
};
use crate::server::{Server, Service};
use crate::testing::Running;

/// A fake upstream: `/work` answers 503 while `failing`, else 200, and
/// counts its hits; `/slow` sleeps `slow_ms` and records the budget it was
/// given and whether it ran to the end.
#[derive(Clone, Default)]
struct Fake {
    failing: Arc<AtomicBool>,
    /// The first this many `/work` hits fail, whatever `failing` says.
    fail_first: Arc<AtomicU32>,
    hits: Arc<AtomicU32>,
    budget_ms: Arc<std::sync::Mutex<Option<String>>>,
    finished: Arc<AtomicBool>,
}

async fn serve(router: Router) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let service = Service::new("fake", router, utoipa::openapi::OpenApi::default());
    Running::start(Server::with_listener(listener, service))
}

async fn fake() -> (Fake, Running) {
    let fake = Fake::default();
    let work = {
        let fake = fake.clone();
        move || {
            let fake = fake.clone();
            async move {
                let n = fake.hits.fetch_add(1, Ordering::SeqCst);
                if n < fake.fail_first.load(Ordering::SeqCst) || fake.failing.load(Ordering::SeqCst)
                {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }
    };
    let slow = {
        let fake = fake.clone();
        move |headers: HeaderMap| {
            let fake = fake.clone();
            async move {
                *fake.budget_ms.lock().expect("not poisoned") = headers
                    .get("x-deadline-ms")
                    .map(|v| v.to_str().expect("ascii").to_owned());
                tokio::time::sleep(Duration::from_millis(1500)).await;
                fake.finished.store(true, Ordering::SeqCst);
                StatusCode::OK
            }
        }
    };
    let router = Router::new()
        .route("/work", get(work.clone()).post(work))
        .route("/slow", get(slow));
    let running = serve(router).await;
    (fake, running)
}

fn upstream(url: &str, policy: CallPolicy) -> Upstream {
    Upstream::new("fake", Endpoints::parse(url), HttpClient::default(), policy)
}

fn quick_policy() -> CallPolicy {
    CallPolicy {
        attempts: 1,
        backoff: Duration::from_millis(1),
        breaker: BreakerConfig {
            threshold: 3,
            cooldown: Duration::from_millis(300),
        },
        ..CallPolicy::default()
    }
}

async fn get_work(upstream: &Upstream) -> Result<StatusCode, CallError> {
    upstream
        .send(Idempotency::Safe, |base| {
            HttpClient::default().get(&format!("{base}/work"))
        })
        .await
        .map(|r| r.status())
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_and_a_probe_closes_it() {
    let (fake, server) = fake().await;
    let upstream = upstream(&server.url, quick_policy());
    fake.failing.store(true, Ordering::SeqCst);

    for _ in 0..3 {
        assert_eq!(
            get_work(&upstream).await.expect("an answer"),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(upstream.breaker_state(), BreakerState::Open);
    let started = Instant::now();
    for _ in 0..20 {
        assert!(matches!(
            get_work(&upstream).await,
            Err(CallError::BreakerOpen { .. })
        ));
    }
    assert!(started.elapsed() < Duration::from_millis(100), "fails fast");
    assert_eq!(
        fake.hits.load(Ordering::SeqCst),
        3,
        "open: nothing reaches the upstream"
    );

    // Still failing after the cooldown: the probe reopens it.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(upstream.breaker_state(), BreakerState::HalfOpen);
    assert_eq!(
        get_work(&upstream).await.expect("an answer"),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(upstream.breaker_state(), BreakerState::Open);

    // Recovered: the next probe closes it, and calls flow again.
    fake.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        get_work(&upstream).await.expect("an answer"),
        StatusCode::OK
    );
    assert_eq!(upstream.breaker_state(), BreakerState::Closed);
    for _ in 0..5 {
        assert_eq!(
            get_work(&upstream).await.expect("an answer"),
            StatusCode::OK
        );
    }
    let metrics = crate::server::prometheus().render();
    assert!(
        metrics.contains("client_breaker_state{upstream=\"fake\"} 0"),
        "the breaker's state is exported"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_dead_upstream_opens_the_breaker_too() {
    // Nothing listens on this port: connections are refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("bound").port()
    };
    let upstream = upstream(&format!("http://127.0.0.1:{port}"), quick_policy());
    for _ in 0..3 {
        assert!(matches!(
            get_work(&upstream).await,
            Err(CallError::Transport { .. })
        ));
    }
    assert!(matches!(
        get_work(&upstream).await,
        Err(CallError::BreakerOpen { .. })
    ));
    let problem = get_work(&upstream)
        .await
        .expect_err("no answer")
        .to_api_error();
    assert_eq!(problem.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem.problem().service.as_deref(), Some("fake"));
}

#[tokio::test]
async fn safe_calls_are_retried_and_unsafe_ones_are_not() {
    let (fake, server) = fake().await;
    let policy = CallPolicy {
        attempts: 3,
        ..quick_policy()
    };
    let upstream = upstream(&server.url, policy);

    fake.fail_first.store(2, Ordering::SeqCst);
    assert_eq!(
        get_work(&upstream).await.expect("an answer"),
        StatusCode::OK
    );
    assert_eq!(fake.hits.load(Ordering::SeqCst), 3, "two retries");

    // A POST without a key may have done its effect: one attempt only.
    fake.hits.store(0, Ordering::SeqCst);
    fake.fail_first.store(1, Ordering::SeqCst);
    let answer = upstream
        .send(Idempotency::of(&Method::POST, false), |base| {
            HttpClient::default().post(&format!("{base}/work"))
        })
        .await
        .expect("an answer");
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(fake.hits.load(Ordering::SeqCst), 1);

    // With an idempotency key it is safe again.
    fake.hits.store(0, Ordering::SeqCst);
    fake.fail_first.store(1, Ordering::SeqCst);
    let answer = upstream
        .send(Idempotency::of(&Method::POST, true), |base| {
            HttpClient::default().post(&format!("{base}/work"))
        })
        .await
        .expect("an answer");
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(fake.hits.load(Ordering::SeqCst), 2);
    server.stop().await;
}

#[tokio::test]
async fn the_deadline_travels_and_the_callee_stops_when_it_passes() {
    let (fake, callee) = fake().await;
    // A caller service whose handler calls the slow callee.
    let downstream = upstream(&callee.url, CallPolicy::default());
    let router = Router::new().route(
        "/call",
        post(move || {
            let downstream = downstream.clone();
            async move {
                match downstream
                    .send(Idempotency::Safe, |base| {
                        HttpClient::default().get(&format!("{base}/slow"))
                    })
                    .await
                {
                    Ok(r) => r.status(),
                    Err(e) => e.to_api_error().status(),
                }
            }
        }),
    );
    let caller = serve(router).await;

    let started = Instant::now();
    let answer = reqwest::Client::new()
        .post(format!("{}/call", caller.url))
        .header("x-deadline-ms", "300")
        .send()
        .await
        .expect("an answer");
    let took = started.elapsed();
    assert_eq!(answer.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    assert!(
        took < Duration::from_millis(1000),
        "answered at the deadline, took {took:?}"
    );
    let budget: u64 = fake
        .budget_ms
        .lock()
        .expect("not poisoned")
        .clone()
        .expect("the callee got a budget")
        .parse()
        .expect("milliseconds");
    assert!(
        (250..=300).contains(&budget),
        "the callee got what was left: {budget} ms"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(
        !fake.finished.load(Ordering::SeqCst),
        "the callee stopped working when the deadline passed"
    );
    caller.stop().await;
    callee.stop().await;
}

#[tokio::test]
async fn calls_beyond_the_concurrency_limit_fail_at_once() {
    let (_fake, server) = fake().await;
    let upstream = upstream(
        &server.url,
        CallPolicy {
            max_in_flight: 1,
            ..CallPolicy::default()
        },
    );
    let slow = {
        let upstream = upstream.clone();
        tokio::spawn(async move {
            upstream
                .send(Idempotency::Safe, |base| {
                    HttpClient::default().get(&format!("{base}/slow"))
                })
                .await
                .map(|r| r.status())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    assert!(matches!(
        get_work(&upstream).await,
        Err(CallError::Saturated { .. })
    ));
    assert!(started.elapsed() < Duration::from_millis(50));
    assert_eq!(
        slow.await.expect("joins").expect("an answer"),
        StatusCode::OK
    );
    assert_eq!(
        get_work(&upstream).await.expect("an answer"),
        StatusCode::OK
    );
    server.stop().await;
}
