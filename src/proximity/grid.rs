//! A uniform grid of cells keyed by zone and integer cell coordinates.
//!
//! Cells are `2.1 × leave_range` wide and offset by half a cell, so a query of radius
//! `leave_range` spans at most two cells per axis, and exactly one along an axis on which every
//! client shares one coordinate that is a multiple of the cell size — 0 included (a 2D game on
//! the XY plane, or a flat 3D floor): 4 cell look-ups for a planar world, 8 for a 3D one.
//!
//! Each cell holds its members (positions included) inline in a slab of cells, so scanning a
//! cell for candidates reads one contiguous run of memory with no pointer to chase. Finding a
//! cell by its coordinates goes through a dense [`Window`] over the zone's occupied cells (an
//! array index into a few kilobytes for a whole world), falling back to a hash map for a zone
//! spread too thinly for a window. The slab is kept in window order (row by row), so a pass
//! over movers sorted by [`Grid::sort_key`] sweeps memory in order and the hardware prefetcher
//! streams the cells ahead of it. Emptied cells keep their storage for reuse: in steady state
//! moving between cells allocates nothing. When the core frees a zone id (its space's last
//! client left), [`Grid::release_zone`] drops the zone's window and returns its budget, so a
//! server whose spaces come and go keeps dense lookups and memory that follows the open spaces.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

/// How much wider than a query's diameter a cell is.
const CELL_OVER_DIAMETER: f32 = 1.05;

/// Members a cell holds inline: a typical neighbourhood (about 11 a cell at 5 neighbours
/// within range) with room to spare; a crowded cell spills to the heap.
const CELL_INLINE: usize = 24;

/// Capacity a cell takes when it first outgrows its inline storage.
const CELL_SPILL: usize = 64;

/// Most cells one zone's window may span (4 MiB of ids); a zone spread wider uses the map.
const WINDOW_MAX_CELLS: i64 = 1 << 20;

/// Most cells all windows together may span (16 MiB of ids).
const WINDOWS_MAX_CELLS: i64 = 1 << 22;

/// A cell's address: the zone (realm + space) and its integer coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CellKey {
    pub zone: u32,
    pub x: i32,
    pub y: i32,
    pub z: i32,
}

/// A cell's index in the slab; internal to the grid (callers name cells by [`CellKey`]), so
/// the grid may renumber cells to keep the slab in window order.
type CellId = u32;

/// No cell at this window position.
const EMPTY: CellId = CellId::MAX;

/// One member of a cell: a client's dense index and its position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub pos: [f32; 3],
    pub client: u32,
}

#[derive(Debug)]
struct Cell {
    key: CellKey,
    members: SmallVec<[Member; CELL_INLINE]>,
}

/// A dense box of cell ids covering every occupied cell of one zone, `x` fastest.
#[derive(Debug)]
struct Window {
    min: [i64; 3],
    dims: [i64; 3],
    ids: Vec<CellId>,
}

impl Window {
    fn volume(&self) -> i64 {
        self.dims.iter().product()
    }

    fn index(&self, x: i64, y: i64, z: i64) -> Option<usize> {
        let (dx, dy, dz) = (x - self.min[0], y - self.min[1], z - self.min[2]);
        let inside = (0..self.dims[0]).contains(&dx)
            && (0..self.dims[1]).contains(&dy)
            && (0..self.dims[2]).contains(&dz);
        inside.then(|| ((dz * self.dims[1] + dy) * self.dims[0] + dx) as usize)
    }
}

/// How a zone finds its cells by coordinates.
#[derive(Debug, Default)]
enum Lookup {
    /// No cell yet, or the zone id is unused.
    #[default]
    Unset,
    Window(Window),
    /// Spread too thinly for a window: the map alone.
    Sparse,
}

#[derive(Debug, Default)]
pub(crate) struct Grid {
    inv_cell: f32,
    half_cell: f32,
    index: FxHashMap<CellKey, CellId>,
    cells: Vec<Cell>,
    free_cells: Vec<CellId>,
    /// Per zone id.
    lookups: Vec<Lookup>,
    window_cells: i64,
    /// Cells opened since the slab was last put in window order.
    opened: usize,
    /// Scratch of `put_in_window_order`.
    order_scratch: Vec<CellId>,
    renumber_scratch: Vec<CellId>,
}

