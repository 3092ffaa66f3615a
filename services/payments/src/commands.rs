//! The payment commands — authorize, capture, void, refund — each run in
//! one transaction with its idempotency key: the change, its ledger entry,
//! its event (outbox) and the stored answer commit together.
//!
//! Concurrent commands on one payment are kept apart by the payment's
//! version: a change names the version it read, and one that lost the race
//! starts over and is judged on the new state (so two captures with
//! different keys end as one capture and one 409).

use contracts::payments::{
    Payment, PaymentAuthorized, PaymentCaptured, PaymentDeclined, PaymentMethod, PaymentRefunded,
    PaymentVoided,
};
use contracts::{OrderId, PaymentId};
use platform::db::is_unique_violation;
use platform::events::enqueue;
use platform::{ApiError, ApiResult};
use sqlx::AnyConnection;

use crate::AppState;
use crate::domain::{Decision, Refusal};
use crate::idempotency::{self, Answer, Begun, IdempotencyKey};
use crate::store::{self, LedgerKind};

/// How often a command starts over after losing a race for its payment
/// before giving up with a 409. Only PostgreSQL replicas can race; one
/// retry almost always settles it.
const ATTEMPTS: usize = 3;

/// A validated command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Authorize {
        order_id: OrderId,
        amount_cents: i64,
        method: PaymentMethod,
    },
    Capture {
        order_id: OrderId,
        amount_cents: Option<i64>,
    },
    Void {
        order_id: OrderId,
    },
    Refund {
        order_id: OrderId,
        amount_cents: Option<i64>,
    },
}

impl Command {
    /// The command's canonical form (method, path and the body as parsed),
    /// stored with its key: a repeat must match it exactly, whatever the
    /// JSON's spacing or field order was.
    pub(crate) fn fingerprint(&self) -> String {
        fn amount(cents: Option<i64>) -> String {
            cents.map_or_else(|| "all".to_owned(), |c| c.to_string())
        }
        match self {
            Command::Authorize {
                order_id,
                amount_cents,
                method,
            } => format!(
                "POST /internal/payments/authorize order_id={order_id} \
                 amount_cents={amount_cents} payment_method={method}"
            ),
            Command::Capture {
                order_id,
                amount_cents,
            } => format!(
                "POST /internal/payments/{order_id}/capture amount_cents={}",
                amount(*amount_cents)
            ),
            Command::Void { order_id } => format!("POST /internal/payments/{order_id}/void"),
            Command::Refund {
                order_id,
                amount_cents,
            } => format!(
                "POST /internal/payments/{order_id}/refund amount_cents={}",
                amount(*amount_cents)
            ),
        }
    }
}

/// Why a command did not apply.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("order {0} has no payment")]
    NoPayment(OrderId),
    #[error("order {0} already has a payment; an order is authorized once")]
    AlreadyAuthorized(OrderId),
    /// Another change to the payment committed since it was read.
    #[error("the payment changed meanwhile")]
    Stale,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Runs `command` under `key`: the stored answer if the key has one, else
/// the command's effect and answer, committed together.
pub(crate) async fn run(
    state: &AppState,
    key: &IdempotencyKey,
    command: Command,
) -> ApiResult<Answer> {
    let request = command.fingerprint();
    for _ in 0..ATTEMPTS {
        let mut tx = match idempotency::begin(&state.db, key, &request).await? {
            Begun::Replay(answer) => return Ok(answer),
            Begun::Fresh(tx) => tx,
        };
        match apply(&mut tx, key, &command).await {
            Ok(payment) => {
                let answer = Answer::ok(&payment)?;
                idempotency::finish(tx, key, &answer).await?;
                // Committed: the relay may publish the event now.
                state.outbox.notify();
                return Ok(answer);
            }
            Err(failure) => {
                // Roll back now, not when the connection is next used: the
                // transaction holds the key (and on SQLite the write lock)
                // that a concurrent repeat is waiting for.
                tx.rollback().await?;
                match failure {
                    Failure::Stale => continue,
                    other => return Err(other.into()),
                }
            }
        }
    }
    Err(ApiError::conflict(
        "the payment kept changing while this command ran; retry with the same key",
    ))
}

