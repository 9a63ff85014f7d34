//! The rules the core applies: distances, the peer cap, and per-space overrides.

use crate::protocol::SpaceId;

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
