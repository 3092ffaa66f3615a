//! The users service's API, exercised over HTTP on a free port with a fresh
//! SQLite file per test.

mod helpers;
mod login;
mod register;
mod runtime;
