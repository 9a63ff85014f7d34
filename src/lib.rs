//! mingle: a proximity introduction server for spatial voice chat in Bevy games.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod cli;
pub mod client;
pub mod loadgen;
pub mod protocol;
pub mod proximity;
pub mod server;
