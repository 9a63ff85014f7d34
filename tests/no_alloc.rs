//! The proximity core allocates nothing per tick in steady state, counted by a global
//! allocator that tallies this thread's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mingle::protocol::{PeerId, Realm, SpaceId};
use mingle::proximity::{Proximity, ProximityConfig};

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// SplitMix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

const N: usize = 5_000;

fn world() -> (Proximity, Vec<[f32; 3]>, Rng) {
    let mut rng = Rng(1);
    let side = (N as f32 * 251.3).sqrt(); // ~5 neighbours within 20
    let pos: Vec<[f32; 3]> = (0..N)
        .map(|_| [rng.unit() * side, rng.unit() * side, 0.0])
        .collect();
    let mut core = Proximity::new(ProximityConfig::default());
    for (i, p) in pos.iter().enumerate() {
        core.set_position(PeerId(i as u64), Realm(0), SpaceId(0), *p)
            .unwrap();
    }
    core.tick(&mut Vec::new());
    (core, pos, rng)
}

#[test]
fn idle_ticks_allocate_nothing() {
    let (mut core, _, _) = world();
    let mut out = Vec::with_capacity(16);
    let before = allocations();
    for _ in 0..1000 {
        core.tick(&mut out);
    }
    assert_eq!(allocations() - before, 0);
}

#[test]
fn still_keepalives_and_small_moves_allocate_nothing() {
    let (mut core, mut pos, mut rng) = world();
    let mut out = Vec::with_capacity(4096);
    // Warm up: let sets, cells and buffers reach their steady capacity.
    let step = |core: &mut Proximity, pos: &mut Vec<[f32; 3]>, out: &mut Vec<_>, rng: &mut Rng| {
        out.clear();
        for _ in 0..N * 15 / 100 {
            let i = (rng.next() % N as u64) as usize;
            // Jiggle in place: forth then back, so the world stays the same in the long run.
            let d = if rng.next().is_multiple_of(2) {
                0.5
            } else {
                -0.5
            };
            pos[i][0] += d;
            core.set_position(PeerId(i as u64), Realm(0), SpaceId(0), pos[i])
                .unwrap();
        }
        core.tick(out);
    };
    for _ in 0..1000 {
        step(&mut core, &mut pos, &mut out, &mut rng);
    }
    let before = allocations();
    let ticks = 200;
    for _ in 0..ticks {
        step(&mut core, &mut pos, &mut out, &mut rng);
    }
    let spent = allocations() - before;
    eprintln!("steady-state allocations: {spent} in {ticks} ticks");
    // Pair changes still happen at the edges of range; a set growing past its largest size so
    // far, or a never-visited cell, may allocate. Steady state means (almost) never.
    assert!(
        spent <= ticks / 20,
        "{spent} allocations in {ticks} steady-state ticks"
    );
}
