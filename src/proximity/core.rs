//! The incremental proximity state machine.

use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;

use super::grid::{CellKey, Grid, Member};
use super::prefetch::prefetch;
use super::rules::{GroupId, ProximityConfig, RuleError};
use crate::protocol::{PeerId, Realm, SpaceId};

/// Why a pair was introduced.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ArrivalCause {
    /// They came within range.
    Proximity,
    /// They share a group (party, team, radio frequency): introduced wherever they stand.
    Group,
}

/// Why an introduced pair ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum DepartureCause {
    /// They moved apart beyond `leave_range`.
    Range,
    /// One side was removed (disconnected).
    Disconnect,
    /// One side moved to another space.
    SpaceChange,
    /// A peer cap is in force and one side was introduced to a nearer client instead.
    Replaced,
    /// One side blocked the other (or the game blocked the pair).
    Blocked,
    /// They no longer share a group, and are not near enough to stay introduced by proximity.
    GroupLeft,
}

impl ArrivalCause {
    /// A short lowercase name, for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ArrivalCause::Proximity => "proximity",
            ArrivalCause::Group => "group",
        }
    }
}

impl DepartureCause {
    /// A short lowercase name, for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DepartureCause::Range => "range",
            DepartureCause::Disconnect => "disconnect",
            DepartureCause::SpaceChange => "space_change",
            DepartureCause::Replaced => "replaced",
            DepartureCause::Blocked => "blocked",
            DepartureCause::GroupLeft => "group_left",
        }
    }
}

/// A pair whose state changed in a tick. Each pair appears once; `a` is the side whose
/// input caused the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairChange {
    /// `a` and `b` are now introduced.
    Entered {
        /// The side that moved (or joined).
        a: PeerId,
        /// The other side.
        b: PeerId,
        /// Why.
        cause: ArrivalCause,
    },
    /// `a` and `b` are no longer introduced.
    Left {
        /// The side that moved, left the space or disconnected.
        a: PeerId,
        /// The other side.
        b: PeerId,
        /// Why.
        cause: DepartureCause,
    },
}

/// An input the core refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProximityError {
    /// A coordinate was NaN or infinite.
    NonFinitePosition,
    /// The handle's client was removed since the handle was issued.
    StaleHandle,
}

/// A client's place in the core, returned by [`Proximity::set_position`]. Moving a client by
/// its handle ([`Proximity::set_position_of`]) skips the id lookup: the fast path for a caller
/// that keeps the handle beside the client (the server keeps it in a component). A handle
/// outlived by its client is refused, never taken for whoever reuses the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientHandle {
    index: u32,
    generation: u32,
}

impl std::fmt::Display for ProximityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProximityError::NonFinitePosition => {
                write!(f, "position has a NaN or infinite coordinate")
            }
            ProximityError::StaleHandle => write!(f, "the handle's client was removed"),
        }
    }
}

impl std::error::Error for ProximityError {}

// A change is small enough to buffer by the thousand: checked by the compiler.
const _: () = assert!(std::mem::size_of::<PairChange>() <= 24);

/// Peers a nearby set holds inline, in the client's own cache lines, before spilling to the
/// heap: a typical neighbourhood costs no extra memory access and no allocation.
const NEARBY_INLINE: usize = 12;

/// A client's introduced peers: sorted dense indices.
type NearbyIndices = SmallVec<[u32; NEARBY_INLINE]>;

/// Per-client state the tick works on, indexed densely by `u32`. Exactly two cache lines, so a
/// prefetch of a record ahead of its turn brings all of it.
#[derive(Debug)]
#[repr(align(64))]
struct Client {
    peer: PeerId,
    /// Where the last tick placed it (a move waits in the moved list until the next tick).
    pos: [f32; 3],
    /// The grid cell and slot holding this client, once the first tick placed it.
    at: Option<(CellKey, u32)>,
    /// In the worklist of this tick (capped zones).
    queued: bool,
    nearby: NearbyIndices,
}

// "Exactly two cache lines": checked by the compiler.
const _: () = assert!(std::mem::size_of::<Client>() == 128);

/// The part of a client's state that `set_position` touches: small and dense (16 bytes), so a
/// burst of updates to random clients stays in cache; the records are written by the tick,
/// in cell order, with prefetching.
#[derive(Debug, Clone, Copy)]
struct Status {
    generation: u32,
    zone: u32,
    /// Its entry in the moved list, or [`NOT_MOVED`].
    moved_at: u32,
    live: bool,
}

// "Small and dense (16 bytes)": checked by the compiler.
const _: () = assert!(std::mem::size_of::<Status>() == 16);

const NOT_MOVED: u32 = u32::MAX;

/// A client that moved since the last tick.
#[derive(Debug, Clone, Copy)]
struct Move {
    /// Cell order of its new position: the tick visits movers in this order.
    sort_key: u64,
    client: u32,
    /// Its zone, so the tick need not read the status again.
    zone: u32,
    pos: [f32; 3],
}

/// One zone's rules, squared where the hot path compares.
#[derive(Debug, Clone, Copy)]
struct ZoneRules {
    range_sq: f32,
    leave_sq: f32,
    /// `leave_range` plus a hair, so that float rounding in cell coordinates can never hide a
    /// client the squared-distance test would still count as near.
    query_radius: f32,
    /// Most peers; `u32::MAX` when unlimited.
    cap: u32,
}

/// The proximity state machine; see the [module docs](super).
#[derive(Debug)]
pub struct Proximity {
    config: ProximityConfig,
    clients: Vec<Client>,
    status: Vec<Status>,
    free: Vec<u32>,
    by_peer: FxHashMap<PeerId, u32>,
    zones: FxHashMap<(Realm, SpaceId), u32>,
    /// Per zone id: its key and how many clients are in it (freed at zero).
    zone_keys: Vec<(Realm, SpaceId)>,
    zone_rules: Vec<ZoneRules>,
    zone_members: Vec<u32>,
    free_zones: Vec<u32>,
    grid: Grid,
    /// Clients whose position was set since the last tick, once each.
    moved: Vec<Move>,
    /// Scratch of `examine`: clients in the scanned cells (those within `leave_range` first),
    /// which of the examined client's pairs were seen near, and new ones.
    candidates: Vec<(u32, f32)>,
    seen: Vec<bool>,
    entering: Vec<u32>,
    /// Capped zones: clients to re-examine this tick (lost a peer, or a peer moved).
    work: std::collections::VecDeque<u32>,
    /// Scratch of capped examination: candidates by distance.
    ranked: Vec<(f32, PeerId, u32)>,
    /// Scratch of `net_changes`.
    net_scratch: Vec<((u64, u64), usize)>,
    keep_scratch: Vec<bool>,
    pending: Vec<PairChange>,
    distance_checks: u64,
    /// Voice rules of the peers that have any (groups, a voice range other than 1), by id: they
    /// outlive a peer's removal (the caller clears them).
    rules: FxHashMap<PeerId, PeerRules>,
    /// Members of each group.
    members: FxHashMap<(Realm, GroupId), Vec<PeerId>>,
    /// Blocked pairs, smaller id first.
    blocks: FxHashSet<(PeerId, PeerId)>,
    /// Peers whose voice carries further than the plain range: the others look for them
    /// beyond their own scan.
    loud: Vec<PeerId>,
    /// Peers whose groups changed since the last tick.
    regrouped: Vec<PeerId>,
    max_group_size: usize,
    /// Whether this tick examines by the rules: while any is in force. The tick after the
    /// last one goes can take the plain path: a peer whose group went keeps its old groups
    /// (`told`) until that tick ends, and a multiplier or block taken back re-examines its
    /// peers, whose every pair the plain rules judge right.
    ruling: bool,
    /// Scratch of `examine_ruled`.
    ruled_scratch: Vec<(u32, f32)>,
}

