//! Zones: each (realm, space) in use, interned to a dense id, with its rules squared for the hot
//! path. A zone id is freed when its last client leaves and reused by the next new space.

use std::num::NonZeroU32;

use rustc_hash::FxHashMap;

use super::Proximity;
use crate::protocol::{Realm, SpaceId};
use crate::proximity::rules::ProximityConfig;

/// One zone's rules, squared where the hot path compares.
#[derive(Debug, Clone, Copy)]
pub(super) struct ZoneRules {
    pub range_sq: f32,
    pub leave_sq: f32,
    /// `leave_range` plus a hair, so that float rounding in cell coordinates can never hide a
    /// client the squared-distance test would still count as near.
    pub query_radius: f32,
    /// Most peers a client of the zone holds, if limited.
    pub cap: Option<NonZeroU32>,
}

impl ZoneRules {
    /// Whether a cap is in force.
    #[inline]
    pub fn capped(&self) -> bool {
        self.cap.is_some()
    }
}

/// One zone in use: its key, rules and how many clients count in it.
#[derive(Debug, Clone, Copy)]
struct Zone {
    key: (Realm, SpaceId),
    rules: ZoneRules,
    members: u32,
}

/// The zones in use, by dense id.
#[derive(Debug, Default)]
pub(super) struct Zones {
    by_key: FxHashMap<(Realm, SpaceId), u32>,
    zones: Vec<Zone>,
    free: Vec<u32>,
}

impl Zones {
    /// The id of `(realm, space)`, interning it (with no member yet) if new.
    pub fn intern(&mut self, realm: Realm, space: SpaceId, config: &ProximityConfig) -> u32 {
        if let Some(&z) = self.by_key.get(&(realm, space)) {
            return z;
        }
        let r = config.rules(space);
        let zone = Zone {
            key: (realm, space),
            rules: ZoneRules {
                range_sq: r.range * r.range,
                leave_sq: r.leave_range * r.leave_range,
                query_radius: r.leave_range * (1.0 + 1.0e-4),
                cap: r.max_peers,
            },
            members: 0,
        };
        let z = match self.free.pop() {
            Some(z) => {
                self.zones[z as usize] = zone;
                z
            }
            None => {
                self.zones.push(zone);
                (self.zones.len() - 1) as u32
            }
        };
        self.by_key.insert((realm, space), z);
        z
    }

    /// Whether `zone` is `(realm, space)`: a check without a lookup by key.
    #[inline]
    pub fn is(&self, zone: u32, realm: Realm, space: SpaceId) -> bool {
        self.zones[zone as usize].key == (realm, space)
    }

    /// Counts one more client in `zone`.
    #[inline]
    pub fn join(&mut self, zone: u32) {
        self.zones[zone as usize].members += 1;
    }

    /// Counts one client fewer in `zone`; returns whether that freed the id.
    #[inline]
    pub fn leave(&mut self, zone: u32) -> bool {
        let z = &mut self.zones[zone as usize];
        z.members -= 1;
        if z.members > 0 {
            return false;
        }
        self.by_key.remove(&z.key);
        self.free.push(zone);
        true
    }

    /// The rules of `zone`.
    #[inline]
    pub fn rules(&self, zone: u32) -> ZoneRules {
        self.zones[zone as usize].rules
    }

    /// Whether `zone` has a cap.
    #[inline]
    pub fn capped(&self, zone: u32) -> bool {
        self.zones[zone as usize].rules.capped()
    }

    /// The realm of `zone`.
    #[inline]
    pub fn realm(&self, zone: u32) -> Realm {
        self.zones[zone as usize].key.0
    }

    /// Checks the bookkeeping against `counted[z]`, the clients the slab says are in zone `z`.
    pub fn check(&self, counted: &[u32]) -> Result<(), String> {
        for (z, zone) in self.zones.iter().enumerate() {
            let n = counted.get(z).copied().unwrap_or(0);
            let freed = self.free.contains(&(z as u32));
            if zone.members != n {
                return Err(format!(
                    "zone {z} counts {} members, the slab {n}",
                    zone.members
                ));
            }
            if freed != (n == 0) || freed == (self.by_key.get(&zone.key) == Some(&(z as u32))) {
                return Err(format!(
                    "zone {z} ({n} members) is free: {freed}, interned: {}",
                    !freed
                ));
            }
        }
        if self.by_key.len() + self.free.len() != self.zones.len() {
            return Err("a zone id is neither interned nor free".into());
        }
        Ok(())
    }

    /// How many zone ids exist (in use or free).
    pub fn ids(&self) -> usize {
        self.zones.len()
    }
}

impl Proximity {
    /// Counts one client fewer in `zone`; a zone left empty is freed.
    pub(super) fn leave_zone(&mut self, zone: u32) {
        if self.zones.leave(zone) {
            // Its window, budget and sparse state go with it: a recycled id starts afresh.
            self.grid.release_zone(zone);
        }
    }
}
