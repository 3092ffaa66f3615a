//! The kitchen: stock reservations and tickets, for the order saga
//! (`/internal/...`, service tokens only) and for owners (their tickets).
//!
//! Invariants: stock never goes below zero and is reserved at most once per
//! order; a ticket exists only for a live reservation; an owner can accept
//! only until the ticket's `accept_by` (after it the saga rejects the order
//! on its own timer); every ticket change and the event announcing it
//! commit together.

pub(crate) mod store;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use contracts::identity::Role;
use contracts::kitchen::{
    RejectTicket, Reservation, ReserveRequest, Ticket, TicketAccepted, TicketReady, TicketRejected,
    TicketStatus,
};
use contracts::{OrderId, Problem, RestaurantId};
use platform::auth::ServiceCaller;
use platform::error::Validator;
use platform::events::enqueue;
use platform::{ApiError, ApiResult, Identity, Json, Path, Query};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use crate::AppState;
use store::ReserveError;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/internal/orders/{order_id}/reservation", post(reserve))
        .route(
            "/internal/orders/{order_id}/reservation/release",
            post(release),
        )
        .route("/internal/orders/{order_id}/ticket", post(create_ticket))
        .route(
            "/internal/orders/{order_id}/ticket/cancel",
            post(cancel_ticket),
        )
        .route("/restaurants/{id}/tickets", get(list_tickets))
        .route("/restaurants/{id}/tickets/{order_id}/accept", post(accept))
        .route("/restaurants/{id}/tickets/{order_id}/reject", post(reject))
        .route("/restaurants/{id}/tickets/{order_id}/ready", post(ready))
}

#[derive(OpenApi)]
#[openapi(paths(
    reserve,
    release,
    create_ticket,
    cancel_ticket,
    list_tickets,
    accept,
    reject,
    ready
))]
pub(crate) struct KitchenDoc;

fn order_id(text: &str) -> ApiResult<OrderId> {
    OrderId::parse(text).map_err(|_| ApiError::not_found(format!("no order {text:?}")))
}

/// Prices the order's lines and reserves their stock, atomically. A repeat
/// for the same order answers the first reservation.
#[utoipa::path(post, path = "/internal/orders/{order_id}/reservation", request_body = ReserveRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Reservation),
        (status = 409, description = "not available (the detail says why), or a different reservation exists", body = Problem),
        (status = 422, body = Problem)))]
async fn reserve(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Path(order): Path<String>,
    Json(req): Json<ReserveRequest>,
) -> ApiResult<Json<Reservation>> {
    let order = order_id(&order)?;
    let mut v = Validator::new();
    v.extend(contracts::kitchen::line_errors(&req.items));
    v.finish()?;
    match store::reserve(&state.db, order, &req).await {
        Ok((reservation, announced)) => {
            if announced {
                state.outbox.notify();
            }
            Ok(Json(reservation))
        }
        Err(ReserveError::Unavailable(why)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "unavailable", why))
        }
        Err(e @ ReserveError::Conflict(_)) => Err(ApiError::conflict(e.to_string())),
        Err(ReserveError::Db(e)) => Err(e.into()),
    }
}

/// Gives a reservation's stock back. Safe to repeat, and a no-op for an
/// order that never reserved.
#[utoipa::path(post, path = "/internal/orders/{order_id}/reservation/release",
    security(("bearer" = [])), responses((status = 204)))]
async fn release(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Path(order): Path<String>,
) -> ApiResult<StatusCode> {
    store::release(&state.db, order_id(&order)?).await?;
    state.outbox.notify();
    Ok(StatusCode::NO_CONTENT)
}

/// Opens the ticket of a reserved order: accepted at once when the
/// restaurant auto-accepts, else pending until the owner acts or the
/// window closes. A repeat answers the existing ticket.
#[utoipa::path(post, path = "/internal/orders/{order_id}/ticket",
    security(("bearer" = [])),
    responses((status = 200, body = Ticket), (status = 409, description = "no live reservation", body = Problem)))]
