//! Payments: the payments service's internal API and the events it
//! publishes.
//!
//! A payment is the authorization of one order's total and what became of
//! it: captured (in full or in part, at most once), voided, refunded.
//! Payment methods are test tokens in the style of `pm_card_visa`; a card
//! number is refused wherever a payment method is accepted, so one never
//! reaches a log or a database.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::events::Event;
use crate::{OrderId, PaymentId};

/// The largest amount one payment may authorize: 999,999.99 (the bound
/// card processors commonly put on one charge). It also keeps every sum of
/// amounts far from overflowing.
pub const MAX_AMOUNT_CENTS: i64 = 99_999_999;

/// Whether `cents` may be the amount of an authorization, capture or
/// refund: positive and at most [`MAX_AMOUNT_CENTS`].
pub fn valid_amount(cents: i64) -> bool {
    (1..=MAX_AMOUNT_CENTS).contains(&cents)
}

/// Where a payment is.
///
/// `authorized` holds money; `declined` and `voided` never took any;
/// `captured` took it; `partially_refunded` and `refunded` gave some or all
/// of it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Authorized,
    Declined,
    Captured,
    Voided,
    Refunded,
    PartiallyRefunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::Authorized,
        PaymentStatus::Declined,
        PaymentStatus::Captured,
        PaymentStatus::Voided,
        PaymentStatus::Refunded,
        PaymentStatus::PartiallyRefunded,
    ];

    /// The wire name (the same as its JSON form).
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Declined => "declined",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Voided => "voided",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
        }
    }

    /// Whether money was captured (whatever was refunded since).
    pub const fn is_captured(self) -> bool {
        matches!(
            self,
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded
        )
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no payment status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a payment status")]
pub struct UnknownPaymentStatus;

impl FromStr for PaymentStatus {
    type Err = UnknownPaymentStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PaymentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(UnknownPaymentStatus)
    }
}

/// A payment method token the payments service accepts (API.md: the test
/// tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentMethod {
    /// `pm_card_visa`: authorizations succeed.
    Visa,
    /// `pm_card_chargeDeclined`: declined, `card_declined`.
    ChargeDeclined,
    /// `pm_card_chargeDeclinedInsufficientFunds`: declined,
    /// `insufficient_funds`.
    ChargeDeclinedInsufficientFunds,
}

/// Why text is not a payment method token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPaymentMethod {
    /// Deliberately does not repeat the number.
    #[error("card numbers are refused; send a payment method token")]
    CardNumber,
    #[error(
        "must be a payment method token: pm_card_visa, pm_card_chargeDeclined or \
         pm_card_chargeDeclinedInsufficientFunds"
    )]
    Unknown,
}

impl PaymentMethod {
    pub const ALL: [PaymentMethod; 3] = [
        PaymentMethod::Visa,
        PaymentMethod::ChargeDeclined,
        PaymentMethod::ChargeDeclinedInsufficientFunds,
    ];

    /// The token, e.g. `pm_card_visa`.
    pub const fn token(self) -> &'static str {
        match self {
            PaymentMethod::Visa => "pm_card_visa",
            PaymentMethod::ChargeDeclined => "pm_card_chargeDeclined",
            PaymentMethod::ChargeDeclinedInsufficientFunds => {
                "pm_card_chargeDeclinedInsufficientFunds"
            }
        }
    }

    /// Parses a token exactly (tokens are case-sensitive). Text that looks
    /// like a card number gets its own error, so the caller learns what to
    /// send instead.
    pub fn parse(text: &str) -> Result<Self, InvalidPaymentMethod> {
        if let Some(method) = PaymentMethod::ALL.into_iter().find(|m| m.token() == text) {
            Ok(method)
        } else if looks_like_card_number(text) {
            Err(InvalidPaymentMethod::CardNumber)
        } else {
            Err(InvalidPaymentMethod::Unknown)
        }
    }
}

impl fmt::Display for PaymentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// Whether `text` looks like a primary account number: 12 to 19 digits,
/// optionally grouped with spaces or dashes (ISO/IEC 7812 lengths).
pub fn looks_like_card_number(text: &str) -> bool {
    let text = text.trim();
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-')
        && (12..=19).contains(&digits)
}

