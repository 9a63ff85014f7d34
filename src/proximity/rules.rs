//! The rules the core applies: distances, the peer cap, per-space overrides, and the voice
//! rules games set (groups, blocks, voice range multipliers).

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::{PeerId, Realm, SpaceId};

/// Distances and cap of one space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpaceRules {
    /// Introduction distance, world units.
    pub range: f32,
    /// Departure distance, world units, >= `range`.
    pub leave_range: f32,
    /// Most introduced peers per client; `None` is unlimited.
    pub max_peers: Option<u32>,
}

/// What decides who is introduced.
#[derive(Debug, Clone, PartialEq)]
pub struct ProximityConfig {
    /// Introduction distance: a pair within it is introduced. Default: 20.0 world units.
    pub range: f32,
    /// Departure distance: an introduced pair is dropped only beyond it. Default: 25.0 world
    /// units. Must be >= `range`.
    pub leave_range: f32,
    /// Most introduced peers per client (nearest first, symmetric, stable); `None` is
    /// unlimited. Default: `None`.
    pub max_peers: Option<u32>,
    /// With a cap, an existing pair is replaced only by a candidate nearer by at least this
    /// much, so a shuffling crowd does not churn connections. Default: 2.0 world units.
    pub replace_margin: f32,
    /// Spaces with their own rules (a "stage" where voices carry further). Default: none.
    pub spaces: Vec<(SpaceId, SpaceRules)>,
}

impl Default for ProximityConfig {
    fn default() -> Self {
        ProximityConfig {
            range: 20.0,
            leave_range: 25.0,
            max_peers: None,
            replace_margin: 2.0,
            spaces: Vec::new(),
        }
    }
}

impl ProximityConfig {
    /// The rules of `space`: its override, or the defaults.
    pub fn rules(&self, space: SpaceId) -> SpaceRules {
        self.spaces
            .iter()
            .find(|(s, _)| *s == space)
            .map(|(_, r)| *r)
            .unwrap_or(SpaceRules {
                range: self.range,
                leave_range: self.leave_range,
                max_peers: self.max_peers,
            })
    }

    /// The largest `leave_range` of any space: the grid's cells are sized for it.
    pub fn max_leave_range(&self) -> f32 {
        self.spaces
            .iter()
            .map(|(_, r)| r.leave_range)
            .fold(self.leave_range, f32::max)
    }

    /// Whether every distance is positive and finite with `range <= leave_range`, every cap
    /// at least 1, and the margin finite and non-negative.
    pub fn is_valid(&self) -> bool {
        let ok = |r: &SpaceRules| {
            r.range.is_finite()
                && r.range > 0.0
                && r.leave_range.is_finite()
                && r.leave_range >= r.range
                && r.max_peers != Some(0)
        };
        ok(&self.rules(SpaceId(u32::MAX)))
            && self.spaces.iter().all(|(_, r)| ok(r))
            && self.replace_margin.is_finite()
            && self.replace_margin >= 0.0
    }
}

/// A group (party, team, radio frequency) within a realm: its members are introduced to each
/// other wherever they stand. The same id in two realms names two different groups.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct GroupId(pub u64);

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "group#{}", self.0)
    }
}

/// The largest voice range multiplier the core accepts (servers bound it lower by config).
pub const MAX_VOICE_RANGE: f32 = 4.0;

/// Members a group may hold unless told otherwise: a group of n is a mesh of n(n-1)/2 links.
pub const DEFAULT_MAX_GROUP_SIZE: usize = 16;

/// A rule change the core refused; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RuleError {
    /// The group already holds its limit of members.
    GroupFull {
        /// The limit.
        limit: u32,
    },
    /// A voice range multiplier was not finite, not positive, or above the bound in force.
    VoiceRangeOutOfBounds,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleError::GroupFull { limit } => write!(f, "the group is full ({limit} members)"),
            RuleError::VoiceRangeOutOfBounds => write!(f, "voice range multiplier out of bounds"),
        }
    }
}

impl std::error::Error for RuleError {}

/// Whether `voice` is a multiplier the core takes: finite, positive, at most [`MAX_VOICE_RANGE`].
pub fn voice_in_bounds(voice: f32) -> bool {
    voice.is_finite() && voice > 0.0 && voice <= MAX_VOICE_RANGE
}

/// The voice rules in plain ordered collections, as the brute-force oracle and the cap checker
/// hold them: groups per peer (keyed by realm), blocked pairs, voice range multipliers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VoiceRules {
    /// Each peer's groups.
    pub groups: BTreeMap<PeerId, BTreeSet<(Realm, GroupId)>>,
    /// Blocked pairs, smaller id first.
    pub blocks: BTreeSet<(PeerId, PeerId)>,
    /// Multipliers other than 1.
    pub voice: BTreeMap<PeerId, f32>,
}

impl VoiceRules {
    /// Whether `a` and `b`, both in `realm`, share a group of that realm.
    pub fn share_group(&self, a: PeerId, b: PeerId, realm: Realm) -> bool {
        match (self.groups.get(&a), self.groups.get(&b)) {
            (Some(ga), Some(gb)) => ga.iter().any(|k| k.0 == realm && gb.contains(k)),
            _ => false,
        }
    }

    /// Whether the pair is blocked.
    pub fn is_blocked(&self, a: PeerId, b: PeerId) -> bool {
        self.blocks.contains(&if a < b { (a, b) } else { (b, a) })
    }

    /// `peer`'s voice range multiplier (1 unless set).
    pub fn voice_of(&self, peer: PeerId) -> f32 {
        self.voice.get(&peer).copied().unwrap_or(1.0)
    }

    /// The factor on both distances of the pair: the larger of the two multipliers.
    pub fn scale(&self, a: PeerId, b: PeerId) -> f32 {
        self.voice_of(a).max(self.voice_of(b))
    }

    /// Members of `(realm, group)`.
    pub fn members(&self, realm: Realm, group: GroupId) -> usize {
        self.groups
            .values()
            .filter(|g| g.contains(&(realm, group)))
            .count()
    }
}
