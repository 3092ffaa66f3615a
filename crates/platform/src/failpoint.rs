//! Failpoints: named places where a process can be made to crash, to
//! prove that every crash is survivable.
//!
//! `FEASTFAST_FAILPOINTS` lists the points to arm, comma-separated, each
//! `name` (any service) or `service:name` (that service only), e.g.
//! `orders:saga.authorize.answered,relay.published`. A process that reaches
//! an armed point ([`hit`]) writes one log line naming it and aborts at
//! once (`std::process::abort`): like a SIGKILL, nothing is flushed, no
//! request drains, no transaction in flight commits. The list is read once
//! per process ([`init`], from `feastfast serve`); unset, a point costs one
//! atomic load. Unknown names are a configuration error at start, so a
//! typo never makes a test pass by crashing nothing.
//!
//! Under `feastfast up` the supervisor passes the variable to a service's
//! first start only: the process it restarts after the crash runs clean,
//! so the test sees the recovery, not a crash loop.

use std::collections::HashSet;
use std::fmt::Display;
use std::sync::OnceLock;

use crate::config::ConfigError;

/// The environment variable that arms failpoints.
pub const ENV: &str = "FEASTFAST_FAILPOINTS";

/// Every failpoint, with what has happened when it fires.
pub const KNOWN: &[(&str, &str)] = &[
    (
        "saga.reserve_stock.answered",
        "restaurants reserved the stock; the saga has not recorded it",
    ),
    (
        "saga.reserve_stock.recorded",
        "the reservation is recorded; the next step has not started",
    ),
    (
        "saga.authorize.answered",
        "payments authorized the card; the saga has not recorded it",
    ),
    (
        "saga.authorize.recorded",
        "the authorization is recorded; the ticket is not asked for yet",
    ),
    (
        "saga.create_ticket.answered",
        "restaurants created the ticket; the saga has not recorded it",
    ),
    (
        "saga.create_ticket.recorded",
        "the ticket is recorded; nothing after it has run",
    ),
    (
        "saga.capture.answered",
        "payments captured the payment; the saga has not recorded it",
    ),
    (
        "saga.capture.recorded",
        "the capture is recorded; nothing after it has run",
    ),
    (
        "saga.cancel_ticket.answered",
        "restaurants cancelled the ticket; the saga has not recorded it",
    ),
    (
        "saga.cancel_ticket.recorded",
        "the ticket's cancel is recorded; the other compensations may not have run",
    ),
    (
        "saga.void.answered",
        "payments voided the authorization; the saga has not recorded it",
    ),
    (
        "saga.void.recorded",
        "the void is recorded; the other compensations may not have run",
    ),
    (
        "saga.release_stock.answered",
        "restaurants released the stock; the saga has not recorded it",
    ),
    (
        "saga.release_stock.recorded",
        "the release is recorded; the other compensations may not have run",
    ),
    (
        "relay.published",
        "the relay published a batch (handed it to the transport; on the feed, \
         positioned it) and has not marked it or woken the feed's readers",
    ),
    (
        "consumer.applied",
        "a consumer committed an event's effect; it is not acknowledged yet",
    ),
];

/// The points armed in this process; unset until [`init`] (and in every
/// process that never calls it, such as tests running services in-process).
static ARMED: OnceLock<HashSet<String>> = OnceLock::new();

/// Parses a `FEASTFAST_FAILPOINTS` value into the points armed for
/// `service`; every unknown point name is an error.
pub fn parse(value: &str, service: &str) -> Result<HashSet<String>, ConfigError> {
    let mut armed = HashSet::new();
    let mut errors = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (only, name) = match entry.split_once(':') {
            Some((only, name)) => (Some(only.trim()), name.trim()),
            None => (None, entry),
        };
        if !KNOWN.iter().any(|(known, _)| *known == name) {
            errors.push(format!("{ENV}: unknown failpoint {name:?}"));
        } else if only.is_none_or(|only| only == service) {
            armed.insert(name.to_owned());
        }
    }
    if errors.is_empty() {
        Ok(armed)
    } else {
        let names: Vec<&str> = KNOWN.iter().map(|(name, _)| *name).collect();
        errors.push(format!("known failpoints: {}", names.join(", ")));
        Err(ConfigError(errors))
    }
}

/// Arms the points `FEASTFAST_FAILPOINTS` names for `service` in this
/// process. Call once, at start; a later call changes nothing.
pub fn init(service: &str) -> Result<(), ConfigError> {
    let value = std::env::var(ENV).unwrap_or_default();
    let armed = parse(&value, service)?;
    if !armed.is_empty() {
        let _ = ARMED.set(armed);
    }
    Ok(())
}

/// Crashes the process here if `name` is armed. `name` is formatted only
/// when some point is armed (pass `format_args!` for composed names).
pub fn hit(name: impl Display) {
    let Some(armed) = ARMED.get() else {
        return;
    };
    let name = name.to_string();
    debug_assert!(
        KNOWN.iter().any(|(known, _)| *known == name),
        "failpoint {name:?} is not in failpoint::KNOWN"
    );
    if armed.contains(&name) {
        tracing::error!(failpoint = %name, "failpoint hit: aborting the process");
        // The log line is the only thing this process still owes.
        eprintln!("failpoint {name} hit: aborting");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_is_armed_for_every_service_or_only_the_one_named() {
        let value = "relay.published, orders:saga.authorize.answered";
        let orders = parse(value, "orders").expect("valid");
        assert!(orders.contains("relay.published"));
        assert!(orders.contains("saga.authorize.answered"));
        let payments = parse(value, "payments").expect("valid");
        assert_eq!(
            payments.into_iter().collect::<Vec<_>>(),
            ["relay.published"]
        );
        assert!(parse("", "orders").expect("valid").is_empty());
    }

    #[test]
    fn an_unknown_point_is_refused_with_the_known_ones_listed() {
        let message = parse("orders:saga.authorise.answered", "payments")
            .expect_err("unknown")
            .to_string();
        assert!(message.contains("\"saga.authorise.answered\""), "{message}");
        assert!(message.contains("saga.authorize.answered"), "{message}");
        assert!(message.contains("relay.published"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
}