impl Grid {
    /// A grid for queries of at most `max_radius`.
    pub fn new(max_radius: f32) -> Self {
        let cell = 2.0 * max_radius * CELL_OVER_DIAMETER;
        Grid {
            inv_cell: 1.0 / cell,
            half_cell: cell / 2.0,
            ..Default::default()
        }
    }

    /// Saturating conversion: positions are validated finite, and the grid never panics anyway.
    /// `floor` by hand: without SSE4.1 the library call costs more than the rest of the key.
    #[inline]
    fn coord(&self, v: f32) -> i32 {
        let t = (v + self.half_cell) * self.inv_cell;
        let i = t as i32;
        i - i32::from((i as f32) > t)
    }

    #[inline]
    pub fn key_of(&self, zone: u32, pos: [f32; 3]) -> CellKey {
        CellKey {
            zone,
            x: self.coord(pos[0]),
            y: self.coord(pos[1]),
            z: self.coord(pos[2]),
        }
    }

    /// A key that sorts clients in the order of the slab: zone, then window position (cells
    /// row by row) where the zone has a window, else cell row then column.
    #[inline]
    pub fn sort_key(&self, zone: u32, pos: [f32; 3]) -> u64 {
        let key = self.key_of(zone, pos);
        let within = match self.lookups.get(zone as usize) {
            Some(Lookup::Window(w)) => w.index(key.x.into(), key.y.into(), key.z.into()),
            _ => None,
        };
        let place = match within {
            Some(k) => k as u64,
            None => {
                let bits = |c: i32| (c as u32 ^ 0x8000_0000) as u64 & 0xFF_FFFF;
                (bits(key.y) << 24) | bits(key.x)
            }
        };
        ((zone as u64) << 48) | place
    }

    #[inline]
    fn find(&self, key: CellKey) -> Option<CellId> {
        match self.lookups.get(key.zone as usize) {
            Some(Lookup::Window(w)) => w
                .index(key.x.into(), key.y.into(), key.z.into())
                .map(|k| w.ids[k])
                .filter(|&id| id != EMPTY),
            Some(Lookup::Sparse) => self.index.get(&key).copied(),
            _ => None,
        }
    }

    #[inline]
    fn members_mut(&mut self, key: CellKey) -> &mut SmallVec<[Member; CELL_INLINE]> {
        let id = self.placed(key);
        &mut self.cells[id as usize].members
    }

    /// The cell of a placed client: it exists as long as the client sits in it.
    #[inline]
    fn placed(&self, key: CellKey) -> CellId {
        self.find(key).expect("a placed client's cell exists")
    }

    /// Adds a member to the cell at `key`, returning its slot there.
    pub fn insert(&mut self, key: CellKey, member: Member) -> u32 {
        let id = match self.find(key) {
            Some(id) => id,
            None => self.open(key),
        };
        let members = &mut self.cells[id as usize].members;
        if members.len() == members.capacity() && !members.spilled() {
            members.reserve_exact(CELL_SPILL - members.len());
        }
        members.push(member);
        (members.len() - 1) as u32
    }

    /// Removes the member at `slot` of the cell at `key`. Returns the client moved into that
    /// slot, if any, so the caller can update its placement.
    pub fn remove(&mut self, key: CellKey, slot: u32) -> Option<u32> {
        let id = self.placed(key);
        let members = &mut self.cells[id as usize].members;
        members.swap_remove(slot as usize);
        if members.is_empty() {
            self.close(id);
            return None;
        }
        members.get(slot as usize).map(|m| m.client)
    }

    #[inline]
    pub fn update_position(&mut self, key: CellKey, slot: u32, pos: [f32; 3]) {
        self.members_mut(key)[slot as usize].pos = pos;
    }

    fn open(&mut self, key: CellKey) -> CellId {
        self.opened += 1;
        if self.opened > 64 + self.cells.len() / 8 {
            self.put_in_window_order();
        }
        let id = match self.free_cells.pop() {
            Some(id) => {
                self.cells[id as usize].key = key;
                id
            }
            None => {
                self.cells.push(Cell {
                    key,
                    members: SmallVec::new(),
                });
                (self.cells.len() - 1) as CellId
            }
        };
        self.index.insert(key, id);
        self.enter_window(key, id);
        id
    }

