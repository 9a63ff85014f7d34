//! The core's invariants, executable: the property tests call [`Proximity::check_invariants`]
//! after every tick, so a change that breaks one fails at the tick that broke it.

use super::Proximity;
use super::slab::NOT_MOVED;
use crate::kit::dist_sq;

impl Proximity {
    /// Checks every invariant listed at the top of `src/proximity/core/mod.rs` (slab, symmetric
    /// pairs, placement, zone counts, nothing waiting, pairs the rules allow) and describes the
    /// first broken. Meant for tests, right after [`tick`](Self::tick) and before further
    /// input; costs O(clients × peers).
    ///
    /// # Errors
    /// A description of the first invariant found broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_slab()?;
        self.check_pairs()?;
        self.check_placement()?;
        let mut counted = vec![0u32; self.zones.ids()];
        for s in self.status.iter().filter(|s| s.live) {
            counted[s.zone as usize] += 1;
        }
        self.zones.check(&counted)?;
        self.check_quiet()?;
        self.check_rules()
    }

    /// 1. `by_peer` and the records agree; dead records are free, once.
    fn check_slab(&self) -> Result<(), String> {
        for (&peer, &i) in &self.by_peer {
            let (c, s) = (&self.clients[i as usize], &self.status[i as usize]);
            if !s.live || c.peer != peer {
                return Err(format!(
                    "{peer:?} maps to record {i}, live {} of {:?}",
                    s.live, c.peer
                ));
            }
        }
        let live = self.status.iter().filter(|s| s.live).count();
        if live != self.by_peer.len() {
            return Err(format!(
                "{live} live records, {} peers held",
                self.by_peer.len()
            ));
        }
        let mut free = self.free.clone();
        free.sort_unstable();
        free.dedup();
        if free.len() != self.free.len()
            || free.len() + live != self.status.len()
            || free.iter().any(|&i| self.status[i as usize].live)
        {
            return Err("the free list is not exactly the dead records".into());
        }
        Ok(())
    }

    /// 2. Nearby sets are sorted, duplicate-free, live, without self, and symmetric.
    fn check_pairs(&self) -> Result<(), String> {
        for (i, c) in self.clients.iter().enumerate() {
            let i = i as u32;
            if !self.status[i as usize].live {
                if !c.nearby.is_empty() {
                    return Err(format!("dead record {i} holds peers"));
                }
                continue;
            }
            if !c.nearby.is_sorted() || c.nearby.windows(2).any(|w| w[0] == w[1]) {
                return Err(format!("{:?}'s set is not sorted and unique", c.peer));
            }
            for &j in &c.nearby {
                if j == i || !self.status[j as usize].live {
                    return Err(format!(
                        "{:?} is paired with itself or a dead record",
                        c.peer
                    ));
                }
                if self.clients[j as usize].nearby.binary_search(&i).is_err() {
                    let other = self.clients[j as usize].peer;
                    return Err(format!("{:?} lists {other:?}, not the reverse", c.peer));
                }
            }
        }
        Ok(())
    }

    /// 3. Every live client sits in the cell of its position, at its slot; nothing else does.
    fn check_placement(&self) -> Result<(), String> {
        let mut placed = 0;
        for (i, c) in self.clients.iter().enumerate() {
            let s = &self.status[i];
            if !s.live {
                if c.at.is_some() {
                    return Err(format!("dead record {i} is placed"));
                }
                continue;
            }
            placed += 1;
            let key = self.grid.key_of(s.zone, c.pos);
            match c.at {
                Some((at, slot)) if at == key => match self.grid.member(key, slot) {
                    Some(m) if m.client == i as u32 && m.pos == c.pos => {}
                    m => return Err(format!("{:?}'s slot holds {m:?}", c.peer)),
                },
                at => return Err(format!("{:?} is at {at:?}, its cell is {key:?}", c.peer)),
            }
        }
        self.grid.check_invariants()?;
        let members = self.grid.member_count();
        if members != placed {
            return Err(format!(
                "the grid holds {members} members, {placed} clients are live"
            ));
        }
        Ok(())
    }

    /// 5. Nothing waits: no move, no work, no departure.
    fn check_quiet(&self) -> Result<(), String> {
        let moved = self
            .status
            .iter()
            .filter(|s| s.moved_at != NOT_MOVED)
            .count();
        let queued = self.clients.iter().filter(|c| c.queued).count();
        if !self.moved.is_empty() || moved > 0 {
            return Err(format!(
                "{} moves listed, {moved} statuses moved",
                self.moved.len()
            ));
        }
        if !self.work.is_empty() || queued > 0 || !self.pending.is_empty() {
            return Err(format!(
                "work {} (queued {queued}), pending {}",
                self.work.len(),
                self.pending.len()
            ));
        }
        Ok(())
    }

    /// 6. Each pair is one the rules allow; capped clients hold at most `cap` peers, beyond
    ///    which only group mates count.
    fn check_rules(&self) -> Result<(), String> {
        for (i, c) in self.clients.iter().enumerate() {
            let (i, s) = (i as u32, &self.status[i]);
            if !s.live {
                continue;
            }
            let rules = self.zones.rules(s.zone);
            let mut grouped = 0;
            for &j in &c.nearby {
                let other = &self.clients[j as usize];
                grouped += usize::from(self.grouped(i, j, false));
                let why = self.ends(i, j, s.zone, c.pos, rules);
                if let Some(why) = why {
                    let d = dist_sq(c.pos, other.pos).sqrt();
                    return Err(format!(
                        "{:?} and {:?} are paired at {d} apart, which the rules end ({why:?})",
                        c.peer, other.peer
                    ));
                }
            }
            if let Some(cap) = rules.cap
                && c.nearby.len() > (cap.get() as usize).max(grouped)
            {
                return Err(format!(
                    "{:?} holds {} peers, cap {cap}, {grouped} group mates",
                    c.peer,
                    c.nearby.len()
                ));
            }
        }
        Ok(())
    }
}
