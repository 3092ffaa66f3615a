//! Forwarding one request to its upstream service.
//!
//! Only the headers an upstream needs travel (content type, accept, the
//! caller's token, idempotency key); the trace context is added by the
//! platform client. An upstream that refuses the connection or does not
//! answer within the timeout becomes a 503 problem naming it, with
//! `Retry-After`, so a client never hangs on a dead service.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use platform::ApiError;
use platform::client::Idempotency;

use crate::AppState;
use crate::routes::{Auth, PREFIX};

/// The largest request body the gateway forwards.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

const REQUEST_HEADERS: &[header::HeaderName] =
    &[header::CONTENT_TYPE, header::ACCEPT, header::AUTHORIZATION];
const IDEMPOTENCY_KEY: &str = "idempotency-key";
const RESPONSE_HEADERS: &[header::HeaderName] = &[
    header::CONTENT_TYPE,
    header::LOCATION,
    header::RETRY_AFTER,
    header::WWW_AUTHENTICATE,
    header::CACHE_CONTROL,
    header::ETAG,
];

pub(crate) async fn forward(state: &AppState, service: &str, auth: Auth, req: Request) -> Response {
    match try_forward(state, service, auth, req).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn try_forward(
    state: &AppState,
    service: &str,
    auth: Auth,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    if auth == Auth::Token {
        state.verifier.verify_header(&parts).await?;
    }
    let upstream = state
        .upstream(service)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no upstream named {service}")))?;
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let path = path_and_query
        .strip_prefix(PREFIX)
        .unwrap_or(path_and_query);
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| ApiError::payload_too_large("the request body is larger than 64 KiB"))?;

    let build = |base: &str| {
        let mut request = state
            .client
            .request(parts.method.clone(), &format!("{base}{path}"));
        for name in REQUEST_HEADERS {
            if let Some(value) = parts.headers.get(name) {
                request = request.header(name, value);
            }
        }
        if let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) {
            request = request.header(IDEMPOTENCY_KEY, value);
        }
        if !body.is_empty() {
            request = request.body(body.clone());
        }
        request
    };

    // The platform's call path: a refused connection goes to the next
    // replica; a read, or a write under an idempotency key, is retried on
    // a failed answer; an upstream failing repeatedly trips its breaker.
    let idempotency = Idempotency::of(&parts.method, parts.headers.contains_key(IDEMPOTENCY_KEY));
    let upstream_response = upstream.send(idempotency, build).await?;
    let status = upstream_response.status();
    let mut response = Response::builder().status(status);
    for name in RESPONSE_HEADERS {
        if let Some(value) = upstream_response.headers().get(name) {
            response = response.header(name, value);
        }
    }
    let bytes = upstream_response
        .bytes()
        .await
        .map_err(|e| unavailable(service, e))?;
    response
        .body(Body::from(bytes))
        .map_err(|e| ApiError::internal(anyhow::anyhow!("cannot build the response: {e}")))
}

/// The 503 for an upstream that could not answer.
/// (The client stack's own answer for a transport failure, so both read alike.)
pub(crate) fn unavailable(service: &str, error: reqwest::Error) -> ApiError {
    platform::client::CallError::Transport {
        upstream: service.to_owned(),
        source: error,
    }
    .to_api_error()
}
