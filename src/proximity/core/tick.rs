//! One tick: place every mover, examine each in cell order, settle capped zones, net out.

use super::slab::{Move, NOT_MOVED, NearbyIndices, remove_sorted};
use super::{DepartureCause, PairChange, Proximity};
use crate::kit::ordered;
use crate::protocol::PeerId;
use crate::proximity::prefetch::prefetch;

/// How many movers ahead the tick's loops prefetch client records: enough to overlap several
/// memory latencies, few enough that the lines are still in L1 when their turn comes.
const PREFETCH_AHEAD: usize = 8;

impl Proximity {
    /// Computes every pair change caused by the inputs since the last tick and appends them to
    /// `out`. Allocates nothing in steady state (beyond `out` growing).
    pub fn tick(&mut self, out: &mut Vec<PairChange>) {
        out.append(&mut self.pending);
        self.ruling = self.has_rules();
        if self.moved.is_empty() && self.work.is_empty() {
            self.settle_rules();
            return;
        }
        let first_computed = out.len();
        let mut settled = false;
        let mut moved = std::mem::take(&mut self.moved);
        // Visit movers in cell order: neighbouring movers share cells, so the cells one
        // examination reads are still in cache for the next.
        sort_by_cell(&mut moved, &mut self.scratch.sorted_moves);
        // Place every mover first, so each examination sees every position of this tick; drop
        // the ones removed since they moved.
        let mut live = 0;
        for k in 0..moved.len() {
            if let Some(ahead) = moved.get(k + PREFETCH_AHEAD) {
                prefetch(&self.clients[ahead.client as usize]);
                prefetch(&self.status[ahead.client as usize]);
            }
            let Move {
                client: i,
                zone,
                pos,
                ..
            } = moved[k];
            let status = &mut self.status[i as usize];
            status.moved_at = NOT_MOVED;
            if status.live {
                self.clients[i as usize].pos = pos;
                self.place(i, zone);
                moved[live] = moved[k];
                live += 1;
            }
        }
        moved.truncate(live);
        for k in 0..moved.len() {
            if let Some(ahead) = moved.get(k + PREFETCH_AHEAD) {
                prefetch(&self.clients[ahead.client as usize]);
            }
            let Move {
                client: i, zone, ..
            } = moved[k];
            self.examine(i, zone, out);
            if self.zones.capped(zone) {
                // A peer's move can make a farther pair of its peers replaceable.
                for k in 0..self.clients[i as usize].nearby.len() {
                    let j = self.clients[i as usize].nearby[k];
                    self.enqueue(j);
                }
            }
        }
        // Capped zones: settle the consequences (freed slots, replaceable pairs). Each swap
        // shortens pairs by the margin, so this ends; the budget only bounds a pathological tick,
        // and whatever is left stays queued for the next one.
        let mut budget = 16 * moved.len() + 1024;
        while budget > 0
            && let Some(j) = self.work.pop_front()
        {
            budget -= 1;
            settled = true;
            self.clients[j as usize].queued = false;
            let status = self.status[j as usize];
            if status.live {
                self.examine(j, status.zone, out);
            }
        }
        // `examine` marks no one as moved, so the list is reused as it is (no allocation).
        moved.clear();
        self.moved = moved;
        if settled {
            self.net_changes(out, first_computed);
        }
        self.settle_rules();
    }

    /// Settling a capped zone can enter and drop the same pair within one tick (or drop and
    /// re-enter it). Clients must hear only the net change: keeps, per pair, the last change
    /// if the pair changed an odd number of times, nothing if even. Disconnects reported from
    /// `remove` come before `from` and are left alone (a reconnect is news).
    pub(super) fn net_changes(&mut self, out: &mut Vec<PairChange>, from: usize) {
        let key = |c: &PairChange| {
            let (a, b) = match *c {
                PairChange::Entered { a, b, .. } | PairChange::Left { a, b, .. } => (a, b),
            };
            let (a, b) = ordered(a, b);
            (a.0, b.0)
        };
        let mut order = std::mem::take(&mut self.scratch.net_order);
        order.clear();
        order.extend(out[from..].iter().enumerate().map(|(k, c)| (key(c), k)));
        order.sort_unstable();
        let mut keep = std::mem::take(&mut self.scratch.net_keep);
        keep.clear();
        keep.resize(out.len() - from, false);
        for group in order.chunk_by(|x, y| x.0 == y.0) {
            if group.len() % 2 == 1 {
                keep[group[group.len() - 1].1] = true;
            }
        }
        let mut k = 0;
        let mut index = 0;
        out.retain(|_| {
            let retain = index < from || {
                let r = keep[k];
                k += 1;
                r
            };
            index += 1;
            retain
        });
        self.scratch.net_order = order;
        self.scratch.net_keep = keep;
    }

    /// Ends the pair of `x` (its set `x_set`, taken out of its record) and `y`, reports it,
    /// and queues `y` to fill the slot it lost where a cap leaves it room to fill.
    pub(super) fn unpair(
        &mut self,
        x_set: &mut NearbyIndices,
        x: u32,
        x_peer: PeerId,
        y: u32,
        cause: DepartureCause,
        out: &mut Vec<PairChange>,
    ) {
        remove_sorted(x_set, y);
        let other = &mut self.clients[y as usize];
        remove_sorted(&mut other.nearby, x);
        let y_peer = other.peer;
        if self.zones.capped(self.status[y as usize].zone) {
            self.enqueue(y);
        }
        out.push(PairChange::Left {
            a: x_peer,
            b: y_peer,
            cause,
        });
    }

    pub(super) fn enqueue(&mut self, j: u32) {
        let c = &mut self.clients[j as usize];
        if !c.queued {
            c.queued = true;
            self.work.push_back(j);
        }
    }
}

/// Movers at which a radix sort beats a comparison sort (below, its 256-bucket passes cost
/// more than they save).
const RADIX_FROM: usize = 256;

/// Sorts `moved` by cell order: a stable LSD radix sort on the key's bytes that differ among
/// the movers (two or three for a world's window), ties left in moved-list order. `spare` is
/// its second buffer, kept between ticks: neither path allocates in steady state.
fn sort_by_cell(moved: &mut Vec<Move>, spare: &mut Vec<Move>) {
    if moved.len() < RADIX_FROM {
        // In place (a stable sort would allocate its buffer): ties by client, deterministic.
        moved.sort_unstable_by_key(|m| (m.sort_key, m.client));
        return;
    }
    let (all, any) = moved.iter().fold((u64::MAX, 0u64), |(all, any), m| {
        (all & m.sort_key, any | m.sort_key)
    });
    let differ = all ^ any;
    for shift in (0..64).step_by(8) {
        if (differ >> shift) & 0xFF == 0 {
            continue;
        }
        let mut at = [0usize; 256];
        for m in moved.iter() {
            at[((m.sort_key >> shift) & 0xFF) as usize] += 1;
        }
        let mut sum = 0;
        for slot in at.iter_mut() {
            (*slot, sum) = (sum, sum + *slot);
        }
        spare.clear();
        spare.resize(moved.len(), moved[0]);
        for m in moved.iter() {
            let digit = ((m.sort_key >> shift) & 0xFF) as usize;
            spare[at[digit]] = *m;
            at[digit] += 1;
        }
        std::mem::swap(moved, spare);
    }
}
