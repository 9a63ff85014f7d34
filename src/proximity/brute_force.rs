//! The brute-force oracle: every client against every client, the way the original did it.
//!
//! Same rules as [`Proximity`](super::Proximity) (squared distance, hysteresis, same realm and
//! space, symmetric pairs, and the voice rules: groups, blocks, voice range multipliers), O(n²)
//! per tick. Tests and the load generator compare the real core
//! against it; the benchmarks use it as the baseline.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    ArrivalCause, DEFAULT_MAX_GROUP_SIZE, DepartureCause, GroupId, PairChange, ProximityConfig,
    RuleError, VoiceRules, voice_in_bounds,
};
use crate::kit::{dist_sq, ordered};
use crate::protocol::{PeerId, Realm, SpaceId};
use crate::proximity::SpaceRules;

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
    rules: VoiceRules,
    /// Each peer's groups as of the last tick.
    told: BTreeMap<PeerId, BTreeSet<(Realm, GroupId)>>,
    max_group_size: usize,
}

impl BruteForce {
    /// An oracle with no clients.
    pub fn new(config: ProximityConfig) -> Self {
        BruteForce {
            config,
            clients: BTreeMap::new(),
            pairs: BTreeSet::new(),
            pending: Vec::new(),
            rules: VoiceRules::default(),
            told: BTreeMap::new(),
            max_group_size: DEFAULT_MAX_GROUP_SIZE,
        }
    }

    /// The voice rules in force.
    pub fn rules(&self) -> &VoiceRules {
        &self.rules
    }

    /// As [`Proximity::set_max_group_size`](super::Proximity::set_max_group_size).
    pub fn set_max_group_size(&mut self, limit: usize) {
        self.max_group_size = limit.max(1);
    }

    /// As [`Proximity::join_group`](super::Proximity::join_group).
    ///
    /// # Errors
    /// [`RuleError::GroupFull`] if the group holds its limit.
    pub fn join_group(
        &mut self,
        peer: PeerId,
        realm: Realm,
        group: GroupId,
    ) -> Result<bool, RuleError> {
        let key = (realm, group);
        if self
            .rules
            .groups
            .get(&peer)
            .is_some_and(|g| g.contains(&key))
        {
            return Ok(false);
        }
        if self.rules.members(realm, group) >= self.max_group_size {
            return Err(RuleError::GroupFull {
                limit: self.max_group_size as u32,
            });
        }
        self.rules.groups.entry(peer).or_default().insert(key);
        Ok(true)
    }

    /// As [`Proximity::leave_group`](super::Proximity::leave_group).
    pub fn leave_group(&mut self, peer: PeerId, realm: Realm, group: GroupId) -> bool {
        let Some(groups) = self.rules.groups.get_mut(&peer) else {
            return false;
        };
        let left = groups.remove(&(realm, group));
        if groups.is_empty() {
            self.rules.groups.remove(&peer);
        }
        left
    }

    /// As [`Proximity::set_blocked`](super::Proximity::set_blocked).
    pub fn set_blocked(&mut self, a: PeerId, b: PeerId, blocked: bool) -> bool {
        if a == b {
            return false;
        }
        if blocked {
            self.rules.blocks.insert(ordered(a, b))
        } else {
            self.rules.blocks.remove(&ordered(a, b))
        }
    }

