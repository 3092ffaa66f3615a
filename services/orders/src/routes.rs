//! The orders API: place, read, list and cancel — thin handlers over the
//! store and the orchestrator.

use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use contracts::catalog::Page;
use contracts::identity::Role;
use contracts::orders::{Order, OrderPayment, OrderStatus, PlaceOrder};
use contracts::payments::PaymentMethod;
use contracts::{OrderId, Problem};
use platform::error::Validator;
use platform::{ApiError, ApiResult, Identity, Json, Path, Query};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use crate::AppState;
use crate::domain::{PaymentState, SagaError, SagaEvent};
use crate::orchestrator::{ApplyError, CourierRelease};
use crate::store::{self, Facts, StoredOrder};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", post(place).get(list))
        .route("/orders/{id}", get(read))
        .route("/orders/{id}/cancel", post(cancel))
}

#[derive(OpenApi)]
#[openapi(paths(place, read, list, cancel))]
pub struct ApiDoc;

const MAX_KEY: usize = 200;

fn validate(req: &PlaceOrder) -> ApiResult<()> {
    let mut v = Validator::new();
    v.extend(contracts::kitchen::line_errors(&req.items));
    v.text("delivery_address.line1", &req.delivery_address.line1, 200);
    v.text("delivery_address.city", &req.delivery_address.city, 100);
    v.check(
        req.delivery_address.location.is_valid(),
        "delivery_address.location",
        "must have lat within -90..=90 and lng within -180..=180",
    );
    // One rule for payment methods, shared with payments: test tokens
    // only, and a card number is refused without being echoed.
    v.parse("payment_method", PaymentMethod::parse(&req.payment_method));
    v.finish()
}

/// Places an order and runs its saga until it reaches a decision or about
/// two seconds pass: 201 with the decided order, else 202 with the pending
/// one (the saga goes on either way). The same `Idempotency-Key` with the
/// same body answers the same order; with another body, 422.
#[utoipa::path(post, path = "/orders", request_body = PlaceOrder,
    params(("Idempotency-Key" = String, Header, description = "required; one order per key")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "decided", body = Order),
        (status = 202, description = "still deciding", body = Order),
        (status = 400, description = "no Idempotency-Key", body = Problem),
        (status = 422, body = Problem)))]
async fn place(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    Json(req): Json<PlaceOrder>,
) -> ApiResult<Response> {
    identity.require(Role::Customer)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::bad_request("the Idempotency-Key header is required"))?
        .to_owned();
    if key.len() > MAX_KEY {
        return Err(ApiError::bad_request(
            "the Idempotency-Key is longer than 200 characters",
        ));
    }
    validate(&req)?;
    let fingerprint = serde_json::to_string(&req).expect("a request always serialises");

    let id = OrderId::new();
    let mut tx = platform::db::begin_write(&state.db).await?;
    if let Some(first) = store::idempotent(&mut tx, identity.user_id, &key).await? {
        drop(tx);
        return replay(&state, first, &fingerprint).await;
    }
    // Claim the key before anything else: a concurrent request with the
    // same key waits on it, then finds the first one's order and replays.
    match store::remember_key(&mut tx, identity.user_id, &key, &fingerprint, id, 202).await {
        Ok(()) => {}
        Err(e) if platform::db::is_unique_violation(&e) => {
            drop(tx);
            let mut conn = state.db.acquire().await?;
            let first = store::idempotent(&mut conn, identity.user_id, &key)
                .await?
                .ok_or_else(|| {
                    ApiError::internal(anyhow::anyhow!("key {key:?} vanished after a conflict"))
                })?;
            return replay(&state, first, &fingerprint).await;
        }
        Err(e) => return Err(e.into()),
    }
    let inserted = store::insert(
        &mut tx,
        id,
        identity.user_id,
        &req,
        &crate::domain::Saga::new(),
    )
    .await?;
    // Started: persisted with its first commands and order.placed.
    let (_, started) = state
        .orchestrator
        .apply_to(&mut tx, inserted, SagaEvent::Started, &Facts::default())
        .await
        .map_err(apply_error)?;
    tx.commit().await?;
    state.outbox.notify();

    let deadline = Instant::now() + state.decision_deadline;
    state
        .orchestrator
        .drive_until(id, Some(started), deadline)
        .await;
    // Another driver (the sweeper) may have picked the saga up first; then
    // wait for its decision the same way, until the deadline. (Read, not
    // the order the drive left: a consumer may have moved it since.)
    let mut order = view(&state, id).await?;
    while !decided(order.status) && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        order = view(&state, id).await?;
    }
    let code = if decided(order.status) { 201 } else { 202 };
    store::set_key_response(&state.db, identity.user_id, &key, code).await?;
    Ok(respond(code, order))
}

/// The answer to a repeated `POST /orders`: the first order, with the
/// first answer's status, if the body is the same; 422 if not.
async fn replay(
    state: &AppState,
    (stored, order_id, code): (String, OrderId, u16),
    fingerprint: &str,
) -> ApiResult<Response> {
    if stored != fingerprint {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            "was already used for a different order; use a new key for a new order",
        ));
    }
    let order = view(state, order_id).await?;
    Ok(respond(code, order))
}

/// Whether `POST /orders` may answer 201: the saga decided to go ahead
/// (the restaurant has it) or decided against it.
fn decided(status: OrderStatus) -> bool {
    !matches!(status, OrderStatus::Pending | OrderStatus::PaymentPending)
}

fn respond(code: u16, order: Order) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::ACCEPTED);
    (status, Json(order)).into_response()
}

