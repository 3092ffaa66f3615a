//! The restaurants service's HTTP API: thin handlers over `store`.
//!
//! Invariant: every write checks, in this order, that the caller is
//! authenticated (401), that the restaurant exists (404), that the caller
//! owns it (403), and that the input is valid (422); nothing is written
//! unless all four pass.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use contracts::catalog::{
    MenuItem, MenuItemPatch, NewMenuItem, NewRestaurant, Page, Restaurant, RestaurantDetail,
};
use contracts::identity::Role;
use contracts::{MenuItemId, PriceCents, Problem, RestaurantId};
use platform::error::Validator;
use platform::{ApiError, ApiResult, Identity, Json, Path, Query};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use crate::AppState;
use crate::cursor::Cursor;
use crate::store::{self, MenuItemChange, MenuItemInput, RestaurantInput, Search};

pub(crate) fn router() -> Router<AppState> {
    // `/restaurants/mine` is a static segment, which axum matches before
    // the `{id}` capture, so it never reaches `restaurant_detail`.
    Router::new()
        .route(
            "/restaurants",
            get(list_restaurants).post(create_restaurant),
        )
        .route("/restaurants/mine", get(my_restaurants))
        .route("/restaurants/{id}", get(restaurant_detail))
        .route("/restaurants/{id}/menu", post(add_menu_item))
        .route("/restaurants/{id}/menu/{item_id}", patch(update_menu_item))
}

#[derive(OpenApi)]
#[openapi(paths(
    create_restaurant,
    list_restaurants,
    my_restaurants,
    restaurant_detail,
    add_menu_item,
    update_menu_item
))]
pub struct ApiDoc;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

const MAX_NAME: usize = 100;
const MAX_CUISINE: usize = 50;
const MAX_ADDRESS: usize = 200;
const MAX_DESCRIPTION: usize = 500;
/// A search longer than any name or cuisine can match nothing.
const MAX_QUERY: usize = 100;
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

/// Opens a restaurant owned by the caller.
#[utoipa::path(post, path = "/restaurants", request_body = NewRestaurant,
    security(("bearer" = [])),
    responses(
        (status = 201, body = Restaurant),
        (status = 401, body = Problem),
        (status = 403, description = "not a restaurant owner", body = Problem),
        (status = 422, description = "invalid input", body = Problem)))]
async fn create_restaurant(
    State(state): State<AppState>,
    identity: Identity,
    Json(req): Json<NewRestaurant>,
) -> ApiResult<(StatusCode, Json<Restaurant>)> {
    identity.require(Role::RestaurantOwner)?;
    let mut v = Validator::new();
    let name = v.text("name", &req.name, MAX_NAME);
    let cuisine = v.text("cuisine", &req.cuisine, MAX_CUISINE);
    let address = v.text("address", &req.address, MAX_ADDRESS);
    v.check(
        req.location.is_valid(),
        "location",
        "must have lat within -90..=90 and lng within -180..=180",
    );
    v.finish()?;

    let restaurant = store::insert_restaurant(
        &state.db,
        RestaurantInput {
            owner: identity.user_id,
            name,
            cuisine,
            address,
            location: req.location,
            // Most restaurants want orders confirmed without a click.
            auto_accept: req.auto_accept.unwrap_or(true),
        },
    )
    .await?;
    state.outbox.notify();
    Ok((StatusCode::CREATED, Json(restaurant)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// A substring of the name or the cuisine, any case.
    q: Option<String>,
    /// A cuisine, any case.
    cuisine: Option<String>,
    /// Restaurants per page, 1 to 100 (default 20).
    // Text, so that `limit=abc` is a 422 naming the field like `limit=0`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists restaurants in name order, one page at a time.
#[utoipa::path(get, path = "/restaurants", params(ListParams),
    responses(
        (status = 200, body = Page<Restaurant>),
        (status = 400, description = "malformed cursor", body = Problem),
        (status = 422, description = "invalid limit or q", body = Problem)))]
async fn list_restaurants(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<Restaurant>>> {
    let mut v = Validator::new();
    let limit = match params.limit.as_deref().map(str::trim) {
        None => DEFAULT_LIMIT,
        Some(text) => {
            let limit = text
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l));
            v.check(
                limit.is_some(),
                "limit",
                "must be a whole number from 1 to 100",
            );
            limit.unwrap_or(DEFAULT_LIMIT)
        }
    };
    let text = non_blank(params.q);
    if let Some(q) = &text {
        v.check(
            q.chars().count() <= MAX_QUERY,
            "q",
            "must be at most 100 characters",
        );
    }
    v.finish()?;
    let after = params
        .cursor
        .as_deref()
        .map(Cursor::decode)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;

    // One row more than a page tells whether another page follows.
    let mut items = store::search_restaurants(
        &state.db,
        &Search {
            text,
            cuisine: non_blank(params.cuisine),
            after,
            limit: limit + 1,
        },
    )
    .await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = items.last().filter(|_| more).map(|last| {
        Cursor {
            name: last.name.clone(),
            id: last.id,
        }
        .encode()
    });
    Ok(Json(Page { items, next_cursor }))
}

/// A query parameter that is absent, empty or blank filters nothing.
fn non_blank(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The caller's own restaurants, in name order, on one page.
#[utoipa::path(get, path = "/restaurants/mine", security(("bearer" = [])),
    responses(
        (status = 200, body = Page<Restaurant>),
        (status = 401, body = Problem),
        (status = 403, description = "not a restaurant owner", body = Problem)))]
