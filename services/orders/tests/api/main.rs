//! The orders service with its real participants (restaurants, payments)
//! in-process on free ports, each with its own SQLite file, and a stand-in
//! for the delivery service's feed.

mod helpers;
mod placing;
mod recovery;
mod stats;
mod unhappy;
