//! Extractors whose rejections are problem+json.
//!
//! [`Json`] also names the offending field: a body that is not JSON is a
//! 400, JSON of the wrong shape is a 422 listing the field path, a body
//! over the limit is a 413, and a wrong content type is a 415.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use contracts::FieldError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request or response body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(&req) {
            return Err(ApiError::unsupported_media_type(
                "expected a body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON body, naming the field that does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { "body".to_owned() } else { path };
                ApiError::validation(vec![FieldError::new(field, strip_position(&inner))])
            }
            _ => not_json(&inner),
        }
    })?;
    de.end().map_err(|e| not_json(&e))?;
    Ok(value)
}

fn not_json(e: &serde_json::Error) -> ApiError {
    ApiError::bad_request(format!("the body is not valid JSON: {e}"))
}

/// A query parameter naming a value of an upper-case wire enum (such as a
/// status filter), in any case; a 422 naming `field` and the `expected`
/// values otherwise.
pub fn upper_case_enum<T: DeserializeOwned>(
    field: &str,
    text: &str,
    expected: &str,
) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::String(text.to_uppercase()))
        .map_err(|_| ApiError::invalid_field(field, format!("must be {expected}")))
}

fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

fn has_json_content_type(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

fn bytes_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large("the request body is larger than this endpoint accepts")
    } else {
        ApiError::bad_request(format!("could not read the request body: {e}"))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string; a malformed one is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request(e.body_text()))
    }
}

/// Path parameters; a malformed one is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| ApiError::bad_request(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        location: Loc,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Loc {
        lat: f64,
    }

    #[test]
    fn syntax_errors_are_400() {
        let e = parse_json::<Body>(b"{\"name\": ").expect_err("invalid");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e = parse_json::<Body>(b"{\"name\":\"a\",\"location\":{\"lat\":1}} trailing")
            .expect_err("invalid");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn shape_errors_are_422_naming_the_field() {
        let e =
            parse_json::<Body>(br#"{"name":"a","location":{"lat":"north"}}"#).expect_err("invalid");
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.problem().errors[0].field, "location.lat");
        let e = parse_json::<Body>(br#"{"location":{"lat":1}}"#).expect_err("invalid");
        assert_eq!(e.problem().errors[0].field, "body");
        assert!(e.problem().errors[0].message.contains("name"));
    }
}
