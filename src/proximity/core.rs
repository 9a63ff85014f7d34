//! The incremental proximity state machine.

use rustc_hash::FxHashMap;

use super::grid::{Grid, Member, Placement};
use crate::protocol::{PeerId, Realm, SpaceId};

/// Distances that decide who is introduced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProximityConfig {
    /// Introduction distance: a pair within it is introduced. Default: 20.0 world units.
    pub range: f32,
    /// Departure distance: an introduced pair is dropped only beyond it. Default: 25.0 world
    /// units. Must be >= `range`.
    pub leave_range: f32,
}

impl Default for ProximityConfig {
    fn default() -> Self {
        ProximityConfig {
            range: 20.0,
            leave_range: 25.0,
        }
    }
}

/// Why an introduced pair ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepartureCause {
    /// They moved apart beyond `leave_range`.
    Range,
    /// One side was removed (disconnected).
    Disconnect,
    /// One side moved to another space.
    SpaceChange,
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
}

impl std::fmt::Display for ProximityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProximityError::NonFinitePosition => {
                write!(f, "position has a NaN or infinite coordinate")
            }
        }
    }
}

impl std::error::Error for ProximityError {}

/// Per-client state, indexed densely by `u32`.
#[derive(Debug)]
struct Client {
    peer: PeerId,
    zone: u32,
    pos: [f32; 3],
    at: Placement,
    live: bool,
    moved: bool,
}

/// The proximity state machine; see the [module docs](super).
#[derive(Debug)]
pub struct Proximity {
    config: ProximityConfig,
    range_sq: f32,
    leave_sq: f32,
    clients: Vec<Client>,
    /// Sorted dense indices of each client's introduced peers; kept apart from `clients` so
    /// two clients' sets can be edited while the grid is read.
    nearby: Vec<Vec<u32>>,
    free: Vec<u32>,
    by_peer: FxHashMap<PeerId, u32>,
    zones: FxHashMap<(Realm, SpaceId), u32>,
    /// Per zone id: its key and how many clients are in it (freed at zero).
    zone_keys: Vec<(Realm, SpaceId)>,
    zone_members: Vec<u32>,
    free_zones: Vec<u32>,
    grid: Grid,
    moved: Vec<u32>,
    pending: Vec<PairChange>,
    distance_checks: u64,
}

fn dist_sq(a: [f32; 3], b: [f32; 3]) -> f32 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    dx * dx + dy * dy + dz * dz
}

fn insert_sorted(set: &mut Vec<u32>, v: u32) {
    if let Err(at) = set.binary_search(&v) {
        set.insert(at, v);
    }
}

