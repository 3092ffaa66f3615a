//! The payments service's API, exercised over HTTP on a free port with a
//! fresh SQLite file per test and tokens signed by a key the test holds.

mod access;
mod authorize;
mod capture;
mod events;
mod helpers;
mod idempotency;
mod read;
mod refund;
mod runtime;
mod void;
