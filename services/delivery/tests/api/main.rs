//! The delivery service's API, exercised over HTTP on a free port with a
//! fresh SQLite file per test, tokens signed by a key the test holds, and
//! a stand-in orders service publishing `order.confirmed` and
//! `order.cancelled` on a real feed.

mod couriers;
mod dispatch;
mod helpers;
mod lifecycle;
mod runtime;
