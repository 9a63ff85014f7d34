//! The rules the core applies: distances, the peer cap, per-space overrides, and the voice
//! rules games set (groups, blocks, voice range multipliers).

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::protocol::{PeerId, Realm, SpaceId};
use crate::settings::{InvalidSetting, require};

/// Distances and cap of one space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpaceRules {
    /// Introduction distance, world units.
    pub range: f32,
    /// Departure distance, world units, >= `range`.
    pub leave_range: f32,
    /// Most introduced peers per client; `None` is unlimited.
    pub max_peers: Option<NonZeroU32>,
}

/// What decides who is introduced. In the server's config file, the `[proximity]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProximityConfig {
    /// Introduction distance: a pair within it is introduced. Default: 20.0 world units.
    pub range: f32,
    /// Departure distance: an introduced pair is dropped only beyond it. Default: 25.0 world
    /// units. Must be >= `range`.
    pub leave_range: f32,
    /// Most introduced peers per client (nearest first, symmetric, stable); `None` is
    /// unlimited (left out of the file). Default: `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_peers: Option<NonZeroU32>,
    /// With a cap, an existing pair is replaced only by a candidate nearer by at least this
    /// much, so a shuffling crowd does not churn connections. Default: 2.0 world units.
    pub replace_margin: f32,
    /// Spaces with their own rules (a "stage" where voices carry further); in the file,
    /// `[[proximity.spaces]]` tables of `id`, `range`, `leave_range` and an optional
    /// `max_peers` (none: unlimited). Default: none.
    #[serde(with = "space_tables")]
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

    /// Whether [`validate`](Self::validate) finds nothing wrong.
    pub fn is_valid(&self) -> bool {
        self.validate().is_ok()
    }

    /// Checks every distance is positive and finite with `range <= leave_range` (in every
    /// space too), and the margin finite and non-negative. Caps cannot be 0 by their type.
    ///
    /// # Errors
    /// The first field out of range, named by its path in the server's config file.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let finite_positive = |x: f32| x.is_finite() && x > 0.0;
        require(
            "proximity.range",
            finite_positive(self.range),
            "a positive number",
            self.range,
        )?;
        require(
            "proximity.leave_range",
            self.leave_range.is_finite() && self.leave_range >= self.range,
            format_args!(">= range ({})", self.range),
            self.leave_range,
        )?;
        require(
            "proximity.replace_margin",
            self.replace_margin.is_finite() && self.replace_margin >= 0.0,
            "a non-negative distance",
            self.replace_margin,
        )?;
        for (id, r) in &self.spaces {
            require(
                "proximity.spaces",
                finite_positive(r.range) && r.leave_range.is_finite() && r.leave_range >= r.range,
                format_args!("0 < range <= leave_range in space {}", id.0),
                (r.range, r.leave_range),
            )?;
        }
        Ok(())
    }
}

/// The file form of [`ProximityConfig::spaces`]: one table per space, its id beside its rules.
mod space_tables {
    use std::num::NonZeroU32;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::SpaceRules;
    use crate::protocol::SpaceId;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SpaceTable {
        id: u32,
        range: f32,
        leave_range: f32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_peers: Option<NonZeroU32>,
    }

    pub(super) fn serialize<S: Serializer>(
        spaces: &[(SpaceId, SpaceRules)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let tables: Vec<SpaceTable> = spaces
            .iter()
            .map(|&(id, r)| SpaceTable {
                id: id.0,
                range: r.range,
                leave_range: r.leave_range,
                max_peers: r.max_peers,
            })
            .collect();
        tables.serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(SpaceId, SpaceRules)>, D::Error> {
        let tables = Vec::<SpaceTable>::deserialize(deserializer)?;
        Ok(tables
            .into_iter()
            .map(|t| {
                let rules = SpaceRules {
                    range: t.range,
                    leave_range: t.leave_range,
                    max_peers: t.max_peers,
                };
                (SpaceId(t.id), rules)
            })
            .collect())
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
        self.blocks.contains(&crate::kit::ordered(a, b))
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
