//! The delivery service's SQL: couriers and deliveries.
//!
//! Every status change is a conditional update (`... WHERE status = <from>`),
//! so two actors racing on one delivery cannot both win, whatever the
//! engine's interleaving; the partial unique index
//! `deliveries_one_active_per_courier` makes a second active delivery for
//! one courier impossible even if the code above it were wrong.

use contracts::audit::{DeliveriesAudit, DeliveryAudit};
use contracts::catalog::Location;
use contracts::delivery::{Courier, Delivery, DeliveryStatus};
use contracts::orders::OrderConfirmed;
use contracts::{OrderId, UserId};
use platform::Db;
use platform::db::parse_column;
use sqlx::AnyConnection;

use crate::domain::Candidate;

/// The statuses in which a courier is busy with a delivery, as SQL.
const ACTIVE: &str = "('ASSIGNED', 'PICKED_UP')";

fn status_of(text: &str) -> Result<DeliveryStatus, sqlx::Error> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|e| {
        sqlx::Error::ColumnDecode {
            index: "status".to_owned(),
            source: Box::new(e),
        }
    })
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: String,
    order_id: String,
    status: String,
    courier_id: Option<String>,
    pickup_lat: f64,
    pickup_lng: f64,
    dropoff_lat: f64,
    dropoff_lng: f64,
    courier_lat: Option<f64>,
    courier_lng: Option<f64>,
    eta: Option<String>,
    created_at: String,
    updated_at: String,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = sqlx::Error;
    fn try_from(row: DeliveryRow) -> Result<Self, Self::Error> {
        let status = status_of(&row.status)?;
        // Where the courier is matters to the customer only while the food
        // is on its way; afterwards it is the courier's own business.
        let courier_location = match (status.is_active(), row.courier_lat, row.courier_lng) {
            (true, Some(lat), Some(lng)) => Some(Location { lat, lng }),
            _ => None,
        };
        Ok(Delivery {
            id: row.id,
            order_id: parse_column(&row.order_id, "order_id")?,
            status,
            courier_id: row
                .courier_id
                .as_deref()
                .map(|c| parse_column(c, "courier_id"))
                .transpose()?,
            pickup: Location {
                lat: row.pickup_lat,
                lng: row.pickup_lng,
            },
            dropoff: Location {
                lat: row.dropoff_lat,
                lng: row.dropoff_lng,
            },
            courier_location,
            eta: row.eta,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const DELIVERY_SELECT: &str = "SELECT d.id, d.order_id, d.status, d.courier_id, \
    d.pickup_lat, d.pickup_lng, d.dropoff_lat, d.dropoff_lng, \
    c.lat AS courier_lat, c.lng AS courier_lng, d.eta, d.created_at, d.updated_at \
    FROM deliveries d LEFT JOIN couriers c ON c.courier_id = d.courier_id";

pub(crate) async fn delivery(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as::<_, DeliveryRow>(sqlx::AssertSqlSafe(format!(
        "{DELIVERY_SELECT} WHERE d.id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .map(Delivery::try_from)
    .transpose()
}

pub(crate) async fn delivery_by_order(
    db: &Db,
    order: OrderId,
) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as::<_, DeliveryRow>(sqlx::AssertSqlSafe(format!(
        "{DELIVERY_SELECT} WHERE d.order_id = $1"
    )))
    .bind(order.to_string())
    .fetch_optional(db)
    .await?
    .map(Delivery::try_from)
    .transpose()
}

/// The most deliveries one list answers.
const LIST_LIMIT: i64 = 100;

/// `courier`'s deliveries, newest first, optionally of one status.
pub(crate) async fn deliveries_of(
    db: &Db,
    courier: UserId,
    status: Option<DeliveryStatus>,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows = sqlx::query_as::<_, DeliveryRow>(sqlx::AssertSqlSafe(format!(
        "{DELIVERY_SELECT} WHERE d.courier_id = $1 AND ($2 = '' OR d.status = $2) \
         ORDER BY d.created_at DESC, d.id DESC LIMIT $3"
    )))
    .bind(courier.to_string())
    .bind(status.map_or("", DeliveryStatus::as_str))
    .bind(LIST_LIMIT)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Delivery::try_from).collect()
}

/// Creates the pending delivery of a confirmed order; false if the order
/// has one already (a repeated `order.confirmed` changes nothing).
pub(crate) async fn insert_delivery(
    conn: &mut AnyConnection,
    order: &OrderConfirmed,
) -> Result<bool, sqlx::Error> {
    let now = platform::time::now();
    let inserted = sqlx::query(
        "INSERT INTO deliveries (id, order_id, customer_id, restaurant_id, status, \
         pickup_lat, pickup_lng, dropoff_lat, dropoff_lng, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'PENDING', $5, $6, $7, $8, $9, $9) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(order.order_id.to_string())
    .bind(order.customer_id.to_string())
    .bind(order.restaurant_id.to_string())
    .bind(order.pickup.lat)
    .bind(order.pickup.lng)
    .bind(order.dropoff.lat)
    .bind(order.dropoff.lng)
    .bind(&now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Cancels `order`'s delivery unless the food is already on its way or
/// there; true if it was cancelled now (its courier, if any, is free).
pub(crate) async fn cancel_for_order(
    conn: &mut AnyConnection,
    order: OrderId,
) -> Result<bool, sqlx::Error> {
    let cancelled = sqlx::query(
        "UPDATE deliveries SET status = 'CANCELLED', updated_at = $1 \
         WHERE order_id = $2 AND status IN ('PENDING', 'ASSIGNED')",
    )
    .bind(platform::time::now())
    .bind(order.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(cancelled == 1)
}

/// Moves `courier`'s delivery `id` from `from` to `to`; false if it was not
/// theirs or not in `from`.
pub(crate) async fn transition(
    conn: &mut AnyConnection,
    id: &str,
    courier: UserId,
    from: DeliveryStatus,
    to: DeliveryStatus,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE deliveries SET status = $1, updated_at = $2 \
         WHERE id = $3 AND courier_id = $4 AND status = $5",
    )
    .bind(to.as_str())
    .bind(platform::time::now())
    .bind(id)
    .bind(courier.to_string())
    .bind(from.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(moved == 1)
}

#[derive(sqlx::FromRow)]
struct CourierRow {
    courier_id: String,
    available: i64,
    lat: f64,
    lng: f64,
    updated_at: String,
    active_delivery_id: Option<String>,
}

/// The courier `id` with the delivery they hold, if any.
pub(crate) async fn courier(
    conn: &mut AnyConnection,
    id: UserId,
) -> Result<Option<Courier>, sqlx::Error> {
    let row = sqlx::query_as::<_, CourierRow>(sqlx::AssertSqlSafe(format!(
        "SELECT c.courier_id, CAST(c.available AS INTEGER) AS available, c.lat, c.lng, \
         c.updated_at, d.id AS active_delivery_id \
         FROM couriers c LEFT JOIN deliveries d \
           ON d.courier_id = c.courier_id AND d.status IN {ACTIVE} \
         WHERE c.courier_id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(Courier {
            id: parse_column(&r.courier_id, "courier_id")?,
            available: r.available != 0,
            location: Location {
                lat: r.lat,
                lng: r.lng,
            },
            active_delivery_id: r.active_delivery_id,
            updated_at: r.updated_at,
        })
    })
    .transpose()
}

/// Where the courier `id` was last seen, if they ever reported.
pub(crate) async fn courier_location(
    conn: &mut AnyConnection,
    id: UserId,
) -> Result<Option<Location>, sqlx::Error> {
    let row: Option<(f64, f64)> =
        sqlx::query_as("SELECT lat, lng FROM couriers WHERE courier_id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(lat, lng)| Location { lat, lng }))
}

/// Creates or updates the courier `id`.
pub(crate) async fn upsert_courier(
    conn: &mut AnyConnection,
    id: UserId,
    available: bool,
    location: Location,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO couriers (courier_id, available, lat, lng, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (courier_id) DO UPDATE SET available = excluded.available, \
           lat = excluded.lat, lng = excluded.lng, updated_at = excluded.updated_at",
    )
    .bind(id.to_string())
    .bind(available)
    .bind(location.lat)
    .bind(location.lng)
    .bind(platform::time::now())
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

/// The order of the delivery `courier` holds, if any.
pub(crate) async fn active_order_of(
    conn: &mut AnyConnection,
    courier: UserId,
) -> Result<Option<OrderId>, sqlx::Error> {
    let order: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT order_id FROM deliveries WHERE courier_id = $1 AND status IN {ACTIVE}"
    )))
    .bind(courier.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    order.map(|o| parse_column(&o, "order_id")).transpose()
}

/// A delivery waiting for a courier.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Pending {
    pub(crate) id: String,
    pub(crate) order_id: String,
    pickup_lat: f64,
    pickup_lng: f64,
    dropoff_lat: f64,
    dropoff_lng: f64,
}

impl Pending {
    pub(crate) fn pickup(&self) -> Location {
        Location {
            lat: self.pickup_lat,
            lng: self.pickup_lng,
        }
    }

    pub(crate) fn dropoff(&self) -> Location {
        Location {
            lat: self.dropoff_lat,
            lng: self.dropoff_lng,
        }
    }
}

/// Up to `limit` pending deliveries, oldest first.
pub(crate) async fn pending(db: &Db, limit: i64) -> Result<Vec<Pending>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, order_id, pickup_lat, pickup_lng, dropoff_lat, dropoff_lng \
         FROM deliveries WHERE status = 'PENDING' ORDER BY created_at, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The status of delivery `id` (to tell why an assignment did not happen).
pub(crate) async fn status(db: &Db, id: &str) -> Result<Option<DeliveryStatus>, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM deliveries WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    status.as_deref().map(status_of).transpose()
}

/// Every available courier without an active delivery.
pub(crate) async fn free_couriers(db: &Db) -> Result<Vec<Candidate>, sqlx::Error> {
    let rows: Vec<(String, f64, f64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.courier_id, c.lat, c.lng FROM couriers c \
         WHERE c.available = TRUE AND NOT EXISTS (\
           SELECT 1 FROM deliveries d WHERE d.courier_id = c.courier_id AND d.status IN {ACTIVE})"
    )))
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(courier_id, lat, lng)| Candidate {
            courier_id,
            location: Location { lat, lng },
        })
        .collect())
}

/// Assigns the pending delivery `id` to `courier` if it is still pending
/// and the courier still available; false otherwise. A courier who holds
/// another active delivery makes this fail with a unique violation.
pub(crate) async fn assign(
    conn: &mut AnyConnection,
    id: &str,
    courier: &str,
    eta: &str,
) -> Result<bool, sqlx::Error> {
    let assigned = sqlx::query(
        "UPDATE deliveries SET status = 'ASSIGNED', courier_id = $1, eta = $2, updated_at = $3 \
         WHERE id = $4 AND status = 'PENDING' \
           AND EXISTS (SELECT 1 FROM couriers WHERE courier_id = $1 AND available = TRUE)",
    )
    .bind(courier)
    .bind(eta)
    .bind(platform::time::now())
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(assigned == 1)
}

/// Every delivery (order, courier, status), and the events backlog, for
/// `GET /internal/audit`.
pub(crate) async fn audit(db: Db) -> Result<DeliveriesAudit, sqlx::Error> {
    let rows: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT order_id, courier_id, status FROM deliveries ORDER BY order_id")
            .fetch_all(&db)
            .await?;
    let deliveries = rows
        .iter()
        .map(|(order_id, courier_id, status)| {
            Ok(DeliveryAudit {
                order_id: parse_column(order_id, "order_id")?,
                courier_id: courier_id
                    .as_deref()
                    .map(|c| parse_column(c, "courier_id"))
                    .transpose()?,
                status: status_of(status)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(DeliveriesAudit {
        deliveries,
        events: platform::events::audit(&db).await?,
    })
}
