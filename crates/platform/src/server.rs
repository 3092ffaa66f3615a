//! The HTTP server every service runs.
//!
//! [`Service`] describes a service (its router, database, OpenAPI);
//! [`Server::bind`] wraps it in the standard endpoints and middleware and
//! binds the listener (port 0 in tests); [`Server::run_until_stopped`] serves
//! until SIGTERM, Ctrl-C or — when run by `feastfast up` — the supervisor's
//! exit, then shuts down gracefully: readiness flips to 503 first, in-flight
//! requests finish, and only then does the process exit.
//!
//! Every request gets a trace id (from a valid `traceparent` or new), a
//! request id, an `x-trace-id` response header, its context on every log
//! line written while it is served, and a count and latency in `/metrics`
//! under its route pattern.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::FutureExt;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::HttpConfig;
use crate::context::{self, RequestContext};
use crate::db::{self, Db};
use crate::error::{ApiError, InternalCause};

/// The default largest request body: JSON APIs need far less.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Work that finishes after the last request was answered (the outbox
/// relay's current batch), run once when the server has drained.
pub type ShutdownHook =
    Box<dyn FnOnce() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// What a service brings; the server adds the rest.
pub struct Service {
    pub name: &'static str,
    pub version: &'static str,
    pub router: Router,
    /// Checked by `/readyz`.
    pub db: Option<Db>,
    pub openapi: utoipa::openapi::OpenApi,
    pub body_limit: usize,
    /// Run in order once in-flight requests are done ([`Service::on_shutdown`]).
    pub shutdown_hooks: Vec<ShutdownHook>,
}

impl Service {
    pub fn new(name: &'static str, router: Router, openapi: utoipa::openapi::OpenApi) -> Self {
        Self {
            name,
            version: env!("CARGO_PKG_VERSION"),
            router,
            db: None,
            openapi,
            body_limit: DEFAULT_BODY_LIMIT,
            shutdown_hooks: Vec::new(),
        }
    }

    /// Runs `hook` when the server shuts down, after the last in-flight
    /// request was answered (readiness flipped first, then the listener
    /// closed, then the requests drained, then the hooks).
    pub fn on_shutdown<F>(mut self, hook: impl FnOnce() -> F + Send + 'static) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.shutdown_hooks
            .push(Box::new(move || Box::pin(hook()) as std::pin::Pin<Box<_>>));
        self
    }

    pub fn with_db(mut self, db: Db) -> Self {
        self.db = Some(db);
        self
    }
}

struct Health {
    name: &'static str,
    version: &'static str,
    db: Option<Db>,
    draining: AtomicBool,
}

/// A bound, not yet running, service.
pub struct Server {
    listener: TcpListener,
    max_connections: usize,
    app: Router,
    shutdown_hooks: Vec<ShutdownHook>,
    health: Arc<Health>,
    draining: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
}

/// Stops a running [`Server`] gracefully from elsewhere (tests).
#[derive(Clone)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        // send_replace stores the value even before the server subscribes.
        self.0.send_replace(true);
    }
}

impl Server {
    /// Binds `config` and assembles the service with the standard endpoints.
    ///
    /// Under `feastfast up` the port is bound with `SO_REUSEPORT`, so a new
    /// process of the same service can bind it while the old one still
    /// serves (a zero-downtime restart: the supervisor starts the new one,
    /// waits until it is ready, then drains the old). `up` refuses ports
    /// that something else holds before it starts anything.
    pub async fn bind(config: &HttpConfig, service: Service) -> std::io::Result<Server> {
        let addr = SocketAddr::new(config.host, config.port);
        let listener = if std::env::var_os(SUPERVISED_ENV).is_some() {
            shared_listener(addr)?
        } else {
            TcpListener::bind(addr).await?
        };
        let mut server = Self::with_listener(listener, service);
        server.max_connections = config.max_connections;
        Ok(server)
    }