fn remove_sorted(set: &mut Vec<u32>, v: u32) {
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
            config.range.is_finite() && config.range > 0.0 && config.leave_range >= config.range,
            "ProximityConfig needs 0 < range <= leave_range, got {config:?}"
        );
        Proximity {
            config,
            range_sq: config.range * config.range,
            leave_sq: config.leave_range * config.leave_range,
            clients: Vec::new(),
            nearby: Vec::new(),
            free: Vec::new(),
            by_peer: FxHashMap::default(),
            zones: FxHashMap::default(),
            zone_keys: Vec::new(),
            zone_members: Vec::new(),
            free_zones: Vec::new(),
            grid: Grid::new(config.leave_range),
            moved: Vec::new(),
            pending: Vec::new(),
            distance_checks: 0,
        }
    }

    /// The distances in force.
    pub fn config(&self) -> ProximityConfig {
        self.config
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
        let z = match self.free_zones.pop() {
            Some(z) => {
                self.zone_keys[z as usize] = (realm, space);
                z
            }
            None => {
                self.zone_members.push(0);
                self.zone_keys.push((realm, space));
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

    fn mark_moved(&mut self, i: u32) {
        let c = &mut self.clients[i as usize];
        if !c.moved {
            c.moved = true;
            self.moved.push(i);
        }
    }

    /// Records where `peer` stands now, adding it if new. Takes effect at the next [`tick`](Self::tick).
    ///
    /// # Errors
    /// [`ProximityError::NonFinitePosition`] if a coordinate is NaN or infinite; nothing changes.
    pub fn set_position(
        &mut self,
        peer: PeerId,
        realm: Realm,
        space: SpaceId,
        pos: [f32; 3],
    ) -> Result<(), ProximityError> {
        if !pos.iter().all(|c| c.is_finite()) {
            return Err(ProximityError::NonFinitePosition);
        }
        let zone = self.zone_id(realm, space);
        let key = self.grid.key_of(zone, pos);
        let Some(&i) = self.by_peer.get(&peer) else {
            self.add(peer, zone, key, pos);
            return Ok(());
        };
        let c = &self.clients[i as usize];
        let old_zone = c.zone;
        if c.at.key == key {
            let at = c.at;
            self.grid.update_position(at, pos);
        } else {
            self.unplace(i);
            let at = self.grid.insert(key, Member { pos, client: i });
            self.clients[i as usize].at = at;
        }
        if old_zone != zone {
            self.zone_members[zone as usize] += 1;
            self.clients[i as usize].zone = zone;
            self.leave_zone(old_zone);
        }
        self.clients[i as usize].pos = pos;
        self.mark_moved(i);
        Ok(())
    }

    fn add(&mut self, peer: PeerId, zone: u32, key: super::grid::CellKey, pos: [f32; 3]) {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.clients.push(Client {
                    peer,
                    zone,
                    pos,
                    at: Placement {
                        key,
                        cell: 0,
                        slot: 0,
                    },
                    live: false,
                    moved: false,
                });
                self.nearby.push(Vec::new());
                (self.clients.len() - 1) as u32
            }
        };
        let at = self.grid.insert(key, Member { pos, client: i });
        let c = &mut self.clients[i as usize];
        c.peer = peer;
        c.zone = zone;
        c.pos = pos;
        c.at = at;
        c.live = true;
        self.zone_members[zone as usize] += 1;
        self.by_peer.insert(peer, i);
        self.mark_moved(i);
    }

    /// Takes client `i` out of its cell, fixing the placement of the client swapped into its slot.
    fn unplace(&mut self, i: u32) {
        let at = self.clients[i as usize].at;
        if let Some(swapped) = self.grid.remove(at) {
            self.clients[swapped as usize].at.slot = at.slot;
        }
    }

    /// Removes `peer` (it disconnected). Each of its pairs is reported as
    /// [`DepartureCause::Disconnect`] at the next tick. Returns whether it was held.
    pub fn remove(&mut self, peer: PeerId) -> bool {
        let Some(i) = self.by_peer.remove(&peer) else {
            return false;
        };
        self.unplace(i);
        let zone = self.clients[i as usize].zone;
        self.leave_zone(zone);
        let mut mine = std::mem::take(&mut self.nearby[i as usize]);
        for &j in &mine {
            remove_sorted(&mut self.nearby[j as usize], i);
            self.pending.push(PairChange::Left {
                a: peer,
                b: self.clients[j as usize].peer,
                cause: DepartureCause::Disconnect,
            });
        }
        mine.clear();
        self.nearby[i as usize] = mine;
        self.clients[i as usize].live = false;
        self.free.push(i);
        true
    }

    /// The peers currently introduced to `peer`, ascending by dense index (not by id), or
    /// `None` if `peer` is not held.
    pub fn nearby(&self, peer: PeerId) -> Option<impl Iterator<Item = PeerId> + '_> {
        let &i = self.by_peer.get(&peer)?;
        Some(
            self.nearby[i as usize]
                .iter()
                .map(|&j| self.clients[j as usize].peer),
        )
    }

    /// Whether `a` and `b` are currently introduced.
    pub fn are_introduced(&self, a: PeerId, b: PeerId) -> bool {
        match (self.by_peer.get(&a), self.by_peer.get(&b)) {
            (Some(&i), Some(&j)) => self.nearby[i as usize].binary_search(&j).is_ok(),
            _ => false,
        }
    }

    /// Computes every pair change caused by the inputs since the last tick and appends them to
    /// `out`. Allocates nothing in steady state (beyond `out` growing).
    pub fn tick(&mut self, out: &mut Vec<PairChange>) {
        out.append(&mut self.pending);
        let mut moved = std::mem::take(&mut self.moved);
        for &i in &moved {
            self.examine(i, out);
        }
        // `examine` marks no one as moved, so the list can be reused as it is (no allocation).
        moved.clear();
        self.moved = moved;
    }

    /// Re-evaluates every pair of moved client `i`.
    fn examine(&mut self, i: u32, out: &mut Vec<PairChange>) {
        let c = &mut self.clients[i as usize];
        c.moved = false;
        if !c.live {
            return;
        }
        let (peer, pos, zone) = (c.peer, c.pos, c.zone);
        let mut mine = std::mem::take(&mut self.nearby[i as usize]);

        // Existing pairs: drop those now beyond leave_range or in another space. Pairs only
        // form inside one zone, so a differing zone means one side changed space since.
        let mut k = 0;
        while k < mine.len() {
            let j = mine[k];
            let other = &self.clients[j as usize];
            let cause = if other.zone != zone {
                Some(DepartureCause::SpaceChange)
            } else {
                self.distance_checks += 1;
                (dist_sq(pos, other.pos) > self.leave_sq).then_some(DepartureCause::Range)
            };
            match cause {
                Some(cause) => {
                    mine.remove(k);
                    remove_sorted(&mut self.nearby[j as usize], i);
                    out.push(PairChange::Left {
                        a: peer,
                        b: other.peer,
                        cause,
                    });
                }
                None => k += 1,
            }
        }

        // New pairs: candidates within range in the surrounding cells.
        let range_sq = self.range_sq;
        let mut checks = 0u64;
        let (grid, nearby, clients) = (&self.grid, &mut self.nearby, &self.clients);
        grid.for_each_near(zone, pos, self.config.range, |m| {
            if m.client == i {
                return;
            }
            checks += 1;
            if dist_sq(pos, m.pos) <= range_sq
                && let Err(at) = mine.binary_search(&m.client)
            {
                mine.insert(at, m.client);
                insert_sorted(&mut nearby[m.client as usize], i);
                out.push(PairChange::Entered {
                    a: peer,
                    b: clients[m.client as usize].peer,
                });
            }
        });
        self.distance_checks += checks;
        self.nearby[i as usize] = mine;
    }
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
    fn core_is_send_sync_and_changes_are_small() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<Proximity>();
        assert!(std::mem::size_of::<PairChange>() <= 24);
    }
}
