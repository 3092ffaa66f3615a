//! The service runtime every FeastFast service shares.
//!
//! A service is a router plus its state; everything around it lives here,
//! once: configuration, logs and trace context, the HTTP server with its
//! health, metrics and OpenAPI endpoints, problem+json errors and the
//! extractors that produce them, storage, authentication, and the outbound
//! HTTP client.
//!
//! `testing` is test support used by every crate's integration tests (a
//! service run in-process, a small HTTP client, the problem+json and
//! standard-endpoint assertions); nothing outside tests uses it.
//!
//! Architecture invariant: a service never re-implements anything in this
//! crate; if two services need the same code, it moves here.

pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod context;
pub mod db;
pub mod error;
pub mod events;
pub mod extract;
pub mod failpoint;
pub mod listener;
pub mod server;
pub mod telemetry;
pub mod testing;
pub mod time;

pub use auth::{Identity, Verifier};
pub use client::HttpClient;
pub use config::{ConfigError, Env, HttpConfig, ServiceConfig};
pub use db::Db;
pub use error::{ApiError, ApiResult};
pub use extract::{Json, Path, Query};
pub use server::{Server, Service};
