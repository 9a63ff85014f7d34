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
//! use bevy::prelude::*;
//! use mingle::prelude::*;
//!
//! // A dedicated server (what `mingle-server` runs):
//! App::new()
//!     .add_plugins(MinimalPlugins)
//!     .add_plugins(MingleServerPlugin::new(MingleServerConfig::default()))
//!     .run();
//!
//! // A game client:
//! fn greet(mut entered: MessageReader<PeerEntered>) {
//!     for PeerEntered(peer) in entered.read() {
//!         info!("{peer} is within earshot: open a voice link");
//!     }
//! }
//! App::new()
//!     .add_plugins(MinimalPlugins)
//!     .add_plugins(MingleClientPlugin::new(MingleClientConfig::default()))
//!     .add_systems(Startup, |mut commands: Commands| {
//!         commands.spawn((MingleLocal::default(), Transform::default()));
//!     })
//!     .add_systems(Update, greet)
//!     .run();
//! ```
//!
//! # Panics, errors and unwraps
//!
//! Bad input — from the network, a config file or the command line — gets a typed error or
//! rejection ([`protocol::DecodeError`], [`protocol::RejectReason`],
//! [`server::ConfigError`], [`client::ClientError`]) and never panics the server; a client
//! that keeps sending garbage is disconnected, alone. A panic means a broken internal
//! invariant, and every `expect` names the invariant. Plugin `build` panics on what a game
//! must fix before it can run (an invalid configuration, an unbindable socket, a malformed
//! connect token), with the fix in the message; validate first
//! ([`server::MingleServerConfig::validate`]) to handle those as errors.

#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod cli;
pub mod client;
pub mod kit;
pub mod loadgen;
pub mod protocol;
pub mod proximity;
pub mod server;
pub mod settings;

/// What a game needs: the plugins, their configs, system sets and messages.
pub mod prelude {
    #[cfg(feature = "voice")]
    pub use crate::client::voice::{
        MingleVoicePlugin, PeerPositions, Speaking, VoiceAudio, VoiceConfig, VoiceControls,
    };
    pub use crate::client::{
        MessageRejected, MingleClient, MingleClientConfig, MingleClientPlugin, MingleClientSystems,
        MingleLocal, NearbyPeers, PeerEntered, PeerLeft, SignalReceived,
    };
    pub use crate::protocol::{ConnectionOutcome, PeerId, Realm, SpaceId};
    pub use crate::server::{
        MingleServerConfig, MingleServerPlugin, MingleServerSystems, PairEntered, PairLeft,
    };
}

/// The README's code blocks, compiled as doc tests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