/// One peer's voice rules, as the core holds them.
#[derive(Debug, Clone)]
struct PeerRules {
    /// Sorted.
    groups: SmallVec<[(Realm, GroupId); 2]>,
    /// Its groups as of the last tick: a pair that shared one there and no longer does left
    /// because of the group.
    told: SmallVec<[(Realm, GroupId); 2]>,
    voice: f32,
}

impl Default for PeerRules {
    fn default() -> Self {
        PeerRules {
            groups: SmallVec::new(),
            told: SmallVec::new(),
            voice: 1.0,
        }
    }
}

impl PeerRules {
    fn is_default(&self) -> bool {
        self.groups.is_empty() && self.told.is_empty() && self.voice == 1.0
    }
}

/// Whether two sorted group lists share a group of `realm`.
fn share(a: &[(Realm, GroupId)], b: &[(Realm, GroupId)], realm: Realm) -> bool {
    a.iter().any(|k| k.0 == realm && b.binary_search(k).is_ok())
}

fn ordered(a: PeerId, b: PeerId) -> (PeerId, PeerId) {
    if a < b { (a, b) } else { (b, a) }
}

#[inline]
fn dist_sq(a: [f32; 3], b: [f32; 3]) -> f32 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    dx * dx + dy * dy + dz * dz
}

/// How many movers ahead the tick's loops prefetch client records: enough to overlap several
/// memory latencies, few enough that the lines are still in L1 when their turn comes.
const PREFETCH_AHEAD: usize = 8;

/// Refuses a position with a NaN or infinite coordinate.
fn finite(pos: [f32; 3]) -> Result<(), ProximityError> {
    if pos.iter().all(|c| c.is_finite()) {
        Ok(())
    } else {
        Err(ProximityError::NonFinitePosition)
    }
}

/// Capacity a set takes when it first outgrows its inline storage: one allocation per crowded
/// client, not one per doubling.
const NEARBY_SPILL: usize = 64;

fn insert_sorted(set: &mut NearbyIndices, v: u32) {
    if let Err(at) = set.binary_search(&v) {
        if set.len() == set.capacity() && !set.spilled() {
            set.reserve_exact(NEARBY_SPILL - set.len());
        }
        set.insert(at, v);
    }
}

fn remove_sorted(set: &mut NearbyIndices, v: u32) {
    if let Ok(at) = set.binary_search(&v) {
        set.remove(at);
    }
}

impl Proximity {
    /// A core with no clients.
    ///
    /// # Panics
    /// If `range` is not positive and finite or `leave_range < range`: validate configuration
    /// first (the server's config loader does).
    pub fn new(config: ProximityConfig) -> Self {
        assert!(
            config.is_valid(),
            "ProximityConfig needs 0 < range <= leave_range and caps >= 1, got {config:?}"
        );
        let grid = Grid::new(config.max_leave_range() * (1.0 + 1.0e-4));
        Proximity {
            config,
            clients: Vec::new(),
            status: Vec::new(),
            free: Vec::new(),
            by_peer: FxHashMap::default(),
            zones: FxHashMap::default(),
            zone_keys: Vec::new(),
            zone_rules: Vec::new(),
            zone_members: Vec::new(),
            free_zones: Vec::new(),
            grid,
            moved: Vec::new(),
            candidates: Vec::new(),
            seen: Vec::new(),
            entering: Vec::new(),
            work: std::collections::VecDeque::new(),
            ranked: Vec::new(),
            net_scratch: Vec::new(),
            keep_scratch: Vec::new(),
            pending: Vec::new(),
            distance_checks: 0,
            rules: FxHashMap::default(),
            members: FxHashMap::default(),
            blocks: FxHashSet::default(),
            loud: Vec::new(),
            regrouped: Vec::new(),
            max_group_size: super::rules::DEFAULT_MAX_GROUP_SIZE,
            ruling: false,
            ruled_scratch: Vec::new(),
        }
    }

    /// The rules in force.
    pub fn config(&self) -> &ProximityConfig {
        &self.config
    }

    /// Clients currently held.
    pub fn len(&self) -> usize {
        self.by_peer.len()
    }

    /// Whether no client is held.
    pub fn is_empty(&self) -> bool {
        self.by_peer.is_empty()
    }

    /// Squared-distance evaluations made so far (the cost the original paid O(n) per update).
    pub fn distance_checks(&self) -> u64 {
        self.distance_checks
    }

    /// Grid cells that hold at least one client.
    pub fn occupied_cells(&self) -> usize {
        self.grid.occupied_cells()
    }

    fn zone_id(&mut self, realm: Realm, space: SpaceId) -> u32 {
        if let Some(&z) = self.zones.get(&(realm, space)) {
            return z;
        }
        let r = self.config.rules(space);
        let rules = ZoneRules {
            range_sq: r.range * r.range,
            leave_sq: r.leave_range * r.leave_range,
            query_radius: r.leave_range * (1.0 + 1.0e-4),
            cap: r.max_peers.map_or(u32::MAX, std::num::NonZeroU32::get),
        };
        let z = match self.free_zones.pop() {
            Some(z) => {
                self.zone_keys[z as usize] = (realm, space);
                self.zone_rules[z as usize] = rules;
                z
            }
            None => {
                self.zone_members.push(0);
                self.zone_keys.push((realm, space));
                self.zone_rules.push(rules);
                (self.zone_members.len() - 1) as u32
            }
        };
        self.zones.insert((realm, space), z);
        z
    }

    fn leave_zone(&mut self, zone: u32) {
        self.zone_members[zone as usize] -= 1;
        if self.zone_members[zone as usize] == 0 {
            self.zones.remove(&self.zone_keys[zone as usize]);
            self.free_zones.push(zone);
        }
    }

    /// Records where `peer` stands now, adding it if new. Takes effect at the next
    /// [`tick`](Self::tick). Returns the client's handle, for
    /// [`set_position_of`](Self::set_position_of).
    ///
    /// # Errors
    /// [`ProximityError::NonFinitePosition`] if a coordinate is NaN or infinite; nothing changes.
    pub fn set_position(
        &mut self,
        peer: PeerId,
        realm: Realm,
        space: SpaceId,
        pos: [f32; 3],
    ) -> Result<ClientHandle, ProximityError> {
        finite(pos)?;
        let zone = self.zone_id(realm, space);
        let i = match self.by_peer.get(&peer) {
            Some(&i) => i,
            None => self.add(peer, zone),
        };
        self.move_client(i, zone, pos);
        Ok(ClientHandle {
            index: i,
            generation: self.status[i as usize].generation,
        })
    }

