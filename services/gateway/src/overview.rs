//! `GET /api/v1/ops/overview`: what the ops view's live service map shows.
//!
//! Only real data: each service's health (the same probe as
//! `/ops/services`), figures read from its own `/metrics` (request and
//! error counters, latency sums, outbox and consumer lag, and any circuit
//! breaker gauge once a service exports one), the event flows each
//! consumer reports (`consumer_lag_events{source}`), and the orders
//! service's count of orders by status. Counters are cumulative: the view
//! derives rates from two readings. Whatever cannot be read is `null`,
//! never a guess.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use contracts::ops::ServiceStatus;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use platform::Json;

const SCRAPE_TIMEOUT: Duration = Duration::from_secs(1);

/// The whole picture at one moment.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Overview {
    /// Whether this is a local `feastfast up` run (stop/start available).
    local_run: bool,
    services: Vec<ServiceOverview>,
    /// Who calls whom (HTTP) and which events flow where.
    edges: Vec<Edge>,
    /// Orders per status, from the orders service; `null` while it is down.
    #[schema(value_type = Option<Object>)]
    orders_by_status: Option<BTreeMap<String, i64>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServiceOverview {
    #[serde(flatten)]
    health: ServiceStatus,
    /// Figures from the service's `/metrics`; `null` if it could not be read.
    metrics: Option<Figures>,
}

/// Cumulative figures from one service's Prometheus text.
#[derive(Debug, Default, PartialEq, Serialize, ToSchema)]
pub(crate) struct Figures {
    /// Requests served, probes and scrapes (`/livez`, `/readyz`,
    /// `/metrics`) left out.
    requests_total: f64,
    /// Of those, answered with a 5xx.
    server_errors_total: f64,
    /// Sum and count of request durations, long polls and streams
    /// (`/events`, `/stream`) left out, so latency means answer time.
    latency_seconds_sum: f64,
    latency_count: f64,
    /// Events written but not yet published (`outbox_unpublished`).
    outbox_unpublished: Option<f64>,
    /// Age of the oldest unpublished event (`outbox_oldest_unpublished_seconds`).
    outbox_oldest_seconds: Option<f64>,
    /// Per producer this service consumes from: events behind its head.
    consumer_lag: BTreeMap<String, f64>,
    /// Per producer: events parked as dead letters.
    dead_letters: BTreeMap<String, f64>,
    /// Every sample of a metric whose name mentions a circuit breaker,
    /// as exported (empty until a service exports one).
    breakers: Vec<Sample>,
}

/// One Prometheus sample.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct Edge {
    from: String,
    to: String,
    /// `call` (synchronous HTTP) or `event` (a consumer following a feed).
    kind: &'static str,
    label: String,
}

/// The synchronous calls in the code: the gateway forwards to every
/// service; the saga calls restaurants and payments (and delivery to
/// cancel); every service fetches keys and tokens from users.
const CALLS: &[(&str, &str, &str)] = &[
    ("gateway", "users", "auth, keys"),
    ("gateway", "restaurants", "catalog, tickets"),
    ("gateway", "orders", "orders"),
    ("gateway", "delivery", "couriers, order page"),
    ("orders", "restaurants", "reserve, ticket"),
    ("orders", "payments", "authorize, capture, void"),
    ("orders", "delivery", "cancel delivery"),
];

/// The ops view's data.
#[utoipa::path(get, path = "/api/v1/ops/overview",
    responses((status = 200, body = Overview)))]
pub(crate) async fn overview(State(state): State<AppState>) -> Json<Overview> {
    let Json(health) = crate::ops::services(State(state.clone())).await;
    let mut scrapes = tokio::task::JoinSet::new();
    for (i, s) in health.iter().enumerate() {
        let state = state.clone();
        let (name, url) = (s.name.clone(), s.url.clone());
        scrapes.spawn(async move { (i, scrape(&state, &name, &url).await) });
    }
    let counts = orders_by_status(&state);
    let (mut figures, orders_by_status) = tokio::join!(scrapes.join_all(), counts);
    figures.sort_by_key(|(i, _)| *i);

    let mut edges: Vec<Edge> = CALLS
        .iter()
        .filter(|(from, to, _)| known(&health, from) && known(&health, to))
        .map(|&(from, to, label)| Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            kind: "call",
            label: label.to_owned(),
        })
        .collect();
    for (s, (_, f)) in health.iter().zip(&figures) {
        // A replica consumes for its service: one edge per service.
        let to = service_of(&state, &s.name);
        for source in f.iter().flat_map(|f| f.consumer_lag.keys()) {
            let edge = Edge {
                from: source.clone(),
                to: to.clone(),
                kind: "event",
                label: "events".to_owned(),
            };
            if !edges.contains(&edge) {
                edges.push(edge);
            }
        }
    }
    // The gateway follows the orders and delivery events for live pages
    // (`live.rs`, from the feeds or NATS); it keeps no cursor, so it
    // exports no lag.
    for source in ["orders", "delivery"] {
        if known(&health, source) {
            edges.push(Edge {
                from: source.to_owned(),
                to: "gateway".to_owned(),
                kind: "event",
                label: "live push".to_owned(),
            });
        }
    }
    let services = health
        .into_iter()
        .zip(figures)
        .map(|(health, (_, metrics))| ServiceOverview { health, metrics })
        .collect();
    Json(Overview {
        local_run: state.config.control_url.is_some(),
        services,
        edges,
        orders_by_status,
    })
}

