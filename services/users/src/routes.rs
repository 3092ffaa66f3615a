//! The users service's HTTP API: thin handlers over `store` and `password`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use contracts::Problem;
use contracts::identity::{Email, LoginRequest, RegisterRequest, Role, TokenResponse, User};
use platform::auth::{JwkSet, ServiceTokenRequest, SigningKey};
use platform::error::Validator;
use platform::{ApiError, ApiResult, Identity, Json};
use utoipa::OpenApi;

use crate::{AppState, store};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/me", get(me))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/internal/token", post(service_token))
}

#[derive(OpenApi)]
#[openapi(paths(register, login, me, jwks, service_token))]
pub struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

const MIN_PASSWORD: usize = 8;
/// argon2 accepts long input, but hashing megabytes per request is a DoS.
const MAX_PASSWORD: usize = 128;

/// Registers a user with a self-service role.
#[utoipa::path(post, path = "/auth/register", request_body = RegisterRequest,
    responses(
        (status = 201, body = User),
        (status = 409, description = "e-mail taken", body = Problem),
        (status = 422, description = "invalid input", body = Problem)))]
async fn register(
    State(state): State<AppState>,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let mut v = Validator::new();
    let email = v.parse("email", Email::parse(&req.email));
    let name = v.text("name", &req.name, 100);
    let chars = req.password.chars().count();
    v.check(
        chars >= MIN_PASSWORD,
        "password",
        "must be at least 8 characters",
    );
    v.check(
        chars <= MAX_PASSWORD,
        "password",
        "must be at most 128 characters",
    );
    let role = v.parse("role", req.role.parse::<Role>());
    if let Some(role) = role {
        v.check(
            role.self_service(),
            "role",
            "must be one of customer, restaurant_owner, courier",
        );
    }
    v.finish()?;
    let (Some(email), Some(role)) = (email, role) else {
        unreachable!("the validator passed, so both parsed");
    };

    let hash = state.passwords.hash(req.password).await?;
    match store::insert_user(&state.db, &email, &name, role, &hash).await {
        Ok(user) => Ok((StatusCode::CREATED, Json(user))),
        Err(e) if platform::db::is_unique_violation(&e) => Err(ApiError::conflict(format!(
            "an account with the e-mail {} already exists",
            email.as_str()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Exchanges e-mail and password for an access token.
#[utoipa::path(post, path = "/auth/login", request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "wrong e-mail or password", body = Problem)))]
async fn login(
    State(state): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    // An address that cannot exist is treated like an unknown one: same
    // answer, same work.
    let stored = match Email::parse(&req.email) {
        Ok(email) => store::user_by_email(&state.db, email.as_str()).await?,
        Err(_) => None,
    };
    let (hash, user) = match stored {
        Some(s) => (Some(s.password_hash), Some(s.user)),
        None => (None, None),
    };
    let ok = state.passwords.verify(req.password, hash).await?;
    let Some(user) = user.filter(|_| ok) else {
        return Err(ApiError::unauthorized("wrong e-mail or password"));
    };
    let access_token = state.key.issue(user.id, user.role, state.token_ttl)?;
    Ok(Json(TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: state.token_ttl.as_secs(),
    }))
}

/// The caller's own account.
#[utoipa::path(get, path = "/me", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = Problem)))]
async fn me(State(state): State<AppState>, identity: Identity) -> ApiResult<Json<User>> {
    store::user_by_id(&state.db, identity.user_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::unauthorized("the account of this token no longer exists"))
}

/// The public keys that verify access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json",
    responses((status = 200, description = "a JSON Web Key Set")))]
async fn jwks(State(state): State<AppState>) -> ApiResult<Json<JwkSet>> {
    // Read from the database, not memory: a key another replica created
    // must be published by every replica.
    let keys = store::all_signing_keys(&state.db).await?;
    Ok(Json(JwkSet {
        keys: keys.iter().map(SigningKey::jwk).collect(),
    }))
}

/// A service token for another FeastFast service, in exchange for the
/// shared service secret.
#[utoipa::path(post, path = "/internal/token",
    request_body(content = inline(Object), description = "`{service, secret}`"),
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "wrong secret", body = Problem),
        (status = 422, description = "no service name", body = Problem)))]
async fn service_token(
    State(state): State<AppState>,
    Json(req): Json<ServiceTokenRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let mut v = Validator::new();
    let name = v.text("service", &req.service, 50);
    v.check(
        name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
        "service",
        "must be a service name (lowercase letters and dashes)",
    );
    v.finish()?;
    if !constant_time_eq(req.secret.as_bytes(), state.service_secret.as_bytes()) {
        return Err(ApiError::unauthorized("wrong service secret"));
    }
    let access_token = state.key.issue_service(&name, state.token_ttl)?;
    Ok(Json(TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: state.token_ttl.as_secs(),
    }))
}

/// Compares without stopping at the first difference, so timing does not
/// reveal how much of a guessed secret is right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