    pub fn with_listener(listener: TcpListener, service: Service) -> Server {
        let health = Arc::new(Health {
            name: service.name,
            version: service.version,
            db: service.db,
            draining: AtomicBool::new(false),
        });
        let metrics = prometheus();
        metrics::gauge!("feastfast_build_info", "service" => service.name, "version" => service.version)
            .set(1.0);
        let mut openapi = service.openapi;
        openapi.info.title = format!("FeastFast {}", service.name);
        openapi.info.version = service.version.to_owned();
        let openapi = axum::body::Bytes::from(
            serde_json::to_vec(&openapi).expect("an OpenAPI document always serialises"),
        );

        let app = service
            .router
            .route("/livez", get(livez))
            .route("/readyz", get(readyz).with_state(health.clone()))
            .route(
                "/metrics",
                get(move || std::future::ready(metrics.render())),
            )
            .route(
                "/openapi.json",
                get(move || {
                    std::future::ready(
                        (
                            [(header::CONTENT_TYPE, "application/json")],
                            openapi.clone(),
                        )
                            .into_response(),
                    )
                }),
            )
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(service.body_limit));
        let (draining, draining_rx) = watch::channel(false);
        // One layer for all that wraps every request: axum boxes each layer
        // around every route and clones the boxes per request, so four
        // layers cost four allocations and four clones a request.
        let app = app.layer(middleware::from_fn_with_state(
            Arc::new(Serving {
                endpoints: Endpoints::default(),
                draining: Draining(draining_rx),
            }),
            observe,
        ));
        let (shutdown, _) = watch::channel(false);
        Server {
            listener,
            max_connections: crate::config::DEFAULT_MAX_CONNECTIONS,
            app,
            shutdown_hooks: service.shutdown_hooks,
            draining,
            health,
            shutdown,
        }
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .expect("a bound listener has an address")
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// Serves until SIGTERM, Ctrl-C, the supervisor's exit, or a
    /// [`ShutdownHandle`].
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mut handle = self.shutdown.subscribe();
        let stop = async move {
            tokio::select! {
                _ = terminate_signal() => {}
                _ = supervisor_gone() => {}
                _ = handle.wait_for(|stop| *stop) => {}
            }
        };
        self.run_until(stop).await
    }

    /// Serves until `stop` completes, then drains.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let health = self.health.clone();
        let draining = self.draining.clone();
        let name = health.name;
        tracing::info!(service = name, port = self.port(), "listening");
        let graceful = async move {
            stop.await;
            health.draining.store(true, Ordering::SeqCst);
            draining.send_replace(true);
            tracing::info!(service = name, "shutting down: draining in-flight requests");
        };
        // The peer's address is in each request's extensions (the gateway
        // rate-limits per client).
        let app = self
            .app
            .into_make_service_with_connect_info::<crate::listener::PeerAddr>();
        let listener = crate::listener::Capped::new(self.listener, self.max_connections);
        axum::serve(listener, app)
            .with_graceful_shutdown(graceful)
            .await?;
        for hook in self.shutdown_hooks {
            hook().await;
        }
        tracing::info!(service = name, "stopped");
        Ok(())
    }
}

/// A listener on `addr` that another process may bind too (`SO_REUSEPORT`).
fn shared_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn terminate_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Tells long-running handlers (the event feed's long poll) that the server
/// is shutting down, so they answer now instead of holding the drain up.
/// In the request extensions of every request the [`Server`] serves.
#[derive(Clone, Debug)]
pub struct Draining(watch::Receiver<bool>);

impl Draining {
    /// Completes once the server starts shutting down.
    pub async fn started(mut self) {
        let _ = self.0.wait_for(|d| *d).await;
    }
}

/// The environment variable `feastfast up` sets on its children: their stdin
/// is a pipe from the supervisor, and its end means the supervisor is gone.
pub const SUPERVISED_ENV: &str = "FEASTFAST_SUPERVISED";

/// Completes when the supervising `feastfast up` exits (however it died);
/// never, when not supervised.
async fn supervisor_gone() {
    if std::env::var_os(SUPERVISED_ENV).is_none() {
        return std::future::pending().await;
    }
    // A plain thread, not tokio's stdin: tokio reads stdin on its blocking
    // pool, and a runtime waits for its blocking tasks when it shuts down,
    // so a pending read would keep the process alive after the server stops.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 64];
        while let Ok(n) = std::io::Read::read(&mut stdin, &mut buf) {
            if n == 0 {
                break;
            }
        }
        let _ = tx.send(());
    });
    let _ = rx.await;
}

async fn livez() -> impl IntoResponse {
    axum::Json(json!({ "status": "alive" }))
}

