//! A uniform grid of cells keyed by zone and integer cell coordinates.
//!
//! Each cell holds its members' positions inline, so scanning a cell for candidates reads one
//! contiguous slice. Emptied cells return their storage to a pool: in steady state moving
//! between cells allocates nothing.

use rustc_hash::FxHashMap;

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

/// Where a client sits in the grid: its cell and its index inside that cell.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    pub key: CellKey,
    pub cell: u32,
    pub slot: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Grid {
    inv_cell: f32,
    index: FxHashMap<CellKey, u32>,
    cells: Vec<Vec<Member>>,
    free_cells: Vec<u32>,
}

/// Saturating conversion: positions are validated finite, but the grid never panics anyway.
fn coord(v: f32, inv_cell: f32) -> i32 {
    (v * inv_cell).floor() as i32
}

impl Grid {
    pub fn new(cell_size: f32) -> Self {
        Grid {
            inv_cell: 1.0 / cell_size,
            ..Default::default()
        }
    }

    pub fn key_of(&self, zone: u32, pos: [f32; 3]) -> CellKey {
        CellKey {
            zone,
            x: coord(pos[0], self.inv_cell),
            y: coord(pos[1], self.inv_cell),
            z: coord(pos[2], self.inv_cell),
        }
    }

    /// Adds a member, returning where it was placed (a push moves no other member).
    pub fn insert(&mut self, key: CellKey, member: Member) -> Placement {
        let cell = match self.index.get(&key) {
            Some(&cell) => cell,
            None => {
                let cell = match self.free_cells.pop() {
                    Some(cell) => cell,
                    None => {
                        self.cells.push(Vec::new());
                        (self.cells.len() - 1) as u32
                    }
                };
                self.index.insert(key, cell);
                cell
            }
        };
        let members = &mut self.cells[cell as usize];
        members.push(member);
        Placement {
            key,
            cell,
            slot: (members.len() - 1) as u32,
        }
    }

    /// Removes the member at `at`. Returns the client that moved into its slot, if any,
    /// so the caller can update that client's placement.
    pub fn remove(&mut self, at: Placement) -> Option<u32> {
        let members = &mut self.cells[at.cell as usize];
        members.swap_remove(at.slot as usize);
        if members.is_empty() {
            self.index.remove(&at.key);
            self.free_cells.push(at.cell);
            return None;
        }
        members.get(at.slot as usize).map(|m| m.client)
    }

    pub fn update_position(&mut self, at: Placement, pos: [f32; 3]) {
        self.cells[at.cell as usize][at.slot as usize].pos = pos;
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
        let lo = |v: f32| coord(v - radius, self.inv_cell);
        let hi = |v: f32| coord(v + radius, self.inv_cell);
        for x in lo(pos[0])..=hi(pos[0]) {
            for y in lo(pos[1])..=hi(pos[1]) {
                for z in lo(pos[2])..=hi(pos[2]) {
                    if let Some(&cell) = self.index.get(&CellKey { zone, x, y, z }) {
                        self.cells[cell as usize].iter().for_each(&mut visit);
                    }
                }
            }
        }
    }

    pub fn occupied_cells(&self) -> usize {
        self.index.len()
    }
}
