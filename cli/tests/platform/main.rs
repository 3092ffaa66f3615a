//! Whole-platform tests: `feastfast up` as a real process tree on free
//! ports, driven through the gateway like a user would.

mod browser;
mod chaos;
mod degraded;
mod failpoints;
mod harness;
mod lifecycle;
mod load;
mod orders;
mod replicas;
mod restart;