async fn my_restaurants(
    State(state): State<AppState>,
    identity: Identity,
) -> ApiResult<Json<Page<Restaurant>>> {
    identity.require(Role::RestaurantOwner)?;
    // An owner has a handful of restaurants, so one page holds them all.
    let items = store::restaurants_of(&state.db, identity.user_id).await?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// A restaurant with its whole menu, unavailable items included.
#[utoipa::path(get, path = "/restaurants/{id}",
    params(("id" = RestaurantId, Path, description = "the restaurant")),
    responses(
        (status = 200, body = RestaurantDetail),
        (status = 404, body = Problem)))]
async fn restaurant_detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RestaurantDetail>> {
    let id = restaurant_id(&id)?;
    let restaurant = store::restaurant(&state.db, id)
        .await?
        .ok_or_else(|| no_restaurant(id))?;
    let menu = store::menu(&state.db, id).await?;
    Ok(Json(RestaurantDetail { restaurant, menu }))
}

/// Adds an item to the menu of one of the caller's restaurants.
#[utoipa::path(post, path = "/restaurants/{id}/menu", request_body = NewMenuItem,
    params(("id" = RestaurantId, Path, description = "the restaurant")),
    security(("bearer" = [])),
    responses(
        (status = 201, body = MenuItem),
        (status = 401, body = Problem),
        (status = 403, description = "not this restaurant's owner", body = Problem),
        (status = 404, body = Problem),
        (status = 422, description = "invalid input", body = Problem)))]
async fn add_menu_item(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    Json(req): Json<NewMenuItem>,
) -> ApiResult<(StatusCode, Json<MenuItem>)> {
    let id = restaurant_id(&id)?;
    require_owner(&state, &identity, id).await?;
    let mut v = Validator::new();
    let name = v.text("name", &req.name, MAX_NAME);
    let description = description(&mut v, &req.description);
    let price = v.parse("price_cents", PriceCents::parse(req.price_cents));
    if let Some(stock) = req.stock {
        check_stock(&mut v, stock);
    }
    v.finish()?;
    let Some(price) = price else {
        unreachable!("the validator passed, so the price parsed");
    };

    let item = store::insert_menu_item(
        &state.db,
        id,
        MenuItemInput {
            name,
            description,
            price,
            available: req.available.unwrap_or(true),
            stock: req.stock,
        },
    )
    .await?;
    state.outbox.notify();
    Ok((StatusCode::CREATED, Json(item)))
}

/// Changes the present fields of a menu item; `stock: null` makes its stock
/// unlimited.
#[utoipa::path(patch, path = "/restaurants/{id}/menu/{item_id}", request_body = MenuItemPatch,
    params(
        ("id" = RestaurantId, Path, description = "the restaurant"),
        ("item_id" = MenuItemId, Path, description = "an item on its menu")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = MenuItem),
        (status = 401, body = Problem),
        (status = 403, description = "not this restaurant's owner", body = Problem),
        (status = 404, description = "no such restaurant, or no such item on its menu", body = Problem),
        (status = 422, description = "invalid input", body = Problem)))]
async fn update_menu_item(
    State(state): State<AppState>,
    identity: Identity,
    Path((id, item_id)): Path<(String, String)>,
    Json(req): Json<MenuItemPatch>,
) -> ApiResult<Json<MenuItem>> {
    let id = restaurant_id(&id)?;
    require_owner(&state, &identity, id).await?;
    let item_id = MenuItemId::parse(&item_id).map_err(|_| no_item())?;
    let mut v = Validator::new();
    let change = MenuItemChange {
        name: req.name.map(|n| v.text("name", &n, MAX_NAME)),
        description: req.description.map(|d| description(&mut v, &d)),
        price: req
            .price_cents
            .and_then(|p| v.parse("price_cents", PriceCents::parse(p))),
        available: req.available,
        stock: req.stock,
    };
    if let Some(Some(stock)) = change.stock {
        check_stock(&mut v, stock);
    }
    v.finish()?;

    let item = store::update_menu_item(&state.db, id, item_id, change).await?;
    state.outbox.notify();
    item.map(Json).ok_or_else(no_item)
}

/// 404 unless restaurant `id` exists, 403 unless the caller owns it.
async fn require_owner(state: &AppState, identity: &Identity, id: RestaurantId) -> ApiResult<()> {
    let owner = store::owner_of(&state.db, id)
        .await?
        .ok_or_else(|| no_restaurant(id))?;
    if identity.role == Role::RestaurantOwner && identity.user_id == owner {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only this restaurant's owner may change it",
        ))
    }
}

/// Text that is not a UUID names no restaurant: 404, like an unknown id.
fn restaurant_id(text: &str) -> ApiResult<RestaurantId> {
    // The text is not echoed: it is the caller's, and may be anything.
    RestaurantId::parse(text)
        .map_err(|_| ApiError::not_found("there is no restaurant with this id"))
}

fn no_restaurant(id: RestaurantId) -> ApiError {
    ApiError::not_found(format!("there is no restaurant {id}"))
}

fn no_item() -> ApiError {
    ApiError::not_found("there is no such item on this restaurant's menu")
}

/// Checks an optional description of at most 500 characters and returns it
/// trimmed.
fn description(v: &mut Validator, value: &str) -> String {
    let value = value.trim();
    v.check(
        value.chars().count() <= MAX_DESCRIPTION,
        "description",
        "must be at most 500 characters",
    );
    value.to_owned()
}

fn check_stock(v: &mut Validator, stock: i64) {
    v.check(
        stock >= 0,
        "stock",
        "must be zero or more, or null for unlimited",
    );
}