async fn create_ticket(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Path(order): Path<String>,
) -> ApiResult<Json<Ticket>> {
    let order = order_id(&order)?;
    let mut tx = platform::db::begin_write(&state.db).await?;
    let auto_accept: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(s.auto_accept AS INTEGER) FROM reservations r \
         JOIN restaurants s ON s.id = r.restaurant_id WHERE r.order_id = $1",
    )
    .bind(order.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    let status = if auto_accept == Some(1) {
        TicketStatus::Accepted
    } else {
        TicketStatus::Pending
    };
    let accept_by = platform::time::from_now(state.accept_window);
    let Some((ticket, created)) = store::insert_ticket(&mut tx, order, status, &accept_by).await?
    else {
        return Err(ApiError::conflict(format!(
            "order {order} has no live reservation"
        )));
    };
    if created && ticket.status == TicketStatus::Accepted {
        enqueue(
            &mut tx,
            &TicketAccepted {
                order_id: order,
                restaurant_id: ticket.restaurant_id,
            },
        )
        .await?;
    }
    tx.commit().await?;
    state.outbox.notify();
    Ok(Json(ticket))
}

/// Cancels a ticket (the order was cancelled or rejected). Safe to repeat;
/// a ticket already rejected or cancelled stays as it is.
#[utoipa::path(post, path = "/internal/orders/{order_id}/ticket/cancel",
    security(("bearer" = [])), responses((status = 204)))]
async fn cancel_ticket(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Path(order): Path<String>,
) -> ApiResult<StatusCode> {
    let order = order_id(&order)?;
    let mut tx = platform::db::begin_write(&state.db).await?;
    store::transition(
        &mut tx,
        order,
        None,
        &[
            TicketStatus::Pending,
            TicketStatus::Accepted,
            TicketStatus::Ready,
        ],
        TicketStatus::Cancelled,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TicketParams {
    /// PENDING, ACCEPTED, REJECTED, READY or CANCELLED.
    status: Option<String>,
}

/// The owner's tickets, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct TicketList {
    items: Vec<Ticket>,
}

/// Checks that the caller owns restaurant `id` (401, 404, 403 in that order).
async fn owned(state: &AppState, identity: &Identity, id: &str) -> ApiResult<RestaurantId> {
    let id = RestaurantId::parse(id)
        .map_err(|_| ApiError::not_found(format!("no restaurant {id:?}")))?;
    let owner = crate::store::owner_of(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no restaurant {id}")))?;
    identity.require(Role::RestaurantOwner)?;
    if owner != identity.user_id {
        return Err(ApiError::forbidden("this is not your restaurant"));
    }
    Ok(id)
}

#[utoipa::path(get, path = "/restaurants/{id}/tickets", params(TicketParams),
    security(("bearer" = [])),
    responses((status = 200, body = TicketList), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_tickets(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    Query(params): Query<TicketParams>,
) -> ApiResult<Json<TicketList>> {
    let restaurant = owned(&state, &identity, &id).await?;
    let status = params
        .status
        .as_deref()
        .map(|s| {
            platform::extract::upper_case_enum::<TicketStatus>(
                "status",
                s,
                "PENDING, ACCEPTED, REJECTED, READY or CANCELLED",
            )
        })
        .transpose()?;
    let items = store::tickets_of(&state.db, restaurant, status).await?;
    Ok(Json(TicketList { items }))
}

/// The ticket `order` of restaurant `restaurant`, or 404.
async fn ticket_of(
    conn: &mut sqlx::AnyConnection,
    restaurant: RestaurantId,
    order: &str,
) -> ApiResult<Ticket> {
    let order = order_id(order)?;
    store::ticket(conn, order)
        .await?
        .filter(|t| t.restaurant_id == restaurant)
        .ok_or_else(|| ApiError::not_found(format!("no ticket for order {order} here")))
}

fn wrong_state(ticket: &Ticket, action: &str) -> ApiError {
    ApiError::conflict(format!(
        "cannot {action} a ticket that is {}",
        store::status_text(ticket.status)
    ))
}

/// Accepts a pending ticket, within its window.
#[utoipa::path(post, path = "/restaurants/{id}/tickets/{order_id}/accept",
    security(("bearer" = [])),
    responses((status = 200, body = Ticket), (status = 409, description = "not pending, or the window has passed", body = Problem)))]
async fn accept(
    State(state): State<AppState>,
    identity: Identity,
    Path((id, order)): Path<(String, String)>,
) -> ApiResult<Json<Ticket>> {
    let restaurant = owned(&state, &identity, &id).await?;
    let mut tx = platform::db::begin_write(&state.db).await?;
    let now = platform::time::now();
    let order_id = order_id(&order)?;
    let moved = sqlx::query(
        "UPDATE tickets SET status = 'ACCEPTED', updated_at = $1 \
         WHERE order_id = $2 AND restaurant_id = $3 AND status = 'PENDING' AND accept_by >= $1",
    )
    .bind(&now)
    .bind(order_id.to_string())
    .bind(restaurant.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let ticket = ticket_of(&mut tx, restaurant, &order).await?;
    if moved == 0 {
        return Err(if ticket.status == TicketStatus::Pending {
            ApiError::conflict("the acceptance window has passed; the order is being rejected")
        } else {
            wrong_state(&ticket, "accept")
        });
    }
    enqueue(
        &mut tx,
        &TicketAccepted {
            order_id,
            restaurant_id: restaurant,
        },
    )
    .await?;
    tx.commit().await?;
    state.outbox.notify();
    Ok(Json(ticket))
}

/// Rejects a pending ticket, with a reason the customer sees.
#[utoipa::path(post, path = "/restaurants/{id}/tickets/{order_id}/reject", request_body = RejectTicket,
    security(("bearer" = [])),
    responses((status = 200, body = Ticket), (status = 409, description = "not pending", body = Problem)))]
