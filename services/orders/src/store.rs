//! The orders service's SQL, next to the functions that run it.

use contracts::audit::{OrderAudit, OrdersAudit};
use contracts::catalog::Location;
use contracts::kitchen::PricedLine;
use contracts::orders::{OrderStatus, PlaceOrder, TimelineEntry};
use contracts::{OrderId, RestaurantId, UserId};
use platform::Db;
use platform::db::parse_column;
use sqlx::AnyConnection;

use crate::domain::Saga;

/// An order as stored: its saga and the facts around it.
#[derive(Debug, Clone)]
pub(crate) struct StoredOrder {
    pub(crate) id: OrderId,
    pub(crate) customer_id: UserId,
    pub(crate) restaurant_id: RestaurantId,
    pub(crate) saga: Saga,
    pub(crate) version: i64,
    pub(crate) request: PlaceOrder,
    pub(crate) items: Vec<PricedLine>,
    pub(crate) pickup: Option<Location>,
    pub(crate) accept_by: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: String,
    customer_id: String,
    restaurant_id: String,
    saga: String,
    version: i64,
    request: String,
    items: String,
    pickup_lat: Option<f64>,
    pickup_lng: Option<f64>,
    accept_by: Option<String>,
    created_at: String,
    updated_at: String,
}

fn json_column<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

impl TryFrom<OrderRow> for StoredOrder {
    type Error = sqlx::Error;
    fn try_from(row: OrderRow) -> Result<Self, Self::Error> {
        Ok(StoredOrder {
            id: parse_column(&row.id, "id")?,
            customer_id: parse_column(&row.customer_id, "customer_id")?,
            restaurant_id: parse_column(&row.restaurant_id, "restaurant_id")?,
            saga: json_column(&row.saga, "saga")?,
            version: row.version,
            request: json_column(&row.request, "request")?,
            items: json_column(&row.items, "items")?,
            pickup: match (row.pickup_lat, row.pickup_lng) {
                (Some(lat), Some(lng)) => Some(Location { lat, lng }),
                _ => None,
            },
            accept_by: row.accept_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const COLUMNS: &str = "id, customer_id, restaurant_id, saga, version, request, items, \
     pickup_lat, pickup_lng, accept_by, created_at, updated_at";

pub(crate) async fn load(
    conn: &mut AnyConnection,
    id: OrderId,
) -> Result<Option<StoredOrder>, sqlx::Error> {
    sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .map(StoredOrder::try_from)
    .transpose()
}

/// A customer's orders, newest first, after the cursor `before` (an id).
pub(crate) async fn list_for(
    db: &Db,
    customer: UserId,
    before: Option<OrderId>,
    limit: i64,
) -> Result<Vec<StoredOrder>, sqlx::Error> {
    let rows = match before {
        Some(before) => {
            sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM orders WHERE customer_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
            )))
            .bind(customer.to_string())
            .bind(before.to_string())
            .bind(limit)
            .fetch_all(db)
            .await?
        }
        None => {
            sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM orders WHERE customer_id = $1 ORDER BY id DESC LIMIT $2"
            )))
            .bind(customer.to_string())
            .bind(limit)
            .fetch_all(db)
            .await?
        }
    };
    rows.into_iter().map(StoredOrder::try_from).collect()
}

/// Inserts a new order with its (started) saga.
/// Stores a new order; answers it as stored.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    id: OrderId,
    customer: UserId,
    request: &PlaceOrder,
    saga: &Saga,
) -> Result<StoredOrder, sqlx::Error> {
    let now = platform::time::now();
    sqlx::query(
        "INSERT INTO orders (id, customer_id, restaurant_id, status, saga, outstanding, version, \
         request, items, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, '[]', $8, $8)",
    )
    .bind(id.to_string())
    .bind(customer.to_string())
    .bind(request.restaurant_id.to_string())
    .bind(saga.status().as_str())
    .bind(serde_json::to_string(saga).expect("a saga always serialises"))
    .bind(outstanding(saga))
    .bind(serde_json::to_string(request).expect("a request always serialises"))
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    append_timeline(conn, id, saga.status(), &now).await?;
    Ok(StoredOrder {
        id,
        customer_id: customer,
        restaurant_id: request.restaurant_id,
        saga: saga.clone(),
        version: 1,
        request: request.clone(),
        items: Vec::new(),
        pickup: None,
        accept_by: None,
        created_at: now.clone(),
        updated_at: now,
    })
}

