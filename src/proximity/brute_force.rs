//! The brute-force oracle: every client against every client, the way the original did it.
//!
//! Same rules as [`Proximity`](super::Proximity) (squared distance, hysteresis, same realm and
//! space, symmetric pairs), O(n²) per tick. Tests and the load generator compare the real core
//! against it; the benchmarks use it as the baseline.

use std::collections::{BTreeMap, BTreeSet};

use super::{DepartureCause, PairChange, ProximityConfig};
use crate::protocol::{PeerId, Realm, SpaceId};

/// Where one client stands, as the oracle holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Standing {
    realm: Realm,
    space: SpaceId,
    pos: [f32; 3],
}

/// The O(n²) reference implementation of the proximity rules.
#[derive(Debug, Clone)]
pub struct BruteForce {
    config: ProximityConfig,
    clients: BTreeMap<PeerId, Standing>,
    /// Introduced pairs, smaller id first.
    pairs: BTreeSet<(PeerId, PeerId)>,
    pending: Vec<PairChange>,
}

fn ordered(a: PeerId, b: PeerId) -> (PeerId, PeerId) {
    if a < b { (a, b) } else { (b, a) }
}

impl BruteForce {
    /// An oracle with no clients.
    pub fn new(config: ProximityConfig) -> Self {
        BruteForce {
            config,
            clients: BTreeMap::new(),
            pairs: BTreeSet::new(),
            pending: Vec::new(),
        }
    }

    /// Records where `peer` stands, adding it if new.
    pub fn set_position(&mut self, peer: PeerId, realm: Realm, space: SpaceId, pos: [f32; 3]) {
        self.clients.insert(peer, Standing { realm, space, pos });
    }

    /// Removes `peer`; its pairs are reported as disconnects at the next tick.
    pub fn remove(&mut self, peer: PeerId) {
        if self.clients.remove(&peer).is_none() {
            return;
        }
        let gone: Vec<_> = self
            .pairs
            .iter()
            .copied()
            .filter(|&(a, b)| a == peer || b == peer)
            .collect();
        for (a, b) in gone {
            self.pairs.remove(&(a, b));
            let other = if a == peer { b } else { a };
            self.pending.push(PairChange::Left {
                a: peer,
                b: other,
                cause: DepartureCause::Disconnect,
            });
        }
    }

    /// Re-evaluates every pair and appends what changed to `out`.
    pub fn tick(&mut self, out: &mut Vec<PairChange>) {
        out.append(&mut self.pending);
        let range_sq = self.config.range * self.config.range;
        let leave_sq = self.config.leave_range * self.config.leave_range;
        let all: Vec<(PeerId, Standing)> = self.clients.iter().map(|(p, s)| (*p, *s)).collect();
        let mut next = BTreeSet::new();
        for (n, &(a, sa)) in all.iter().enumerate() {
            for &(b, sb) in &all[n + 1..] {
                if sa.realm != sb.realm || sa.space != sb.space {
                    continue;
                }
                let d = [
                    sa.pos[0] - sb.pos[0],
                    sa.pos[1] - sb.pos[1],
                    sa.pos[2] - sb.pos[2],
                ];
                let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                let was = self.pairs.contains(&(a, b));
                if d2 <= range_sq || (was && d2 <= leave_sq) {
                    next.insert((a, b));
                }
            }
        }
        for &(a, b) in self.pairs.difference(&next) {
            let same_space = self.clients[&a].space == self.clients[&b].space;
            let cause = if same_space {
                DepartureCause::Range
            } else {
                DepartureCause::SpaceChange
            };
            out.push(PairChange::Left { a, b, cause });
        }
        for &(a, b) in next.difference(&self.pairs) {
            out.push(PairChange::Entered { a, b });
        }
        self.pairs = next;
    }

    /// Every introduced pair, smaller id first.
    pub fn pairs(&self) -> &BTreeSet<(PeerId, PeerId)> {
        &self.pairs
    }

    /// Whether `a` and `b` are introduced.
    pub fn are_introduced(&self, a: PeerId, b: PeerId) -> bool {
        self.pairs.contains(&ordered(a, b))
    }

    /// The peers introduced to `peer`, ascending.
    pub fn nearby(&self, peer: PeerId) -> Vec<PeerId> {
        self.pairs
            .iter()
            .filter_map(|&(a, b)| match (a == peer, b == peer) {
                (true, _) => Some(b),
                (_, true) => Some(a),
                _ => None,
            })
            .collect()
    }
}
