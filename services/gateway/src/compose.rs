//! Composition: answers the gateway builds from more than one service.
//!
//! `GET /api/v1/orders/{id}` is the order from `orders` with its delivery
//! part from `delivery`. Delivery is not critical to the order page: when
//! it cannot answer within a short timeout, the order still comes back,
//! with `delivery: null` and `degraded: ["delivery"]`, so the customer sees
//! their order and learns the courier's whereabouts are unknown for now.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use serde_json::{Value, json};

use crate::AppState;
use crate::forward::forward;
use crate::routes::Auth;

/// How long the order page waits for the delivery part.
const DELIVERY_BUDGET: Duration = Duration::from_millis(800);
/// The largest order document the gateway will re-write.
const MAX_ORDER: usize = 1024 * 1024;

pub(crate) async fn order(state: &AppState, auth: Auth, req: Request) -> Response {
    let order_id = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let response = forward(state, "orders", auth, req).await;
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ORDER).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(mut order) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    match delivery_of(state, &order_id).await {
        Ok(delivery) => order["delivery"] = delivery,
        Err(why) => {
            tracing::info!(order_id, why, "order shown without its delivery part");
            order["delivery"] = Value::Null;
            order["degraded"] = json!(["delivery"]);
        }
    }
    let body = serde_json::to_vec(&order).expect("a JSON value always serialises");
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The delivery of an order as the order page shows it; `null` before
/// there is one.
async fn delivery_of(state: &AppState, order_id: &str) -> Result<Value, String> {
    let Some(delivery) = state.upstream("delivery") else {
        return Ok(Value::Null);
    };
    let path = format!("/internal/deliveries/by-order/{order_id}");
    let answer = state.internal_get(delivery, &path, DELIVERY_BUDGET).await?;
    match answer.status() {
        s if s.is_success() => {
            let d: Value = answer.json().await.map_err(|e| e.to_string())?;
            Ok(json!({
                "id": d["id"],
                "status": d["status"],
                "courier_id": d["courier_id"],
                "courier_location": d["courier_location"],
                "eta": d["eta"],
                "pickup": d["pickup"],
                "dropoff": d["dropoff"],
            }))
        }
        reqwest::StatusCode::NOT_FOUND => Ok(Value::Null),
        other => Err(format!("delivery answered {other}")),
    }
}