async fn reject(
    State(state): State<AppState>,
    identity: Identity,
    Path((id, order)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Ticket>> {
    let restaurant = owned(&state, &identity, &id).await?;
    // The body is optional: an empty one rejects with the default reason.
    let body: RejectTicket = if body.is_empty() {
        RejectTicket::default()
    } else {
        platform::extract::parse_json(&body)?
    };
    let reason = body
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "the restaurant cannot take this order".to_owned());
    if reason.chars().count() > 200 {
        return Err(ApiError::invalid_field(
            "reason",
            "must be at most 200 characters",
        ));
    }
    let mut tx = platform::db::begin_write(&state.db).await?;
    let order_id = order_id(&order)?;
    let moved = store::transition(
        &mut tx,
        order_id,
        Some(restaurant),
        &[TicketStatus::Pending],
        TicketStatus::Rejected,
        Some(&reason),
    )
    .await?;
    let ticket = ticket_of(&mut tx, restaurant, &order).await?;
    if !moved {
        return Err(wrong_state(&ticket, "reject"));
    }
    enqueue(
        &mut tx,
        &TicketRejected {
            order_id,
            restaurant_id: restaurant,
            reason,
        },
    )
    .await?;
    tx.commit().await?;
    state.outbox.notify();
    Ok(Json(ticket))
}

/// Marks an accepted ticket ready for pick-up.
#[utoipa::path(post, path = "/restaurants/{id}/tickets/{order_id}/ready",
    security(("bearer" = [])),
    responses((status = 200, body = Ticket), (status = 409, description = "not accepted", body = Problem)))]
async fn ready(
    State(state): State<AppState>,
    identity: Identity,
    Path((id, order)): Path<(String, String)>,
) -> ApiResult<Json<Ticket>> {
    let restaurant = owned(&state, &identity, &id).await?;
    let mut tx = platform::db::begin_write(&state.db).await?;
    let order_id = order_id(&order)?;
    let moved = store::transition(
        &mut tx,
        order_id,
        Some(restaurant),
        &[TicketStatus::Accepted],
        TicketStatus::Ready,
        None,
    )
    .await?;
    let ticket = ticket_of(&mut tx, restaurant, &order).await?;
    if !moved {
        return Err(wrong_state(&ticket, "mark ready"));
    }
    enqueue(
        &mut tx,
        &TicketReady {
            order_id,
            restaurant_id: restaurant,
        },
    )
    .await?;
    tx.commit().await?;
    state.outbox.notify();
    Ok(Json(ticket))
}
