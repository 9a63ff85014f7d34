//! Spaces come and go over a long run (matches, instances): the grid forgets each space when
//! its last client leaves, so lookups stay dense and memory follows the spaces open now, not
//! the 10,000 ever opened.

use mingle::kit::SplitMix64;
use mingle::protocol::{PeerId, Realm, SpaceId};
use mingle::proximity::{GridFootprint, Proximity, ProximityConfig};

const CLIENTS: u64 = 300;
const SPACES: u32 = 10_000;
/// Window cells one compact space may need: its clients stand within 60 units (2 cells of
/// 52.5) of its centre, and a window grows by half again on each side it grows.
const WINDOW_CELLS_PER_SPACE: usize = 64;

#[test]
fn ten_thousand_spaces_opened_and_closed_keep_lookups_dense_and_memory_bounded() {
    let mut core = Proximity::new(ProximityConfig::default()); // leave_range 25
    let mut rng = SplitMix64::new(16);
    let realm = Realm(1);
    // Each client's space (None while disconnected), and each space's count of clients.
    let mut space_of: Vec<Option<u32>> = vec![None; CLIENTS as usize];
    let mut members = std::collections::HashMap::<u32, u32>::new();
    let mut changes = Vec::new();
    let mut peak_open = 0;
    for space in 0..SPACES {
        // A new space far from the last (a recycled zone id must not keep the old bounds):
        // a few clients leave their space, or come back from a disconnection, to join it.
        let centre = [rng.signed() * 1.0e5, rng.signed() * 1.0e5];
        // Spaces open at once: those open so far, and this one before any other empties.
        peak_open = peak_open.max(members.len() + 1);
        for _ in 0..1 + rng.below(5) {
            let c = rng.below(CLIENTS as usize);
            let pos = [
                centre[0] + rng.signed() * 60.0,
                centre[1] + rng.signed() * 60.0,
                0.0,
            ];
            core.set_position(PeerId(c as u64), realm, SpaceId(space), pos)
                .unwrap();
            if let Some(old) = space_of[c].replace(space) {
                *members.get_mut(&old).unwrap() -= 1;
            }
            *members.entry(space).or_default() += 1;
        }
        // Now and then a client disconnects, closing its space if it was the last.
        if rng.below(4) == 0 {
            let c = rng.below(CLIENTS as usize);
            assert_eq!(core.remove(PeerId(c as u64)), space_of[c].is_some());
            if let Some(old) = space_of[c].take() {
                *members.get_mut(&old).unwrap() -= 1;
            }
        }
        members.retain(|_, n| *n > 0);
        core.tick(&mut changes);
        changes.clear();
        let open = members.len();
        let f: GridFootprint = core.grid_footprint();
        assert_eq!(
            (f.windowed_zones, f.sparse_zones),
            (open, 0),
            "after {space} spaces: each open space has a window, a closed one nothing"
        );
        assert!(
            f.window_cells <= WINDOW_CELLS_PER_SPACE * open,
            "after {space} spaces: {} window cells for {open} open spaces",
            f.window_cells
        );
        assert!(
            f.cells <= CLIENTS as usize,
            "after {space} spaces: {} cells",
            f.cells
        );
        assert!(
            f.zone_slots <= peak_open,
            "after {space} spaces: zone ids reused"
        );
    }
    for c in 0..CLIENTS {
        core.remove(PeerId(c));
    }
    core.tick(&mut changes);
    let f = core.grid_footprint();
    println!("{SPACES} spaces, at most {peak_open} open at once; all closed: {f:?}");
    assert_eq!(
        (
            f.windowed_zones,
            f.sparse_zones,
            f.window_cells,
            f.occupied_cells
        ),
        (0, 0, 0, 0),
        "every space closed: nothing left but emptied cells for reuse"
    );
}