async fn readyz(State(health): State<Arc<Health>>) -> Response {
    let draining = health.draining.load(Ordering::SeqCst);
    let database = match &health.db {
        None => None,
        Some(db) => Some(
            match tokio::time::timeout(Duration::from_secs(1), db::ping(db)).await {
                Ok(Ok(())) => "ok".to_owned(),
                Ok(Err(e)) => format!("error: {e}"),
                Err(_) => "error: no answer within 1 s".to_owned(),
            },
        ),
    };
    let ready = !draining && database.as_deref().is_none_or(|d| d == "ok");
    let body = json!({
        "status": if ready { "ready" } else if draining { "draining" } else { "not_ready" },
        "service": health.name,
        "version": health.version,
        // Which process answered: two share the port during a restart.
        "pid": std::process::id(),
        "checks": { "database": database },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a handler panicked".to_owned());
    ApiError::internal(anyhow::anyhow!("panic: {message}")).into_response()
}

/// Gives error answers that have no body (405 from the router, and any
/// layer's bare status) a problem document, so clients see one format.
fn problem_for_empty_errors(response: Response) -> Response {
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        let (parts, _) = response.into_parts();
        let mut fresh = ApiError::from_status(status).into_response();
        for (name, value) in parts.headers.iter() {
            fresh.headers_mut().entry(name).or_insert(value.clone());
        }
        return fresh;
    }
    response
}

/// What the one layer around every request keeps.
struct Serving {
    endpoints: Endpoints,
    /// Given to every request (the feed's long polls end when it flips).
    draining: Draining,
}

/// The RED metric handles of every route, method and status a server has
/// answered, made once and reused: `metrics::counter!` with labels builds
/// its key (a string per label) and looks the registry up on every call.
#[derive(Default)]
struct Endpoints(std::sync::RwLock<HashMap<Box<str>, Arc<Endpoint>>>);

/// One route's handles: per method, its duration histogram and a request
/// counter per status.
struct Endpoint {
    route: Arc<str>,
    methods: Mutex<Vec<MethodHandles>>,
}

struct MethodHandles {
    method: Method,
    duration: metrics::Histogram,
    counts: Vec<(StatusCode, metrics::Counter)>,
}

impl Endpoints {
    fn of(&self, route: &str) -> Arc<Endpoint> {
        let known = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(route)
            .cloned();
        known.unwrap_or_else(|| {
            self.0
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(route.into())
                .or_insert_with(|| {
                    Arc::new(Endpoint {
                        route: route.into(),
                        methods: Mutex::default(),
                    })
                })
                .clone()
        })
    }
}

impl Endpoint {
    /// Counts one answer and records its duration
    /// (`http_requests_total`, `http_request_duration_seconds`).
    fn record(&self, method: &Method, status: StatusCode, elapsed: Duration) {
        let route = || self.route.to_string();
        let mut methods = self
            .methods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = match methods.iter().position(|h| h.method == method) {
            Some(at) => at,
            None => {
                methods.push(MethodHandles {
                    method: method.clone(),
                    duration: metrics::histogram!("http_request_duration_seconds", "route" => route(), "method" => method.to_string()),
                    counts: Vec::new(),
                });
                methods.len() - 1
            }
        };
        let handles = &mut methods[at];
        handles.duration.record(elapsed.as_secs_f64());
        match handles.counts.iter().find(|(s, _)| *s == status) {
            Some((_, counter)) => counter.increment(1),
            None => {
                let counter = metrics::counter!("http_requests_total", "route" => route(), "method" => method.to_string(), "status" => status.as_str().to_owned());
                counter.increment(1);
                handles.counts.push((status, counter));
            }
        }
    }
}

/// Trace context, request log and RED metrics for every request; a
/// handler's panic answered as a 500 problem, and a bare error status
/// given its problem document.
async fn observe(State(serving): State<Arc<Serving>>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    req.extensions_mut().insert(serving.draining.clone());
    let endpoint = serving.endpoints.of(req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str));
    let method = req.method().clone();
    let trace_id = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(context::trace_id_from_traceparent)
        .unwrap_or_else(context::new_trace_id);
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    // The caller's budget: past it nobody waits for the answer, so the
    // work stops there (dropping the handler rolls back its transaction).
    let deadline = req
        .headers()
        .get(context::DEADLINE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(context::parse_budget)
        .map(|budget| start + budget);
    // What the log lines written while serving it name (no tracing span:
    // the formatter reads the context, `telemetry`).
    let ctx = RequestContext {
        method: method.clone(),
        route: endpoint.route.clone(),
        trace_id: trace_id.clone(),
        request_id: request_id.clone(),
        deadline,
    };
    let work = std::panic::AssertUnwindSafe(context::scope(ctx, next.run(req))).catch_unwind();
    let answered = match deadline {
        None => work.await,
        Some(deadline) => match tokio::time::timeout_at(deadline.into(), work).await {
            Ok(answered) => answered,
            Err(_) => {
                metrics::counter!("http_deadline_exceeded_total", "route" => endpoint.route.to_string())
                    .increment(1);
                Ok(ApiError::deadline_exceeded().into_response())
            }
        },
    };
    let mut response = problem_for_empty_errors(answered.unwrap_or_else(panic_response));
    let elapsed = start.elapsed();
    let status = response.status();

    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&trace_id) {
        headers.insert("x-trace-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v);
    }
    endpoint.record(&method, status, elapsed);

    let cause = response.extensions().get::<InternalCause>().map(|c| &c.0);
    if cause.is_some() || status.is_server_error() || tracing::enabled!(tracing::Level::DEBUG) {
        let ctx = RequestContext {
            method,
            route: endpoint.route.clone(),
            trace_id,
            request_id,
            deadline,
        };
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        context::in_scope(ctx, || {
            if let Some(cause) = cause {
                tracing::error!(
                    status = status.as_u16(),
                    latency_ms,
                    error = format!("{cause:#}"),
                    "request failed"
                );
            } else if status.is_server_error() {
                tracing::warn!(
                    status = status.as_u16(),
                    latency_ms,
                    "request answered with a server error"
                );
            } else {
                tracing::debug!(status = status.as_u16(), latency_ms, "request served");
            }
        });
    }
    response
}

/// The process-wide Prometheus recorder (installed once, even when a test
/// runs several services in one process).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".to_owned()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0,
                    ],
                )
                .expect("the bucket list is not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed in this process");
            let upkeep = handle.clone();
            // The recorder's histograms need periodic upkeep to bound memory.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        upkeep.run_upkeep();
                    }
                });
            }
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;
    use crate::telemetry::{Captured, LogFormat};

    async fn server(router: Router) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        Server::with_listener(
            listener,
            Service::new("observed", router, utoipa::openapi::OpenApi::default()),
        )
    }

    async fn call(
        server: &Server,
        method: Method,
        path: &str,
        traceparent: Option<&str>,
    ) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        server
            .app
            .clone()
            .oneshot(request.body(Body::empty()).expect("a request"))
            .await
            .expect("infallible")
    }

    #[tokio::test]
    async fn a_line_a_handler_logs_names_the_request_it_serves() {
        let captured = Captured::default();
        let _logging = tracing::subscriber::set_default(captured.subscriber(LogFormat::Json));
        let server = server(Router::new().route(
            "/orders/{id}",
            get(|| async {
                tracing::info!("looking the order up");
                "found"
            }),
        ))
        .await;
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let response = call(
            &server,
            Method::GET,
            "/orders/42",
            Some(&format!("00-{trace}-00f067aa0ba902b7-01")),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .expect("text")
            .to_owned();

        let text = captured.text();
        let line: serde_json::Value = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["fields"]["message"] == "looking the order up")
            .unwrap_or_else(|| panic!("the handler's line is logged: {text}"));
        assert_eq!(line["span"]["trace_id"], trace);
        assert_eq!(line["span"]["request_id"], request_id.as_str());
        assert_eq!(line["span"]["route"], "/orders/{id}");
        assert_eq!(line["span"]["method"], "GET");
    }

    #[tokio::test]
    async fn a_panicking_handler_and_a_bare_error_status_are_answered_as_problems() {
        let server = server(
            Router::new()
                .route(
                    "/boom",
                    get(|| async {
                        if true {
                            panic!("the kitchen is on fire");
                        }
                        "unreachable"
                    }),
                )
                .route("/bare", get(|| async { StatusCode::CONFLICT })),
        )
        .await;
        for (method, path, status) in [
            (Method::GET, "/boom", StatusCode::INTERNAL_SERVER_ERROR),
            (Method::GET, "/bare", StatusCode::CONFLICT),
            // The router's own 405 has no body either.
            (Method::DELETE, "/bare", StatusCode::METHOD_NOT_ALLOWED),
        ] {
            let response = call(&server, method.clone(), path, None).await;
            assert_eq!(response.status(), status, "{method} {path}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/problem+json",
                "{method} {path}"
            );
            assert!(
                response.headers().contains_key("x-trace-id"),
                "{method} {path}"
            );
            let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
                .await
                .expect("a body");
            let problem: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(problem["status"], status.as_u16(), "{method} {path}");
        }
        // The panic took nothing down: the server still answers.
        let response = call(&server, Method::GET, "/bare", None).await;
        assert_eq!(response.status(), StatusCode::CONFLICT);
    }

    #[tokio::test]
    async fn each_route_method_and_status_is_counted_on_its_own() {
        let server = server(Router::new().route(
            "/metered/{id}",
            get(|| async { "ok" }).post(|| async { StatusCode::CREATED }),
        ))
        .await;
        for (method, path) in [
            (Method::GET, "/metered/1"),
            (Method::GET, "/metered/2"),
            (Method::POST, "/metered/3"),
        ] {
            call(&server, method, path, None).await;
        }
        let rendered = prometheus().render();
        let count = |method: &str, status: &str| {
            rendered
                .lines()
                .find(|l| {
                    l.starts_with("http_requests_total{")
                        && l.contains(r#"route="/metered/{id}""#)
                        && l.contains(&format!(r#"method="{method}""#))
                        && l.contains(&format!(r#"status="{status}""#))
                })
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(count("GET", "200").as_deref(), Some("2"), "{rendered}");
        assert_eq!(count("POST", "201").as_deref(), Some("1"), "{rendered}");
        assert!(
            rendered
                .lines()
                .any(|l| l.starts_with("http_request_duration_seconds_count{")
                    && l.contains(r#"route="/metered/{id}""#)
                    && l.contains(r#"method="POST""#)
                    && l.ends_with(" 1")),
            "{rendered}"
        );
    }
}
