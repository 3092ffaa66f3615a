//! The payment state machine: what each command does to a payment's money,
//! or why it is refused. No I/O and no clock, so every rule is tested here
//! without a database.
//!
//! Invariant: `0 <= refunded <= captured <= authorized`; a capture happens
//! only from `authorized` (so at most once), a refund only after a capture,
//! a void only before one.

use contracts::payments::{PaymentMethod, PaymentStatus, decline_reason};

/// The simulated card processor's answer to an authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Authorized,
    /// Declined, with the reason (see `contracts::payments::decline_reason`).
    Declined(&'static str),
}

impl Decision {
    /// What the processor answers for `method`: the test tokens behave as
    /// their names say.
    pub(crate) fn for_method(method: PaymentMethod) -> Self {
        match method {
            PaymentMethod::Visa => Decision::Authorized,
            PaymentMethod::ChargeDeclined => Decision::Declined(decline_reason::CARD_DECLINED),
            PaymentMethod::ChargeDeclinedInsufficientFunds => {
                Decision::Declined(decline_reason::INSUFFICIENT_FUNDS)
            }
        }
    }

    pub(crate) fn status(self) -> PaymentStatus {
        match self {
            Decision::Authorized => PaymentStatus::Authorized,
            Decision::Declined(_) => PaymentStatus::Declined,
        }
    }

    pub(crate) fn reason(self) -> Option<&'static str> {
        match self {
            Decision::Authorized => None,
            Decision::Declined(reason) => Some(reason),
        }
    }
}

/// Where a payment's money is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Balance {
    pub(crate) status: PaymentStatus,
    pub(crate) authorized: i64,
    pub(crate) captured: i64,
    pub(crate) refunded: i64,
}

