//! How the bots move: seeded scenarios.

use clap::ValueEnum;

use crate::kit::SplitMix64;

/// A load scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioKind {
    /// The original's scenario: 50 connected, 25 moving at 3 updates/s, ~5 neighbours each.
    Seed,
    /// Clusters of 5-10 walking together.
    Groups,
    /// Everyone converges on one point, mills about, then disperses.
    Crowd,
    /// Clients connect and disconnect continuously.
    Churn,
    /// Like `seed`, with `--clients N` (up to 1,024).
    Scale,
    /// Voice rules: parties of 4 scattered over the world (groups in the connect token),
    /// random blocks and a few shouters set by the bots mid-run.
    Party,
}

impl ScenarioKind {
    /// Default number of clients.
    pub fn default_clients(self) -> usize {
        match self {
            ScenarioKind::Seed => 50,
            ScenarioKind::Groups => 120,
            ScenarioKind::Crowd => 100,
            ScenarioKind::Churn => 100,
            ScenarioKind::Scale => 1024,
            ScenarioKind::Party => 120,
        }
    }

    /// Default length of the measured window, seconds.
    pub fn default_secs(self) -> f64 {
        match self {
            ScenarioKind::Scale => 60.0,
            _ => 20.0,
        }
    }
}

/// Walking speed, units per second.
const WALK: f32 = 3.0;

/// How one bot moves.
#[derive(Debug, Clone)]
pub(crate) struct Motion {
    pub target: [f32; 2],
    pub moving: bool,
    /// Index of its group and its offset from the group's centre (groups scenario).
    pub group: Option<(usize, [f32; 2])>,
}

/// A scenario's state: the world, the groups, the phase.
pub(crate) struct Scenario {
    pub kind: ScenarioKind,
    pub side: f32,
    rng: SplitMix64,
    moving_fraction: f64,
    /// Per group: home lattice point, centre now, waypoint.
    groups: Vec<([f32; 2], [f32; 2], [f32; 2])>,
}

impl Scenario {
    /// A world for `n` clients with about `neighbours` within `range` on average.
    pub fn new(kind: ScenarioKind, n: usize, range: f32, seed: u64, moving_fraction: f64) -> Self {
        let density = 5.0 / (std::f64::consts::PI * (range as f64).powi(2));
        let side = (n as f64 / density).sqrt() as f32;
        Scenario {
            kind,
            side,
            rng: SplitMix64::new(seed ^ 0x5DEE_CE66_D1CE_5EED),
            moving_fraction,
            groups: Vec::new(),
        }
    }

    pub fn random_point(&mut self) -> [f32; 2] {
        [self.rng.unit() * self.side, self.rng.unit() * self.side]
    }

    pub fn rng(&mut self) -> &mut SplitMix64 {
        &mut self.rng
    }

    /// Starting position and motion of bot number `k` of `n`.
    pub fn place(&mut self, k: usize, n: usize) -> ([f32; 3], Motion) {
        match self.kind {
            ScenarioKind::Groups => {
                if self.groups.is_empty() {
                    // Group centres 100 units apart on a square lattice, far beyond range.
                    let groups = n.div_ceil(7);
                    let per_row = (groups as f64).sqrt().ceil() as usize;
                    for g in 0..groups {
                        let c = [(g % per_row) as f32 * 100.0, (g / per_row) as f32 * 100.0];
                        self.groups.push((c, c, c));
                    }
                }
                let g = k % self.groups.len();
                let off = [self.rng.unit() * 8.0 - 4.0, self.rng.unit() * 8.0 - 4.0];
                let c = self.groups[g].1;
                let motion = Motion {
                    target: c,
                    moving: true,
                    group: Some((g, off)),
                };
                ([c[0] + off[0], c[1] + off[1], 0.0], motion)
            }
            _ => {
                let p = self.random_point();
                let moving = (k as f64) < n as f64 * self.moving_fraction;
                let target = self.random_point();
                (
                    [p[0], p[1], 0.0],
                    Motion {
                        target,
                        moving,
                        group: None,
                    },
                )
            }
        }
    }

    /// Moves every bot by `dt` seconds; `phase` is the fraction of the run elapsed.
    pub fn advance(&mut self, phase: f64, dt: f32, bots: &mut [(&mut [f32; 3], &mut Motion)]) {
        match self.kind {
            ScenarioKind::Groups => {
                // Each centre walks between waypoints within 25 units of its home lattice point,
                // so two groups stay > 38 units apart (beyond leave_range): no pair changes.
                for (home, centre, target) in &mut self.groups {
                    if step_towards(centre, *target, WALK * dt) {
                        *target = [
                            home[0] + self.rng.unit() * 50.0 - 25.0,
                            home[1] + self.rng.unit() * 50.0 - 25.0,
                        ];
                    }
                }
                for (pos, motion) in bots.iter_mut() {
                    if let Some((g, off)) = motion.group {
                        let c = self.groups[g].1;
                        pos[0] = c[0] + off[0];
                        pos[1] = c[1] + off[1];
                    }
                }
            }
            ScenarioKind::Crowd => {
                let centre = [self.side / 2.0, self.side / 2.0];
                for (pos, motion) in bots.iter_mut() {
                    let (speed, radius) = match phase {
                        p if p < 0.35 => (WALK * 2.0, 8.0),
                        p if p < 0.7 => (WALK / 3.0, 8.0),
                        _ => (WALK * 2.0, f32::INFINITY),
                    };
                    let mut p2 = [pos[0], pos[1]];
                    let arrived = step_towards(&mut p2, motion.target, speed * dt);
                    let target_ok = if radius.is_finite() {
                        dist2(motion.target, centre) <= radius * radius
                    } else {
                        dist2(motion.target, centre) > 16.0 * 16.0
                    };
                    if arrived || !target_ok {
                        motion.target = if radius.is_finite() {
                            let a = self.rng.unit() * std::f32::consts::TAU;
                            let r = self.rng.unit().sqrt() * radius;
                            [centre[0] + r * a.cos(), centre[1] + r * a.sin()]
                        } else {
                            [self.rng.unit() * self.side, self.rng.unit() * self.side]
                        };
                    }
                    pos[0] = p2[0];
                    pos[1] = p2[1];
                }
            }
            _ => {
                for (pos, motion) in bots.iter_mut() {
                    if !motion.moving {
                        continue;
                    }
                    let mut p2 = [pos[0], pos[1]];
                    if step_towards(&mut p2, motion.target, WALK * dt) {
                        motion.target = [self.rng.unit() * self.side, self.rng.unit() * self.side];
                    }
                    pos[0] = p2[0];
                    pos[1] = p2[1];
                }
            }
        }
    }
}

fn dist2(a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

/// Moves `p` up to `step` towards `to`; true when it arrived.
fn step_towards(p: &mut [f32; 2], to: [f32; 2], step: f32) -> bool {
    let d = dist2(*p, to).sqrt();
    if d <= step {
        *p = to;
        return true;
    }
    p[0] += (to[0] - p[0]) / d * step;
    p[1] += (to[1] - p[1]) / d * step;
    false
}