    /// [`set_position`](Self::set_position) of a client already held, by its handle: no id
    /// lookup, and nothing but a few dense bytes touched until the tick.
    ///
    /// # Errors
    /// [`ProximityError::NonFinitePosition`] for a NaN or infinite coordinate;
    /// [`ProximityError::StaleHandle`] if the client was removed. Nothing changes.
    pub fn set_position_of(
        &mut self,
        handle: ClientHandle,
        realm: Realm,
        space: SpaceId,
        pos: [f32; 3],
    ) -> Result<(), ProximityError> {
        finite(pos)?;
        match self.status.get(handle.index as usize) {
            Some(s) if s.live && s.generation == handle.generation => {}
            _ => return Err(ProximityError::StaleHandle),
        }
        let zone = self.zone_id(realm, space);
        self.move_client(handle.index, zone, pos);
        Ok(())
    }

    /// The handle of `peer`, if held.
    pub fn handle(&self, peer: PeerId) -> Option<ClientHandle> {
        let &i = self.by_peer.get(&peer)?;
        Some(ClientHandle {
            index: i,
            generation: self.status[i as usize].generation,
        })
    }

    /// Notes live client `i`'s new zone and position for the next tick. `zone` was just looked
    /// up (or created) and is counted here.
    fn move_client(&mut self, i: u32, zone: u32, pos: [f32; 3]) {
        self.zone_members[zone as usize] += 1;
        let status = &mut self.status[i as usize];
        let old_zone = std::mem::replace(&mut status.zone, zone);
        let sort_key = self.grid.sort_key(zone, pos);
        if status.moved_at == NOT_MOVED {
            status.moved_at = self.moved.len() as u32;
            self.moved.push(Move {
                sort_key,
                client: i,
                zone,
                pos,
            });
        } else {
            let entry = &mut self.moved[status.moved_at as usize];
            entry.sort_key = sort_key;
            entry.zone = zone;
            entry.pos = pos;
        }
        self.leave_zone(old_zone);
    }

    /// Adds `peer`, counted in no zone yet (`move_client` follows and counts it in `zone`).
    fn add(&mut self, peer: PeerId, zone: u32) -> u32 {
        // Counted here so that `move_client` leaving the "old" zone balances.
        self.zone_members[zone as usize] += 1;
        let fresh = Client {
            peer,
            pos: [0.0; 3],
            at: None,
            queued: false,
            nearby: NearbyIndices::new(),
        };
        let i = match self.free.pop() {
            Some(i) => {
                // Reuse the set's storage (it was emptied on removal).
                let old = &mut self.clients[i as usize];
                let nearby = std::mem::take(&mut old.nearby);
                *old = Client { nearby, ..fresh };
                // A removed client may still sit in the moved list: keep its entry so the
                // list holds each index once (the new client's move overwrites it).
                let status = &mut self.status[i as usize];
                status.zone = zone;
                status.live = true;
                i
            }
            None => {
                self.clients.push(fresh);
                self.status.push(Status {
                    generation: 0,
                    zone,
                    moved_at: NOT_MOVED,
                    live: true,
                });
                (self.clients.len() - 1) as u32
            }
        };
        self.by_peer.insert(peer, i);
        i
    }

    /// Takes client `i` out of its cell, fixing the placement of the client swapped into its slot.
    fn unplace(&mut self, i: u32) {
        if let Some((key, slot)) = self.clients[i as usize].at.take()
            && let Some(swapped) = self.grid.remove(key, slot)
            && let Some(at) = self.clients[swapped as usize].at.as_mut()
        {
            at.1 = slot;
        }
    }

    /// Puts client `i` (in `zone`) into the cell of its current position, or updates its
    /// position there.
    fn place(&mut self, i: u32, zone: u32) {
        let c = &self.clients[i as usize];
        let (pos, key) = (c.pos, self.grid.key_of(zone, c.pos));
        match c.at {
            Some((at_key, slot)) if at_key == key => self.grid.update_position(key, slot, pos),
            _ => {
                self.unplace(i);
                let slot = self.grid.insert(key, Member { pos, client: i });
                self.clients[i as usize].at = Some((key, slot));
            }
        }
    }

    /// Removes `peer` (it disconnected). Each of its pairs is reported as
    /// [`DepartureCause::Disconnect`] at the next tick. Returns whether it was held.
    pub fn remove(&mut self, peer: PeerId) -> bool {
        let Some(i) = self.by_peer.remove(&peer) else {
            return false;
        };
        self.unplace(i);
        let zone = self.status[i as usize].zone;
        self.leave_zone(zone);
        let mut mine = std::mem::take(&mut self.clients[i as usize].nearby);
        for &j in &mine {
            remove_sorted(&mut self.clients[j as usize].nearby, i);
            // Its own zone's cap (a group mate may stand in another).
            if self.zone_rules[self.status[j as usize].zone as usize].cap != u32::MAX {
                self.enqueue(j);
            }
            self.pending.push(PairChange::Left {
                a: peer,
                b: self.clients[j as usize].peer,
                cause: DepartureCause::Disconnect,
            });
        }
        mine.clear();
        self.clients[i as usize].nearby = mine;
        let status = &mut self.status[i as usize];
        status.live = false;
        status.generation = status.generation.wrapping_add(1);
        self.free.push(i);
        true
    }

