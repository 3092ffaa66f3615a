//! The orders domain: types and state machines, no I/O.
//!
//! Architecture invariant: nothing under `domain/` performs I/O or reads a
//! clock. Facts from the outside world (results of calls, events, timer
//! expiries) come in as values, and decisions go out as values.

pub mod saga;

pub use saga::{
    Command, OrderEventKind, PaymentState, RejectionCause, Saga, SagaError, SagaEvent, StockState,
    TicketState,
};
