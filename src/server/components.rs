//! What the server keeps per connected client, and the id → entity directory.

use bevy::ecs::lifecycle::HookContext;
use bevy::ecs::world::DeferredWorld;
use bevy::log::warn;
use bevy::math::Vec3;
use bevy::prelude::{Component, Entity, Resource};
use rustc_hash::FxHashMap;

use crate::protocol::{PeerId, Realm, SpaceId};
use crate::proximity::ClientHandle;

/// A client of the proximity core: its id and the realm its connect token put it in.
///
/// Its lifecycle is the client's: adding it registers the entity in [`PeerDirectory`];
/// removing it (or despawning the entity) takes the client out of the proximity core, so
/// its pairs end with [`PairLeft`](super::PairLeft) at the next tick. The server spawns one
/// per connection; a game using [`MingleProximityPlugin`](super::MingleProximityPlugin) alone
/// spawns its own, with [`MinglePosition`] and [`MingleSpace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Component)]
#[require(ProximitySlot, NearbyPeers)]
#[component(on_add = register_peer, on_remove = release_peer)]
pub struct MinglePeer {
    /// The renet client id.
    pub id: PeerId,
    /// The tenant it belongs to; peers of two realms never meet.
    pub realm: Realm,
}

/// Registers a new client entity under its id (see [`MinglePeer`]).
fn register_peer(mut world: DeferredWorld, ctx: HookContext) {
    let Some(&MinglePeer { id, .. }) = world.get::<MinglePeer>(ctx.entity) else {
        return;
    };
    let Some(mut directory) = world.get_resource_mut::<PeerDirectory>() else {
        warn_without_plugin();
        return;
    };
    if let Some(stale) = directory.register(id, ctx.entity)
        && stale != ctx.entity
    {
        // Two entities under one id: the newer wins, and starts without the older one's pairs.
        warn!("{id} was spawned twice; the older entity {stale} is despawned");
        if let Some(mut index) = world.get_resource_mut::<super::ProximityIndex>() {
            index.0.remove(id);
        }
        world.commands().entity(stale).despawn();
    }
}

/// Takes a removed client out of the directory and the core (see [`MinglePeer`]).
fn release_peer(mut world: DeferredWorld, ctx: HookContext) {
    let Some(&MinglePeer { id, .. }) = world.get::<MinglePeer>(ctx.entity) else {
        return;
    };
    let Some(mut directory) = world.get_resource_mut::<PeerDirectory>() else {
        return;
    };
    // A stale duplicate (see `register_peer`) no longer owns the id.
    if directory.get(id) != Some(ctx.entity) {
        return;
    }
    directory.unregister(id);
    if let Some(mut index) = world.get_resource_mut::<super::ProximityIndex>() {
        // Its pairs become departures at the next proximity tick.
        index.0.remove(id);
    }
}

/// Warns once that client entities exist but nothing tracks them.
fn warn_without_plugin() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        warn!(
            "a MinglePeer was spawned but MingleProximityPlugin is not added: add \
             MingleServerPlugin, or MingleProximityPlugin alone, to the app"
        );
    });
}

/// Where the client last said it stands. Inserted with its first position update.
#[derive(Debug, Clone, Copy, PartialEq, Component)]
pub struct MinglePosition(pub Vec3);

/// The client's handle in the proximity core, filled by the proximity tick at the client's
/// first position: later moves go to the core by handle, with no id lookup. Inserted empty
/// with [`MinglePeer`]; nothing else needs to touch it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Component)]
pub struct ProximitySlot(pub(crate) Option<ClientHandle>);

/// The space (map, channel) the client last said it is in. Inserted with its first position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Component)]
pub struct MingleSpace(pub SpaceId);

/// The peers currently introduced to this client, ascending by id. Symmetric: if A's set
/// holds B, B's holds A. Updated by the proximity tick only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Component)]
pub struct NearbyPeers(Vec<PeerId>);

impl NearbyPeers {
    /// Whether `peer` is introduced to this client.
    pub fn contains(&self, peer: PeerId) -> bool {
        self.0.binary_search(&peer).is_ok()
    }

    /// The introduced peers, ascending.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = PeerId> + '_ {
        self.0.iter().copied()
    }

    /// The introduced peers, ascending, as a slice.
    pub fn as_slice(&self) -> &[PeerId] {
        &self.0
    }

    /// How many peers are introduced.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no peer is introduced.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn insert(&mut self, peer: PeerId) {
        if let Err(at) = self.0.binary_search(&peer) {
            self.0.insert(at, peer);
        }
    }

    pub(crate) fn remove(&mut self, peer: PeerId) {
        if let Ok(at) = self.0.binary_search(&peer) {
            self.0.remove(at);
        }
    }
}

/// Per-client bookkeeping of the intake: when it was last heard, how often it sent garbage,
/// and its rate-limit buckets.
#[derive(Debug, Clone, Copy, Default, Component)]
pub struct ClientHealth {
    /// Real-time seconds since startup at which the last message arrived.
    pub last_heard_secs: f64,
    /// Undecodable messages received so far.
    pub decode_failures: u32,
    /// Position updates it may still send now (token bucket).
    pub position_tokens: f64,
    /// Refresh requests it may still send now (token bucket).
    pub refresh_tokens: f64,
    /// When the buckets were last refilled, seconds.
    pub refilled_secs: f64,
    /// When it was last told it is rate-limited, seconds (one rejection a second at most).
    pub last_limited_secs: f64,
    /// When it was last told a position was invalid, seconds (one rejection a second at most).
    pub last_invalid_position_secs: f64,
}

impl ClientHealth {
    /// A fresh client, first heard at `now`, with full buckets.
    pub fn new(now: f64, position_burst: f64, refresh_burst: f64) -> Self {
        ClientHealth {
            last_heard_secs: now,
            decode_failures: 0,
            position_tokens: position_burst,
            refresh_tokens: refresh_burst,
            refilled_secs: now,
            last_limited_secs: f64::NEG_INFINITY,
            last_invalid_position_secs: f64::NEG_INFINITY,
        }
    }
}

/// Maps every connected client's id to its entity.
#[derive(Debug, Default, Resource)]
pub struct PeerDirectory(FxHashMap<PeerId, Entity>);

impl PeerDirectory {
    /// The entity of a connected client.
    pub fn get(&self, peer: PeerId) -> Option<Entity> {
        self.0.get(&peer).copied()
    }

    /// Connected clients.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every connected client and its entity, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (PeerId, Entity)> + '_ {
        self.0.iter().map(|(p, e)| (*p, *e))
    }

    /// Registers a client's entity; the server's connection observer does this for every
    /// renet client. Returns the entity previously registered under `peer`, if any.
    pub fn register(&mut self, peer: PeerId, entity: Entity) -> Option<Entity> {
        self.0.insert(peer, entity)
    }

    /// Forgets a client; returns its entity if it was registered.
    pub fn unregister(&mut self, peer: PeerId) -> Option<Entity> {
        self.0.remove(&peer)
    }
}
