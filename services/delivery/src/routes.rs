//! The delivery service's HTTP API: thin handlers over `store`.
//!
//! Couriers (role `courier`) report where they are and whether they take
//! work, list their deliveries, and move their delivery through pick-up
//! and drop-off. Other services read a delivery by order id
//! (`/internal/...`, service tokens only).
//!
//! Invariant: a courier acts only on their own deliveries; another
//! courier's delivery is a 404, exactly like one that does not exist, so
//! ids reveal nothing. Checks run in the order 401, 403, 404, 409.
//! Every status change commits with the event announcing it.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post, put};
use contracts::Problem;
use contracts::delivery::{
    Courier, CourierMoved, CourierUpdate, Delivery, DeliveryDelivered, DeliveryPickedUp,
    DeliveryStatus,
};
use contracts::identity::Role;
use contracts::{OrderId, UserId};
use platform::auth::ServiceCaller;
use platform::db::begin_write;
use platform::error::Validator;
use platform::events::enqueue;
use platform::{ApiError, ApiResult, Identity, Json, Path, Query};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::AppState;
use crate::store;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/couriers/me", put(update_me))
        .route("/couriers/me/deliveries", get(my_deliveries))
        .route("/deliveries/{id}/pickup", post(pickup))
        .route("/deliveries/{id}/deliver", post(deliver))
        .route(
            "/internal/deliveries/by-order/{order_id}",
            get(delivery_by_order),
        )
        .route(
            "/internal/deliveries/by-order/{order_id}/cancel",
            post(cancel_by_order),
        )
}

#[derive(OpenApi)]
#[openapi(paths(
    update_me,
    my_deliveries,
    pickup,
    deliver,
    delivery_by_order,
    cancel_by_order
))]
pub struct ApiDoc;

/// Reports the courier's availability and location (creating the courier
/// on first use). An available courier without a delivery is offered the
/// nearest pending one; going unavailable keeps the delivery in hand (it
/// is finished) but no new one comes.
#[utoipa::path(put, path = "/couriers/me", request_body = CourierUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Courier),
        (status = 401, body = Problem),
        (status = 403, description = "not a courier", body = Problem),
        (status = 422, description = "invalid location", body = Problem)))]
async fn update_me(
    State(state): State<AppState>,
    identity: Identity,
    Json(req): Json<CourierUpdate>,
) -> ApiResult<Json<Courier>> {
    identity.require(Role::Courier)?;
    let mut v = Validator::new();
    v.check(
        req.location.is_valid(),
        "location",
        "must have lat within -90..=90 and lng within -180..=180",
    );
    v.finish()?;

    let me = identity.user_id;
    let mut tx = begin_write(&state.db).await?;
    let before = store::courier_location(&mut tx, me).await?;
    store::upsert_courier(&mut tx, me, req.available, req.location).await?;
    let moved = before != Some(req.location);
    let mut announced = false;
    // The customer's live map follows the courier only while the courier
    // has their order, and only when the courier actually moved.
    if moved && let Some(order_id) = store::active_order_of(&mut tx, me).await? {
        enqueue(
            &mut tx,
            &CourierMoved {
                order_id,
                courier_id: me,
                location: req.location,
            },
        )
        .await?;
        announced = true;
    }
    let courier = store::courier(&mut tx, me).await?.ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("courier {me} vanished in its own write"))
    })?;
    tx.commit().await?;
    if announced {
        state.outbox.notify();
    }
    if courier.available && courier.active_delivery_id.is_none() {
        state.dispatch.notify_one();
    }
    Ok(Json(courier))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryParams {
    /// PENDING, ASSIGNED, PICKED_UP, DELIVERED or CANCELLED.
    status: Option<String>,
}

/// A courier's deliveries, newest first (at most 100).
#[derive(Debug, Serialize, ToSchema)]
struct DeliveryList {
    items: Vec<Delivery>,
}

/// The caller's own deliveries, newest first, optionally of one status.
#[utoipa::path(get, path = "/couriers/me/deliveries", params(DeliveryParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = DeliveryList),
        (status = 401, body = Problem),
        (status = 403, description = "not a courier", body = Problem),
        (status = 422, description = "unknown status", body = Problem)))]
async fn my_deliveries(
    State(state): State<AppState>,
    identity: Identity,
    Query(params): Query<DeliveryParams>,
) -> ApiResult<Json<DeliveryList>> {
    identity.require(Role::Courier)?;
    let status = params
        .status
        .as_deref()
        .map(|s| {
            platform::extract::upper_case_enum::<DeliveryStatus>(
                "status",
                s,
                "PENDING, ASSIGNED, PICKED_UP, DELIVERED or CANCELLED",
            )
        })
        .transpose()?;
    let items = store::deliveries_of(&state.db, identity.user_id, status).await?;
    Ok(Json(DeliveryList { items }))
}

/// The courier has the food: `ASSIGNED` → `PICKED_UP`.
#[utoipa::path(post, path = "/deliveries/{id}/pickup",
    params(("id" = String, Path, description = "the delivery id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Delivery),
        (status = 401, body = Problem),
        (status = 403, description = "not a courier", body = Problem),
        (status = 404, description = "no such delivery of yours", body = Problem),
        (status = 409, description = "not assigned (the detail names its status)", body = Problem)))]