/// The service an instance (`orders`, `orders-2`, …) belongs to.
fn service_of(state: &AppState, instance: &str) -> String {
    state
        .config
        .upstreams
        .iter()
        .find(|u| u.replicas().any(|(name, _)| name == instance))
        .map_or(instance, |u| u.name)
        .to_owned()
}

fn known(health: &[ServiceStatus], name: &str) -> bool {
    health.iter().any(|s| s.name == name)
}

/// The figures of one service instance (each replica its own); the
/// gateway reads its own recorder.
async fn scrape(state: &AppState, name: &str, url: &str) -> Option<Figures> {
    let text = if name == "gateway" {
        platform::server::prometheus().render()
    } else {
        read(state, &format!("{url}/metrics"), None)
            .await?
            .text()
            .await
            .ok()?
    };
    Some(figures(&parse(&text)))
}

async fn orders_by_status(state: &AppState) -> Option<BTreeMap<String, i64>> {
    let orders = state.upstream("orders")?;
    let token = state.tokens.token().await.ok()?;
    let url = orders.endpoints().url("/internal/orders/status-counts");
    read(state, &url, Some(token)).await?.json().await.ok()
}

/// A successful answer to `GET url` within the scrape timeout, or `None`.
async fn read(state: &AppState, url: &str, token: Option<String>) -> Option<reqwest::Response> {
    let mut request = state.client.get(url).timeout(SCRAPE_TIMEOUT);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.ok()?;
    response.status().is_success().then_some(response)
}

const PROBES: &[&str] = &["/livez", "/readyz", "/metrics"];

fn figures(samples: &[Sample]) -> Figures {
    let mut f = Figures::default();
    let route = |s: &Sample| s.labels.get("route").cloned().unwrap_or_default();
    for s in samples {
        match s.name.as_str() {
            "http_requests_total" if !PROBES.contains(&route(s).as_str()) => {
                f.requests_total += s.value;
                if s.labels.get("status").is_some_and(|c| c.starts_with('5')) {
                    f.server_errors_total += s.value;
                }
            }
            "http_request_duration_seconds_sum" | "http_request_duration_seconds_count"
                if answers(&route(s)) =>
            {
                if s.name.ends_with("_sum") {
                    f.latency_seconds_sum += s.value;
                } else {
                    f.latency_count += s.value;
                }
            }
            "outbox_unpublished" => f.outbox_unpublished = Some(s.value),
            "outbox_oldest_unpublished_seconds" => f.outbox_oldest_seconds = Some(s.value),
            "consumer_lag_events" => {
                if let Some(source) = s.labels.get("source") {
                    f.consumer_lag.insert(source.clone(), s.value);
                }
            }
            "events_dead_letters_parked" => {
                if let Some(source) = s.labels.get("source") {
                    f.dead_letters.insert(source.clone(), s.value);
                }
            }
            name if name.contains("breaker") => f.breakers.push(s.clone()),
            _ => {}
        }
    }
    f
}

/// Whether a route's duration is an answer time (not a probe, a long
/// poll or a stream).
fn answers(route: &str) -> bool {
    !PROBES.contains(&route) && !route.starts_with("/events") && !route.ends_with("/stream")
}

/// Parses Prometheus text exposition (the subset `metrics-exporter-prometheus`
/// writes: `name{label="value",…} number`, comments skipped).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = value.trim().parse().ok()?;
    let (name, labels) = match head.split_once('{') {
        Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)?),
        None => (head, BTreeMap::new()),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `a="x",b="y \"q\""` → {a: x, b: y "q"}.
fn labels(mut rest: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.insert(key.trim().to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE http_requests_total counter
http_requests_total{route="/orders",method="POST",status="201"} 7
http_requests_total{route="/orders",method="GET",status="503"} 2
http_requests_total{route="/readyz",method="GET",status="200"} 40
http_request_duration_seconds_sum{route="/orders",method="POST"} 0.35
http_request_duration_seconds_count{route="/orders",method="POST"} 7
http_request_duration_seconds_sum{route="/events",method="GET"} 90
http_request_duration_seconds_count{route="/events",method="GET"} 9
http_request_duration_seconds_bucket{route="/orders",method="POST",le="0.1"} 7
outbox_unpublished 3
outbox_oldest_unpublished_seconds 1.5
consumer_lag_events{source="restaurants"} 4
events_dead_letters_parked{source="delivery"} 1
circuit_breaker_state{upstream="payments",note="a \"quoted\" value"} 1
"#;

    #[test]
    fn figures_are_read_from_prometheus_text() {
        let f = figures(&parse(TEXT));
        assert_eq!(f.requests_total, 9.0);
        assert_eq!(f.server_errors_total, 2.0);
        assert_eq!(f.latency_seconds_sum, 0.35);
        assert_eq!(f.latency_count, 7.0);
        assert_eq!(f.outbox_unpublished, Some(3.0));
        assert_eq!(f.outbox_oldest_seconds, Some(1.5));
        assert_eq!(f.consumer_lag["restaurants"], 4.0);
        assert_eq!(f.dead_letters["delivery"], 1.0);
        assert_eq!(f.breakers.len(), 1);
        assert_eq!(f.breakers[0].labels["upstream"], "payments");
        assert_eq!(f.breakers[0].labels["note"], "a \"quoted\" value");
    }

    #[test]
    fn nothing_is_made_up_for_a_service_without_these_metrics() {
        let f = figures(&parse(
            "# nothing\nfeastfast_build_info{service=\"users\"} 1\n",
        ));
        assert_eq!(f, Figures::default());
        assert!(parse("garbage line\nname{unclosed=\"x} 1\n").is_empty());
    }
}
