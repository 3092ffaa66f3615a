//! The orders service: the order saga's orchestrator.
//!
//! `domain/` is pure: the saga is a state machine with no I/O and no clock,
//! so every decision the service takes about an order can be tested without
//! a database. The routes, the store and the executor of the saga's
//! commands wrap around it.

pub mod domain;