/// The command's effect inside the transaction: the payment's new state,
/// its ledger entry and its event.
async fn apply(
    conn: &mut AnyConnection,
    key: &IdempotencyKey,
    command: &Command,
) -> Result<Payment, Failure> {
    let now = platform::time::now();
    match *command {
        Command::Authorize {
            order_id,
            amount_cents,
            method,
        } => {
            if store::payment(conn, order_id).await?.is_some() {
                return Err(Failure::AlreadyAuthorized(order_id));
            }
            let decision = Decision::for_method(method);
            let payment = Payment {
                id: PaymentId::new(),
                order_id,
                status: decision.status(),
                amount_cents,
                captured_cents: 0,
                refunded_cents: 0,
                payment_method: method.token().to_owned(),
                decline_reason: decision.reason().map(str::to_owned),
                created_at: now.clone(),
                updated_at: now.clone(),
            };
            // Another replica may have inserted it since we looked.
            store::insert_payment(conn, &payment)
                .await
                .map_err(|e| match e {
                    e if is_unique_violation(&e) => Failure::AlreadyAuthorized(order_id),
                    e => Failure::Db(e),
                })?;
            let id = payment.id;
            match decision {
                Decision::Authorized => {
                    store::append_ledger(
                        conn,
                        id,
                        LedgerKind::Authorize,
                        amount_cents,
                        key.as_str(),
                        &now,
                    )
                    .await?;
                    enqueue(
                        conn,
                        &PaymentAuthorized {
                            order_id,
                            payment_id: id,
                            amount_cents,
                        },
                    )
                    .await?;
                }
                Decision::Declined(reason) => {
                    store::append_ledger(
                        conn,
                        id,
                        LedgerKind::Decline,
                        amount_cents,
                        key.as_str(),
                        &now,
                    )
                    .await?;
                    enqueue(
                        conn,
                        &PaymentDeclined {
                            order_id,
                            payment_id: id,
                            amount_cents,
                            reason: reason.to_owned(),
                        },
                    )
                    .await?;
                }
            }
            Ok(payment)
        }
        Command::Capture {
            order_id,
            amount_cents,
        } => {
            let stored = existing(conn, order_id).await?;
            let (balance, captured) = stored.balance().capture(amount_cents)?;
            let payment = stored.changed(balance, &now);
            save(conn, &payment, stored.version).await?;
            store::append_ledger(
                conn,
                payment.id,
                LedgerKind::Capture,
                captured,
                key.as_str(),
                &now,
            )
            .await?;
            enqueue(
                conn,
                &PaymentCaptured {
                    order_id,
                    payment_id: payment.id,
                    amount_cents: captured,
                },
            )
            .await?;
            Ok(payment)
        }
        Command::Void { order_id } => {
            let stored = existing(conn, order_id).await?;
            let Some((balance, released)) = stored.balance().void()? else {
                // Nothing is held: answer the payment as it is, record
                // nothing, publish nothing.
                return Ok(stored.payment);
            };
            let payment = stored.changed(balance, &now);
            save(conn, &payment, stored.version).await?;
            store::append_ledger(
                conn,
                payment.id,
                LedgerKind::Void,
                released,
                key.as_str(),
                &now,
            )
            .await?;
            enqueue(
                conn,
                &PaymentVoided {
                    order_id,
                    payment_id: payment.id,
                    amount_cents: released,
                },
            )
            .await?;
            Ok(payment)
        }
        Command::Refund {
            order_id,
            amount_cents,
        } => {
            let stored = existing(conn, order_id).await?;
            let (balance, refunded) = stored.balance().refund(amount_cents)?;
            let payment = stored.changed(balance, &now);
            save(conn, &payment, stored.version).await?;
            store::append_ledger(
                conn,
                payment.id,
                LedgerKind::Refund,
                refunded,
                key.as_str(),
                &now,
            )
            .await?;
            enqueue(
                conn,
                &PaymentRefunded {
                    order_id,
                    payment_id: payment.id,
                    amount_cents: refunded,
                },
            )
            .await?;
            Ok(payment)
        }
    }
}

async fn existing(conn: &mut AnyConnection, order_id: OrderId) -> Result<store::Stored, Failure> {
    store::payment(conn, order_id)
        .await?
        .ok_or(Failure::NoPayment(order_id))
}

async fn save(conn: &mut AnyConnection, payment: &Payment, version: i64) -> Result<(), Failure> {
    if store::update_payment(conn, payment, version).await? {
        Ok(())
    } else {
        Err(Failure::Stale)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        if refusal.is_amount() {
            ApiError::invalid_field("amount_cents", refusal.to_string())
        } else {
            ApiError::conflict(refusal.to_string())
        }
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused(refusal) => refusal.into(),
            Failure::NoPayment(_) => ApiError::not_found(failure.to_string()),
            Failure::AlreadyAuthorized(_) => ApiError::conflict(failure.to_string()),
            Failure::Stale => ApiError::conflict(failure.to_string()),
            Failure::Db(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_name_the_command_and_its_input() {
        let order_id = OrderId::new();
        let whole = Command::Capture {
            order_id,
            amount_cents: None,
        };
        let part = Command::Capture {
            order_id,
            amount_cents: Some(100),
        };
        assert_eq!(
            whole.fingerprint(),
            format!("POST /internal/payments/{order_id}/capture amount_cents=all")
        );
        assert_ne!(whole.fingerprint(), part.fingerprint());
        assert_ne!(
            Command::Void { order_id }.fingerprint(),
            Command::Refund {
                order_id,
                amount_cents: None
            }
            .fingerprint()
        );
        assert!(
            Command::Authorize {
                order_id,
                amount_cents: 5,
                method: PaymentMethod::Visa
            }
            .fingerprint()
            .ends_with("amount_cents=5 payment_method=pm_card_visa")
        );
    }
}
