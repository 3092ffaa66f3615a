//! The restaurants service's API, exercised over HTTP on a free port with a
//! fresh SQLite file per test and tokens signed by a key the test holds.

mod helpers;
mod kitchen;
mod listing;
mod menu;
mod restaurants;
mod runtime;
