//! Where clients live: a dense slab of records, their handles and statuses, the moved list,
//! and each client's place in the grid.

use smallvec::SmallVec;

use super::{ClientHandle, DepartureCause, PairChange, Proximity, ProximityError};
use crate::protocol::{PeerId, Realm, SpaceId};
use crate::proximity::grid::{CellKey, Member};

/// Peers a nearby set holds inline, in the client's own cache lines, before spilling to the
/// heap: a typical neighbourhood costs no extra memory access and no allocation.
const NEARBY_INLINE: usize = 12;

/// A client's introduced peers: sorted dense indices.
pub(super) type NearbyIndices = SmallVec<[u32; NEARBY_INLINE]>;

/// Per-client state the tick works on, indexed densely by `u32`. Exactly two cache lines, so a
/// prefetch of a record ahead of its turn brings all of it.
#[derive(Debug)]
#[repr(align(64))]
pub(super) struct Client {
    pub peer: PeerId,
    /// Where the last tick placed it (a move waits in the moved list until the next tick).
    pub pos: [f32; 3],
    /// The grid cell and slot holding this client, once the first tick placed it.
    pub at: Option<(CellKey, u32)>,
    /// In the worklist of this tick (capped zones).
    pub queued: bool,
    pub nearby: NearbyIndices,
}

// "Exactly two cache lines": checked by the compiler.
const _: () = assert!(std::mem::size_of::<Client>() == 128);

/// The part of a client's state that `set_position` touches: small and dense (16 bytes), so a
/// burst of updates to random clients stays in cache; the records are written by the tick,
/// in cell order, with prefetching.
#[derive(Debug, Clone, Copy)]
pub(super) struct Status {
    pub generation: u32,
    pub zone: u32,
    /// Its entry in the moved list, or [`NOT_MOVED`].
    pub moved_at: u32,
    pub live: bool,
}

// "Small and dense (16 bytes)": checked by the compiler.
const _: () = assert!(std::mem::size_of::<Status>() == 16);

/// A status's `moved_at` when the client is not in the moved list.
pub(super) const NOT_MOVED: u32 = u32::MAX;

/// A client that moved since the last tick.
#[derive(Debug, Clone, Copy)]
pub(super) struct Move {
    /// Cell order of its new position: the tick visits movers in this order.
    pub sort_key: u64,
    pub client: u32,
    /// Its zone, so the tick need not read the status again.
    pub zone: u32,
    pub pos: [f32; 3],
}

/// Refuses a position with a NaN or infinite coordinate.
pub(super) fn finite(pos: [f32; 3]) -> Result<(), ProximityError> {
    if pos.iter().all(|c| c.is_finite()) {
        Ok(())
    } else {
        Err(ProximityError::NonFinitePosition)
    }
}

/// Capacity a set takes when it first outgrows its inline storage: one allocation per crowded
/// client, not one per doubling.
const NEARBY_SPILL: usize = 64;

pub(super) fn insert_sorted(set: &mut NearbyIndices, v: u32) {
    if let Err(at) = set.binary_search(&v) {
        if set.len() == set.capacity() && !set.spilled() {
            set.reserve_exact(NEARBY_SPILL - set.len());
        }
        set.insert(at, v);
    }
}

pub(super) fn remove_sorted(set: &mut NearbyIndices, v: u32) {
    if let Ok(at) = set.binary_search(&v) {
        set.remove(at);
    }
}

impl Proximity {
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
        let zone = self.zones.intern(realm, space, &self.config);
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
        let current = match self.status.get(handle.index as usize) {
            Some(s) if s.live && s.generation == handle.generation => s.zone,
            _ => return Err(ProximityError::StaleHandle),
        };
        // Staying in its space (nearly every move) needs no lookup by key.
        let zone = if self.zones.is(current, realm, space) {
            current
        } else {
            self.zones.intern(realm, space, &self.config)
        };
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
    /// up (or created) and, if new to the client, is counted here.
    pub(super) fn move_client(&mut self, i: u32, zone: u32, pos: [f32; 3]) {
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
        if old_zone != zone {
            self.zones.join(zone);
            // Out of the old zone's cells at once, so a zone freed below holds no cell.
            self.unplace(i);
            self.leave_zone(old_zone);
        }
    }

    /// Adds `peer`, counted in `zone` (`move_client` follows, with no zone change).
    pub(super) fn add(&mut self, peer: PeerId, zone: u32) -> u32 {
        self.zones.join(zone);
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
    pub(super) fn unplace(&mut self, i: u32) {
        if let Some((key, slot)) = self.clients[i as usize].at.take()
            && let Some(swapped) = self.grid.remove(key, slot)
            && let Some(at) = self.clients[swapped as usize].at.as_mut()
        {
            at.1 = slot;
        }
    }

    /// Puts client `i` (in `zone`) into the cell of its current position, or updates its
    /// position there.
    pub(super) fn place(&mut self, i: u32, zone: u32) {
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
            if self.zones.capped(self.status[j as usize].zone) {
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
}