/// Why a payment was declined: the values of `decline_reason` and of the
/// declined event's `reason`. Open text on the wire, so a new reason does
/// not break an older reader.
pub mod decline_reason {
    /// The issuer refused the card.
    pub const CARD_DECLINED: &str = "card_declined";
    /// Not enough money on the account.
    pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
}

/// A payment, as every payments endpoint answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Payment {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub status: PaymentStatus,
    /// The amount of the authorization: held while `authorized`, released
    /// by a void or by a capture of less; for a declined payment, the
    /// amount that was refused.
    pub amount_cents: i64,
    /// What was captured (0 until captured); never more than
    /// `amount_cents`.
    pub captured_cents: i64,
    /// What was refunded so far; never more than `captured_cents`.
    pub refunded_cents: i64,
    /// The token the authorization was made with.
    pub payment_method: String,
    /// Why it was declined (`card_declined`, `insufficient_funds`); `null`
    /// unless declined.
    pub decline_reason: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC; the time of the last change.
    pub updated_at: String,
}

/// `POST /internal/payments/authorize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthorizeRequest {
    pub order_id: OrderId,
    /// Positive, at most 99,999,999.
    pub amount_cents: i64,
    /// A payment method token, e.g. `pm_card_visa`; never a card number.
    pub payment_method: String,
}

/// `POST /internal/payments/{order_id}/capture`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaptureRequest {
    /// At most the authorized amount; absent or `null` captures all of it.
    #[serde(default)]
    pub amount_cents: Option<i64>,
}

/// `POST /internal/payments/{order_id}/refund`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefundRequest {
    /// At most what is captured and not yet refunded; absent or `null`
    /// refunds all of that.
    #[serde(default)]
    pub amount_cents: Option<i64>,
}

/// An amount of money was authorized (held) for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentAuthorized {
    pub order_id: OrderId,
    pub payment_id: PaymentId,
    pub amount_cents: i64,
}

/// An authorization was refused; nothing is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentDeclined {
    pub order_id: OrderId,
    pub payment_id: PaymentId,
    /// The amount that was refused.
    pub amount_cents: i64,
    /// Why: `card_declined` or `insufficient_funds` (open text, so a new
    /// reason does not break a reader).
    pub reason: String,
}

/// Money was taken: `amount_cents` of the authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentCaptured {
    pub order_id: OrderId,
    pub payment_id: PaymentId,
    pub amount_cents: i64,
}

/// An authorization was released uncaptured: `amount_cents` is no longer
/// held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentVoided {
    pub order_id: OrderId,
    pub payment_id: PaymentId,
    pub amount_cents: i64,
}

/// `amount_cents` of a capture was given back (one refund; a payment may
/// have several).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentRefunded {
    pub order_id: OrderId,
    pub payment_id: PaymentId,
    pub amount_cents: i64,
}

macro_rules! payment_event {
    ($name:ident, $type:literal) => {
        impl Event for $name {
            const TYPE: &'static str = $type;
            const SOURCE: &'static str = "payments";
            fn subject(&self) -> String {
                self.order_id.to_string()
            }
        }
    };
}

