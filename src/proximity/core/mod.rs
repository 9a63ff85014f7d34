//! The incremental proximity state machine.
//!
//! # How a tick works
//!
//! Inputs only take notes. [`Proximity::set_position`] (or `set_position_of`, by handle) writes
//! the client's zone into its 16-byte status and puts one entry in the *moved list* (or updates
//! the entry it already has); [`Proximity::remove`] ends the client's pairs at once, queues
//! their departures in `pending` and frees its slot. Voice-rule calls (groups, blocks, voice
//! range) change the rule state and *touch* the peers concerned, which puts them in the moved
//! list where they stand. Nothing else happens until [`Proximity::tick`]:
//!
//! 1. `pending` departures go out first.
//! 2. The moved list is sorted by cell order ([`Grid::sort_key`]), so consecutive movers read
//!    neighbouring cells.
//! 3. **Place**: every live mover is put in the cell of its new position (removed clients'
//!    entries are dropped). All are placed before any is examined, so each examination sees
//!    every position of this tick.
//! 4. **Examine** each mover in that order, by one of three paths:
//!    - plain (`examine.rs`): scan the cells within `leave_range`, keep the pairs seen within
//!      it, end the others, introduce the new within `range`;
//!    - capped (`capped.rs`): judge the pairs directly, then admit candidates nearest first, a
//!      full side giving up its farthest peer only for one nearer by `replace_margin`;
//!    - ruled (`ruled.rs`, while any voice rule is in force): every pair judged by the rules,
//!      group mates wherever they stand, reach scaled by the voice range.
//!
//!    A capped mover's peers are queued in `work`: its move can make their farther pairs
//!    replaceable.
//! 5. **Settle** capped zones: clients in `work` (lost a peer, or a peer moved) are examined
//!    again until the queue empties or a budget runs out (what is left waits for the next tick).
//! 6. **Net** the changes of a settled tick: a pair entered and left within one tick is not
//!    news (`tick.rs`).
//! 7. Groups as of now become the groups pairs were "told" (`voice.rs`).
//!
//! A tick with an empty moved list and no work does nothing: idle costs nothing.
//!
//! # Invariants
//!
//! Between ticks (after [`Proximity::tick`] returns, before the next input),
//! [`Proximity::check_invariants`] checks each of these:
//!
//! 1. **Slab**: `by_peer` maps each held peer to a live record naming it; every other record is
//!    dead and on the free list, once.
//! 2. **Pairs are symmetric**: each nearby set is sorted, without duplicates or itself, holds
//!    only live clients, and `j ∈ nearby(i) ⇔ i ∈ nearby(j)`.
//! 3. **Placement**: every live client sits in the grid cell of its position and zone, at the
//!    slot it records; the grid holds nothing else, and its own bookkeeping (windows, map,
//!    budget) agrees. A client changing zone leaves its old cell at once (it is placed again in
//!    step 3 above, before any examination reads the grid), so a zone freed by its last client
//!    holds no cell and is released to the grid: a recycled zone id starts with no window.
//! 4. **Zones** count exactly the clients whose status names them; a zone id is interned if and
//!    only if it has members, and free otherwise.
//! 5. **Moved list and work queue are empty**, no status says "moved", no record says "queued",
//!    and `pending` is empty.
//! 6. **Pairs obey the rules**: without voice rules, both sides of a pair share a zone and stand
//!    within its `leave_range`; with them, a pair is not blocked and either shares a group or
//!    shares a zone within `leave_range` times the larger voice range. In a capped zone a client
//!    holds at most `cap` peers, beyond which only group mates count.
//!
//! Files: `changes.rs` (what the core reports), `slab.rs` (records, handles, the moved list,
//! placement), `zones.rs`, `tick.rs`, `examine.rs`, `capped.rs`, `voice.rs` (rule state),
//! `ruled.rs` (examination by the rules), `scratch.rs`, `invariants.rs`.

mod capped;
mod changes;
mod examine;
mod invariants;
mod ruled;
mod scratch;
mod slab;
mod tick;
mod voice;
mod zones;

#[cfg(test)]
mod tests;

use rustc_hash::FxHashMap;

use super::grid::Grid;
use super::rules::ProximityConfig;
use crate::protocol::PeerId;

pub use changes::{ArrivalCause, ClientHandle, DepartureCause, PairChange, ProximityError};
use scratch::Scratch;
use slab::{Client, Move, Status};
use voice::VoiceState;
use zones::Zones;

/// The proximity state machine; see the [module docs](super).
#[derive(Debug)]
pub struct Proximity {
    config: ProximityConfig,
    /// Client records by dense index (`slab.rs`).
    clients: Vec<Client>,
    /// The small per-client part inputs touch, by the same index.
    status: Vec<Status>,
    /// Dead indices, reused first.
    free: Vec<u32>,
    by_peer: FxHashMap<PeerId, u32>,
    /// Clients whose position was set (or who were touched) since the last tick, once each.
    moved: Vec<Move>,
    zones: Zones,
    grid: Grid,
    /// Capped zones: clients to re-examine this tick (lost a peer, or a peer moved).
    work: std::collections::VecDeque<u32>,
    /// Departures of removed clients, reported at the next tick.
    pending: Vec<PairChange>,
    distance_checks: u64,
    /// Groups, blocks and voice ranges (`voice.rs`).
    voice: VoiceState,
    /// Whether this tick examines by the rules: while any is in force. The tick after the
    /// last one goes can take the plain path: a peer whose group went keeps its old groups
    /// (`told`) until that tick ends, and a multiplier or block taken back re-examines its
    /// peers, whose every pair the plain rules judge right.
    ruling: bool,
    scratch: Scratch,
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
            moved: Vec::new(),
            zones: Zones::default(),
            grid,
            work: std::collections::VecDeque::new(),
            pending: Vec::new(),
            distance_checks: 0,
            voice: VoiceState::default(),
            ruling: false,
            scratch: Scratch::default(),
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

    /// What the proximity grid holds: zones with a window or in the map, cells, the window
    /// budget in use. For diagnostics, and tests that memory follows the open spaces.
    pub fn grid_footprint(&self) -> crate::proximity::GridFootprint {
        self.grid.footprint()
    }

    /// Grid cells that hold at least one client.
    pub fn occupied_cells(&self) -> usize {
        self.grid.occupied_cells()
    }
}
