//! mingle: a proximity introduction server for spatial voice chat in Bevy games.
//!
//! Clients report where they stand; mingle decides who is within earshot and tells each client
//! only what changed — a peer entered range, a peer left — so that clients open direct WebRTC
//! links to each other, with mingle relaying the signaling between introduced peers. In steady
//! state it sends nothing.
//!
//! # Data path
//!
//! Server frame: [`PreUpdate`](bevy::app::PreUpdate) UDP receive → decode and validate
//! ([`protocol`]) → update [`MinglePosition`](server::MinglePosition) → [`FixedUpdate`](bevy::app::FixedUpdate)
//! proximity tick ([`proximity`]: grid, hysteresis, optional peer cap) →
//! [`PairEntered`](server::PairEntered) / [`PairLeft`](server::PairLeft) messages →
//! [`PostUpdate`](bevy::app::PostUpdate) one `PeersChanged` per client → UDP send.
//! The [`protocol`] and [`proximity`] modules know neither Bevy nor sockets.
//!
//! # Both plugins
//!
//! ```no_run
//! use std::time::Duration;
//! use bevy::app::ScheduleRunnerPlugin;
//! use bevy::prelude::*;
//! use mingle::prelude::*;
//!
//! // A dedicated server (what `mingle-server` runs):
//! App::new()
//!     .add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(50))))
//!     .add_plugins(MingleServerPlugin::default())
//!     .run();
//!
//! // A game client, connecting at once (a game with a login screen calls
//! // `MingleClient::connect` when it has a token):
//! fn greet(mut entered: MessageReader<PeerEntered>) {
//!     for PeerEntered(peer) in entered.read() {
//!         info!("{peer} is within earshot: open a voice link");
//!     }
//! }
//! App::new()
//!     .add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(16))))
//!     .add_plugins(MingleClientPlugin::default().connect_to(MingleServer::unsecure(
//!         "127.0.0.1:5000".parse().unwrap(),
//!         PeerId(42),
//!     )))
//!     .add_systems(Startup, |mut commands: Commands| {
//!         commands.spawn(MingleLocal::default());
//!     })
//!     .add_systems(Update, greet)
//!     .run();
//! ```
//!
//! # Cargo features
//!
//! `client` (the client plugin alone: no server dependency), `server` (the server and
//! proximity plugins), `tools` (default: both, plus `mingle-server` and `mingle-loadgen`),
//! `webrtc`, `voice`, `voice-devices`, `debug-window`. A game's client build:
//! `mingle = { version = "0.1", default-features = false, features = ["client"] }`.
//!
//! # Panics, errors and unwraps
//!
//! Bad input — from the network, a config file or the command line — gets a typed error or
//! rejection ([`protocol::DecodeError`], [`protocol::RejectReason`],
//! [`server::ConfigError`], [`client::ClientError`]) and never panics the server; a client
//! that keeps sending garbage is disconnected, alone. A panic means a broken internal
//! invariant, and every `expect` names the invariant. Plugins do no I/O in `build` and do not panic on
//! what the environment decides: an unbindable socket or an invalid configuration is a
//! `MingleServerStatus::Failed`, a malformed or expired connect token a
//! `MingleConnectionState::Failed`.

#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
/// The command line of `mingle-server` (feature `tools`): for the binary, not an API.
#[cfg(feature = "tools")]
#[doc(hidden)]
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
pub mod kit;
/// The load generator behind `mingle-loadgen` (feature `tools`): for the binary, not an API.
#[cfg(feature = "tools")]
#[doc(hidden)]
pub mod loadgen;
#[cfg(all(feature = "client", feature = "server"))]
pub mod memory;
pub mod protocol;
pub mod proximity;
#[cfg(feature = "server")]
pub mod server;
pub mod settings;

/// What a game needs from both sides: [`client::prelude`] and [`server::prelude`].
#[cfg(all(feature = "client", feature = "server"))]
pub mod prelude {
    pub use crate::client::prelude::*;
    pub use crate::server::prelude::*;
}

/// The README's code blocks, compiled as doc tests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
