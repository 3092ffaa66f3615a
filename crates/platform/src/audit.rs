//! `GET /internal/audit`: what a stateful service tells `feastfast verify`
//! about itself (the wire types are `contracts::audit`). Each service
//! brings the read of its own tables; the route, its service-token check
//! and the events part ([`crate::events::audit`]) are the same everywhere.

use std::future::Future;

use axum::Router;
use axum::routing::get;
use serde::Serialize;

use crate::auth::ServiceCaller;
use crate::db::Db;
use crate::error::ApiResult;
use crate::extract::Json;

/// The audit route of a service whose audit `read` takes from `db`.
pub fn router<S, T, F, Fut>(db: Db, read: F) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    T: Serialize + Send + 'static,
    F: Fn(Db) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, sqlx::Error>> + Send + 'static,
{
    Router::new().route(
        "/internal/audit",
        get(move |_caller: ServiceCaller| {
            let (db, read) = (db.clone(), read.clone());
            async move { ApiResult::Ok(Json(read(db).await?)) }
        }),
    )
}
