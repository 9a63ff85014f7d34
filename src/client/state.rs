//! What the client plugin keeps: the local player marker, the session and the peer set.

use std::collections::BTreeSet;

use bevy::prelude::{Component, Resource};

use crate::protocol::{IceServer, PeerId, SpaceId};

/// Marks the local player's entity: its world position ([`GlobalTransform`](bevy::prelude::GlobalTransform)
/// with `TransformPlugin`, else its `Transform`) is sent, with its `space`. Exactly one entity
/// should carry it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Component)]
#[require(bevy::prelude::Transform)]
pub struct MingleLocal {
    /// The space (map, channel) the player is in.
    pub space: SpaceId,
}

/// The server's welcome: present as a resource once the server greeted this client, removed
/// when the connection is lost.
#[derive(Debug, Clone, Copy, PartialEq, Resource)]
pub struct MingleWelcome {
    /// This client's peer id.
    pub you: PeerId,
    /// The server's introduction distance, world units.
    pub range: f32,
    /// The server's departure distance, world units.
    pub leave_range: f32,
    /// The server's proximity ticks per second.
    pub tick_hz: f32,
}

/// The STUN/TURN servers the server gave this client, with TURN credentials of its own
/// (the latest `IceServers` message). Empty until one arrives, and when the server has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Resource)]
pub struct MingleIceServers {
    /// The servers, STUN ones without credentials.
    pub servers: Vec<IceServer>,
    /// Unix time after which the TURN credentials are refused; 0 without TURN.
    pub expires_unix: u64,
    /// How many `IceServers` messages arrived (0: none yet); changes with every renewal.
    pub generation: u64,
}

/// The peers the server has introduced to this client, built only from what it received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Resource)]
pub struct NearbyPeers(pub(crate) BTreeSet<PeerId>);

impl NearbyPeers {
    /// Whether `peer` is currently introduced.
    pub fn contains(&self, peer: PeerId) -> bool {
        self.0.contains(&peer)
    }

    /// The introduced peers, ascending.
    pub fn iter(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.0.iter().copied()
    }

    /// How many peers are introduced.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no peer is introduced.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Counts of what this client received and sent, for tests, tools and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Resource)]
pub struct MingleClientStats {
    /// `PeersChanged` messages received.
    pub peers_changed: u64,
    /// `PeerSnapshot` messages received.
    pub snapshots: u64,
    /// Signals received.
    pub signals: u64,
    /// Rejections received.
    pub rejections: u64,
    /// Server messages that failed to decode.
    pub undecodable: u64,
    /// Position updates sent.
    pub positions_sent: u64,
}