    fn close(&mut self, id: CellId) {
        let key = self.cells[id as usize].key;
        self.index.remove(&key);
        if let Some(Lookup::Window(w)) = self.lookups.get_mut(key.zone as usize)
            && let Some(k) = w.index(key.x.into(), key.y.into(), key.z.into())
        {
            w.ids[k] = EMPTY;
        }
        self.free_cells.push(id);
    }

    /// Renumbers the slab: windowed zones' cells in window order, then the sparse zones'
    /// cells, then the free ones. Runs when many cells were opened since the last time
    /// (a world filling up or moving on), so it costs O(1) amortised per opened cell.
    fn put_in_window_order(&mut self) {
        self.opened = 0;
        let mut order = std::mem::take(&mut self.order_scratch);
        order.clear();
        for lookup in &self.lookups {
            if let Lookup::Window(w) = lookup {
                order.extend(w.ids.iter().copied().filter(|&id| id != EMPTY));
            }
        }
        let windowed = order.len();
        order.extend(self.index.iter().filter_map(|(key, &id)| {
            (!matches!(self.lookups.get(key.zone as usize), Some(Lookup::Window(_)))).then_some(id)
        }));
        order[windowed..].sort_unstable();
        order.extend(self.free_cells.iter().copied());
        debug_assert_eq!(order.len(), self.cells.len());
        // `renumber[old] = new`; ids are rewritten first, then the slab is permuted in place
        // by following cycles (which consumes `renumber`). No allocation in steady state.
        let mut renumber = std::mem::take(&mut self.renumber_scratch);
        renumber.clear();
        renumber.resize(self.cells.len(), EMPTY);
        for (new, &old) in order.iter().enumerate() {
            renumber[old as usize] = new as CellId;
        }
        for lookup in &mut self.lookups {
            if let Lookup::Window(w) = lookup {
                for id in w.ids.iter_mut().filter(|id| **id != EMPTY) {
                    *id = renumber[*id as usize];
                }
            }
        }
        for id in self.index.values_mut() {
            *id = renumber[*id as usize];
        }
        for k in 0..renumber.len() {
            while renumber[k] as usize != k {
                let to = renumber[k] as usize;
                self.cells.swap(k, to);
                renumber.swap(k, to);
            }
        }
        // Free cells were put last: popping takes the lowest of them first.
        let first_free = order.len() - self.free_cells.len();
        self.free_cells.clear();
        self.free_cells
            .extend((first_free as CellId..order.len() as CellId).rev());
        self.order_scratch = order;
        self.renumber_scratch = renumber;
    }

    /// Records a new cell in its zone's window, growing the window (with room to spare, so
    /// growth is rare) or giving it up for the map when the zone is spread too thinly.
    fn enter_window(&mut self, key: CellKey, id: CellId) {
        let zone = key.zone as usize;
        if self.lookups.len() <= zone {
            self.lookups.resize_with(zone + 1, Lookup::default);
        }
        let at = [i64::from(key.x), i64::from(key.y), i64::from(key.z)];
        if let Lookup::Window(w) = &mut self.lookups[zone]
            && let Some(k) = w.index(at[0], at[1], at[2])
        {
            w.ids[k] = id;
            return;
        }
        if matches!(self.lookups[zone], Lookup::Sparse) {
            return;
        }
        // The new bounds: the old ones and the new cell, plus half again on each grown side.
        let (mut lo, mut hi) = (at, at);
        if let Lookup::Window(w) = &self.lookups[zone] {
            for a in 0..3 {
                let (wlo, whi) = (w.min[a], w.min[a] + w.dims[a] - 1);
                let span = (whi.max(at[a]) - wlo.min(at[a]) + 1) / 2;
                lo[a] = if at[a] < wlo { at[a] - span } else { wlo };
                hi[a] = if at[a] > whi { at[a] + span } else { whi };
            }
        }
        let dims = [hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1];
        let volume = dims.iter().product::<i64>();
        let old = match std::mem::take(&mut self.lookups[zone]) {
            Lookup::Window(w) => Some(w),
            _ => None,
        };
        let old_volume = old.as_ref().map_or(0, Window::volume);
        if volume > WINDOW_MAX_CELLS || self.window_cells - old_volume + volume > WINDOWS_MAX_CELLS
        {
            // Every cell of the zone is in the map already.
            self.window_cells -= old_volume;
            self.lookups[zone] = Lookup::Sparse;
            return;
        }
        let mut window = Window {
            min: lo,
            dims,
            ids: vec![EMPTY; volume as usize],
        };
        // Copy the old window row by row: it holds every occupied cell of the zone.
        if let Some(old) = old {
            for z in 0..old.dims[2] {
                for y in 0..old.dims[1] {
                    let from = ((z * old.dims[1] + y) * old.dims[0]) as usize;
                    let to = window
                        .index(old.min[0], old.min[1] + y, old.min[2] + z)
                        .expect("the new window covers the old");
                    window.ids[to..to + old.dims[0] as usize]
                        .copy_from_slice(&old.ids[from..from + old.dims[0] as usize]);
                }
            }
        }
        let k = window
            .index(at[0], at[1], at[2])
            .expect("covers the new cell");
        window.ids[k] = id;
        self.window_cells += volume - old_volume;
        self.lookups[zone] = Lookup::Window(window);
    }