    /// The peers currently introduced to `peer`, ascending by dense index (not by id), or
    /// `None` if `peer` is not held.
    pub fn nearby(&self, peer: PeerId) -> Option<impl Iterator<Item = PeerId> + '_> {
        let &i = self.by_peer.get(&peer)?;
        Some(
            self.clients[i as usize]
                .nearby
                .iter()
                .map(|&j| self.clients[j as usize].peer),
        )
    }

    /// Whether `a` and `b` are currently introduced.
    pub fn are_introduced(&self, a: PeerId, b: PeerId) -> bool {
        match (self.by_peer.get(&a), self.by_peer.get(&b)) {
            (Some(&i), Some(&j)) => self.clients[i as usize].nearby.binary_search(&j).is_ok(),
            _ => false,
        }
    }

    /// The most members a group may hold (default
    /// [`DEFAULT_MAX_GROUP_SIZE`](super::DEFAULT_MAX_GROUP_SIZE)). Lowering it removes no one.
    pub fn set_max_group_size(&mut self, limit: usize) {
        self.max_group_size = limit.max(1);
    }

    /// Puts `peer` into `group` of `realm`: from the next tick it is introduced to every
    /// member in that realm, wherever they stand, unless the pair is blocked. A peer may be in
    /// several groups, and need not be held yet. Returns whether it joined (false: already in).
    ///
    /// # Errors
    /// [`RuleError::GroupFull`] if the group holds its limit; nothing changes.
    pub fn join_group(
        &mut self,
        peer: PeerId,
        realm: Realm,
        group: GroupId,
    ) -> Result<bool, RuleError> {
        let key = (realm, group);
        let list = self.members.entry(key).or_default();
        if list.contains(&peer) {
            return Ok(false);
        }
        if list.len() >= self.max_group_size {
            let limit = self.max_group_size as u32;
            if list.is_empty() {
                self.members.remove(&key);
            }
            return Err(RuleError::GroupFull { limit });
        }
        list.push(peer);
        let rules = self.rules.entry(peer).or_default();
        if let Err(at) = rules.groups.binary_search(&key) {
            rules.groups.insert(at, key);
        }
        self.regroup(peer);
        Ok(true)
    }

    /// Takes `peer` out of `group` of `realm`; pairs it held only through the group end at the
    /// next tick ([`DepartureCause::GroupLeft`]). Returns whether it was a member.
    pub fn leave_group(&mut self, peer: PeerId, realm: Realm, group: GroupId) -> bool {
        let key = (realm, group);
        let Some(list) = self.members.get_mut(&key) else {
            return false;
        };
        let Some(at) = list.iter().position(|&p| p == peer) else {
            return false;
        };
        list.swap_remove(at);
        if list.is_empty() {
            self.members.remove(&key);
        }
        if let Some(rules) = self.rules.get_mut(&peer)
            && let Ok(at) = rules.groups.binary_search(&key)
        {
            rules.groups.remove(at);
        }
        self.regroup(peer);
        true
    }

    /// Takes `peer` out of every group. Returns how many it left.
    pub fn leave_all_groups(&mut self, peer: PeerId) -> usize {
        let groups = self
            .rules
            .get(&peer)
            .map(|r| r.groups.clone())
            .unwrap_or_default();
        for &(realm, group) in &groups {
            self.leave_group(peer, realm, group);
        }
        groups.len()
    }

    /// The groups `peer` is in, ascending.
    pub fn groups_of(&self, peer: PeerId) -> impl Iterator<Item = (Realm, GroupId)> + '_ {
        self.rules
            .get(&peer)
            .into_iter()
            .flat_map(|r| r.groups.iter().copied())
    }

    /// How many members `group` of `realm` holds.
    pub fn group_len(&self, realm: Realm, group: GroupId) -> usize {
        self.members.get(&(realm, group)).map_or(0, Vec::len)
    }

    fn regroup(&mut self, peer: PeerId) {
        self.regrouped.push(peer);
        self.touch(peer);
    }

    /// Blocks or unblocks the pair: a blocked pair is never introduced, by proximity or by a
    /// group, and an introduced one ends at the next tick ([`DepartureCause::Blocked`]).
    /// Symmetric. Returns whether anything changed.
    pub fn set_blocked(&mut self, a: PeerId, b: PeerId, blocked: bool) -> bool {
        if a == b {
            return false;
        }
        let key = ordered(a, b);
        let changed = if blocked {
            self.blocks.insert(key)
        } else {
            self.blocks.remove(&key)
        };
        if changed {
            self.touch(a);
            self.touch(b);
        }
        changed
    }

    /// Whether held `a` and `b` share a group of their realm (introduced wherever they stand,
    /// unless blocked).
    pub fn share_group(&self, a: PeerId, b: PeerId) -> bool {
        match (self.by_peer.get(&a), self.by_peer.get(&b)) {
            (Some(&i), Some(&j)) => self.grouped(i, j, false),
            _ => false,
        }
    }

    /// Whether the pair is blocked.
    pub fn is_blocked(&self, a: PeerId, b: PeerId) -> bool {
        !self.blocks.is_empty() && self.blocks.contains(&ordered(a, b))
    }

    /// Sets `peer`'s voice range multiplier (whisper 0.5, normal 1, shout 2): a pair is
    /// introduced within the larger multiplier of the two times `range`, and leaves beyond the
    /// larger times `leave_range`. Takes effect at the next tick.
    ///
    /// # Errors
    /// [`RuleError::VoiceRangeOutOfBounds`] unless finite, positive and at most
    /// [`MAX_VOICE_RANGE`](super::MAX_VOICE_RANGE); nothing changes.
    pub fn set_voice_range(&mut self, peer: PeerId, voice: f32) -> Result<(), RuleError> {
        if !super::rules::voice_in_bounds(voice) {
            return Err(RuleError::VoiceRangeOutOfBounds);
        }
        let rules = self.rules.entry(peer).or_default();
        if rules.voice == voice {
            if rules.is_default() {
                self.rules.remove(&peer);
            }
            return Ok(());
        }
        let was_loud = rules.voice > 1.0;
        rules.voice = voice;
        match (was_loud, voice > 1.0) {
            (false, true) => self.loud.push(peer),
            (true, false) => self.loud.retain(|&p| p != peer),
            _ => {}
        }
        if rules.is_default() {
            self.rules.remove(&peer);
        }
        self.touch(peer);
        Ok(())
    }

    /// `peer`'s voice range multiplier (1 unless set).
    pub fn voice_range(&self, peer: PeerId) -> f32 {
        self.rules.get(&peer).map_or(1.0, |r| r.voice)
    }

    /// Whether any voice rule (group, block, voice range) is in force: without, the tick runs
    /// exactly the plain proximity path.
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty() || !self.blocks.is_empty()
    }

    /// Re-examines held `peer` at the next tick, where it stands.
    fn touch(&mut self, peer: PeerId) {
        let Some(&i) = self.by_peer.get(&peer) else {
            return;
        };
        let status = &mut self.status[i as usize];
        if !status.live || status.moved_at != NOT_MOVED {
            return;
        }
        let (zone, pos) = (status.zone, self.clients[i as usize].pos);
        status.moved_at = self.moved.len() as u32;
        self.moved.push(Move {
            sort_key: self.grid.sort_key(zone, pos),
            client: i,
            zone,
            pos,
        });
    }

    /// After a tick: the groups as of now become the ones pairs are judged "were in" by, and
    /// rules back to the defaults are dropped.
    fn settle_rules(&mut self) {
        for k in 0..self.regrouped.len() {
            let peer = self.regrouped[k];
            if let Some(rules) = self.rules.get_mut(&peer) {
                rules.told = rules.groups.clone();
                if rules.is_default() {
                    self.rules.remove(&peer);
                }
            }
        }
        self.regrouped.clear();
    }

    /// Computes every pair change caused by the inputs since the last tick and appends them to
    /// `out`. Allocates nothing in steady state (beyond `out` growing).
    pub fn tick(&mut self, out: &mut Vec<PairChange>) {
        out.append(&mut self.pending);
        self.ruling = self.has_rules();
        if self.moved.is_empty() && self.work.is_empty() {
            self.settle_rules();
            return;
        }
        let first_computed = out.len();
        let mut settled = false;
        let mut moved = std::mem::take(&mut self.moved);
        // Visit movers in cell order: neighbouring movers share cells, so the cells one
        // examination reads are still in cache for the next.
        moved.sort_unstable_by_key(|m| (m.sort_key, m.client));
        // Place every mover first, so each examination sees every position of this tick; drop
        // the ones removed since they moved.
        let mut live = 0;
        for k in 0..moved.len() {
            if let Some(ahead) = moved.get(k + PREFETCH_AHEAD) {
                prefetch(&self.clients[ahead.client as usize]);
                prefetch(&self.status[ahead.client as usize]);
            }
            let Move {
                client: i,
                zone,
                pos,
                ..
            } = moved[k];
            let status = &mut self.status[i as usize];
            status.moved_at = NOT_MOVED;
            if status.live {
                self.clients[i as usize].pos = pos;
                self.place(i, zone);
                moved[live] = moved[k];
                live += 1;
            }
        }
        moved.truncate(live);
        for k in 0..moved.len() {
            if let Some(ahead) = moved.get(k + PREFETCH_AHEAD) {
                prefetch(&self.clients[ahead.client as usize]);
            }
            let Move {
                client: i, zone, ..
            } = moved[k];
            self.examine(i, zone, out);
            if self.zone_rules[zone as usize].cap != u32::MAX {
                // A peer's move can make a farther pair of its peers replaceable.
                for k in 0..self.clients[i as usize].nearby.len() {
                    let j = self.clients[i as usize].nearby[k];
                    self.enqueue(j);
                }
            }
        }
        // Capped zones: settle the consequences (freed slots, replaceable pairs). Each swap
        // shortens pairs by the margin, so this ends; the budget only bounds a pathological tick,
        // and whatever is left stays queued for the next one.
        let mut budget = 16 * moved.len() + 1024;
        while budget > 0
            && let Some(j) = self.work.pop_front()
        {
            budget -= 1;
            settled = true;
            self.clients[j as usize].queued = false;
            let status = self.status[j as usize];
            if status.live {
                self.examine(j, status.zone, out);
            }
        }
        // `examine` marks no one as moved, so the list is reused as it is (no allocation).
        moved.clear();
        self.moved = moved;
        if settled {
            self.net_changes(out, first_computed);
        }
        self.settle_rules();
    }

    /// Settling a capped zone can enter and drop the same pair within one tick (or drop and
    /// re-enter it). Clients must hear only the net change: keeps, per pair, the last change
    /// if the pair changed an odd number of times, nothing if even. Disconnects reported from
    /// `remove` come before `from` and are left alone (a reconnect is news).
    fn net_changes(&mut self, out: &mut Vec<PairChange>, from: usize) {
        let key = |c: &PairChange| {
            let (a, b) = match *c {
                PairChange::Entered { a, b, .. } | PairChange::Left { a, b, .. } => (a, b),
            };
            if a < b { (a.0, b.0) } else { (b.0, a.0) }
        };
        let mut order = std::mem::take(&mut self.net_scratch);
        order.clear();
        order.extend(out[from..].iter().enumerate().map(|(k, c)| (key(c), k)));
        order.sort_unstable();
        let mut keep = std::mem::take(&mut self.keep_scratch);
        keep.clear();
        keep.resize(out.len() - from, false);
        for group in order.chunk_by(|x, y| x.0 == y.0) {
            if group.len() % 2 == 1 {
                keep[group[group.len() - 1].1] = true;
            }
        }
        let mut k = 0;
        let mut index = 0;
        out.retain(|_| {
            let retain = index < from || {
                let r = keep[k];
                k += 1;
                r
            };
            index += 1;
            retain
        });
        self.net_scratch = order;
        self.keep_scratch = keep;
    }

    /// Ends the pair of `x` (its set `x_set`, taken out of its record) and `y`, reports it,
    /// and queues `y` to fill the slot it lost.
    fn unpair(
        &mut self,
        x_set: &mut NearbyIndices,
        x: u32,
        x_peer: PeerId,
        y: u32,
        cause: DepartureCause,
        out: &mut Vec<PairChange>,
    ) {
        remove_sorted(x_set, y);
        let other = &mut self.clients[y as usize];
        remove_sorted(&mut other.nearby, x);
        let y_peer = other.peer;
        self.enqueue(y);
        out.push(PairChange::Left {
            a: x_peer,
            b: y_peer,
            cause,
        });
    }

    fn enqueue(&mut self, j: u32) {
        let c = &mut self.clients[j as usize];
        if !c.queued {
            c.queued = true;
            self.work.push_back(j);
        }
    }

    /// The farthest peer in `set` from `pos`: (squared distance, id, index); ties go to the
    /// larger id, so the order is total.
    fn farthest(&self, pos: [f32; 3], set: &[u32]) -> Option<(f32, PeerId, u32)> {
        set.iter()
            .map(|&j| {
                let c = &self.clients[j as usize];
                (dist_sq(pos, c.pos), c.peer, j)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
    }

    /// The realm of live client `i`.
    fn realm_of(&self, i: u32) -> Realm {
        self.zone_keys[self.status[i as usize].zone as usize].0
    }

    /// Whether live clients `i` and `j`, in one realm, share a group of it; `told`: as of the
    /// last tick.
    fn grouped(&self, i: u32, j: u32, told: bool) -> bool {
        let (pi, pj) = (self.clients[i as usize].peer, self.clients[j as usize].peer);
        let (Some(ri), Some(rj)) = (self.rules.get(&pi), self.rules.get(&pj)) else {
            return false;
        };
        let realm = self.realm_of(i);
        if realm != self.realm_of(j) {
            return false;
        }
        if told {
            share(&ri.told, &rj.told, realm)
        } else {
            share(&ri.groups, &rj.groups, realm)
        }
    }

    /// Why the introduced pair of `i` (in `zone`, at `pos`) and `j` ends by the rules, if it
    /// does.
    fn ends(
        &self,
        i: u32,
        j: u32,
        zone: u32,
        pos: [f32; 3],
        rules: ZoneRules,
    ) -> Option<DepartureCause> {
        let (pi, pj) = (self.clients[i as usize].peer, self.clients[j as usize].peer);
        if self.is_blocked(pi, pj) {
            return Some(DepartureCause::Blocked);
        }
        if self.grouped(i, j, false) {
            return None;
        }
        let zj = self.status[j as usize].zone;
        if zj == zone {
            let s = self.voice_range(pi).max(self.voice_range(pj));
            if dist_sq(pos, self.clients[j as usize].pos) <= rules.leave_sq * s * s {
                return None;
            }
        }
        Some(if self.grouped(i, j, true) {
            DepartureCause::GroupLeft
        } else if zj != zone {
            DepartureCause::SpaceChange
        } else {
            DepartureCause::Range
        })
    }

    /// [`unpair`](Self::unpair) by the rules: `y` is queued only where a cap leaves it room to
    /// fill.
    fn unpair_ruled(
        &mut self,
        x_set: &mut NearbyIndices,
        x: u32,
        x_peer: PeerId,
        y: u32,
        cause: DepartureCause,
        out: &mut Vec<PairChange>,
    ) {
        remove_sorted(x_set, y);
        let other = &mut self.clients[y as usize];
        remove_sorted(&mut other.nearby, x);
        let y_peer = other.peer;
        if self.zone_rules[self.status[y as usize].zone as usize].cap != u32::MAX {
            self.enqueue(y);
        }
        out.push(PairChange::Left {
            a: x_peer,
            b: y_peer,
            cause,
        });
    }

    /// The farthest peer of `i` (at `pos`) in `set` held by proximity alone (group pairs are
    /// never displaced); ties go to the larger id.
    fn farthest_ungrouped(&self, i: u32, pos: [f32; 3], set: &[u32]) -> Option<(f32, PeerId, u32)> {
        set.iter()
            .filter(|&&j| !self.grouped(i, j, false))
            .map(|&j| {
                let c = &self.clients[j as usize];
                (dist_sq(pos, c.pos), c.peer, j)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
    }

    /// [`examine`](Self::examine) while voice rules are in force, capped or not: every pair of
    /// `i` judged directly, group mates introduced wherever they are, and proximity candidates
    /// within the larger voice range of each pair (this client's own reach scanned, louder
    /// clients found through their list). Blocked pairs never form.
    fn examine_ruled(&mut self, i: u32, out: &mut Vec<PairChange>) {
        let zone = self.status[i as usize].zone;
        let rules = self.zone_rules[zone as usize];
        let capped = rules.cap != u32::MAX;
        let cap = rules.cap as usize;
        let c = &mut self.clients[i as usize];
        let (peer, pos) = (c.peer, c.pos);
        let mut mine = std::mem::take(&mut c.nearby);
        let my_voice = self.voice_range(peer);

        let mut k = 0;
        while k < mine.len() {
            let j = mine[k];
            self.distance_checks += 1;
            match self.ends(i, j, zone, pos, rules) {
                None => k += 1,
                Some(cause) => self.unpair_ruled(&mut mine, i, peer, j, cause, out),
            }
        }

        // Group mates, wherever they stand: they take their place whatever the cap.
        let mut entering = std::mem::take(&mut self.entering);
        entering.clear();
        let realm = self.zone_keys[zone as usize].0;
        if let Some(r) = self.rules.get(&peer) {
            for key in r.groups.iter().filter(|k| k.0 == realm) {
                for p in self.members.get(key).into_iter().flatten() {
                    if let Some(&j) = self.by_peer.get(p)
                        && j != i
                        && mine.binary_search(&j).is_err()
                        && self.realm_of(j) == realm
                        && !self.is_blocked(peer, *p)
                    {
                        entering.push(j);
                    }
                }
            }
        }
        entering.sort_unstable();
        entering.dedup();
        for &j in entering.iter() {
            insert_sorted(&mut mine, j);
            insert_sorted(&mut self.clients[j as usize].nearby, i);
            if self.zone_rules[self.status[j as usize].zone as usize].cap != u32::MAX {
                self.enqueue(j); // may be over its cap now
            }
            out.push(PairChange::Entered {
                a: peer,
                b: self.clients[j as usize].peer,
                cause: ArrivalCause::Group,
            });
        }
        if capped {
            while mine.len() > cap {
                let Some((.., f)) = self.farthest_ungrouped(i, pos, &mine) else {
                    break;
                };
                self.unpair_ruled(&mut mine, i, peer, f, DepartureCause::Replaced, out);
            }
        }

        // Proximity candidates.
        let reach = my_voice.max(1.0);
        let reach_sq = rules.range_sq * reach * reach;
        let mut near = std::mem::take(&mut self.ruled_scratch);
        near.clear();
        let mut checks = 0u64;
        self.grid.for_each_near(
            zone,
            pos,
            rules.range_sq.sqrt() * reach * (1.0 + 1.0e-4),
            |m| {
                checks += 1;
                let d2 = dist_sq(pos, m.pos);
                if m.client != i && d2 <= reach_sq {
                    near.push((m.client, d2));
                }
            },
        );
        for &p in &self.loud {
            if let Some(&j) = self.by_peer.get(&p)
                && j != i
                && self.status[j as usize].zone == zone
                && self.voice_range(p) > reach
            {
                checks += 1;
                near.push((j, dist_sq(pos, self.clients[j as usize].pos)));
            }
        }
        self.distance_checks += checks;
        entering.clear();
        for &(j, d2) in &near {
            if mine.binary_search(&j).is_ok() {
                continue;
            }
            let pj = self.clients[j as usize].peer;
            let s = my_voice.max(self.voice_range(pj));
            if d2 <= rules.range_sq * s * s && !self.is_blocked(peer, pj) {
                entering.push(j);
            }
        }
        entering.sort_unstable();
        entering.dedup();
        if capped {
            self.admit_ruled(i, peer, pos, &mut mine, &entering, cap, out);
        } else {
            for &j in entering.iter() {
                insert_sorted(&mut mine, j);
                insert_sorted(&mut self.clients[j as usize].nearby, i);
                out.push(PairChange::Entered {
                    a: peer,
                    b: self.clients[j as usize].peer,
                    cause: ArrivalCause::Proximity,
                });
            }
        }
        self.clients[i as usize].nearby = mine;
        self.entering = entering;
        self.ruled_scratch = near;
    }

    /// [`admit_capped`](Self::admit_capped) by the rules: group pairs count toward the cap but
    /// are never the one displaced.
    #[allow(clippy::too_many_arguments)]
    fn admit_ruled(
        &mut self,
        i: u32,
        peer: PeerId,
        pos: [f32; 3],
        mine: &mut NearbyIndices,
        entering: &[u32],
        cap: usize,
        out: &mut Vec<PairChange>,
    ) {
        let ranked = self.rank_candidates(pos, entering);
        let margin = self.config.replace_margin;
        let beats = |d2: f32, far: f32| beats_by_margin(d2, far, margin);
        for &(d2, other_peer, j) in ranked.iter() {
            let my_far = if mine.len() >= cap {
                match self.farthest_ungrouped(i, pos, mine) {
                    Some(f) if beats(d2, f.0) => Some(f),
                    _ => break, // farther candidates cannot do better
                }
            } else {
                None
            };
            let theirs = &self.clients[j as usize].nearby;
            if theirs.len() > cap {
                continue; // it trims itself when examined this tick
            }
            let their_far = if theirs.len() >= cap {
                let their_pos = self.clients[j as usize].pos;
                match self.farthest_ungrouped(j, their_pos, theirs) {
                    Some(f) if beats(d2, f.0) => Some(f),
                    _ => continue,
                }
            } else {
                None
            };
            if let Some((.., f)) = my_far {
                self.unpair_ruled(mine, i, peer, f, DepartureCause::Replaced, out);
            }
            if let Some((.., g)) = their_far {
                let mut theirs = std::mem::take(&mut self.clients[j as usize].nearby);
                self.unpair_ruled(&mut theirs, j, other_peer, g, DepartureCause::Replaced, out);
                self.clients[j as usize].nearby = theirs;
            }
            insert_sorted(mine, j);
            insert_sorted(&mut self.clients[j as usize].nearby, i);
            out.push(PairChange::Entered {
                a: peer,
                b: other_peer,
                cause: ArrivalCause::Proximity,
            });
        }
        self.ranked = ranked;
    }

    /// Re-evaluates every pair of moved client `i`, in `zone`, against the clients near it.
    fn examine(&mut self, i: u32, zone: u32, out: &mut Vec<PairChange>) {
        if self.ruling {
            return self.examine_ruled(i, out);
        }
        if self.zone_rules[zone as usize].cap != u32::MAX {
            return self.examine_capped(i, out);
        }
        let c = &mut self.clients[i as usize];
        let (peer, pos) = (c.peer, c.pos);
        let mut mine = std::mem::take(&mut c.nearby);
        let rules = self.zone_rules[zone as usize];
        let (range_sq, leave_sq) = (rules.range_sq, rules.leave_sq);
        let (mut candidates, mut seen, mut entering) = (
            std::mem::take(&mut self.candidates),
            std::mem::take(&mut self.seen),
            std::mem::take(&mut self.entering),
        );
        seen.clear();
        seen.resize(mine.len(), false);
        entering.clear();
        // Every client within leave_range is in the cells scanned: a current pair not seen
        // here is beyond leave_range (or in another zone) and ends. Most of the scanned are
        // farther: the filter writes every one and advances only past the near ones, so it
        // has no branch to mispredict. `candidates` keeps its length as a high-water mark.
        let mut near = 0;
        let mut checks = 0u64;
        self.grid
            .for_each_cell_near(zone, pos, rules.query_radius, |members| {
                checks += members.len() as u64;
                if candidates.len() < near + members.len() {
                    candidates.resize(near + members.len(), (0, 0.0));
                }
                let window = &mut candidates[near..near + members.len()];
                let mut kept = 0;
                for m in members {
                    let d2 = dist_sq(pos, m.pos);
                    window[kept] = (m.client, d2);
                    kept += usize::from(d2 <= leave_sq);
                }
                near += kept;
            });
        self.distance_checks += checks;
        for &(j, d2) in &candidates[..near] {
            if j == i {
                continue;
            }
            match mine.binary_search(&j) {
                Ok(k) => seen[k] = true,
                Err(_) if d2 <= range_sq => entering.push(j),
                Err(_) => {}
            }
        }

        if seen.iter().any(|s| !s) {
            let mut k = 0;
            mine.retain(|&mut j| {
                let keep = seen[k];
                k += 1;
                if !keep {
                    let other = &mut self.clients[j as usize];
                    let other_zone = self.status[j as usize].zone;
                    remove_sorted(&mut other.nearby, i);
                    // Left behind in a capped space, it has room to fill.
                    if self.zone_rules[other_zone as usize].cap != u32::MAX && !other.queued {
                        other.queued = true;
                        self.work.push_back(j);
                    }
                    let cause = if other_zone == zone {
                        DepartureCause::Range
                    } else {
                        DepartureCause::SpaceChange
                    };
                    out.push(PairChange::Left {
                        a: peer,
                        b: other.peer,
                        cause,
                    });
                }
                keep
            });
        }
        for &j in entering.iter() {
            insert_sorted(&mut mine, j);
            let other = &mut self.clients[j as usize];
            insert_sorted(&mut other.nearby, i);
            out.push(PairChange::Entered {
                a: peer,
                b: other.peer,
                cause: ArrivalCause::Proximity,
            });
        }
        self.clients[i as usize].nearby = mine;
        self.candidates = candidates;
        self.seen = seen;
        self.entering = entering;
    }

    /// [`examine`](Self::examine) in a capped zone. A client holds at most `cap` peers, so its
    /// pairs are checked directly, and when it is full only candidates nearer than its farthest
    /// peer by the margin can matter: the scan shrinks to that radius (in a dense crowd, a few
    /// units instead of `range`).
    fn examine_capped(&mut self, i: u32, out: &mut Vec<PairChange>) {
        let c = &mut self.clients[i as usize];
        let (peer, pos, zone) = (c.peer, c.pos, self.status[i as usize].zone);
        let mut mine = std::mem::take(&mut c.nearby);
        let rules = self.zone_rules[zone as usize];
        let cap = rules.cap as usize;

        // Existing pairs: beyond leave_range or in another zone, they end.
        let mut k = 0;
        while k < mine.len() {
            let j = mine[k];
            let other = &self.clients[j as usize];
            self.distance_checks += 1;
            let cause = if self.status[j as usize].zone != zone {
                Some(DepartureCause::SpaceChange)
            } else {
                (dist_sq(pos, other.pos) > rules.leave_sq).then_some(DepartureCause::Range)
            };
            let Some(cause) = cause else {
                k += 1;
                continue;
            };
            self.unpair(&mut mine, i, peer, j, cause, out);
        }
        // A space change can carry more pairs into a space than its cap allows: keep the nearest.
        while mine.len() > cap {
            let Some((.., f)) = self.farthest(pos, &mine) else {
                break;
            };
            self.unpair(&mut mine, i, peer, f, DepartureCause::Replaced, out);
        }

        // Candidates: within range, or when full within the farthest peer's distance less the
        // margin.
        let mut reach_sq = rules.range_sq;
        if mine.len() >= cap {
            let far = self.farthest(pos, &mine).map_or(0.0, |f| f.0);
            let reach = far.sqrt() - self.config.replace_margin;
            reach_sq = if reach > 0.0 {
                reach_sq.min(reach * reach)
            } else {
                0.0
            };
        }
        let mut entering = std::mem::take(&mut self.entering);
        entering.clear();
        if reach_sq > 0.0 {
            let mut checks = 0u64;
            self.grid
                .for_each_near(zone, pos, reach_sq.sqrt() * (1.0 + 1.0e-4), |m| {
                    checks += 1;
                    if m.client != i
                        && dist_sq(pos, m.pos) <= reach_sq
                        && mine.binary_search(&m.client).is_err()
                    {
                        entering.push(m.client);
                    }
                });
            self.distance_checks += checks;
        }
        if !entering.is_empty() {
            self.admit_capped(i, peer, pos, &mut mine, &entering, rules.cap, out);
        }
        self.clients[i as usize].nearby = mine;
        self.entering = entering;
    }

    /// `entering` ranked nearest first (ties by id), in the scratch list the caller puts back.
    fn rank_candidates(&mut self, pos: [f32; 3], entering: &[u32]) -> Vec<(f32, PeerId, u32)> {
        let mut ranked = std::mem::take(&mut self.ranked);
        ranked.clear();
        ranked.extend(entering.iter().map(|&j| {
            let c = &self.clients[j as usize];
            (dist_sq(pos, c.pos), c.peer, j)
        }));
        ranked.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        ranked
    }

    /// With a cap: takes `entering` candidates nearest first (ties by id). A pair forms when
    /// each side has room or would drop its farthest peer for one nearer by the margin.
    fn admit_capped(
        &mut self,
        i: u32,
        peer: PeerId,
        pos: [f32; 3],
        mine: &mut NearbyIndices,
        entering: &[u32],
        cap: u32,
        out: &mut Vec<PairChange>,
    ) {
        let ranked = self.rank_candidates(pos, entering);
        let margin = self.config.replace_margin;
        let beats = |d2: f32, far: f32| beats_by_margin(d2, far, margin);
        let cap = cap as usize;
        for &(d2, other_peer, j) in ranked.iter() {
            let my_far = (mine.len() >= cap)
                .then(|| self.farthest(pos, mine))
                .flatten();
            if let Some((far, ..)) = my_far
                && !beats(d2, far)
            {
                break; // farther candidates cannot beat it either
            }
            let theirs = &self.clients[j as usize].nearby;
            if theirs.len() > cap {
                // Over its cap after a space change: it trims itself when examined this tick.
                continue;
            }
            let their_far = if theirs.len() >= cap {
                let their_pos = self.clients[j as usize].pos;
                match self.farthest(their_pos, theirs) {
                    Some(f) if beats(d2, f.0) => Some(f),
                    _ => continue, // full, and we are not nearer by the margin
                }
            } else {
                None
            };
            if let Some((.., f)) = my_far {
                self.unpair(mine, i, peer, f, DepartureCause::Replaced, out);
            }
            if let Some((.., g)) = their_far {
                let mut theirs = std::mem::take(&mut self.clients[j as usize].nearby);
                self.unpair(&mut theirs, j, other_peer, g, DepartureCause::Replaced, out);
                self.clients[j as usize].nearby = theirs;
            }
            insert_sorted(mine, j);
            insert_sorted(&mut self.clients[j as usize].nearby, i);
            out.push(PairChange::Entered {
                a: peer,
                b: other_peer,
                cause: ArrivalCause::Proximity,
            });
        }
        self.ranked = ranked;
    }
}

/// Whether a side at its cap would give up its farthest peer (at squared distance `far`) for
/// one at squared distance `d2`: nearer by at least `margin`.
#[inline]
fn beats_by_margin(d2: f32, far: f32, margin: f32) -> bool {
    let room = far.sqrt() - margin;
    room > 0.0 && d2 < room * room
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Realm = Realm(1);
    const S: SpaceId = SpaceId(0);

    fn tick(core: &mut Proximity) -> Vec<PairChange> {
        let mut out = Vec::new();
        core.tick(&mut out);
        out
    }

    #[test]
    fn exactly_at_range_is_in() {
        let mut core = Proximity::new(ProximityConfig::default());
        core.set_position(PeerId(1), R, S, [0.0, 0.0, 0.0]).unwrap();
        core.set_position(PeerId(2), R, S, [0.0, 20.0, 0.0])
            .unwrap();
        assert_eq!(tick(&mut core).len(), 1);
        assert!(core.are_introduced(PeerId(1), PeerId(2)));
        assert!(core.are_introduced(PeerId(2), PeerId(1)));
    }

    #[test]
    fn hysteresis_keeps_then_drops() {
        let mut core = Proximity::new(ProximityConfig::default());
        core.set_position(PeerId(1), R, S, [0.0, 0.0, 0.0]).unwrap();
        core.set_position(PeerId(2), R, S, [10.0, 0.0, 0.0])
            .unwrap();
        tick(&mut core);
        core.set_position(PeerId(2), R, S, [25.0, 0.0, 0.0])
            .unwrap();
        assert!(
            tick(&mut core).is_empty(),
            "within leave_range keeps the pair"
        );
        core.set_position(PeerId(2), R, S, [25.01, 0.0, 0.0])
            .unwrap();
        assert_eq!(
            tick(&mut core),
            vec![PairChange::Left {
                a: PeerId(2),
                b: PeerId(1),
                cause: DepartureCause::Range
            }]
        );
        core.set_position(PeerId(2), R, S, [21.0, 0.0, 0.0])
            .unwrap();
        assert!(
            tick(&mut core).is_empty(),
            "between range and leave: not re-introduced"
        );
    }

    #[test]
    fn idle_tick_yields_nothing() {
        let mut core = Proximity::new(ProximityConfig::default());
        for k in 0..50 {
            core.set_position(PeerId(k), R, S, [k as f32 * 3.0, 0.0, 0.0])
                .unwrap();
        }
        assert!(!tick(&mut core).is_empty());
        let before = core.distance_checks();
        assert!(tick(&mut core).is_empty());
        assert_eq!(
            core.distance_checks(),
            before,
            "an idle tick examines nothing"
        );
    }

    #[test]
    fn spaces_and_realms_never_meet() {
        let mut core = Proximity::new(ProximityConfig::default());
        core.set_position(PeerId(1), R, S, [0.0; 3]).unwrap();
        core.set_position(PeerId(2), R, SpaceId(1), [0.0; 3])
            .unwrap();
        core.set_position(PeerId(3), Realm(2), S, [0.0; 3]).unwrap();
        assert!(tick(&mut core).is_empty());
        core.set_position(PeerId(2), R, S, [1.0, 0.0, 0.0]).unwrap();
        assert_eq!(tick(&mut core).len(), 1);
        core.set_position(PeerId(2), R, SpaceId(5), [1.0, 0.0, 0.0])
            .unwrap();
        assert_eq!(
            tick(&mut core),
            vec![PairChange::Left {
                a: PeerId(2),
                b: PeerId(1),
                cause: DepartureCause::SpaceChange
            }]
        );
    }

    #[test]
    fn remove_reports_every_pair_and_frees_the_slot() {
        let mut core = Proximity::new(ProximityConfig::default());
        for k in 0..4 {
            core.set_position(PeerId(k), R, S, [k as f32, 0.0, 0.0])
                .unwrap();
        }
        assert_eq!(tick(&mut core).len(), 6);
        assert!(core.remove(PeerId(0)));
        assert!(!core.remove(PeerId(0)));
        let left = tick(&mut core);
        assert_eq!(left.len(), 3);
        assert!(left.iter().all(|c| matches!(
            c,
            PairChange::Left {
                a: PeerId(0),
                cause: DepartureCause::Disconnect,
                ..
            }
        )));
        assert_eq!(core.nearby(PeerId(1)).unwrap().count(), 2);
        core.set_position(PeerId(9), R, S, [0.0; 3]).unwrap();
        assert_eq!(tick(&mut core).len(), 3, "reused slot starts clean");
    }

    #[test]
    fn non_finite_position_is_refused() {
        let mut core = Proximity::new(ProximityConfig::default());
        assert_eq!(
            core.set_position(PeerId(1), R, S, [f32::NAN, 0.0, 0.0]),
            Err(ProximityError::NonFinitePosition)
        );
        assert!(core.is_empty());
    }

    #[test]
    fn a_party_hears_across_spaces_until_blocked_or_gone() {
        let mut core = Proximity::new(ProximityConfig::default());
        core.set_max_group_size(2);
        let party = GroupId(4);
        core.set_position(PeerId(1), R, S, [0.0; 3]).unwrap();
        core.set_position(PeerId(2), R, SpaceId(3), [900.0, 0.0, 0.0])
            .unwrap();
        assert_eq!(core.join_group(PeerId(1), R, party), Ok(true));
        assert_eq!(core.join_group(PeerId(2), R, party), Ok(true));
        assert_eq!(
            core.join_group(PeerId(3), R, party),
            Err(RuleError::GroupFull { limit: 2 })
        );
        assert_eq!(
            tick(&mut core),
            vec![PairChange::Entered {
                a: PeerId(1),
                b: PeerId(2),
                cause: ArrivalCause::Group
            }]
        );
        core.set_blocked(PeerId(2), PeerId(1), true);
        assert!(matches!(
            tick(&mut core)[..],
            [PairChange::Left {
                cause: DepartureCause::Blocked,
                ..
            }]
        ));
        core.set_blocked(PeerId(1), PeerId(2), false);
        assert_eq!(tick(&mut core).len(), 1, "unblocked: the party meets again");
        assert!(core.leave_group(PeerId(2), R, party));
        assert!(matches!(
            tick(&mut core)[..],
            [PairChange::Left {
                cause: DepartureCause::GroupLeft,
                ..
            }]
        ));
        assert!(core.leave_group(PeerId(1), R, party));
        assert!(tick(&mut core).is_empty());
        assert!(!core.has_rules(), "back to the plain path");
    }

    #[test]
    fn a_shout_is_heard_by_whoever_moves_into_it() {
        let mut core = Proximity::new(ProximityConfig::default());
        core.set_position(PeerId(1), R, S, [0.0; 3]).unwrap();
        core.set_voice_range(PeerId(1), 2.0).unwrap();
        assert_eq!(
            core.set_voice_range(PeerId(1), f32::NAN),
            Err(RuleError::VoiceRangeOutOfBounds)
        );
        tick(&mut core);
        // The quiet one moves: it must find the shouter beyond its own range.
        core.set_position(PeerId(2), R, S, [39.0, 0.0, 0.0])
            .unwrap();
        assert_eq!(tick(&mut core).len(), 1);
        core.set_position(PeerId(2), R, S, [49.0, 0.0, 0.0])
            .unwrap();
        assert!(tick(&mut core).is_empty(), "within twice leave_range");
        core.set_voice_range(PeerId(1), 0.5).unwrap();
        assert!(matches!(
            tick(&mut core)[..],
            [PairChange::Left {
                cause: DepartureCause::Range,
                ..
            }]
        ));
    }

    #[test]
    fn core_is_send_sync_and_changes_are_small() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<Proximity>();
        // Sizes are asserted at compile time, beside `Client`, `Status` and `PairChange`.
    }
}
