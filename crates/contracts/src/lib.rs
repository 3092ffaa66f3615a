//! FeastFast's wire types: what crosses a process boundary.
//!
//! Architecture invariant: this crate holds only types and their parsing —
//! no I/O, no service logic. A value of a newtype defined here has been
//! validated, so code that receives one never checks it again.

pub mod audit;
pub mod catalog;
pub mod delivery;
pub mod events;
pub mod identity;
pub mod ids;
pub mod kitchen;
pub mod money;
pub mod ops;
pub mod orders;
pub mod patch;
pub mod payments;
pub mod problem;
pub mod schemas;

pub use ids::{MenuItemId, OrderId, PaymentId, RestaurantId, UserId};
pub use money::PriceCents;
pub use problem::{FieldError, Problem};