/// Why a command cannot apply to a payment as it is. Each is either a
/// conflict with the payment's state (409) or an amount out of bounds
/// (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("the payment was declined; there is nothing to {0}")]
    Declined(&'static str),
    #[error("the authorization was voided; there is nothing to {0}")]
    Voided(&'static str),
    #[error("the payment is already captured; a payment is captured at most once")]
    AlreadyCaptured,
    #[error("the payment is captured; refund it instead of voiding")]
    CapturedRefundInstead,
    #[error("the payment is not captured; void the authorization instead of refunding")]
    NotCapturedVoidInstead,
    #[error("the payment is already refunded in full")]
    FullyRefunded,
    #[error("must be a positive number of cents")]
    NotPositive,
    #[error("must be at most the authorized {0} cents")]
    ExceedsAuthorization(i64),
    #[error("must be at most the {0} cents captured and not yet refunded")]
    ExceedsRefundable(i64),
}

impl Refusal {
    /// Whether the amount, not the payment's state, is at fault (422; the
    /// rest are 409).
    pub(crate) fn is_amount(&self) -> bool {
        matches!(
            self,
            Refusal::NotPositive | Refusal::ExceedsAuthorization(_) | Refusal::ExceedsRefundable(_)
        )
    }
}

impl Balance {
    /// Captures `amount` (default: the whole authorization) and answers the
    /// new balance with the amount captured. What is not captured is
    /// released: a payment is captured once.
    pub(crate) fn capture(self, amount: Option<i64>) -> Result<(Balance, i64), Refusal> {
        match self.status {
            PaymentStatus::Authorized => {}
            PaymentStatus::Declined => return Err(Refusal::Declined("capture")),
            PaymentStatus::Voided => return Err(Refusal::Voided("capture")),
            PaymentStatus::Captured
            | PaymentStatus::PartiallyRefunded
            | PaymentStatus::Refunded => return Err(Refusal::AlreadyCaptured),
        }
        let amount = amount.unwrap_or(self.authorized);
        if amount <= 0 {
            return Err(Refusal::NotPositive);
        }
        if amount > self.authorized {
            return Err(Refusal::ExceedsAuthorization(self.authorized));
        }
        let next = Balance {
            status: PaymentStatus::Captured,
            captured: amount,
            ..self
        };
        Ok((next, amount))
    }

    /// Releases an uncaptured authorization and answers the new balance
    /// with the amount released; `None` when nothing is held because the
    /// payment was declined or is already voided. That is not an error: a
    /// compensation must be safe to repeat, and "no money held" is what its
    /// caller wants either way.
    pub(crate) fn void(self) -> Result<Option<(Balance, i64)>, Refusal> {
        match self.status {
            PaymentStatus::Authorized => Ok(Some((
                Balance {
                    status: PaymentStatus::Voided,
                    ..self
                },
                self.authorized,
            ))),
            PaymentStatus::Declined | PaymentStatus::Voided => Ok(None),
            PaymentStatus::Captured
            | PaymentStatus::PartiallyRefunded
            | PaymentStatus::Refunded => Err(Refusal::CapturedRefundInstead),
        }
    }

    /// Refunds `amount` (default: all that is captured and not yet
    /// refunded) and answers the new balance with the amount refunded.
    pub(crate) fn refund(self, amount: Option<i64>) -> Result<(Balance, i64), Refusal> {
        match self.status {
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => {}
            PaymentStatus::Authorized => return Err(Refusal::NotCapturedVoidInstead),
            PaymentStatus::Declined => return Err(Refusal::Declined("refund")),
            PaymentStatus::Voided => return Err(Refusal::Voided("refund")),
            PaymentStatus::Refunded => return Err(Refusal::FullyRefunded),
        }
        let refundable = self.captured - self.refunded;
        let amount = amount.unwrap_or(refundable);
        if amount <= 0 {
            return Err(Refusal::NotPositive);
        }
        if amount > refundable {
            return Err(Refusal::ExceedsRefundable(refundable));
        }
        let refunded = self.refunded + amount;
        let status = if refunded == self.captured {
            PaymentStatus::Refunded
        } else {
            PaymentStatus::PartiallyRefunded
        };
        Ok((
            Balance {
                status,
                refunded,
                ..self
            },
            amount,
        ))
    }

    /// Whether the invariant holds (tests check every transition keeps it).
    #[cfg(test)]
    fn is_consistent(&self) -> bool {
        0 <= self.refunded && self.refunded <= self.captured && self.captured <= self.authorized
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorized(cents: i64) -> Balance {
        Balance {
            status: PaymentStatus::Authorized,
            authorized: cents,
            captured: 0,
            refunded: 0,
        }
    }

    fn with_status(status: PaymentStatus) -> Balance {
        Balance {
            status,
            ..authorized(1000)
        }
    }

    #[test]
    fn the_test_tokens_decide_as_named() {
        assert_eq!(
            Decision::for_method(PaymentMethod::Visa),
            Decision::Authorized
        );
        assert_eq!(
            Decision::for_method(PaymentMethod::ChargeDeclined).reason(),
            Some("card_declined")
        );
        assert_eq!(
            Decision::for_method(PaymentMethod::ChargeDeclinedInsufficientFunds).reason(),
            Some("insufficient_funds")
        );
        assert_eq!(
            Decision::for_method(PaymentMethod::ChargeDeclined).status(),
            PaymentStatus::Declined
        );
    }

    #[test]
    fn a_capture_takes_the_whole_authorization_by_default() {
        let (b, amount) = authorized(1000).capture(None).expect("captures");
        assert_eq!(amount, 1000);
        assert_eq!(b.status, PaymentStatus::Captured);
        assert_eq!(b.captured, 1000);
        assert!(b.is_consistent());
    }

    #[test]
    fn a_capture_may_take_less_but_never_more_than_authorized() {
        let (b, amount) = authorized(1000).capture(Some(400)).expect("captures");
        assert_eq!((b.captured, amount), (400, 400));
        assert_eq!(
            authorized(1000).capture(Some(1001)),
            Err(Refusal::ExceedsAuthorization(1000))
        );
        assert_eq!(authorized(1000).capture(Some(0)), Err(Refusal::NotPositive));
    }

    #[test]
    fn a_capture_happens_only_once_and_only_from_authorized() {
        let (captured, _) = authorized(1000).capture(Some(10)).expect("captures");
        assert_eq!(captured.capture(None), Err(Refusal::AlreadyCaptured));
        for status in [PaymentStatus::PartiallyRefunded, PaymentStatus::Refunded] {
            assert_eq!(
                with_status(status).capture(None),
                Err(Refusal::AlreadyCaptured)
            );
        }
        assert_eq!(
            with_status(PaymentStatus::Voided).capture(None),
            Err(Refusal::Voided("capture"))
        );
        assert_eq!(
            with_status(PaymentStatus::Declined).capture(None),
            Err(Refusal::Declined("capture"))
        );
    }

    #[test]
    fn a_void_releases_an_authorization_and_repeats_harmlessly() {
        let (voided, released) = authorized(700)
            .void()
            .expect("voids")
            .expect("something held");
        assert_eq!(voided.status, PaymentStatus::Voided);
        assert_eq!(released, 700);
        assert_eq!(voided.void(), Ok(None));
        assert_eq!(with_status(PaymentStatus::Declined).void(), Ok(None));
    }

    #[test]
    fn a_captured_payment_is_refunded_not_voided() {
        for status in [
            PaymentStatus::Captured,
            PaymentStatus::PartiallyRefunded,
            PaymentStatus::Refunded,
        ] {
            assert_eq!(
                with_status(status).void(),
                Err(Refusal::CapturedRefundInstead)
            );
        }
    }

    #[test]
    fn refunds_add_up_to_at_most_the_capture() {
        let (captured, _) = authorized(1000).capture(Some(800)).expect("captures");
        let (partly, amount) = captured.refund(Some(300)).expect("refunds");
        assert_eq!(amount, 300);
        assert_eq!(partly.status, PaymentStatus::PartiallyRefunded);
        assert_eq!(
            partly.refund(Some(501)),
            Err(Refusal::ExceedsRefundable(500))
        );
        let (full, amount) = partly.refund(None).expect("refunds the rest");
        assert_eq!(amount, 500);
        assert_eq!(full.status, PaymentStatus::Refunded);
        assert_eq!(full.refunded, 800);
        assert!(full.is_consistent());
        assert_eq!(full.refund(None), Err(Refusal::FullyRefunded));
    }

    #[test]
    fn only_a_capture_can_be_refunded() {
        assert_eq!(
            authorized(1000).refund(None),
            Err(Refusal::NotCapturedVoidInstead)
        );
        assert_eq!(
            with_status(PaymentStatus::Voided).refund(None),
            Err(Refusal::Voided("refund"))
        );
        assert_eq!(
            with_status(PaymentStatus::Declined).refund(None),
            Err(Refusal::Declined("refund"))
        );
        let (captured, _) = authorized(1000).capture(None).expect("captures");
        assert_eq!(captured.refund(Some(-1)), Err(Refusal::NotPositive));
    }

    #[test]
    fn amount_refusals_are_told_apart_from_state_conflicts() {
        assert!(Refusal::ExceedsAuthorization(1).is_amount());
        assert!(Refusal::ExceedsRefundable(1).is_amount());
        assert!(Refusal::NotPositive.is_amount());
        assert!(!Refusal::AlreadyCaptured.is_amount());
        assert!(!Refusal::CapturedRefundInstead.is_amount());
    }

    /// Every sequence of commands (a small exhaustive walk) keeps the
    /// invariant and never captures twice.
    #[test]
    fn no_sequence_of_commands_breaks_the_invariant() {
        #[derive(Clone, Copy, Debug)]
        enum Cmd {
            Capture(Option<i64>),
            Void,
            Refund(Option<i64>),
        }
        let amounts = [None, Some(-1), Some(1), Some(499), Some(500), Some(501)];
        let mut commands = vec![Cmd::Void];
        for a in amounts {
            commands.push(Cmd::Capture(a));
            commands.push(Cmd::Refund(a));
        }
        fn walk(balance: Balance, commands: &[Cmd], depth: usize, captures: usize) {
            assert!(balance.is_consistent(), "{balance:?}");
            assert!(captures <= 1);
            if depth == 0 {
                return;
            }
            for &cmd in commands {
                let (next, captured) = match cmd {
                    Cmd::Capture(a) => match balance.capture(a) {
                        Ok((b, _)) => (b, 1),
                        Err(_) => (balance, 0),
                    },
                    Cmd::Void => match balance.void() {
                        Ok(Some((b, _))) => (b, 0),
                        _ => (balance, 0),
                    },
                    Cmd::Refund(a) => match balance.refund(a) {
                        Ok((b, _)) => (b, 0),
                        Err(_) => (balance, 0),
                    },
                };
                walk(next, commands, depth - 1, captures + captured);
            }
        }
        walk(authorized(500), &commands, 4, 0);
    }
}
