//! The payments service's SQL, next to the functions that run it.
//!
//! Every function takes a connection, so a command runs them inside its one
//! transaction; reads outside a command acquire one from the pool.

use contracts::audit::{PaymentAudit, PaymentsAudit, Tally};
use contracts::payments::{Payment, PaymentStatus};
use contracts::{OrderId, PaymentId};
use platform::db::parse_column;
use sqlx::AnyConnection;

use crate::domain::Balance;

/// A payment as stored: what the API shows plus the version that guards
/// concurrent changes.
pub(crate) struct Stored {
    pub(crate) payment: Payment,
    pub(crate) version: i64,
}

impl Stored {
    pub(crate) fn balance(&self) -> Balance {
        Balance {
            status: self.payment.status,
            authorized: self.payment.amount_cents,
            captured: self.payment.captured_cents,
            refunded: self.payment.refunded_cents,
        }
    }

    /// The payment with `balance` applied at `now`.
    pub(crate) fn changed(&self, balance: Balance, now: &str) -> Payment {
        Payment {
            status: balance.status,
            amount_cents: balance.authorized,
            captured_cents: balance.captured,
            refunded_cents: balance.refunded,
            updated_at: now.to_owned(),
            ..self.payment.clone()
        }
    }
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    id: String,
    order_id: String,
    payment_method: String,
    status: String,
    authorized_cents: i64,
    captured_cents: i64,
    refunded_cents: i64,
    decline_reason: Option<String>,
    version: i64,
    created_at: String,
    updated_at: String,
}

impl TryFrom<PaymentRow> for Stored {
    type Error = sqlx::Error;
    fn try_from(row: PaymentRow) -> Result<Self, Self::Error> {
        Ok(Stored {
            payment: Payment {
                id: parse_column(&row.id, "id")?,
                order_id: parse_column(&row.order_id, "order_id")?,
                status: parse_column::<PaymentStatus>(&row.status, "status")?,
                amount_cents: row.authorized_cents,
                captured_cents: row.captured_cents,
                refunded_cents: row.refunded_cents,
                payment_method: row.payment_method,
                decline_reason: row.decline_reason,
                created_at: row.created_at,
                updated_at: row.updated_at,
            },
            version: row.version,
        })
    }
}

/// The payment of `order`, if it has one.
pub(crate) async fn payment(
    conn: &mut AnyConnection,
    order: OrderId,
) -> Result<Option<Stored>, sqlx::Error> {
    sqlx::query_as::<_, PaymentRow>(
        "SELECT id, order_id, payment_method, status, authorized_cents, captured_cents, \
         refunded_cents, decline_reason, version, created_at, updated_at \
         FROM payments WHERE order_id = $1",
    )
    .bind(order.to_string())
    .fetch_optional(conn)
    .await?
    .map(Stored::try_from)
    .transpose()
}

/// Inserts a new payment at version 1; a second payment for the same order
/// is a unique violation.
pub(crate) async fn insert_payment(
    conn: &mut AnyConnection,
    payment: &Payment,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payments \
         (id, order_id, payment_method, status, authorized_cents, captured_cents, \
          refunded_cents, decline_reason, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10)",
    )
    .bind(payment.id.to_string())
    .bind(payment.order_id.to_string())
    .bind(&payment.payment_method)
    .bind(payment.status.as_str())
    .bind(payment.amount_cents)
    .bind(payment.captured_cents)
    .bind(payment.refunded_cents)
    .bind(payment.decline_reason.as_deref())
    .bind(&payment.created_at)
    .bind(&payment.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes `payment`'s state if it is still at `version`; `false` if
/// another change got there first (the caller starts over).
pub(crate) async fn update_payment(
    conn: &mut AnyConnection,
    payment: &Payment,
    version: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE payments SET status = $1, captured_cents = $2, refunded_cents = $3, \
         updated_at = $4, version = version + 1 \
         WHERE id = $5 AND version = $6",
    )
    .bind(payment.status.as_str())
    .bind(payment.captured_cents)
    .bind(payment.refunded_cents)
    .bind(&payment.updated_at)
    .bind(payment.id.to_string())
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LedgerKind {
    Authorize,
    Decline,
    Capture,
    Void,
    Refund,
}

impl LedgerKind {
    fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Authorize => "authorize",
            LedgerKind::Decline => "decline",
            LedgerKind::Capture => "capture",
            LedgerKind::Void => "void",
            LedgerKind::Refund => "refund",
        }
    }
}

/// Appends one entry to the ledger, under the idempotency key of the
/// command that caused it (unique: a command is recorded at most once).
pub(crate) async fn append_ledger(
    conn: &mut AnyConnection,
    payment: PaymentId,
    kind: LedgerKind,
    amount_cents: i64,
    idempotency_key: &str,
    at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ledger_entries (id, payment_id, kind, amount_cents, idempotency_key, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(payment.to_string())
    .bind(kind.as_str())
    .bind(amount_cents)
    .bind(idempotency_key)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every payment with its ledger tallied by kind, and the events backlog,
/// for `GET /internal/audit`.
pub(crate) async fn audit(db: platform::Db) -> Result<PaymentsAudit, sqlx::Error> {
    let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, order_id, status, authorized_cents, captured_cents FROM payments ORDER BY order_id",
    )
    .fetch_all(&db)
    .await?;
    let ledger: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT payment_id, kind, COUNT(*), CAST(SUM(amount_cents) AS BIGINT) \
         FROM ledger_entries GROUP BY payment_id, kind",
    )
    .fetch_all(&db)
    .await?;
    let tally = |payment: &str, kind: &str| {
        ledger
            .iter()
            .find(|(p, k, _, _)| p == payment && k == kind)
            .map_or(Tally::default(), |&(_, _, count, cents)| Tally {
                count,
                cents,
            })
    };
    let payments = rows
        .iter()
        .map(|(id, order_id, status, authorized_cents, captured_cents)| {
            Ok(PaymentAudit {
                order_id: parse_column(order_id, "order_id")?,
                status: parse_column(status, "status")?,
                authorized_cents: *authorized_cents,
                captured_cents: *captured_cents,
                authorizations: tally(id, LedgerKind::Authorize.as_str()),
                captures: tally(id, LedgerKind::Capture.as_str()),
                voids: tally(id, LedgerKind::Void.as_str()),
                refunds: tally(id, LedgerKind::Refund.as_str()),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(PaymentsAudit {
        payments,
        events: platform::events::audit(&db).await?,
    })
}
