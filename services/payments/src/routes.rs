//! The payments service's internal HTTP API: thin handlers over
//! `commands` and `store`.
//!
//! Invariant: every route checks, in this order, that the caller is a
//! service (401 without a token, 403 with a user's), that a command names
//! itself with one `Idempotency-Key` (400), that its body is JSON of the
//! right shape (400, 415, 422), that the order id is an id (404) and that
//! amounts and the payment method are valid (422); only then does the
//! command meet the payment (404 none, 409 wrong state, 422 beyond its
//! bounds). A request refused at any of these records nothing, not even
//! its key.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use contracts::payments::{
    AuthorizeRequest, CaptureRequest, MAX_AMOUNT_CENTS, Payment, PaymentMethod, RefundRequest,
    valid_amount,
};
use contracts::{OrderId, Problem};
use platform::auth::ServiceCaller;
use platform::error::Validator;
use platform::{ApiError, ApiResult, Json, Path};
use utoipa::OpenApi;

use crate::AppState;
use crate::commands::{self, Command};
use crate::idempotency::{Answer, IdempotencyKey};
use crate::store;

pub(crate) fn router() -> Router<AppState> {
    // `/authorize` is a static segment, which axum matches before the
    // `{order_id}` capture.
    Router::new()
        .route("/internal/payments/authorize", post(authorize))
        .route("/internal/payments/{order_id}", get(payment))
        .route("/internal/payments/{order_id}/capture", post(capture))
        .route("/internal/payments/{order_id}/void", post(void))
        .route("/internal/payments/{order_id}/refund", post(refund))
}

#[derive(OpenApi)]
#[openapi(paths(authorize, payment, capture, void, refund))]
pub struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Authorizes (holds) an order's amount with a payment method token. A
/// decline is an answer, not an error: 200 with `status: declined`.
#[utoipa::path(post, path = "/internal/payments/authorize", request_body = AuthorizeRequest,
    params(("Idempotency-Key" = String, Header,
        description = "names the command, e.g. `<order id>:authorize`; a repeat gets the first answer")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "authorized or declined", body = Payment),
        (status = 400, description = "no Idempotency-Key", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "not a service token", body = Problem),
        (status = 409, description = "the order already has a payment", body = Problem),
        (status = 422, description = "invalid amount or payment method (card numbers are refused), \
            or the key was used for another request", body = Problem)))]
async fn authorize(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    key: IdempotencyKey,
    Json(req): Json<AuthorizeRequest>,
) -> ApiResult<Answer> {
    let mut v = Validator::new();
    check_amount(&mut v, req.amount_cents);
    let method = v.parse("payment_method", PaymentMethod::parse(&req.payment_method));
    v.finish()?;
    let Some(method) = method else {
        unreachable!("the validator passed, so the method parsed");
    };
    let command = Command::Authorize {
        order_id: req.order_id,
        amount_cents: req.amount_cents,
        method,
    };
    commands::run(&state, &key, command).await
}

/// An order's payment.
#[utoipa::path(get, path = "/internal/payments/{order_id}",
    params(("order_id" = OrderId, Path, description = "the order")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Payment),
        (status = 401, body = Problem),
        (status = 403, description = "not a service token", body = Problem),
        (status = 404, description = "the order has no payment", body = Problem)))]
async fn payment(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Path(order_id): Path<String>,
) -> ApiResult<Json<Payment>> {
    let order_id = order_id_of(&order_id)?;
    let mut conn = state.db.acquire().await?;
    store::payment(&mut conn, order_id)
        .await?
        .map(|stored| Json(stored.payment))
        .ok_or_else(|| no_payment(&order_id.to_string()))
}

/// Captures an authorization, in full (no amount) or in part; once. What
/// is not captured is released.
#[utoipa::path(post, path = "/internal/payments/{order_id}/capture", request_body = CaptureRequest,
    params(
        ("order_id" = OrderId, Path, description = "the order"),
        ("Idempotency-Key" = String, Header, description = "names the command, e.g. `<order id>:capture`")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Payment),
        (status = 400, description = "no Idempotency-Key", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "not a service token", body = Problem),
        (status = 404, description = "the order has no payment", body = Problem),
        (status = 409, description = "not authorized: declined, voided or already captured", body = Problem),
        (status = 422, description = "amount not positive or above the authorization, \
            or the key was used for another request", body = Problem)))]
async fn capture(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    key: IdempotencyKey,
    Json(req): Json<CaptureRequest>,
) -> ApiResult<Answer> {
    let order_id = order_id_of(&order_id)?;
    check_optional_amount(req.amount_cents)?;
    let command = Command::Capture {
        order_id,
        amount_cents: req.amount_cents,
    };
    commands::run(&state, &key, command).await
}

/// Releases an uncaptured authorization. Voiding a payment that holds
/// nothing (declined, or already voided) answers it unchanged, so a
/// compensation can be repeated safely; a captured one must be refunded.
#[utoipa::path(post, path = "/internal/payments/{order_id}/void",
    params(
        ("order_id" = OrderId, Path, description = "the order"),
        ("Idempotency-Key" = String, Header, description = "names the command, e.g. `<order id>:void`")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "voided, or holding nothing already", body = Payment),
        (status = 400, description = "no Idempotency-Key", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "not a service token", body = Problem),
        (status = 404, description = "the order has no payment", body = Problem),
        (status = 409, description = "captured: refund instead", body = Problem),
        (status = 422, description = "the key was used for another request", body = Problem)))]
async fn void(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    key: IdempotencyKey,
) -> ApiResult<Answer> {
    let order_id = order_id_of(&order_id)?;
    commands::run(&state, &key, Command::Void { order_id }).await
}

/// Gives back captured money, all that is left (no amount) or part of it;
/// refunds may repeat until they add up to the capture.
#[utoipa::path(post, path = "/internal/payments/{order_id}/refund", request_body = RefundRequest,
    params(
        ("order_id" = OrderId, Path, description = "the order"),
        ("Idempotency-Key" = String, Header, description = "names the command, e.g. `<order id>:refund`")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Payment),
        (status = 400, description = "no Idempotency-Key", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "not a service token", body = Problem),
        (status = 404, description = "the order has no payment", body = Problem),
        (status = 409, description = "not captured (void instead), or refunded in full", body = Problem),
        (status = 422, description = "amount not positive or above what is left to refund, \
            or the key was used for another request", body = Problem)))]
async fn refund(
    _caller: ServiceCaller,
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    key: IdempotencyKey,
    Json(req): Json<RefundRequest>,
) -> ApiResult<Answer> {
    let order_id = order_id_of(&order_id)?;
    check_optional_amount(req.amount_cents)?;
    let command = Command::Refund {
        order_id,
        amount_cents: req.amount_cents,
    };
    commands::run(&state, &key, command).await
}

fn check_amount(v: &mut Validator, cents: i64) {
    v.check(
        valid_amount(cents),
        "amount_cents",
        &format!("must be a positive number of cents, at most {MAX_AMOUNT_CENTS}"),
    );
}

fn check_optional_amount(cents: Option<i64>) -> ApiResult<()> {
    let mut v = Validator::new();
    if let Some(cents) = cents {
        check_amount(&mut v, cents);
    }
    v.finish()
}

/// An order id from the path; text that is not one names no payment.
fn order_id_of(text: &str) -> ApiResult<OrderId> {
    OrderId::parse(text).map_err(|_| no_payment(text))
}

fn no_payment(order_id: &str) -> ApiError {
    ApiError::not_found(format!("order {order_id} has no payment"))
}
