//! Examination while voice rules are in force.

use super::slab::insert_sorted;
use super::voice::share;
use super::zones::ZoneRules;
use super::{ArrivalCause, DepartureCause, PairChange, Proximity};
use crate::kit::dist_sq;
use crate::protocol::{PeerId, Realm};

impl Proximity {
    /// The realm of live client `i`.
    pub(super) fn realm_of(&self, i: u32) -> Realm {
        self.zones.realm(self.status[i as usize].zone)
    }

    /// Whether live clients `i` and `j`, in one realm, share a group of it; `told`: as of the
    /// last tick.
    pub(super) fn grouped(&self, i: u32, j: u32, told: bool) -> bool {
        let (pi, pj) = (self.clients[i as usize].peer, self.clients[j as usize].peer);
        let (Some(ri), Some(rj)) = (self.voice.rules.get(&pi), self.voice.rules.get(&pj)) else {
            return false;
        };
        let realm = self.realm_of(i);
        if realm != self.realm_of(j) {
            return false;
        }
        if told {
            share(&ri.told, &rj.told, realm)
        } else {
            share(&ri.groups, &rj.groups, realm)
        }
    }

    /// Why the introduced pair of `i` (in `zone`, at `pos`) and `j` ends by the rules, if it
    /// does.
    pub(super) fn ends(
        &self,
        i: u32,
        j: u32,
        zone: u32,
        pos: [f32; 3],
        rules: ZoneRules,
    ) -> Option<DepartureCause> {
        let (pi, pj) = (self.clients[i as usize].peer, self.clients[j as usize].peer);
        if self.is_blocked(pi, pj) {
            return Some(DepartureCause::Blocked);
        }
        if self.grouped(i, j, false) {
            return None;
        }
        let zj = self.status[j as usize].zone;
        if zj == zone {
            let s = self.voice_range(pi).max(self.voice_range(pj));
            if dist_sq(pos, self.clients[j as usize].pos) <= rules.leave_sq * s * s {
                return None;
            }
        }
        Some(if self.grouped(i, j, true) {
            DepartureCause::GroupLeft
        } else if zj != zone {
            DepartureCause::SpaceChange
        } else {
            DepartureCause::Range
        })
    }

    /// The farthest peer of `i` (at `pos`) in `set` held by proximity alone (group pairs are
    /// never displaced); ties go to the larger id.
    pub(super) fn farthest_ungrouped(
        &self,
        i: u32,
        pos: [f32; 3],
        set: &[u32],
    ) -> Option<(f32, PeerId, u32)> {
        set.iter()
            .filter(|&&j| !self.grouped(i, j, false))
            .map(|&j| {
                let c = &self.clients[j as usize];
                (dist_sq(pos, c.pos), c.peer, j)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
    }

    /// [`examine`](Self::examine) while voice rules are in force, capped or not: every pair of
    /// `i` judged directly, group mates introduced wherever they are, and proximity candidates
    /// within the larger voice range of each pair (this client's own reach scanned, louder
    /// clients found through their list). Blocked pairs never form.
    pub(super) fn examine_ruled(&mut self, i: u32, out: &mut Vec<PairChange>) {
        let zone = self.status[i as usize].zone;
        let rules = self.zones.rules(zone);
        let cap = rules.cap.map(|c| c.get() as usize);
        let c = &mut self.clients[i as usize];
        let (peer, pos) = (c.peer, c.pos);
        let mut mine = std::mem::take(&mut c.nearby);
        let my_voice = self.voice_range(peer);

        let mut k = 0;
        while k < mine.len() {
            let j = mine[k];
            self.distance_checks += 1;
            match self.ends(i, j, zone, pos, rules) {
                None => k += 1,
                Some(cause) => self.unpair(&mut mine, i, peer, j, cause, out),
            }
        }

        // Group mates, wherever they stand: they take their place whatever the cap.
        let mut entering = std::mem::take(&mut self.scratch.entering);
        entering.clear();
        let realm = self.zones.realm(zone);
        if let Some(r) = self.voice.rules.get(&peer) {
            for key in r.groups.iter().filter(|k| k.0 == realm) {
                for p in self.voice.members.get(key).into_iter().flatten() {
                    if let Some(&j) = self.by_peer.get(p)
                        && j != i
                        && mine.binary_search(&j).is_err()
                        && self.realm_of(j) == realm
                        && !self.is_blocked(peer, *p)
                    {
                        entering.push(j);
                    }
                }
            }
        }
        entering.sort_unstable();
        entering.dedup();
        for &j in entering.iter() {
            insert_sorted(&mut mine, j);
            insert_sorted(&mut self.clients[j as usize].nearby, i);
            if self.zones.capped(self.status[j as usize].zone) {
                self.enqueue(j); // may be over its cap now
            }
            out.push(PairChange::Entered {
                a: peer,
                b: self.clients[j as usize].peer,
                cause: ArrivalCause::Group,
            });
        }
        if let Some(cap) = cap {
            while mine.len() > cap {
                let Some((.., f)) = self.farthest_ungrouped(i, pos, &mine) else {
                    break;
                };
                self.unpair(&mut mine, i, peer, f, DepartureCause::Replaced, out);
            }
        }

        // Proximity candidates.
        let reach = my_voice.max(1.0);
        let reach_sq = rules.range_sq * reach * reach;
        let mut near = std::mem::take(&mut self.scratch.ruled_near);
        near.clear();
        let mut checks = 0u64;
        self.grid.for_each_near(
            zone,
            pos,
            rules.range_sq.sqrt() * reach * (1.0 + 1.0e-4),
            |m| {
                checks += 1;
                let d2 = dist_sq(pos, m.pos);
                if m.client != i && d2 <= reach_sq {
                    near.push((m.client, d2));
                }
            },
        );
        for &p in &self.voice.loud {
            if let Some(&j) = self.by_peer.get(&p)
                && j != i
                && self.status[j as usize].zone == zone
                && self.voice_range(p) > reach
            {
                checks += 1;
                near.push((j, dist_sq(pos, self.clients[j as usize].pos)));
            }
        }
        self.distance_checks += checks;
        entering.clear();
        for &(j, d2) in &near {
            if mine.binary_search(&j).is_ok() {
                continue;
            }
            let pj = self.clients[j as usize].peer;
            let s = my_voice.max(self.voice_range(pj));
            if d2 <= rules.range_sq * s * s && !self.is_blocked(peer, pj) {
                entering.push(j);
            }
        }
        entering.sort_unstable();
        entering.dedup();
        if let Some(cap) = cap {
            self.admit_capped(i, peer, pos, &mut mine, &entering, cap, out);
        } else {
            for &j in entering.iter() {
                insert_sorted(&mut mine, j);
                insert_sorted(&mut self.clients[j as usize].nearby, i);
                out.push(PairChange::Entered {
                    a: peer,
                    b: self.clients[j as usize].peer,
                    cause: ArrivalCause::Proximity,
                });
            }
        }
        self.clients[i as usize].nearby = mine;
        self.scratch.entering = entering;
        self.scratch.ruled_near = near;
    }
}
