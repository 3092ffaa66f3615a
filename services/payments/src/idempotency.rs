//! Idempotency keys: a command sent twice has one effect and one answer.
//!
//! A command claims its key by inserting the key's row as the **first**
//! write of its transaction, does its work, stores its answer in that row
//! and commits: the effect, its ledger entry, its event and its answer
//! commit together or not at all. A repeat of the key finds the row and
//! gets the stored answer byte for byte. Two requests with the same key at
//! once cannot both apply: the second one's insert waits for the first
//! transaction (PostgreSQL's unique index; SQLite's single writer) and then
//! fails as a duplicate, so it replays the answer the first one committed.
//!
//! Only answers that committed something are stored. A refused request
//! (422, 409, 404) rolls back with its key, which stays free: nothing
//! happened that a repeat must not do again, and a retry after the state
//! changed (an authorization that arrived late, say) is judged afresh.
//!
//! Nothing here is specific to payments except the table; the orders
//! service's `Idempotency-Key` needs the same, so this is a candidate for
//! `platform`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::db::is_unique_violation;
use platform::{ApiError, ApiResult, Db};
use sqlx::{Any, Transaction};

/// The request header that names a command.
pub(crate) const HEADER: &str = "idempotency-key";
/// Set on an answer that repeats a stored one.
pub(crate) const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The longest key accepted (the saga's `<uuid>:<step>` is about 50).
pub(crate) const MAX_KEY_LEN: usize = 255;

/// The `Idempotency-Key` of a command: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdempotencyKey(String);

impl IdempotencyKey {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(HEADER).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(ApiError::bad_request(
                "send exactly one Idempotency-Key header naming this command \
                 (for example <order id>:capture)",
            ));
        };
        value
            .to_str()
            .ok()
            .filter(|key| {
                (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
            })
            .map(|key| IdempotencyKey(key.to_owned()))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "the Idempotency-Key must be 1 to 255 visible ASCII characters",
                )
            })
    }
}

/// A command's answer: as first sent, or as stored and repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    /// JSON, exactly as sent the first time.
    pub(crate) body: String,
    pub(crate) replayed: bool,
}

impl Answer {
    /// A 200 with `value` as its JSON body.
    pub(crate) fn ok<T: serde::Serialize>(value: &T) -> ApiResult<Answer> {
        Ok(Answer {
            status: StatusCode::OK,
            body: serde_json::to_string(value).map_err(ApiError::internal)?,
            replayed: false,
        })
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.body,
        )
            .into_response();
        if self.replayed {
            response
                .headers_mut()
                .insert(REPLAYED, HeaderValue::from_static("true"));
        }
        response
    }
}

/// What [`begin`] found.
pub(crate) enum Begun {
    /// The key is new: this transaction holds it (and, on SQLite, the write
    /// lock). Apply the command, then [`finish`].
    Fresh(Transaction<'static, Any>),
    /// The key answered before: send this again.
    Replay(Answer),
}

/// Claims `key` for `request` (the command's canonical form) in a new
/// transaction, or finds its stored answer. The same key with another
/// request is a 422: a key names one command, and guessing which one the
/// caller meant would risk doing the wrong thing once.
pub(crate) async fn begin(db: &Db, key: &IdempotencyKey, request: &str) -> ApiResult<Begun> {
    let mut tx = db.begin().await?;
    // The claim must be the transaction's first statement: on SQLite a
    // write that starts the transaction waits for the lock (busy timeout)
    // and then sees the latest data, while a read first would pin an older
    // snapshot and make the later write fail at once.
    let claim = sqlx::query(
        "INSERT INTO idempotency_keys (key, request, response_status, response_body, created_at) \
         VALUES ($1, $2, 0, '', $3)",
    )
    .bind(key.as_str())
    .bind(request)
    .bind(platform::time::now())
    .execute(&mut *tx)
    .await;
    match claim {
        Ok(_) => return Ok(Begun::Fresh(tx)),
        Err(e) if is_unique_violation(&e) => tx.rollback().await?,
        Err(e) => return Err(e.into()),
    }
    let stored: Option<(String, i64, String)> = sqlx::query_as(
        "SELECT request, response_status, response_body FROM idempotency_keys WHERE key = $1",
    )
    .bind(key.as_str())
    .fetch_optional(db)
    .await?;
    // The row we collided with was committed, and keys are never deleted.
    let (stored_request, status, body) = stored.ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "idempotency key {} collided but is not stored",
            key.as_str()
        ))
    })?;
    if stored_request != request {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "this Idempotency-Key was already used for a different request; \
             use a new key for a new command",
        ));
    }
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "idempotency key {} stores the status {status}",
                key.as_str()
            ))
        })?;
    Ok(Begun::Replay(Answer {
        status,
        body,
        replayed: true,
    }))
}

/// Stores `answer` under `key` and commits the command's transaction.
pub(crate) async fn finish(
    mut tx: Transaction<'static, Any>,
    key: &IdempotencyKey,
    answer: &Answer,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = $1, response_body = $2 WHERE key = $3",
    )
    .bind(i64::from(answer.status.as_u16()))
    .bind(&answer.body)
    .bind(key.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