fn outstanding(saga: &Saga) -> i64 {
    saga.outstanding().len() as i64
}

/// Facts learnt from a participant along with a saga event.
#[derive(Debug, Default, Clone)]
pub(crate) struct Facts {
    pub(crate) items: Option<Vec<PricedLine>>,
    pub(crate) pickup: Option<Location>,
    pub(crate) accept_by: Option<String>,
}

/// Stores `saga` over `order` if nobody changed the order since it was
/// read (compare-and-set on the version): the order as it is stored now,
/// or `None` if someone did change it.
pub(crate) async fn update(
    conn: &mut AnyConnection,
    order: &StoredOrder,
    saga: &Saga,
    facts: &Facts,
) -> Result<Option<StoredOrder>, sqlx::Error> {
    let now = platform::time::now();
    // Two statements rather than `COALESCE($5, pickup_lat)`: sqlx 0.9's Any
    // driver declares a NULL f64 parameter as float4 on PostgreSQL, and a
    // connection that prepared the statement with a NULL then refuses every
    // later f64 ("incorrect binary data format in bind parameter 5").
    let query = if facts.pickup.is_some() {
        sqlx::query(
            "UPDATE orders SET status = $1, saga = $2, outstanding = $3, version = version + 1, \
             items = COALESCE($4, items), accept_by = COALESCE($5, accept_by), updated_at = $6, \
             pickup_lat = $9, pickup_lng = $10 \
             WHERE id = $7 AND version = $8",
        )
    } else {
        sqlx::query(
            "UPDATE orders SET status = $1, saga = $2, outstanding = $3, version = version + 1, \
             items = COALESCE($4, items), accept_by = COALESCE($5, accept_by), updated_at = $6 \
             WHERE id = $7 AND version = $8",
        )
    };
    let mut query = query
        .bind(saga.status().as_str())
        .bind(serde_json::to_string(saga).expect("a saga always serialises"))
        .bind(outstanding(saga))
        .bind(
            facts
                .items
                .as_ref()
                .map(|i| serde_json::to_string(i).expect("lines always serialise")),
        )
        .bind(facts.accept_by.as_deref())
        .bind(&now)
        .bind(order.id.to_string())
        .bind(order.version);
    if let Some(pickup) = facts.pickup {
        query = query.bind(pickup.lat).bind(pickup.lng);
    }
    if query.execute(&mut *conn).await?.rows_affected() != 1 {
        return Ok(None);
    }
    if saga.status() != order.saga.status() {
        append_timeline(conn, order.id, saga.status(), &now).await?;
    }
    Ok(Some(StoredOrder {
        saga: saga.clone(),
        version: order.version + 1,
        items: facts.items.clone().unwrap_or_else(|| order.items.clone()),
        pickup: facts.pickup.or(order.pickup),
        accept_by: facts.accept_by.clone().or_else(|| order.accept_by.clone()),
        updated_at: now,
        ..order.clone()
    }))
}

async fn append_timeline(
    conn: &mut AnyConnection,
    id: OrderId,
    status: OrderStatus,
    at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO order_timeline (order_id, seq, status, at) \
         VALUES ($1, (SELECT COUNT(*) FROM order_timeline WHERE order_id = $1) + 1, $2, $3)",
    )
    .bind(id.to_string())
    .bind(status.as_str())
    .bind(at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub(crate) async fn timeline(
    conn: &mut AnyConnection,
    id: OrderId,
) -> Result<Vec<TimelineEntry>, sqlx::Error> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT status, at FROM order_timeline WHERE order_id = $1 ORDER BY seq")
            .bind(id.to_string())
            .fetch_all(&mut *conn)
            .await?;
    rows.into_iter()
        .map(|(status, at)| {
            let status =
                serde_json::from_value(serde_json::Value::String(status)).map_err(|e| {
                    sqlx::Error::ColumnDecode {
                        index: "status".to_owned(),
                        source: Box::new(e),
                    }
                })?;
            Ok(TimelineEntry { status, at })
        })
        .collect()
}

