//! Examination without a cap and without voice rules: the hot path.

use super::slab::{insert_sorted, remove_sorted};
use super::{ArrivalCause, DepartureCause, PairChange, Proximity};
use crate::kit::dist_sq;

impl Proximity {
    /// Re-evaluates every pair of moved client `i`, in `zone`, against the clients near it.
    pub(super) fn examine(&mut self, i: u32, zone: u32, out: &mut Vec<PairChange>) {
        if self.ruling {
            return self.examine_ruled(i, out);
        }
        if let Some(cap) = self.zones.rules(zone).cap {
            return self.examine_capped(i, cap.get() as usize, out);
        }
        let c = &mut self.clients[i as usize];
        let (peer, pos) = (c.peer, c.pos);
        let mut mine = std::mem::take(&mut c.nearby);
        let rules = self.zones.rules(zone);
        let (range_sq, leave_sq) = (rules.range_sq, rules.leave_sq);
        let (mut candidates, mut seen, mut entering) = (
            std::mem::take(&mut self.scratch.candidates),
            std::mem::take(&mut self.scratch.seen),
            std::mem::take(&mut self.scratch.entering),
        );
        seen.clear();
        seen.resize(mine.len(), false);
        entering.clear();
        // Every client within leave_range is in the cells scanned: a current pair not seen
        // here is beyond leave_range (or in another zone) and ends. Most of the scanned are
        // farther: the filter writes every one and advances only past the near ones, so it
        // has no branch to mispredict. `candidates` keeps its length as a high-water mark.
        let mut near = 0;
        let mut checks = 0u64;
        self.grid
            .for_each_cell_near(zone, pos, rules.query_radius, |members| {
                checks += members.len() as u64;
                if candidates.len() < near + members.len() {
                    candidates.resize(near + members.len(), (0, 0.0));
                }
                let window = &mut candidates[near..near + members.len()];
                let mut kept = 0;
                for m in members {
                    let d2 = dist_sq(pos, m.pos);
                    window[kept] = (m.client, d2);
                    kept += usize::from(d2 <= leave_sq);
                }
                near += kept;
            });
        self.distance_checks += checks;
        // Match the near against the set with no branch on a look-up's outcome (it is a coin
        // toss the predictor loses): a candidate not in the set marks a spare slot past its
        // end, and every candidate is written to `entering`, which advances only past the new
        // ones within range.
        let spare = mine.len();
        seen.push(false);
        if entering.len() < near {
            entering.resize(near, 0);
        }
        let mut new = 0;
        for &(j, d2) in &candidates[..near] {
            let at = mine.binary_search(&j);
            seen[at.unwrap_or(spare)] = true;
            entering[new] = j;
            new += usize::from(at.is_err() & (d2 <= range_sq) & (j != i));
        }
        entering.truncate(new);
        seen.truncate(spare);

        if seen.iter().any(|s| !s) {
            let mut k = 0;
            mine.retain(|&mut j| {
                let keep = seen[k];
                k += 1;
                if !keep {
                    let other = &mut self.clients[j as usize];
                    let other_zone = self.status[j as usize].zone;
                    remove_sorted(&mut other.nearby, i);
                    // Left behind in a capped space, it has room to fill.
                    if self.zones.capped(other_zone) && !other.queued {
                        other.queued = true;
                        self.work.push_back(j);
                    }
                    let cause = if other_zone == zone {
                        DepartureCause::Range
                    } else {
                        DepartureCause::SpaceChange
                    };
                    out.push(PairChange::Left {
                        a: peer,
                        b: other.peer,
                        cause,
                    });
                }
                keep
            });
        }
        for &j in entering.iter() {
            insert_sorted(&mut mine, j);
            let other = &mut self.clients[j as usize];
            insert_sorted(&mut other.nearby, i);
            out.push(PairChange::Entered {
                a: peer,
                b: other.peer,
                cause: ArrivalCause::Proximity,
            });
        }
        self.clients[i as usize].nearby = mine;
        self.scratch.candidates = candidates;
        self.scratch.seen = seen;
        self.scratch.entering = entering;
    }
}