    /// Calls `visit` with the members of every cell that overlaps the cube of half-side
    /// `radius` around `pos`.
    #[inline]
    pub fn for_each_cell_near(
        &self,
        zone: u32,
        pos: [f32; 3],
        radius: f32,
        mut visit: impl FnMut(&[Member]),
    ) {
        let lo = |v: f32| i64::from(self.coord(v - radius));
        let hi = |v: f32| i64::from(self.coord(v + radius));
        match self.lookups.get(zone as usize) {
            Some(Lookup::Window(w)) => {
                // Clipped to the window: nothing of the zone lies outside it.
                let clip = |a: usize, v: f32| {
                    (
                        lo(v).max(w.min[a]) - w.min[a],
                        hi(v).min(w.min[a] + w.dims[a] - 1) - w.min[a],
                    )
                };
                let ((x0, x1), (y0, y1), (z0, z1)) =
                    (clip(0, pos[0]), clip(1, pos[1]), clip(2, pos[2]));
                for z in z0..=z1 {
                    for y in y0..=y1 {
                        let row = ((z * w.dims[1] + y) * w.dims[0]) as usize;
                        for x in x0..=x1 {
                            let id = w.ids[row + x as usize];
                            if id != EMPTY {
                                visit(&self.cells[id as usize].members);
                            }
                        }
                    }
                }
            }
            Some(Lookup::Sparse) => {
                for x in lo(pos[0])..=hi(pos[0]) {
                    for y in lo(pos[1])..=hi(pos[1]) {
                        for z in lo(pos[2])..=hi(pos[2]) {
                            let key = CellKey {
                                zone,
                                x: x as i32,
                                y: y as i32,
                                z: z as i32,
                            };
                            if let Some(&id) = self.index.get(&key) {
                                visit(&self.cells[id as usize].members);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Calls `visit` for every member of every cell that overlaps the cube of half-side
    /// `radius` around `pos`.
    #[inline]
    pub fn for_each_near(
        &self,
        zone: u32,
        pos: [f32; 3],
        radius: f32,
        mut visit: impl FnMut(&Member),
    ) {
        self.for_each_cell_near(zone, pos, radius, |members| {
            members.iter().for_each(&mut visit)
        });
    }

    /// The member at `slot` of the cell at `key`, if any (for invariant checks).
    pub fn member(&self, key: CellKey, slot: u32) -> Option<Member> {
        let id = self.find(key)?;
        self.cells[id as usize].members.get(slot as usize).copied()
    }

    /// Members of every cell (for invariant checks).
    pub fn member_count(&self) -> usize {
        self.index
            .values()
            .map(|&id| self.cells[id as usize].members.len())
            .sum()
    }

    pub fn occupied_cells(&self) -> usize {
        self.index.len()
    }

    /// Forgets `zone`, whose id the core frees when its last client leaves: its lookup goes
    /// back to unset and its window's memory and budget are returned, so the next space given
    /// the id starts afresh (a window fitted to it, not the old bounds, nor the map for good).
    ///
    /// The zone holds no cell any more: each of its clients was taken out of its cell before
    /// the zone was freed. The slab and the map need nothing: closing a cell already removed
    /// it from the map and the window and put it on the free list, so the slab's order
    /// (`put_in_window_order`) never sees the released zone.
    pub(crate) fn release_zone(&mut self, zone: u32) {
        let Some(lookup) = self.lookups.get_mut(zone as usize) else {
            return;
        };
        match std::mem::take(lookup) {
            Lookup::Window(w) => {
                debug_assert!(
                    w.ids.iter().all(|&id| id == EMPTY),
                    "zone {zone} released with a cell still occupied"
                );
                self.window_cells -= w.volume();
            }
            Lookup::Sparse => debug_assert!(
                !self.index.keys().any(|k| k.zone == zone),
                "sparse zone {zone} released with a cell still occupied"
            ),
            Lookup::Unset => {}
        }
    }

    /// What the grid holds: how its zones find their cells and how much memory that takes.
    pub(crate) fn footprint(&self) -> GridFootprint {
        let mut f = GridFootprint {
            window_cells: self.window_cells as usize,
            cells: self.cells.len(),
            occupied_cells: self.index.len(),
            zone_slots: self.lookups.len(),
            ..GridFootprint::default()
        };
        for lookup in &self.lookups {
            match lookup {
                Lookup::Window(_) => f.windowed_zones += 1,
                Lookup::Sparse => f.sparse_zones += 1,
                Lookup::Unset => {}
            }
        }
        f
    }

    /// Checks that every cell is in exactly one place (an occupied one in the map under its
    /// own key, and in its zone's window if the zone has one; an empty one on the free list),
    /// that each window holds only its zone's occupied cells, and that the window budget in
    /// use is the windows' total. O(cells + window cells): for tests.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let mut budget = 0;
        let mut windowed = 0;
        for (zone, lookup) in self.lookups.iter().enumerate() {
            let Lookup::Window(w) = lookup else { continue };
            budget += w.volume();
            if w.ids.len() as i64 != w.volume() {
                return Err(format!(
                    "zone {zone}: window of {} ids for {:?}",
                    w.ids.len(),
                    w.dims
                ));
            }
            for &id in w.ids.iter().filter(|&&id| id != EMPTY) {
                windowed += 1;
                let key = self.cells.get(id as usize).map(|c| c.key);
                if key.is_none_or(|k| k.zone as usize != zone || self.index.get(&k) != Some(&id)) {
                    return Err(format!(
                        "zone {zone}: window names cell {id} ({key:?}), not its own"
                    ));
                }
            }
        }
        if budget != self.window_cells {
            return Err(format!(
                "window budget {} in use, windows span {budget}",
                self.window_cells
            ));
        }
        let mut in_windows = 0;
        for (key, &id) in &self.index {
            let cell = self.cells.get(id as usize);
            if cell.is_none_or(|c| c.key != *key || c.members.is_empty()) {
                return Err(format!(
                    "{key:?}: mapped to cell {id}, empty or keyed otherwise"
                ));
            }
            match self.lookups.get(key.zone as usize) {
                Some(Lookup::Window(w)) => {
                    let at = w.index(key.x.into(), key.y.into(), key.z.into());
                    if at.map(|k| w.ids[k]) != Some(id) {
                        return Err(format!("{key:?}: occupied but not in its zone's window"));
                    }
                    in_windows += 1;
                }
                Some(Lookup::Sparse) => {}
                _ => return Err(format!("{key:?}: occupied in a zone with no lookup")),
            }
        }
        if in_windows != windowed {
            return Err(format!(
                "windows name {windowed} cells, {in_windows} are occupied"
            ));
        }
        let mut free = self.free_cells.clone();
        free.sort_unstable();
        free.dedup();
        if free.len() != self.free_cells.len()
            || free.iter().any(|&id| {
                self.cells
                    .get(id as usize)
                    .is_none_or(|c| !c.members.is_empty())
            })
            || self.index.len() + free.len() != self.cells.len()
        {
            return Err(format!(
                "{} cells: {} occupied, {} free (once each and empty?)",
                self.cells.len(),
                self.index.len(),
                self.free_cells.len()
            ));
        }
        Ok(())
    }
}

/// What the proximity grid holds, for diagnostics and tests: how zones find their cells (a
/// dense window, or the slower hash map when spread too thinly) and the memory that takes.
/// Every figure follows the spaces open now, not the ones ever opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GridFootprint {
    /// Zones (realm + space in use) whose cells are found through a dense window.
    pub windowed_zones: usize,
    /// Zones spread too thinly for a window, whose cells are found through the hash map.
    pub sparse_zones: usize,
    /// Cells all windows span together (4 bytes each): the window budget in use, at most
    /// 4,194,304.
    pub window_cells: usize,
    /// Cells in the slab, occupied or kept empty for reuse.
    pub cells: usize,
    /// Cells holding at least one client.
    pub occupied_cells: usize,
    /// Zone ids the grid has a lookup slot for (the highest zone id in use so far, plus one).
    pub zone_slots: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members_near(grid: &Grid, zone: u32, pos: [f32; 3], radius: f32) -> Vec<u32> {
        let mut found = Vec::new();
        grid.for_each_near(zone, pos, radius, |m| found.push(m.client));
        found.sort_unstable();
        found
    }

    #[test]
    fn floor_matches_the_library() {
        let grid = Grid::new(25.0);
        for v in [
            -1e9f32, -52.5, -26.25, -26.2, -0.5, 0.0, 0.5, 26.25, 1e9, 3.0e9,
        ] {
            let t = (v + grid.half_cell) * grid.inv_cell;
            assert_eq!(grid.coord(v), t.floor() as i32, "{v}");
        }
    }

    #[test]
    fn windows_grow_and_give_way_to_the_map() {
        let mut grid = Grid::new(10.0);
        let mut placed = Vec::new();
        // A spiral outwards grows the window on every side (and reorders the slab many
        // times); then a far outlier makes the zone sparse. Every member stays findable.
        for k in 0..400u32 {
            let a = k as f32 * 0.7;
            let r = k as f32 * 2.5;
            let pos = [r * a.cos(), r * a.sin(), (k % 3) as f32 * 30.0];
            let key = grid.key_of(0, pos);
            let slot = grid.insert(key, Member { pos, client: k });
            placed.push((pos, key, slot));
            for (j, &(p, ..)) in placed.iter().enumerate() {
                assert!(members_near(&grid, 0, p, 1.0).contains(&(j as u32)));
            }
        }
        assert!(matches!(grid.lookups[0], Lookup::Window(_)));
        let far = [1.0e8, -1.0e8, 0.0];
        grid.insert(
            grid.key_of(0, far),
            Member {
                pos: far,
                client: 999,
            },
        );
        assert!(matches!(grid.lookups[0], Lookup::Sparse));
        assert_eq!(members_near(&grid, 0, far, 1.0), vec![999]);
        for (k, &(p, ..)) in placed.iter().enumerate() {
            assert!(members_near(&grid, 0, p, 1.0).contains(&(k as u32)));
        }
        assert!(
            members_near(&grid, 1, [0.0; 3], 1.0).is_empty(),
            "zones apart"
        );
    }

    #[test]
    fn the_slab_follows_window_order_and_reuses_emptied_cells() {
        let mut grid = Grid::new(10.0);
        // Fill a 30 x 30 block of cells in a scrambled order.
        let cell = 21.0;
        let keys: Vec<[f32; 3]> = (0..900u32)
            .map(|k| (k * 7919) % 900)
            .map(|k| [(k % 30) as f32 * cell, (k / 30) as f32 * cell, 0.0])
            .collect();
        for (k, &pos) in keys.iter().enumerate() {
            grid.insert(
                grid.key_of(0, pos),
                Member {
                    pos,
                    client: k as u32,
                },
            );
        }
        grid.put_in_window_order();
        let Lookup::Window(w) = &grid.lookups[0] else {
            panic!("a compact zone has a window");
        };
        let ids: Vec<CellId> = w.ids.iter().copied().filter(|&id| id != EMPTY).collect();
        assert_eq!(ids, (0..900).collect::<Vec<_>>(), "slab in window order");
        for (k, &pos) in keys.iter().enumerate() {
            assert_eq!(members_near(&grid, 0, pos, 1.0), vec![k as u32]);
        }
        // Emptying a cell and opening another reuses its storage: the slab does not grow.
        let pos = keys[0];
        assert_eq!(grid.remove(grid.key_of(0, pos), 0), None);
        assert_eq!(grid.occupied_cells(), 899);
        let away = [31.0 * cell, 0.0, 0.0];
        grid.insert(
            grid.key_of(0, away),
            Member {
                pos: away,
                client: 5000,
            },
        );
        assert_eq!(grid.cells.len(), 900);
        assert!(members_near(&grid, 0, pos, 1.0).is_empty());
        assert_eq!(members_near(&grid, 0, away, 1.0), vec![5000]);
    }

    /// Cell width of `Grid::new(10.0)`; a position `k * CELL` lies in cell `k`.
    const CELL: f32 = 21.0;

    fn at_cell(x: i32, y: i32) -> [f32; 3] {
        [x as f32 * CELL, y as f32 * CELL, 0.0]
    }

    /// Where each client of a zone was put: its cell and slot.
    type Placed = Vec<(CellKey, u32)>;

    /// Inserts each position as a client of `zone`; returns what `close_zone` needs.
    fn open_zone(grid: &mut Grid, zone: u32, positions: &[[f32; 3]]) -> Placed {
        positions
            .iter()
            .enumerate()
            .map(|(k, &pos)| {
                let key = grid.key_of(zone, pos);
                let client = zone * 100 + k as u32;
                (key, grid.insert(key, Member { pos, client }))
            })
            .collect()
    }

    /// Takes every client out (the latest first, so each sits last in its cell and nobody is
    /// swapped), then releases the zone as the core does when its last client leaves.
    fn close_zone(grid: &mut Grid, zone: u32, placed: Placed) {
        for (key, slot) in placed.into_iter().rev() {
            assert_eq!(grid.remove(key, slot), None, "the latest of its cell");
        }
        grid.release_zone(zone);
    }

    fn window_of(grid: &Grid, zone: u32) -> Option<([i64; 3], [i64; 3])> {
        match grid.lookups.get(zone as usize) {
            Some(Lookup::Window(w)) => Some((w.min, w.dims)),
            _ => None,
        }
    }

    #[test]
    fn a_recycled_zone_id_gets_a_window_fitted_to_its_new_space() {
        let mut grid = Grid::new(10.0);
        // Zone 0: a space spread over 300 cells (a wide window); zone 1: a space with a far
        // outlier (sparse). Both close, and their ids go to small spaces elsewhere.
        let wide = open_zone(&mut grid, 0, &[at_cell(0, 0), at_cell(300, 300)]);
        let far = open_zone(&mut grid, 1, &[at_cell(0, 0), at_cell(100_000, 100_000)]);
        assert!(
            matches!(grid.lookups[1], Lookup::Sparse),
            "the outlier spreads it"
        );
        close_zone(&mut grid, 0, wide);
        close_zone(&mut grid, 1, far);
        let small = open_zone(&mut grid, 0, &[at_cell(-5000, 7000), at_cell(-4999, 7000)]);
        let compact = open_zone(&mut grid, 1, &[at_cell(50, 50)]);
        assert_eq!(
            window_of(&grid, 1),
            Some(([50, 50, 0], [1, 1, 1])),
            "a once-sparse id, given a compact space, finds its cells through a window again"
        );
        let (min, dims) = window_of(&grid, 0).expect("a compact space has a window");
        assert!(
            min[1] == 7000 && dims[1] == 1 && dims[0] <= 3,
            "the window fits the new space, not the old bounds: min {min:?}, dims {dims:?}"
        );
        assert_eq!(grid.footprint().window_cells as i64, dims[0] + 1);
        grid.check_invariants().unwrap();
        close_zone(&mut grid, 0, small);
        close_zone(&mut grid, 1, compact);
        assert_eq!(
            grid.footprint(),
            GridFootprint {
                cells: grid.cells.len(),
                zone_slots: 2,
                ..GridFootprint::default()
            },
            "nothing of either zone is left"
        );
    }

    #[test]
    fn released_windows_give_their_budget_to_new_zones() {
        let mut grid = Grid::new(10.0);
        // Two clients 600 cells apart make a window of 901 x 901 cells (the growth leaves room):
        // five of them nearly fill the budget of all windows.
        let spread = [at_cell(0, 0), at_cell(600, 600)];
        let placed: Vec<_> = (0..5).map(|z| open_zone(&mut grid, z, &spread)).collect();
        assert_eq!(grid.footprint().windowed_zones, 5);
        assert_eq!(grid.footprint().window_cells, 5 * 901 * 901);
        for (z, placed) in placed.into_iter().enumerate() {
            close_zone(&mut grid, z as u32, placed);
        }
        assert_eq!(
            grid.footprint().window_cells,
            0,
            "closed zones hold no window budget"
        );
        // A sixth space as wide (a fresh id, as when other spaces hold the recycled ones)
        // fits in the returned budget.
        let sixth = open_zone(&mut grid, 5, &spread);
        assert_eq!(
            window_of(&grid, 5),
            Some(([0, 0, 0], [901, 901, 1])),
            "a new zone gets a window from the budget the closed ones returned"
        );
        grid.check_invariants().unwrap();
        close_zone(&mut grid, 5, sixth);
    }

    #[test]
    fn ten_thousand_spaces_opened_and_closed_keep_lookups_dense_and_memory_bounded() {
        let mut grid = Grid::new(10.0);
        let mut rng = crate::kit::SplitMix64::new(16);
        // Zone ids recycled as the core does: the last freed is the first reused.
        let (mut free, mut next_id) = (Vec::<u32>::new(), 0u32);
        // Open: (zone, whether it has a far outlier, its clients).
        let mut open: Vec<(u32, bool, Placed)> = Vec::new();
        let (mut opened, mut peak_open, mut peak_occupied, mut went_sparse) = (0, 0, 0, 0);
        while opened < 10_000 || !open.is_empty() {
            let opening =
                opened < 10_000 && (open.is_empty() || (open.len() < 48 && rng.below(2) == 0));
            if opening {
                let zone = free.pop().unwrap_or_else(|| {
                    next_id += 1;
                    next_id - 1
                });
                // A few clients within 3 cells of a centre anywhere in a world 20,000 cells
                // wide; one space in 25 also has a client a million cells away.
                let centre = [rng.signed() * 2.1e5, rng.signed() * 2.1e5];
                let mut positions: Vec<[f32; 3]> = (0..1 + rng.below(6))
                    .map(|_| {
                        [
                            centre[0] + rng.signed() * 30.0,
                            centre[1] + rng.signed() * 30.0,
                            0.0,
                        ]
                    })
                    .collect();
                let outlier = opened % 25 == 24;
                if outlier {
                    positions.push([centre[0] + 2.1e7, centre[1] - 2.1e7, 0.0]);
                }
                let placed = open_zone(&mut grid, zone, &positions);
                match (&grid.lookups[zone as usize], outlier) {
                    (Lookup::Window(w), false) => assert!(
                        w.volume() <= 64,
                        "space {opened} (zone {zone}): a window of {:?} cells for a space 4 cells wide",
                        w.dims
                    ),
                    (Lookup::Sparse, true) => went_sparse += 1,
                    (lookup, _) => panic!(
                        "space {opened} (zone {zone}, outlier {outlier}): {}",
                        match lookup {
                            Lookup::Sparse => "sparse",
                            _ => "no window",
                        }
                    ),
                }
                for (k, &pos) in positions.iter().enumerate() {
                    let found = members_near(&grid, zone, pos, 1.0);
                    assert!(found.contains(&(zone * 100 + k as u32)), "space {opened}");
                }
                open.push((zone, outlier, placed));
                opened += 1;
            } else {
                let (zone, _, placed) = open.swap_remove(rng.below(open.len()));
                close_zone(&mut grid, zone, placed);
                free.push(zone);
            }
            peak_open = peak_open.max(open.len());
            peak_occupied = peak_occupied.max(grid.occupied_cells());
            let sparse = open.iter().filter(|o| o.1).count();
            let f = grid.footprint();
            assert_eq!(
                (f.windowed_zones, f.sparse_zones),
                (open.len() - sparse, sparse),
                "after {opened} spaces: only the open spaces have a lookup"
            );
            assert!(
                f.window_cells <= 64 * f.windowed_zones,
                "after {opened} spaces: {} window cells for {} open spaces",
                f.window_cells,
                f.windowed_zones
            );
            assert!(f.cells <= peak_occupied, "the slab reuses emptied cells");
            assert!(f.zone_slots <= peak_open, "zone ids are reused");
            if opened % 500 == 0 {
                grid.put_in_window_order();
                grid.check_invariants().unwrap();
            }
        }
        assert_eq!(went_sparse, 400);
        grid.check_invariants().unwrap();
        assert_eq!(
            grid.footprint(),
            GridFootprint {
                cells: grid.cells.len(),
                zone_slots: peak_open,
                ..GridFootprint::default()
            }
        );
    }
}
