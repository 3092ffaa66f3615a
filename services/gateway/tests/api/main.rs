//! The gateway in front of real users and restaurants services, each on its
//! own free port with its own SQLite file.

mod admission;
mod catalog;
mod helpers;
mod identity;
mod ops;
mod web;