fn apply_error(e: ApplyError) -> ApiError {
    match e {
        ApplyError::NotFound(id) => ApiError::not_found(format!("no order {id}")),
        ApplyError::Saga(e @ SagaError::CannotCancel { .. }) => ApiError::conflict(e.to_string()),
        ApplyError::Saga(e) => ApiError::conflict(e.to_string()),
        ApplyError::Contended(id) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("order {id} is changing; try again"),
        ),
        ApplyError::Db(e) => e.into(),
    }
}

/// The order `id` as the API shows it (without its delivery part, which
/// the gateway composes).
pub(crate) async fn view(state: &AppState, id: OrderId) -> ApiResult<Order> {
    let mut conn = state.db.acquire().await?;
    let order = store::load(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no order {id}")))?;
    let timeline = store::timeline(&mut conn, id).await?;
    Ok(to_order(order, timeline))
}

fn to_order(order: StoredOrder, timeline: Vec<contracts::orders::TimelineEntry>) -> Order {
    let saga = &order.saga;
    let quote = saga.quote();
    Order {
        id: order.id,
        status: saga.status(),
        customer_id: order.customer_id,
        restaurant_id: order.restaurant_id,
        items: order.items,
        subtotal_cents: quote.map_or(0, |q| q.subtotal_cents),
        delivery_fee_cents: quote.map_or(0, |q| q.delivery_fee_cents),
        total_cents: quote.map_or(0, |q| q.total_cents()),
        payment: OrderPayment {
            status: payment_status(saga.payment()).to_owned(),
        },
        delivery: None,
        delivery_address: order.request.delivery_address,
        pickup: order.pickup,
        rejection_reason: saga.rejection_reason().map(str::to_owned),
        timeline,
        created_at: order.created_at,
        updated_at: order.updated_at,
    }
}

fn payment_status(p: PaymentState) -> &'static str {
    match p {
        PaymentState::NotRequested | PaymentState::Authorizing { .. } => "pending",
        PaymentState::Authorized { .. }
        | PaymentState::Voiding { .. }
        | PaymentState::Capturing { .. } => "authorized",
        PaymentState::Declined => "declined",
        PaymentState::Voided { .. } => "voided",
        PaymentState::Captured { .. } => "captured",
    }
}

/// Loads `id` for the caller: its customer, or an admin. Anyone else gets
/// the same 404 as for an order that does not exist.
async fn readable(state: &AppState, identity: &Identity, id: &str) -> ApiResult<StoredOrder> {
    let not_found = || ApiError::not_found(format!("no order {id:?}"));
    let id = OrderId::parse(id).map_err(|_| not_found())?;
    let mut conn = state.db.acquire().await?;
    let order = store::load(&mut conn, id).await?.ok_or_else(not_found)?;
    if order.customer_id != identity.user_id && identity.role != Role::Admin {
        return Err(not_found());
    }
    Ok(order)
}

/// One order: its customer's (or an admin's).
#[utoipa::path(get, path = "/orders/{id}", security(("bearer" = [])),
    responses((status = 200, body = Order), (status = 404, body = Problem)))]
async fn read(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let order = readable(&state, &identity, &id).await?;
    let mut conn = state.db.acquire().await?;
    let timeline = store::timeline(&mut conn, order.id).await?;
    Ok(Json(to_order(order, timeline)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Orders per page, 1 to 100 (default 20).
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The caller's own orders, newest first.
#[utoipa::path(get, path = "/orders", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = Page<Order>), (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    identity: Identity,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<Order>>> {
    let limit = params.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 100",
        ));
    }
    let before = params
        .cursor
        .as_deref()
        .map(|c| OrderId::parse(c).map_err(|_| ApiError::bad_request("malformed cursor")))
        .transpose()?;
    let mut rows = store::list_for(&state.db, identity.user_id, before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = rows.last().filter(|_| more).map(|o| o.id.to_string());
    let mut conn = state.db.acquire().await?;
    let mut items = Vec::with_capacity(rows.len());
    for order in rows {
        let timeline = store::timeline(&mut conn, order.id).await?;
        items.push(to_order(order, timeline));
    }
    Ok(Json(Page { items, next_cursor }))
}

/// Cancels the caller's order, unless the courier already picked it up
/// (409). The answer is `CANCEL_PENDING` while the compensations run, or
/// `CANCELLED`.
#[utoipa::path(post, path = "/orders/{id}/cancel", security(("bearer" = [])),
    responses((status = 200, body = Order), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn cancel(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let order = readable(&state, &identity, &id).await?;
    let (id, status) = (order.id, order.saga.status());
    if matches!(
        status,
        OrderStatus::Confirmed | OrderStatus::CourierAssigned
    ) {
        // Delivery knows whether the food left; ask it first.
        match state.orchestrator.release_courier(id).await {
            CourierRelease::Released => {}
            CourierRelease::PickedUp(why) => return Err(ApiError::conflict(why)),
            CourierRelease::Unknown(why) => {
                return Err(ApiError::unavailable(
                    "delivery",
                    format!(
                        "cannot tell whether the courier picked the order up ({why}); try again"
                    ),
                ));
            }
        }
    }
    state
        .orchestrator
        .apply(id, SagaEvent::CancelRequested, &Facts::default())
        .await
        .map_err(apply_error)?;
    let deadline = Instant::now() + state.decision_deadline;
    state.orchestrator.drive_until(id, None, deadline).await;
    Ok(Json(view(&state, id).await?))
}
