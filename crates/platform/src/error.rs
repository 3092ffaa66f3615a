//! The one error type of every HTTP API: rendered as RFC 9457
//! `application/problem+json`.
//!
//! Internal errors become an opaque 500; their cause chain travels to the
//! server's middleware in a response extension and is logged there, once,
//! with the request's trace id.

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contracts::problem::PROBLEM_JSON;
use contracts::{FieldError, Problem};

pub type ApiResult<T> = Result<T, ApiError>;

/// An error answer: status, problem fields, extra headers, and (for a 500)
/// the hidden cause. Boxed, so a `Result` carrying it stays small.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    slug: &'static str,
    detail: Option<String>,
    errors: Vec<FieldError>,
    service: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    cause: Option<anyhow::Error>,
}

/// The cause of an internal error, for the middleware that logs it.
#[derive(Clone, Debug)]
pub struct InternalCause(pub Arc<anyhow::Error>);

impl ApiError {
    pub fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status,
            slug,
            detail: Some(detail.into()),
            errors: Vec::new(),
            service: None,
            headers: Vec::new(),
            cause: None,
        }))
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", detail)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            detail,
        )
    }

    /// 422 with what is wrong with each field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "the request is not valid; see errors",
        );
        e.0.errors = errors;
        e
    }

    /// 422 for one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// 503 naming the upstream service that could not answer.
    pub fn unavailable(service: &str, detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            detail,
        );
        e.0.service = Some(service.to_owned());
        e
    }

    /// An opaque 500; `cause` is logged, never shown.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an unexpected error occurred; it has been logged",
        );
        e.0.cause = Some(cause.into());
        e
    }

    /// A problem with no more detail than its status.
    pub fn from_status(status: StatusCode) -> Self {
        let slug = match status {
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
            StatusCode::REQUEST_TIMEOUT => "timeout",
            StatusCode::TOO_MANY_REQUESTS => "rate-limited",
            s if s.is_server_error() => "internal",
            _ => "bad-request",
        };
        let mut e = Self::new(status, slug, "");
        e.0.detail = None;
        e
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The problem document this error renders.
    pub fn problem(&self) -> Problem {
        let e = &self.0;
        Problem {
            kind: format!("urn:feastfast:problem:{}", e.slug),
            title: e.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: e.status.as_u16(),
            detail: e.detail.clone(),
            errors: e.errors.clone(),
            service: e.service.clone(),
            trace_id: crate::context::current().map(|c| c.trace_id),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.status)?;
        if let Some(d) = &self.0.detail {
            write!(f, ": {d}")?;
        }
        if let Some(c) = &self.0.cause {
            write!(f, ": {c:#}")?;
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).expect("a problem document always serialises");
        let inner = *self.0;
        let mut response = (inner.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in inner.headers {
            headers.insert(name, value);
        }
        if let Some(cause) = inner.cause {
            response
                .extensions_mut()
                .insert(InternalCause(Arc::new(cause)));
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // Every connection busy for the pool's whole wait: the service
            // is overloaded, not broken; the caller may try again shortly.
            sqlx::Error::PoolTimedOut => Self::overloaded(),
            e => Self::internal(e),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::PoolTimedOut) => Self::overloaded(),
            _ => Self::internal(e),
        }
    }
}

impl ApiError {
    /// A 504 for a request whose caller's deadline (`x-deadline-ms`) passed
    /// before the answer was ready: the work stopped there.
    pub fn deadline_exceeded() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "deadline-exceeded",
            "the caller's deadline passed before the answer was ready; the work was stopped",
        )
    }

    /// A 503 with `Retry-After` for a service that has more work than it
    /// can take right now.
    pub fn overloaded() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the service is overloaded: no database connection came free in time; retry shortly",
        )
        .with_header(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        )
    }
}

#[cfg(test)]
mod overload_tests {
    use axum::response::IntoResponse;

    use super::ApiError;

    #[test]
    fn a_pool_that_timed_out_is_a_503_to_retry_not_a_500() {
        for error in [
            ApiError::from(sqlx::Error::PoolTimedOut),
            ApiError::from(anyhow::Error::from(sqlx::Error::PoolTimedOut).context("placing")),
        ] {
            let response = error.into_response();
            assert_eq!(
                response.status(),
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            );
            assert_eq!(response.headers()["retry-after"], "1");
        }
        let other = ApiError::from(sqlx::Error::RowNotFound).into_response();
        assert_eq!(
            other.status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}

/// Collects field errors while validating a request.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` for `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, message: &str) -> &mut Self {
        if !ok {
            self.errors.push(FieldError::new(field, message));
        }
        self
    }

    /// Parses `value` with `parse`, recording its error for `field`.
    pub fn parse<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(FieldError::new(field, e.to_string()));
                None
            }
        }
    }

    /// Records errors found elsewhere (a shared rule in `contracts`).
    pub fn extend(&mut self, errors: Vec<FieldError>) -> &mut Self {
        self.errors.extend(errors);
        self
    }

    /// Checks a required, trimmed text of `1..=max` characters and returns it.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> String {
        let value = value.trim();
        if value.is_empty() {
            self.errors
                .push(FieldError::new(field, "must not be empty"));
        } else if value.chars().count() > max {
            self.errors.push(FieldError::new(
                field,
                format!("must be at most {max} characters"),
            ));
        }
        value.to_owned()
    }

    /// Ok when nothing was recorded, else a 422 listing every field.
    pub fn finish(self) -> ApiResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}
