//! The request context: method, route, trace id and request id of the
//! request being served.
//!
//! The server's middleware sets it for the duration of each request (a
//! task-local); the outbound client reads it, so a call made while serving
//! a request carries the same trace without any handler passing it along,
//! and the log formatter reads it, so every line logged while serving a
//! request names it.
//!
//! It also holds the request's deadline: a caller's remaining budget
//! arrives as `x-deadline-ms` (milliseconds, relative, so clocks need not
//! agree); the server stops working on the request when it passes, and
//! every call made while serving it gets at most what is left.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

/// The header carrying a caller's remaining budget, in milliseconds.
pub const DEADLINE_HEADER: &str = "x-deadline-ms";

/// The longest budget a caller may give (a larger one is cut to this).
pub const MAX_BUDGET: Duration = Duration::from_secs(60);

/// What travels with one request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// `GET`, `POST`, …
    pub method: axum::http::Method,
    /// The route pattern that matched (`/orders/{id}`), or `unmatched`.
    pub route: Arc<str>,
    /// 32 lowercase hex digits (W3C trace-id).
    pub trace_id: String,
    pub request_id: String,
    /// When the caller stops waiting for the answer, if it said.
    pub deadline: Option<Instant>,
}

/// The budget in an `x-deadline-ms` header value: digits only, at most
/// [`MAX_BUDGET`]. `None` for anything else (a bad header is ignored, as a
/// missing one is: the service's own timeouts still apply).
pub fn parse_budget(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms: u64 = value.parse().ok()?;
    Some(Duration::from_millis(ms).min(MAX_BUDGET))
}

/// What is left of the current request's budget: `None` when it has no
/// deadline (work done outside a request, or a caller that gave none).
pub fn remaining() -> Option<Duration> {
    CURRENT
        .try_with(|c| c.deadline)
        .ok()
        .flatten()
        .map(|d| d.saturating_duration_since(Instant::now()))
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// The context of the request being served by this task, if any.
pub fn current() -> Option<RequestContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// `f` of the context of the request being served by this task, if any,
/// without copying it.
pub fn with_current<R>(f: impl FnOnce(&RequestContext) -> R) -> Option<R> {
    CURRENT.try_with(f).ok()
}

/// Runs `f` (synchronous) with `ctx` as the current context.
pub fn in_scope<R>(ctx: RequestContext, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(ctx, f)
}

/// Runs `fut` with `ctx` as the current context.
pub async fn scope<F: std::future::Future>(ctx: RequestContext, fut: F) -> F::Output {
    CURRENT.scope(ctx, fut).await
}

/// A fresh W3C trace id.
pub fn new_trace_id() -> String {
    hex(&rand::thread_rng().r#gen::<[u8; 16]>())
}

fn new_span_id() -> String {
    hex(&rand::thread_rng().r#gen::<[u8; 8]>())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The trace id of a valid W3C `traceparent` header
/// (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`).
pub fn trace_id_from_traceparent(header: &str) -> Option<String> {
    let mut parts = header.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let is_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = is_hex(version, 2)
        && version != "ff"
        && is_hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && is_hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && is_hex(flags, 2)
        && (version != "00" || parts.next().is_none());
    valid.then(|| trace.to_owned())
}

/// A `traceparent` for an outbound call made within `trace_id`.
pub fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{}-01", new_span_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_valid_traceparent() {
        assert_eq!(
            trace_id_from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned())
        );
    }

    #[test]
    fn refuses_malformed_traceparents() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(trace_id_from_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_a_budget_and_refuses_anything_else() {
        assert_eq!(parse_budget("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_budget(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_budget("999999999"), Some(MAX_BUDGET));
        for bad in ["", "-5", "1.5", "12ms", "0x10", "9999999999999"] {
            assert_eq!(parse_budget(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_budget_left_shrinks_and_is_none_outside_a_request() {
        assert_eq!(remaining(), None);
        let ctx = RequestContext {
            method: axum::http::Method::GET,
            route: "/r".into(),
            trace_id: new_trace_id(),
            request_id: "r".into(),
            deadline: Some(Instant::now() + Duration::from_millis(500)),
        };
        let left = scope(ctx, async { remaining() }).await.expect("a deadline");
        assert!(left <= Duration::from_millis(500) && left > Duration::from_millis(400));
    }

    #[test]
    fn outbound_traceparent_keeps_the_trace_and_is_valid() {
        let trace = new_trace_id();
        let header = traceparent(&trace);
        assert_eq!(trace_id_from_traceparent(&header), Some(trace));
    }
}
