//! A uniform grid of cells keyed by zone and integer cell coordinates.
//!
//! Cells are `2.1 × leave_range` wide and offset by half a cell, so a query of radius
//! `leave_range` spans at most two cells per axis, and exactly one along an axis on which every
//! client shares one coordinate that is a multiple of the cell size — 0 included (a 2D game on
//! the XY plane, or a flat 3D floor): 4 cell look-ups for a planar world, 8 for a 3D one.
//!
//! Each cell holds its members' positions inline, so scanning a cell for candidates reads one
//! contiguous slice. Cells live in a slab and are named by a dense [`CellId`]: a client keeps
//! the id of its cell, so a move within the cell touches no map. Finding a cell by its
//! coordinates goes through a dense [`Window`] over the zone's occupied cells (an array
//! index, a few kilobytes for a whole world) and falls back to a hash map for a zone spread
//! too thinly for a window. Emptied cells keep their storage for reuse: in steady state moving
//! between cells allocates nothing.

use rustc_hash::FxHashMap;

/// How much wider than a query's diameter a cell is.
const CELL_OVER_DIAMETER: f32 = 1.05;

/// Initial capacity of a new cell: the members a cell holds at a typical density.
const CELL_CAPACITY: usize = 32;

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

/// A cell's index in the slab.
pub(crate) type CellId = u32;

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
    members: Vec<Member>,
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

    /// A key that sorts clients cell by cell, row by row (zone, then y, then x; z is left out).
    #[inline]
    pub fn sort_key(&self, zone: u32, pos: [f32; 3]) -> u64 {
        let bits = |v: f32| (self.coord(v) as u32 ^ 0x8000_0000) as u64 & 0xFF_FFFF;
        ((zone as u64) << 48) | (bits(pos[1]) << 24) | bits(pos[0])
    }

    /// The key of cell `id`.
    #[inline]
    pub fn key(&self, id: CellId) -> CellKey {
        self.cells[id as usize].key
    }

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

    /// Adds a member to the cell at `key`, returning the cell and the member's slot there.
    pub fn insert(&mut self, key: CellKey, member: Member) -> (CellId, u32) {
        let id = match self.find(key) {
            Some(id) => id,
            None => self.open(key),
        };
        let members = &mut self.cells[id as usize].members;
        members.push(member);
        (id, (members.len() - 1) as u32)
    }

    /// Removes the member at `slot` of cell `id`. Returns the client moved into that slot, if
    /// any, so the caller can update its placement.
    pub fn remove(&mut self, id: CellId, slot: u32) -> Option<u32> {
        let members = &mut self.cells[id as usize].members;
        members.swap_remove(slot as usize);
        if members.is_empty() {
            self.close(id);
            return None;
        }
        members.get(slot as usize).map(|m| m.client)
    }

    #[inline]
    pub fn update_position(&mut self, id: CellId, slot: u32, pos: [f32; 3]) {
        self.cells[id as usize].members[slot as usize].pos = pos;
    }

    fn open(&mut self, key: CellKey) -> CellId {
        let id = match self.free_cells.pop() {
            Some(id) => {
                self.cells[id as usize].key = key;
                id
            }
            None => {
                self.cells.push(Cell {
                    key,
                    members: Vec::with_capacity(CELL_CAPACITY),
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

    pub fn occupied_cells(&self) -> usize {
        self.index.len()
    }
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
        // A spiral outwards grows the window on every side; then a far outlier makes the
        // zone sparse. Every member stays findable throughout.
        for k in 0..200u32 {
            let a = k as f32 * 0.7;
            let r = k as f32 * 5.0;
            let pos = [r * a.cos(), r * a.sin(), (k % 3) as f32 * 30.0];
            let (id, slot) = grid.insert(grid.key_of(0, pos), Member { pos, client: k });
            placed.push((pos, id, slot));
            for &(p, ..) in &placed {
                assert!(!members_near(&grid, 0, p, 1.0).is_empty());
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
    fn emptied_cells_are_reused_without_allocating_new_ones() {
        let mut grid = Grid::new(10.0);
        let (id, slot) = grid.insert(
            grid.key_of(0, [0.0; 3]),
            Member {
                pos: [0.0; 3],
                client: 1,
            },
        );
        assert_eq!(grid.remove(id, slot), None);
        assert_eq!(grid.occupied_cells(), 0);
        let pos = [500.0, 0.0, 0.0];
        let (again, _) = grid.insert(grid.key_of(0, pos), Member { pos, client: 2 });
        assert_eq!(again, id, "the slab slot is reused");
        assert!(members_near(&grid, 0, [0.0; 3], 1.0).is_empty());
        assert_eq!(members_near(&grid, 0, pos, 1.0), vec![2]);
    }
}