    /// As [`Proximity::set_voice_range`](super::Proximity::set_voice_range).
    ///
    /// # Errors
    /// [`RuleError::VoiceRangeOutOfBounds`] as the core.
    pub fn set_voice_range(&mut self, peer: PeerId, voice: f32) -> Result<(), RuleError> {
        if !voice_in_bounds(voice) {
            return Err(RuleError::VoiceRangeOutOfBounds);
        }
        if voice == 1.0 {
            self.rules.voice.remove(&peer);
        } else {
            self.rules.voice.insert(peer, voice);
        }
        Ok(())
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
        let all: Vec<(PeerId, Standing)> = self.clients.iter().map(|(p, s)| (*p, *s)).collect();
        let mut next = BTreeSet::new();
        for (n, &(a, sa)) in all.iter().enumerate() {
            for &(b, sb) in &all[n + 1..] {
                if sa.realm != sb.realm || self.rules.is_blocked(a, b) {
                    continue;
                }
                if self.rules.share_group(a, b, sa.realm) {
                    next.insert((a, b));
                    continue;
                }
                if sa.space != sb.space {
                    continue;
                }
                let rules = self.config.rules(sa.space);
                let s = self.rules.scale(a, b);
                let range_sq = rules.range * rules.range * s * s;
                let leave_sq = rules.leave_range * rules.leave_range * s * s;
                let d2 = dist_sq(sa.pos, sb.pos);
                let was = self.pairs.contains(&(a, b));
                if d2 <= range_sq || (was && d2 <= leave_sq) {
                    next.insert((a, b));
                }
            }
        }
        for &(a, b) in self.pairs.difference(&next) {
            let (sa, sb) = (self.clients[&a], self.clients[&b]);
            let told_shared = sa.realm == sb.realm
                && match (self.told.get(&a), self.told.get(&b)) {
                    (Some(ga), Some(gb)) => ga.iter().any(|k| k.0 == sa.realm && gb.contains(k)),
                    _ => false,
                };
            let cause = if self.rules.is_blocked(a, b) {
                DepartureCause::Blocked
            } else if told_shared {
                DepartureCause::GroupLeft
            } else if sa.space == sb.space && sa.realm == sb.realm {
                DepartureCause::Range
            } else {
                DepartureCause::SpaceChange
            };
            out.push(PairChange::Left { a, b, cause });
        }
        for &(a, b) in next.difference(&self.pairs) {
            let cause = if self.rules.share_group(a, b, self.clients[&a].realm) {
                ArrivalCause::Group
            } else {
                ArrivalCause::Proximity
            };
            out.push(PairChange::Entered { a, b, cause });
        }
        self.pairs = next;
        self.told = self.rules.groups.clone();
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

/// A broken rule of the peer cap, found by [`check_capped`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CapViolation {
    /// An introduced pair in different zones, or farther apart than `leave_range` (times the
    /// pair's voice range), and not in a group together.
    BeyondLeave(PeerId, PeerId),
    /// A client with more peers than its space's cap, some of them by proximity alone.
    OverCap(PeerId, usize),
    /// Two clients in range, not introduced, though both have room.
    UnusedRoom(PeerId, PeerId),
    /// Two clients in range, not introduced, though each has room or would drop its farthest
    /// proximity peer for the other (nearer by the margin): nearer was not preferred.
    Blocking(PeerId, PeerId),
    /// A blocked pair is introduced.
    BlockedPair(PeerId, PeerId),
    /// Two members of one group (not blocked) are not introduced.
    GroupMissing(PeerId, PeerId),
}

/// [`check_capped_with_rules`] without voice rules.
pub fn check_capped(
    config: &ProximityConfig,
    clients: &[(PeerId, Realm, SpaceId, [f32; 3])],
    pairs: &BTreeSet<(PeerId, PeerId)>,
) -> Vec<CapViolation> {
    check_capped_with_rules(config, &VoiceRules::default(), clients, pairs)
}

/// Checks an introduced-pair set against every rule of the cap and the voice rules, by brute
/// force: symmetric pairs (the set holds each once); no blocked pair; every group pair present
/// wherever its members stand; other pairs within `leave_range` (times the larger voice range
/// of the two) and one zone; at most `max_peers` per client unless group pairs alone exceed it
/// (then none by proximity); no unused room between two clients in range; and no pair in range
/// that both sides would prefer (by `replace_margin`) to their farthest proximity peer.
pub fn check_capped_with_rules(
    config: &ProximityConfig,
    rules: &VoiceRules,
    clients: &[(PeerId, Realm, SpaceId, [f32; 3])],
    pairs: &BTreeSet<(PeerId, PeerId)>,
) -> Vec<CapViolation> {
    let at: BTreeMap<PeerId, (Realm, SpaceId, [f32; 3])> = clients
        .iter()
        .map(|&(p, r, s, pos)| (p, (r, s, pos)))
        .collect();
    let grouped = |a: PeerId, b: PeerId| -> bool {
        match (at.get(&a), at.get(&b)) {
            (Some(&(ra, ..)), Some(&(rb, ..))) => ra == rb && rules.share_group(a, b, ra),
            _ => false,
        }
    };
    let mut peers: BTreeMap<PeerId, Vec<PeerId>> = BTreeMap::new();
    let mut bad = Vec::new();
    for &(a, b) in pairs {
        let (Some(&(ra, sa, pa)), Some(&(rb, sb, pb))) = (at.get(&a), at.get(&b)) else {
            bad.push(CapViolation::BeyondLeave(a, b));
            continue;
        };
        if rules.is_blocked(a, b) {
            bad.push(CapViolation::BlockedPair(a, b));
        }
        let r = config.rules(sa);
        let s = rules.scale(a, b);
        if !grouped(a, b)
            && (ra != rb || sa != sb || dist_sq(pa, pb) > r.leave_range * r.leave_range * s * s)
        {
            bad.push(CapViolation::BeyondLeave(a, b));
        }
        peers.entry(a).or_default().push(b);
        peers.entry(b).or_default().push(a);
    }
    let cap_of = |s: SpaceId| -> usize {
        let SpaceRules { max_peers, .. } = config.rules(s);
        max_peers.map_or(usize::MAX, |c| c.get() as usize)
    };
    for (&p, list) in &peers {
        if let Some(&(_, s, _)) = at.get(&p)
            && list.len() > cap_of(s)
            && list.iter().any(|&q| !grouped(p, q))
        {
            bad.push(CapViolation::OverCap(p, list.len()));
        }
    }
    let farthest = |p: PeerId, pos: [f32; 3]| -> Option<f32> {
        peers
            .get(&p)
            .into_iter()
            .flatten()
            .filter(|&&q| !grouped(p, q))
            .filter_map(|q| at.get(q).map(|&(_, _, qp)| dist_sq(pos, qp)))
            .reduce(f32::max)
    };
    let margin = config.replace_margin;
    let wants = |p: PeerId, pos: [f32; 3], cap: usize, dist2: f32| -> (bool, bool) {
        let deg = peers.get(&p).map_or(0, Vec::len);
        if deg < cap {
            return (true, true);
        }
        let Some(far) = farthest(p, pos) else {
            return (false, false);
        };
        let room = far.sqrt() - margin;
        (false, room > 0.0 && dist2 < room * room)
    };
    for (n, &(a, ra, sa, pa)) in clients.iter().enumerate() {
        for &(b, rb, sb, pb) in &clients[n + 1..] {
            if ra != rb || rules.is_blocked(a, b) || pairs.contains(&ordered(a, b)) {
                continue;
            }
            if grouped(a, b) {
                bad.push(CapViolation::GroupMissing(a, b));
                continue;
            }
            if sa != sb {
                continue;
            }
            let r = config.rules(sa);
            let s = rules.scale(a, b);
            let dist2 = dist_sq(pa, pb);
            if dist2 > r.range * r.range * s * s {
                continue;
            }
            let cap = cap_of(sa);
            let (room_a, want_a) = wants(a, pa, cap, dist2);
            let (room_b, want_b) = wants(b, pb, cap, dist2);
            if room_a && room_b {
                bad.push(CapViolation::UnusedRoom(a, b));
            } else if want_a && want_b {
                bad.push(CapViolation::Blocking(a, b));
            }
        }
    }
    bad
}