payment_event!(PaymentAuthorized, "feastfast.payment.authorized.v1");
payment_event!(PaymentDeclined, "feastfast.payment.declined.v1");
payment_event!(PaymentCaptured, "feastfast.payment.captured.v1");
payment_event!(PaymentVoided, "feastfast.payment.voided.v1");
payment_event!(PaymentRefunded, "feastfast.payment.refunded.v1");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::CloudEvent;

    #[test]
    fn the_test_tokens_parse_exactly() {
        for method in PaymentMethod::ALL {
            assert_eq!(PaymentMethod::parse(method.token()), Ok(method));
        }
        assert_eq!(
            PaymentMethod::parse("PM_CARD_VISA"),
            Err(InvalidPaymentMethod::Unknown)
        );
        assert_eq!(
            PaymentMethod::parse(" pm_card_visa"),
            Err(InvalidPaymentMethod::Unknown)
        );
        assert_eq!(PaymentMethod::parse(""), Err(InvalidPaymentMethod::Unknown));
        assert_eq!(
            PaymentMethod::parse("pm_card_mastercard"),
            Err(InvalidPaymentMethod::Unknown)
        );
    }

    #[test]
    fn card_numbers_are_recognised_and_refused() {
        for number in [
            "4242424242424242",
            "4242 4242 4242 4242",
            "4242-4242-4242-4242",
            " 5555 5555 5555 4444 ",
            "378282246310005",
            "123456789012",
            "1234567890123456789",
        ] {
            assert_eq!(
                PaymentMethod::parse(number),
                Err(InvalidPaymentMethod::CardNumber),
                "{number}"
            );
        }
        // Too short or too long for a card, or not only digits: unknown.
        for text in ["12345678901", "12345678901234567890", "4242x4242424242424"] {
            assert_eq!(
                PaymentMethod::parse(text),
                Err(InvalidPaymentMethod::Unknown),
                "{text}"
            );
        }
    }

    #[test]
    fn the_card_number_error_does_not_repeat_the_number() {
        let message = InvalidPaymentMethod::CardNumber.to_string();
        assert_eq!(
            message,
            "card numbers are refused; send a payment method token"
        );
    }

    #[test]
    fn statuses_are_snake_case_json_and_read_back() {
        let json = serde_json::to_value(PaymentStatus::ALL).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!([
                "authorized",
                "declined",
                "captured",
                "voided",
                "refunded",
                "partially_refunded"
            ])
        );
        for status in PaymentStatus::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
            assert_eq!(
                serde_json::to_string(&status).expect("serialises"),
                format!("\"{status}\"")
            );
        }
        assert_eq!(
            "Authorized".parse::<PaymentStatus>(),
            Err(UnknownPaymentStatus)
        );
    }

    #[test]
    fn amounts_are_positive_and_bounded() {
        assert!(valid_amount(1));
        assert!(valid_amount(MAX_AMOUNT_CENTS));
        assert!(!valid_amount(0));
        assert!(!valid_amount(-5));
        assert!(!valid_amount(MAX_AMOUNT_CENTS + 1));
    }

    #[test]
    fn events_are_typed_sourced_and_about_the_order() {
        let order_id = OrderId::new();
        let payment_id = PaymentId::new();
        let declined = PaymentDeclined {
            order_id,
            payment_id,
            amount_cents: 1250,
            reason: decline_reason::INSUFFICIENT_FUNDS.to_owned(),
        };
        let event = CloudEvent::new(&declined, "2026-01-01T00:00:00.000Z".to_owned(), None);
        assert_eq!(event.kind, "feastfast.payment.declined.v1");
        assert_eq!(event.source, "feastfast/payments");
        assert_eq!(event.subject, Some(order_id.to_string()));
        assert_eq!(
            event.data,
            serde_json::json!({
                "order_id": order_id.to_string(),
                "payment_id": payment_id.to_string(),
                "amount_cents": 1250,
                "reason": "insufficient_funds",
            })
        );
        assert_eq!(
            event.decode::<PaymentDeclined>().expect("decodes"),
            declined
        );

        let types = [
            PaymentAuthorized::TYPE,
            PaymentDeclined::TYPE,
            PaymentCaptured::TYPE,
            PaymentVoided::TYPE,
            PaymentRefunded::TYPE,
        ];
        assert_eq!(
            types,
            [
                "feastfast.payment.authorized.v1",
                "feastfast.payment.declined.v1",
                "feastfast.payment.captured.v1",
                "feastfast.payment.voided.v1",
                "feastfast.payment.refunded.v1",
            ]
        );
    }

    #[test]
    fn capture_and_refund_bodies_may_omit_the_amount() {
        let capture: CaptureRequest = serde_json::from_str("{}").expect("parses");
        assert_eq!(capture.amount_cents, None);
        let refund: RefundRequest =
            serde_json::from_str(r#"{"amount_cents": 300}"#).expect("parses");
        assert_eq!(refund.amount_cents, Some(300));
    }
}
