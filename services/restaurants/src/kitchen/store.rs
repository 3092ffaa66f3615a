//! The kitchen's SQL: reservations and tickets.
//!
//! Stock moves only through conditional updates (`stock >= quantity`), so
//! two orders for the last item cannot both win, whatever interleaving the
//! engine allows. A reservation row is written before any stock moves, so a
//! repeated reservation for the same order waits for the first and replays
//! it instead of reserving twice.

use contracts::audit::{ReservationAudit, RestaurantsAudit, TicketAudit};
use contracts::catalog::Location;
use contracts::kitchen::{
    PricedLine, Reservation, ReservationStatus, ReserveRequest, Ticket, TicketStatus,
};
use contracts::{OrderId, RestaurantId};
use platform::Db;
use platform::db::{is_unique_violation, parse_column};
use sqlx::AnyConnection;

/// Why stock could not be reserved (the saga rejects the order with it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReserveError {
    #[error("{0}")]
    Unavailable(String),
    #[error("order {0} already has a different reservation")]
    Conflict(OrderId),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

#[derive(sqlx::FromRow)]
struct ReservationRow {
    order_id: String,
    restaurant_id: String,
    request: String,
    items: String,
    subtotal_cents: i64,
    status: String,
    name: String,
    lat: f64,
    lng: f64,
}

impl ReservationRow {
    fn into_reservation(self) -> Result<Reservation, sqlx::Error> {
        Ok(Reservation {
            order_id: parse_column(&self.order_id, "order_id")?,
            restaurant_id: parse_column(&self.restaurant_id, "restaurant_id")?,
            restaurant_name: self.name,
            pickup: Location {
                lat: self.lat,
                lng: self.lng,
            },
            items: serde_json::from_str(&self.items).map_err(|e| sqlx::Error::ColumnDecode {
                index: "items".to_owned(),
                source: Box::new(e),
            })?,
            subtotal_cents: self.subtotal_cents,
            status: reservation_status(&self.status),
        })
    }
}

fn reservation_status(text: &str) -> ReservationStatus {
    match text {
        "released" => ReservationStatus::Released,
        _ => ReservationStatus::Reserved,
    }
}

