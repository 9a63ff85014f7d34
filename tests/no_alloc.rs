//! The proximity core allocates nothing per tick in steady state, counted by a global
//! allocator that tallies this thread's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mingle::kit::{SplitMix64, world_side};
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

const N: usize = 5_000;

fn world() -> (Proximity, Vec<[f32; 3]>, SplitMix64) {
    let mut rng = SplitMix64::new(1);
    let side = world_side(N, 5.0, 20.0);
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
    let step =
        |core: &mut Proximity, pos: &mut Vec<[f32; 3]>, out: &mut Vec<_>, rng: &mut SplitMix64| {
            out.clear();
            for _ in 0..N * 15 / 100 {
                let i = (rng.next_u64() % N as u64) as usize;
                // Jiggle in place: forth then back, so the world stays the same in the long run.
                let d = if rng.next_u64().is_multiple_of(2) {
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

#[test]
fn small_ticks_allocate_nothing() {
    // 240 movers a tick: below the radix sort's threshold, the comparison path sorts them (a
    // stable sort of that many would take a heap buffer).
    let (mut core, pos, mut rng) = world();
    let mut out = Vec::with_capacity(4096);
    let mut step = |core: &mut Proximity, out: &mut Vec<_>| {
        out.clear();
        for _ in 0..240 {
            let i = rng.below(N);
            core.set_position(PeerId(i as u64), Realm(0), SpaceId(0), pos[i])
                .unwrap();
        }
        core.tick(out);
    };
    for _ in 0..50 {
        step(&mut core, &mut out);
    }
    let before = allocations();
    for _ in 0..200 {
        step(&mut core, &mut out);
    }
    assert_eq!(allocations() - before, 0, "200 ticks of 240 movers");
}
