//! A uniform grid of cells keyed by zone and integer cell coordinates.
//!
//! Cells are `2.1 × leave_range` wide and offset by half a cell, so a query of radius
//! `leave_range` spans at most two cells per axis, and exactly one along an axis on which every
//! client shares one coordinate that is a multiple of the cell size — 0 included (a 2D game on
//! the XY plane, or a flat 3D floor): 4 cell look-ups for a planar world, 8 for a 3D one.
//!
//! Each cell holds its members' positions inline, so scanning a cell for candidates reads one
//! contiguous slice. Emptied cells return their storage to a pool: in steady state moving
//! between cells allocates nothing.

use rustc_hash::FxHashMap;

/// How much wider than a query's diameter a cell is.
const CELL_OVER_DIAMETER: f32 = 1.05;

/// Initial capacity of a new cell: the members a cell holds at a typical density.
const CELL_CAPACITY: usize = 32;

/// A cell's address: the zone (realm + space) and its integer coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CellKey {
    pub zone: u32,
    pub x: i32,
    pub y: i32,
    pub z: i32,
}

/// One member of a cell: a client's dense index and its position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub pos: [f32; 3],
    pub client: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Grid {
    inv_cell: f32,
    half_cell: f32,
    cells: FxHashMap<CellKey, Vec<Member>>,
    spare: Vec<Vec<Member>>,
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
    #[inline]
    fn coord(&self, v: f32) -> i32 {
        ((v + self.half_cell) * self.inv_cell).floor() as i32
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

    /// Adds a member to the cell at `key`, returning its slot there.
    pub fn insert(&mut self, key: CellKey, member: Member) -> u32 {
        let members = self.cells.entry(key).or_insert_with(|| {
            self.spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(CELL_CAPACITY))
        });
        members.push(member);
        (members.len() - 1) as u32
    }

    /// Removes the member at `slot` of the cell at `key`. Returns the client moved into that
    /// slot, if any, so the caller can update its placement.
    pub fn remove(&mut self, key: CellKey, slot: u32) -> Option<u32> {
        let members = self
            .cells
            .get_mut(&key)
            .expect("a placed client's cell exists");
        members.swap_remove(slot as usize);
        if members.is_empty() {
            let storage = self.cells.remove(&key).expect("just looked up");
            self.spare.push(storage);
            return None;
        }
        members.get(slot as usize).map(|m| m.client)
    }

    pub fn update_position(&mut self, key: CellKey, slot: u32, pos: [f32; 3]) {
        self.cells
            .get_mut(&key)
            .expect("a placed client's cell exists")[slot as usize]
            .pos = pos;
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
        let lo = |v: f32| self.coord(v - radius);
        let hi = |v: f32| self.coord(v + radius);
        for x in lo(pos[0])..=hi(pos[0]) {
            for y in lo(pos[1])..=hi(pos[1]) {
                for z in lo(pos[2])..=hi(pos[2]) {
                    if let Some(members) = self.cells.get(&CellKey { zone, x, y, z }) {
                        members.iter().for_each(&mut visit);
                    }
                }
            }
        }
    }

    pub fn occupied_cells(&self) -> usize {
        self.cells.len()
    }
}