/// Every reservation and ticket by order, and the events backlog, for
/// `GET /internal/audit`.
pub(crate) async fn audit(db: Db) -> Result<RestaurantsAudit, sqlx::Error> {
    let reservations: Vec<(String, String)> =
        sqlx::query_as("SELECT order_id, status FROM reservations ORDER BY order_id")
            .fetch_all(&db)
            .await?;
    let tickets: Vec<(String, String)> =
        sqlx::query_as("SELECT order_id, status FROM tickets ORDER BY order_id")
            .fetch_all(&db)
            .await?;
    Ok(RestaurantsAudit {
        reservations: reservations
            .iter()
            .map(|(order_id, status)| {
                Ok(ReservationAudit {
                    order_id: parse_column(order_id, "order_id")?,
                    status: reservation_status(status),
                })
            })
            .collect::<Result<_, sqlx::Error>>()?,
        tickets: tickets
            .iter()
            .map(|(order_id, status)| {
                Ok(TicketAudit {
                    order_id: parse_column(order_id, "order_id")?,
                    status: ticket_status(status)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?,
        events: platform::events::audit(&db).await?,
    })
}

pub(crate) async fn reservation(
    conn: &mut AnyConnection,
    order: OrderId,
) -> Result<Option<(String, Reservation)>, sqlx::Error> {
    let row = sqlx::query_as::<_, ReservationRow>(
        "SELECT r.order_id, r.restaurant_id, r.request, r.items, r.subtotal_cents, r.status, \
                s.name, s.lat, s.lng \
         FROM reservations r JOIN restaurants s ON s.id = r.restaurant_id WHERE r.order_id = $1",
    )
    .bind(order.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        let request = r.request.clone();
        r.into_reservation().map(|res| (request, res))
    })
    .transpose()
}

#[derive(sqlx::FromRow)]
struct StockRow {
    id: String,
    name: String,
    price_cents: i64,
    available: i64,
    stock: Option<i64>,
}

/// Prices `request` and reserves its stock for `order`, atomically; a
/// repeat of the same request answers the first reservation. Also answers
/// whether it wrote an event (a stock count changed on the restaurant's
/// page): only then has the relay anything to do.
pub(crate) async fn reserve(
    db: &Db,
    order: OrderId,
    request: &ReserveRequest,
) -> Result<(Reservation, bool), ReserveError> {
    let request_json = serde_json::to_string(request).expect("a request always serialises");
    let mut tx = platform::db::begin_write(db).await?;
    let now = platform::time::now();

    // Claim the order id first: a concurrent repeat blocks here until this
    // transaction ends, then finds the row and replays it. The foreign key
    // proves the restaurant exists.
    let claimed = sqlx::query(
        "INSERT INTO reservations \
         (order_id, restaurant_id, request, items, subtotal_cents, status, created_at, updated_at) \
         VALUES ($1, $2, $3, '[]', 0, 'reserved', $4, $4)",
    )
    .bind(order.to_string())
    .bind(request.restaurant_id.to_string())
    .bind(&request_json)
    .bind(&now)
    .execute(&mut *tx)
    .await;
    match claimed {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            drop(tx);
            let mut conn = db.acquire().await?;
            return match reservation(&mut conn, order).await? {
                Some((stored, existing)) if stored == request_json => Ok((existing, false)),
                _ => Err(ReserveError::Conflict(order)),
            };
        }
        Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => {
            return Err(ReserveError::Unavailable(
                "the restaurant does not exist".to_owned(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let (restaurant_name, open): (String, i64) =
        sqlx::query_as("SELECT name, CAST(open AS INTEGER) FROM restaurants WHERE id = $1")
            .bind(request.restaurant_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
    if open == 0 {
        return Err(ReserveError::Unavailable(format!(
            "{restaurant_name} is closed"
        )));
    }

    let menu: Vec<StockRow> = sqlx::query_as(
        "SELECT id, name, price_cents, CAST(available AS INTEGER) AS available, stock \
         FROM menu_items WHERE restaurant_id = $1",
    )
    .bind(request.restaurant_id.to_string())
    .fetch_all(&mut *tx)
    .await?;

    let mut lines = Vec::with_capacity(request.items.len());
    let mut problems = Vec::new();
    for line in &request.items {
        let id = line.menu_item_id.to_string();
        let Some(item) = menu.iter().find(|m| m.id == id) else {
            problems.push(format!("item {id} is not on this restaurant's menu"));
            continue;
        };
        if item.available == 0 {
            problems.push(format!("{} is not available", item.name));
        } else if item.stock.is_some_and(|s| s < line.quantity) {
            problems.push(format!(
                "{}: only {} left",
                item.name,
                item.stock.unwrap_or_default()
            ));
        }
        lines.push(PricedLine {
            menu_item_id: line.menu_item_id,
            name: item.name.clone(),
            quantity: line.quantity,
            unit_price_cents: item.price_cents,
        });
    }
    if !problems.is_empty() {
        return Err(ReserveError::Unavailable(problems.join("; ")));
    }

    for line in &lines {
        // The condition re-checks under the write lock: whatever was read
        // above, stock never goes below zero.
        let moved = sqlx::query(
            "UPDATE menu_items SET stock = stock - $1, updated_at = $2 \
             WHERE id = $3 AND restaurant_id = $4 AND available = TRUE \
               AND (stock IS NULL OR stock >= $1)",
        )
        .bind(line.quantity)
        .bind(&now)
        .bind(line.menu_item_id.to_string())
        .bind(request.restaurant_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            return Err(ReserveError::Unavailable(format!(
                "{} just sold out",
                line.name
            )));
        }
    }

    // Items with a stock limit show a new count on the restaurant's page.
    let counted = request.items.iter().any(|line| {
        menu.iter()
            .any(|m| m.id == line.menu_item_id.to_string() && m.stock.is_some())
    });
    if counted {
        crate::store::announce_change(&mut tx, request.restaurant_id).await?;
    }
    let subtotal: i64 = lines.iter().map(|l| l.unit_price_cents * l.quantity).sum();
    sqlx::query("UPDATE reservations SET items = $1, subtotal_cents = $2 WHERE order_id = $3")
        .bind(serde_json::to_string(&lines).expect("lines always serialise"))
        .bind(subtotal)
        .bind(order.to_string())
        .execute(&mut *tx)
        .await?;
    let reservation = reservation(&mut tx, order)
        .await?
        .map(|(_, r)| r)
        .ok_or_else(|| sqlx::Error::RowNotFound)?;
    tx.commit().await?;
    Ok((reservation, counted))
}

/// Gives the stock of `order` back; repeating it (or releasing an order
/// that never reserved) changes nothing.
pub(crate) async fn release(db: &Db, order: OrderId) -> Result<Option<Reservation>, sqlx::Error> {
    let mut tx = platform::db::begin_write(db).await?;
    let now = platform::time::now();
    // Flip the status first: only the call that flips it returns the stock.
    let flipped = sqlx::query(
        "UPDATE reservations SET status = 'released', updated_at = $1 \
         WHERE order_id = $2 AND status = 'reserved'",
    )
    .bind(&now)
    .bind(order.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let found = reservation(&mut tx, order).await?.map(|(_, r)| r);
    if flipped == 1
        && let Some(r) = &found
    {
        let mut counted = false;
        for line in &r.items {
            // An item whose stock became unlimited meanwhile has nothing to
            // give back.
            counted |= sqlx::query(
                "UPDATE menu_items SET stock = stock + $1, updated_at = $2 \
                 WHERE id = $3 AND stock IS NOT NULL",
            )
            .bind(line.quantity)
            .bind(&now)
            .bind(line.menu_item_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
        }
        if counted {
            crate::store::announce_change(&mut tx, r.restaurant_id).await?;
        }
    }
    tx.commit().await?;
    Ok(found)
}

#[derive(sqlx::FromRow)]
struct TicketRow {
    order_id: String,
    restaurant_id: String,
    status: String,
    accept_by: String,
    rejection_reason: Option<String>,
    created_at: String,
    updated_at: String,
    items: String,
}

fn ticket_status(s: &str) -> Result<TicketStatus, sqlx::Error> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| {
        sqlx::Error::ColumnDecode {
            index: "status".to_owned(),
            source: Box::new(e),
        }
    })
}

pub(crate) fn status_text(s: TicketStatus) -> &'static str {
    match s {
        TicketStatus::Pending => "PENDING",
        TicketStatus::Accepted => "ACCEPTED",
        TicketStatus::Rejected => "REJECTED",
        TicketStatus::Ready => "READY",
        TicketStatus::Cancelled => "CANCELLED",
    }
}

impl TryFrom<TicketRow> for Ticket {
    type Error = sqlx::Error;
    fn try_from(row: TicketRow) -> Result<Self, Self::Error> {
        Ok(Ticket {
            order_id: parse_column(&row.order_id, "order_id")?,
            restaurant_id: parse_column(&row.restaurant_id, "restaurant_id")?,
            items: serde_json::from_str(&row.items).map_err(|e| sqlx::Error::ColumnDecode {
                index: "items".to_owned(),
                source: Box::new(e),
            })?,
            status: ticket_status(&row.status)?,
            accept_by: row.accept_by,
            rejection_reason: row.rejection_reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const TICKET_SELECT: &str = "SELECT t.order_id, t.restaurant_id, t.status, t.accept_by, \
    t.rejection_reason, t.created_at, t.updated_at, r.items \
    FROM tickets t JOIN reservations r ON r.order_id = t.order_id";

pub(crate) async fn ticket(
    conn: &mut AnyConnection,
    order: OrderId,
) -> Result<Option<Ticket>, sqlx::Error> {
    sqlx::query_as::<_, TicketRow>(sqlx::AssertSqlSafe(format!(
        "{TICKET_SELECT} WHERE t.order_id = $1"
    )))
    .bind(order.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .map(Ticket::try_from)
    .transpose()
}

pub(crate) async fn tickets_of(
    db: &Db,
    restaurant: RestaurantId,
    status: Option<TicketStatus>,
) -> Result<Vec<Ticket>, sqlx::Error> {
    let rows =
        match status {
            Some(s) => {
                sqlx::query_as::<_, TicketRow>(sqlx::AssertSqlSafe(format!(
                    "{TICKET_SELECT} WHERE t.restaurant_id = $1 AND t.status = $2 \
                 ORDER BY t.created_at DESC LIMIT 100"
                )))
                .bind(restaurant.to_string())
                .bind(status_text(s))
                .fetch_all(db)
                .await?
            }
            None => sqlx::query_as::<_, TicketRow>(sqlx::AssertSqlSafe(format!(
                "{TICKET_SELECT} WHERE t.restaurant_id = $1 ORDER BY t.created_at DESC LIMIT 100"
            )))
            .bind(restaurant.to_string())
            .fetch_all(db)
            .await?,
        };
    rows.into_iter().map(Ticket::try_from).collect()
}

/// Inserts the ticket of a reserved order; `None` if there is no live
/// reservation. A ticket that exists already is returned as it is, with
/// `false` (nothing new happened).
pub(crate) async fn insert_ticket(
    conn: &mut AnyConnection,
    order: OrderId,
    status: TicketStatus,
    accept_by: &str,
) -> Result<Option<(Ticket, bool)>, sqlx::Error> {
    // One statement, written first: it takes the write lock, inserts only
    // for a live reservation, and does nothing for a ticket that exists.
    let created = sqlx::query(
        "INSERT INTO tickets (order_id, restaurant_id, status, accept_by, created_at, updated_at) \
         SELECT order_id, restaurant_id, $1, $2, $3, $3 FROM reservations \
         WHERE order_id = $4 AND status = 'reserved' \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(status_text(status))
    .bind(accept_by)
    .bind(platform::time::now())
    .bind(order.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(ticket(conn, order).await?.map(|t| (t, created == 1)))
}

/// Moves a ticket (of `restaurant`, when given) from one of `from` to `to`;
/// false if it was not in `from`.
pub(crate) async fn transition(
    conn: &mut AnyConnection,
    order: OrderId,
    restaurant: Option<RestaurantId>,
    from: &[TicketStatus],
    to: TicketStatus,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let mut moved = 0;
    for f in from {
        moved += sqlx::query(
            "UPDATE tickets SET status = $1, rejection_reason = COALESCE($2, rejection_reason), \
             updated_at = $3 WHERE order_id = $4 AND status = $5 \
             AND ($6 IS NULL OR restaurant_id = $6)",
        )
        .bind(status_text(to))
        .bind(reason)
        .bind(platform::time::now())
        .bind(order.to_string())
        .bind(status_text(*f))
        .bind(restaurant.map(|r| r.to_string()))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(moved > 0)
}