/// Orders with work to do: commands outstanding, or an acceptance window
/// that has closed.
/// Takes (or renews) the lease on driving order `id` for `driver` until
/// `until`; false when another driver holds a live lease.
pub(crate) async fn lease(
    db: &Db,
    id: OrderId,
    driver: &str,
    now: &str,
    until: &str,
) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query(
        "UPDATE orders SET driver = $1, lease_until = $2 WHERE id = $3 \
         AND (driver IS NULL OR driver = $1 OR lease_until < $4)",
    )
    .bind(driver)
    .bind(until)
    .bind(id.to_string())
    .bind(now)
    .execute(db)
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Gives back `driver`'s lease on order `id`.
pub(crate) async fn release(db: &Db, id: OrderId, driver: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orders SET driver = NULL, lease_until = NULL WHERE id = $1 AND driver = $2")
        .bind(id.to_string())
        .bind(driver)
        .execute(db)
        .await
        .map(|_| ())
}

pub(crate) async fn with_work(db: &Db, now: &str, limit: i64) -> Result<Vec<OrderId>, sqlx::Error> {
    // Closed acceptance windows first, on their own (a crowd of sagas
    // waiting on a dead participant must not keep a timer from firing);
    // then sagas with commands outstanding, in random order, so the ones a
    // dead participant blocks cannot starve the rest.
    let mut ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM orders WHERE status = 'AWAITING_RESTAURANT' \
         AND accept_by IS NOT NULL AND accept_by < $1 \
         AND (lease_until IS NULL OR lease_until < $1) LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await?;
    let outstanding: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM orders WHERE outstanding > 0 \
         AND (lease_until IS NULL OR lease_until < $1) ORDER BY RANDOM() LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await?;
    for id in outstanding {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.iter().map(|id| parse_column(id, "id")).collect()
}

/// The order a customer created with an idempotency key, if any:
/// `(request fingerprint, order id, response code)`.
pub(crate) async fn idempotent(
    conn: &mut AnyConnection,
    customer: UserId,
    key: &str,
) -> Result<Option<(String, OrderId, u16)>, sqlx::Error> {
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT request, order_id, response_code FROM idempotency_keys WHERE customer_id = $1 AND key = $2",
    )
    .bind(customer.to_string())
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|(request, order, code)| {
        Ok((
            request,
            parse_column(&order, "order_id")?,
            u16::try_from(code).unwrap_or(202),
        ))
    })
    .transpose()
}

pub(crate) async fn remember_key(
    conn: &mut AnyConnection,
    customer: UserId,
    key: &str,
    request: &str,
    order: OrderId,
    code: u16,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO idempotency_keys (customer_id, key, request, order_id, response_code, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(customer.to_string())
    .bind(key)
    .bind(request)
    .bind(order.to_string())
    .bind(i64::from(code))
    .bind(platform::time::now())
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub(crate) async fn set_key_response(
    db: &Db,
    customer: UserId,
    key: &str,
    code: u16,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET response_code = $1 WHERE customer_id = $2 AND key = $3",
    )
    .bind(i64::from(code))
    .bind(customer.to_string())
    .bind(key)
    .execute(db)
    .await
    .map(|_| ())
}

/// Every order as its saga stands, and the events backlog, for
/// `GET /internal/audit`.
pub(crate) async fn audit(db: Db) -> Result<OrdersAudit, sqlx::Error> {
    let rows: Vec<(String, String, Option<String>, String, String)> = sqlx::query_as(
        "SELECT id, saga, accept_by, created_at, updated_at FROM orders ORDER BY id",
    )
    .fetch_all(&db)
    .await?;
    let mut orders = Vec::with_capacity(rows.len());
    for (id, saga, accept_by, created_at, updated_at) in rows {
        let saga: Saga = json_column(&saga, "saga")?;
        orders.push(OrderAudit {
            id: parse_column(&id, "id")?,
            status: saga.status(),
            created_at,
            updated_at,
            outstanding: saga
                .outstanding()
                .iter()
                .map(|c| c.step().to_owned())
                .collect(),
            decide_by: accept_by.filter(|_| saga.status() == OrderStatus::AwaitingRestaurant),
        });
    }
    Ok(OrdersAudit {
        orders,
        events: platform::events::audit(&db).await?,
    })
}