async fn pickup(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult<Json<Delivery>> {
    identity.require(Role::Courier)?;
    let me = identity.user_id;
    let delivery = advance(
        &state,
        me,
        &id,
        DeliveryStatus::Assigned,
        DeliveryStatus::PickedUp,
        |d| {
            Step::PickedUp(DeliveryPickedUp {
                order_id: d.order_id,
                delivery_id: d.id.clone(),
                courier_id: me,
            })
        },
    )
    .await?;
    Ok(Json(delivery))
}

/// The food reached the customer: `PICKED_UP` → `DELIVERED`; the courier is
/// free for the next delivery.
#[utoipa::path(post, path = "/deliveries/{id}/deliver",
    params(("id" = String, Path, description = "the delivery id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Delivery),
        (status = 401, body = Problem),
        (status = 403, description = "not a courier", body = Problem),
        (status = 404, description = "no such delivery of yours", body = Problem),
        (status = 409, description = "not picked up (the detail names its status)", body = Problem)))]
async fn deliver(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult<Json<Delivery>> {
    identity.require(Role::Courier)?;
    let me = identity.user_id;
    let delivery = advance(
        &state,
        me,
        &id,
        DeliveryStatus::PickedUp,
        DeliveryStatus::Delivered,
        |d| {
            Step::Delivered(DeliveryDelivered {
                order_id: d.order_id,
                delivery_id: d.id.clone(),
                courier_id: me,
            })
        },
    )
    .await?;
    // The courier is free: an available one gets the next delivery.
    state.dispatch.notify_one();
    Ok(Json(delivery))
}

/// An event that announces a courier's step.
enum Step {
    PickedUp(DeliveryPickedUp),
    Delivered(DeliveryDelivered),
}

/// Moves `courier`'s delivery `id` from `from` to `to` and enqueues the
/// event `announce` makes, in one transaction.
async fn advance(
    state: &AppState,
    courier: UserId,
    id: &str,
    from: DeliveryStatus,
    to: DeliveryStatus,
    announce: impl FnOnce(&Delivery) -> Step,
) -> ApiResult<Delivery> {
    let not_found = || ApiError::not_found(format!("you have no delivery {id:?}"));
    // Delivery ids are UUIDs; anything else cannot name one.
    let id = uuid::Uuid::parse_str(id)
        .map_err(|_| not_found())?
        .to_string();
    let mut tx = begin_write(&state.db).await?;
    let moved = store::transition(&mut tx, &id, courier, from, to).await?;
    let delivery = store::delivery(&mut tx, &id)
        .await?
        .filter(|d| d.courier_id == Some(courier))
        .ok_or_else(not_found)?;
    if !moved {
        return Err(ApiError::conflict(format!(
            "this delivery is {}; it must be {} for that",
            delivery.status.as_str(),
            from.as_str()
        )));
    }
    match announce(&delivery) {
        Step::PickedUp(e) => enqueue(&mut tx, &e).await?,
        Step::Delivered(e) => enqueue(&mut tx, &e).await?,
    };
    tx.commit().await?;
    state.outbox.notify();
    Ok(delivery)
}

/// The delivery of an order, for the gateway's order page.
#[utoipa::path(get, path = "/internal/deliveries/by-order/{order_id}",
    params(("order_id" = String, Path, description = "the order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Delivery),
        (status = 401, body = Problem),
        (status = 403, description = "not a service token", body = Problem),
        (status = 404, description = "no delivery for that order (yet)", body = Problem)))]
async fn delivery_by_order(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Path(order): Path<String>,
) -> ApiResult<Json<Delivery>> {
    let not_found = || ApiError::not_found(format!("no delivery for order {order:?}"));
    let order_id = OrderId::parse(&order).map_err(|_| not_found())?;
    store::delivery_by_order(&state.db, order_id)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}

/// Cancels an order's delivery unless the courier already picked it up:
/// the orders service asks before it accepts a customer's cancel, so food
/// on its way is never cancelled under the courier. Safe to repeat; an
/// order without a delivery yet is 404 (its `order.cancelled` event will
/// cancel the delivery when it is created).
#[utoipa::path(post, path = "/internal/deliveries/by-order/{order_id}/cancel",
    params(("order_id" = String, Path, description = "the order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "cancelled (or was already)", body = Delivery),
        (status = 404, description = "no delivery for that order (yet)", body = Problem),
        (status = 409, description = "already picked up or delivered", body = Problem)))]
async fn cancel_by_order(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Path(order): Path<String>,
) -> ApiResult<Json<Delivery>> {
    let not_found = || ApiError::not_found(format!("no delivery for order {order:?}"));
    let order_id = OrderId::parse(&order).map_err(|_| not_found())?;
    let mut tx = platform::db::begin_write(&state.db).await?;
    let cancelled = store::cancel_for_order(&mut tx, order_id).await?;
    tx.commit().await?;
    if cancelled {
        // Its courier is free for the next delivery.
        state.dispatch.notify_one();
    }
    let delivery = store::delivery_by_order(&state.db, order_id)
        .await?
        .ok_or_else(not_found)?;
    match delivery.status {
        DeliveryStatus::Cancelled => Ok(Json(delivery)),
        other => Err(ApiError::conflict(format!(
            "the delivery is {}; it can no longer be cancelled",
            other.as_str()
        ))),
    }
}
