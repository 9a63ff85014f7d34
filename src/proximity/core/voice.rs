//! The voice rules the core holds: groups, blocks and voice range multipliers, and the calls
//! that change them. A change touches the peers concerned, so the next tick re-examines them.

use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;

#[cfg(doc)]
use super::DepartureCause;
use super::Proximity;
use super::slab::{Move, NOT_MOVED};
use crate::kit::ordered;
use crate::protocol::{PeerId, Realm};
use crate::proximity::rules::{DEFAULT_MAX_GROUP_SIZE, GroupId, RuleError, voice_in_bounds};

/// The rule state: empty unless a game uses voice rules.
#[derive(Debug)]
pub(super) struct VoiceState {
    /// Voice rules of the peers that have any (groups, a voice range other than 1), by id: they
    /// outlive a peer's removal (the caller clears them).
    pub rules: FxHashMap<PeerId, PeerRules>,
    /// Members of each group.
    pub members: FxHashMap<(Realm, GroupId), Vec<PeerId>>,
    /// Blocked pairs, smaller id first.
    pub blocks: FxHashSet<(PeerId, PeerId)>,
    /// Peers whose voice carries further than the plain range: the others look for them
    /// beyond their own scan.
    pub loud: Vec<PeerId>,
    /// Peers whose groups changed since the last tick.
    pub regrouped: Vec<PeerId>,
    pub max_group_size: usize,
}

impl Default for VoiceState {
    fn default() -> Self {
        VoiceState {
            rules: FxHashMap::default(),
            members: FxHashMap::default(),
            blocks: FxHashSet::default(),
            loud: Vec::new(),
            regrouped: Vec::new(),
            max_group_size: DEFAULT_MAX_GROUP_SIZE,
        }
    }
}

/// One peer's voice rules, as the core holds them.
#[derive(Debug, Clone)]
pub(super) struct PeerRules {
    /// Sorted.
    pub groups: SmallVec<[(Realm, GroupId); 2]>,
    /// Its groups as of the last tick: a pair that shared one there and no longer does left
    /// because of the group.
    pub told: SmallVec<[(Realm, GroupId); 2]>,
    pub voice: f32,
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
    pub fn is_default(&self) -> bool {
        self.groups.is_empty() && self.told.is_empty() && self.voice == 1.0
    }
}

/// Whether two sorted group lists share a group of `realm`.
pub(super) fn share(a: &[(Realm, GroupId)], b: &[(Realm, GroupId)], realm: Realm) -> bool {
    a.iter().any(|k| k.0 == realm && b.binary_search(k).is_ok())
}

impl Proximity {
    /// The most members a group may hold (default
    /// [`DEFAULT_MAX_GROUP_SIZE`](crate::proximity::DEFAULT_MAX_GROUP_SIZE)). Lowering it removes no one.
    pub fn set_max_group_size(&mut self, limit: usize) {
        self.voice.max_group_size = limit.max(1);
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
        let list = self.voice.members.entry(key).or_default();
        if list.contains(&peer) {
            return Ok(false);
        }
        if list.len() >= self.voice.max_group_size {
            let limit = self.voice.max_group_size as u32;
            if list.is_empty() {
                self.voice.members.remove(&key);
            }
            return Err(RuleError::GroupFull { limit });
        }
        list.push(peer);
        let rules = self.voice.rules.entry(peer).or_default();
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
        let Some(list) = self.voice.members.get_mut(&key) else {
            return false;
        };
        let Some(at) = list.iter().position(|&p| p == peer) else {
            return false;
        };
        list.swap_remove(at);
        if list.is_empty() {
            self.voice.members.remove(&key);
        }
        if let Some(rules) = self.voice.rules.get_mut(&peer)
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
            .voice
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
        self.voice
            .rules
            .get(&peer)
            .into_iter()
            .flat_map(|r| r.groups.iter().copied())
    }

    /// How many members `group` of `realm` holds.
    pub fn group_len(&self, realm: Realm, group: GroupId) -> usize {
        self.voice.members.get(&(realm, group)).map_or(0, Vec::len)
    }

    pub(super) fn regroup(&mut self, peer: PeerId) {
        self.voice.regrouped.push(peer);
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
            self.voice.blocks.insert(key)
        } else {
            self.voice.blocks.remove(&key)
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
        !self.voice.blocks.is_empty() && self.voice.blocks.contains(&ordered(a, b))
    }

    /// Sets `peer`'s voice range multiplier (whisper 0.5, normal 1, shout 2): a pair is
    /// introduced within the larger multiplier of the two times `range`, and leaves beyond the
    /// larger times `leave_range`. Takes effect at the next tick.
    ///
    /// # Errors
    /// [`RuleError::VoiceRangeOutOfBounds`] unless finite, positive and at most
    /// [`MAX_VOICE_RANGE`](crate::proximity::MAX_VOICE_RANGE); nothing changes.
    pub fn set_voice_range(&mut self, peer: PeerId, voice: f32) -> Result<(), RuleError> {
        if !voice_in_bounds(voice) {
            return Err(RuleError::VoiceRangeOutOfBounds);
        }
        let rules = self.voice.rules.entry(peer).or_default();
        if rules.voice == voice {
            if rules.is_default() {
                self.voice.rules.remove(&peer);
            }
            return Ok(());
        }
        let was_loud = rules.voice > 1.0;
        rules.voice = voice;
        match (was_loud, voice > 1.0) {
            (false, true) => self.voice.loud.push(peer),
            (true, false) => self.voice.loud.retain(|&p| p != peer),
            _ => {}
        }
        if rules.is_default() {
            self.voice.rules.remove(&peer);
        }
        self.touch(peer);
        Ok(())
    }

    /// `peer`'s voice range multiplier (1 unless set).
    pub fn voice_range(&self, peer: PeerId) -> f32 {
        self.voice.rules.get(&peer).map_or(1.0, |r| r.voice)
    }

    /// Whether any voice rule (group, block, voice range) is in force: without, the tick runs
    /// exactly the plain proximity path.
    pub fn has_rules(&self) -> bool {
        !self.voice.rules.is_empty() || !self.voice.blocks.is_empty()
    }

    /// Re-examines held `peer` at the next tick, where it stands.
    pub(super) fn touch(&mut self, peer: PeerId) {
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
    pub(super) fn settle_rules(&mut self) {
        for k in 0..self.voice.regrouped.len() {
            let peer = self.voice.regrouped[k];
            if let Some(rules) = self.voice.rules.get_mut(&peer) {
                rules.told = rules.groups.clone();
                if rules.is_default() {
                    self.voice.rules.remove(&peer);
                }
            }
        }
        self.voice.regrouped.clear();
    }
}
