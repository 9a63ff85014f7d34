//! The cap policy: examination in a zone with a peer cap, and the ranking it admits by.

use super::slab::{NearbyIndices, insert_sorted};
use super::{ArrivalCause, DepartureCause, PairChange, Proximity};
use crate::kit::dist_sq;
use crate::protocol::PeerId;

impl Proximity {
    /// The farthest peer in `set` from `pos`: (squared distance, id, index); ties go to the
    /// larger id, so the order is total.
    pub(super) fn farthest(&self, pos: [f32; 3], set: &[u32]) -> Option<(f32, PeerId, u32)> {
        set.iter()
            .map(|&j| {
                let c = &self.clients[j as usize];
                (dist_sq(pos, c.pos), c.peer, j)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
    }

    /// [`examine`](Self::examine) in a capped zone. A client holds at most `cap` peers, so its
    /// pairs are checked directly, and when it is full only candidates nearer than its farthest
    /// peer by the margin can matter: the scan shrinks to that radius (in a dense crowd, a few
    /// units instead of `range`).
    pub(super) fn examine_capped(&mut self, i: u32, cap: usize, out: &mut Vec<PairChange>) {
        let c = &mut self.clients[i as usize];
        let (peer, pos, zone) = (c.peer, c.pos, self.status[i as usize].zone);
        let mut mine = std::mem::take(&mut c.nearby);
        let rules = self.zones.rules(zone);

        // Existing pairs: beyond leave_range or in another zone, they end.
        let mut k = 0;
        while k < mine.len() {
            let j = mine[k];
            let other = &self.clients[j as usize];
            self.distance_checks += 1;
            let cause = if self.status[j as usize].zone != zone {
                Some(DepartureCause::SpaceChange)
            } else {
                (dist_sq(pos, other.pos) > rules.leave_sq).then_some(DepartureCause::Range)
            };
            let Some(cause) = cause else {
                k += 1;
                continue;
            };
            self.unpair(&mut mine, i, peer, j, cause, out);
        }
        // A space change can carry more pairs into a space than its cap allows: keep the nearest.
        while mine.len() > cap {
            let Some((.., f)) = self.farthest(pos, &mine) else {
                break;
            };
            self.unpair(&mut mine, i, peer, f, DepartureCause::Replaced, out);
        }

        // Candidates: within range, or when full within the farthest peer's distance less the
        // margin.
        let mut reach_sq = rules.range_sq;
        if mine.len() >= cap {
            let far = self.farthest(pos, &mine).map_or(0.0, |f| f.0);
            let reach = far.sqrt() - self.config.replace_margin;
            reach_sq = if reach > 0.0 {
                reach_sq.min(reach * reach)
            } else {
                0.0
            };
        }
        let mut entering = std::mem::take(&mut self.scratch.entering);
        entering.clear();
        if reach_sq > 0.0 {
            let mut checks = 0u64;
            self.grid
                .for_each_near(zone, pos, reach_sq.sqrt() * (1.0 + 1.0e-4), |m| {
                    checks += 1;
                    if m.client != i
                        && dist_sq(pos, m.pos) <= reach_sq
                        && mine.binary_search(&m.client).is_err()
                    {
                        entering.push(m.client);
                    }
                });
            self.distance_checks += checks;
        }
        if !entering.is_empty() {
            self.admit_capped(i, peer, pos, &mut mine, &entering, cap, out);
        }
        self.clients[i as usize].nearby = mine;
        self.scratch.entering = entering;
    }

    /// `entering` ranked nearest first (ties by id), in the scratch list the caller puts back.
    pub(super) fn rank_candidates(
        &mut self,
        pos: [f32; 3],
        entering: &[u32],
    ) -> Vec<(f32, PeerId, u32)> {
        let mut ranked = std::mem::take(&mut self.scratch.ranked);
        ranked.clear();
        ranked.extend(entering.iter().map(|&j| {
            let c = &self.clients[j as usize];
            (dist_sq(pos, c.pos), c.peer, j)
        }));
        ranked.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        ranked
    }

    /// The peer `x` (at `pos`) would give up from `set` to make room: its farthest, ties to the
    /// larger id; while voice rules are in force, group pairs are never the one displaced.
    fn displaceable(&self, x: u32, pos: [f32; 3], set: &[u32]) -> Option<(f32, PeerId, u32)> {
        if self.ruling {
            self.farthest_ungrouped(x, pos, set)
        } else {
            self.farthest(pos, set)
        }
    }

    /// With a cap: takes `entering` candidates nearest first (ties by id). A pair forms when
    /// each side has room or would drop its farthest displaceable peer for one nearer by the
    /// margin (by the rules, group pairs count toward the cap but are never displaced).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn admit_capped(
        &mut self,
        i: u32,
        peer: PeerId,
        pos: [f32; 3],
        mine: &mut NearbyIndices,
        entering: &[u32],
        cap: usize,
        out: &mut Vec<PairChange>,
    ) {
        let ranked = self.rank_candidates(pos, entering);
        let margin = self.config.replace_margin;
        let beats = |d2: f32, far: f32| beats_by_margin(d2, far, margin);
        for &(d2, other_peer, j) in ranked.iter() {
            let my_far = if mine.len() >= cap {
                match self.displaceable(i, pos, mine) {
                    Some(f) if beats(d2, f.0) => Some(f),
                    _ => break, // farther candidates cannot do better
                }
            } else {
                None
            };
            let theirs = &self.clients[j as usize].nearby;
            if theirs.len() > cap {
                // Over its cap after a space change: it trims itself when examined this tick.
                continue;
            }
            let their_far = if theirs.len() >= cap {
                let their_pos = self.clients[j as usize].pos;
                match self.displaceable(j, their_pos, theirs) {
                    Some(f) if beats(d2, f.0) => Some(f),
                    _ => continue, // full, and we are not nearer by the margin
                }
            } else {
                None
            };
            let far = (my_far.map(|f| f.2), their_far.map(|f| f.2));
            self.pair_replacing(mine, (i, peer), (j, other_peer), far, out);
        }
        self.scratch.ranked = ranked;
    }
}

impl Proximity {
    /// Introduces `i` (set `mine`, taken out of its record) to `j` through the proximity
    /// path, first ending the pairs each side gives up to make room (`far`: `i`'s, `j`'s).
    pub(super) fn pair_replacing(
        &mut self,
        mine: &mut NearbyIndices,
        (i, peer): (u32, PeerId),
        (j, other_peer): (u32, PeerId),
        far: (Option<u32>, Option<u32>),
        out: &mut Vec<PairChange>,
    ) {
        if let Some(f) = far.0 {
            self.unpair(mine, i, peer, f, DepartureCause::Replaced, out);
        }
        if let Some(g) = far.1 {
            let mut theirs = std::mem::take(&mut self.clients[j as usize].nearby);
            self.unpair(&mut theirs, j, other_peer, g, DepartureCause::Replaced, out);
            self.clients[j as usize].nearby = theirs;
        }
        insert_sorted(mine, j);
        insert_sorted(&mut self.clients[j as usize].nearby, i);
        out.push(PairChange::Entered {
            a: peer,
            b: other_peer,
            cause: ArrivalCause::Proximity,
        });
    }
}

/// Whether a side at its cap would give up its farthest peer (at squared distance `far`) for
/// one at squared distance `d2`: nearer by at least `margin`.
#[inline]
fn beats_by_margin(d2: f32, far: f32, margin: f32) -> bool {
    let room = far.sqrt() - margin;
    room > 0.0 && d2 < room * room
}
