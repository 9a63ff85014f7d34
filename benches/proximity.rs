//! Proximity benchmarks: mingle's grid core against the original's brute-force scan, plus the
//! real Bevy proximity tick schedule. See BENCHMARKS.md for figures and how to read them.
//!
//! Workload for moving cases: a uniform 2D world (XY plane) sized so a client has about 5
//! neighbours within range 20; each tick 15 % of clients (chosen at random) move up to 1 unit;
//! steady state (after warm-up); hysteresis 20 / 25; seeded, so every run sees the same world.
//! `proximity/skewed/1000000` is the same workload in a world as large as the uniform one of a
//! million, where 80 % of the clients stand in towns covering 5 % of the area.
//!
//! Measurement modes that no plain `cargo bench` run enters (a census of the counts behind the
//! per-mover breakdown, the floor's micro-measurements, a ticking loop for `perf`) are switched
//! on by environment variables: see `proximity/census.rs`.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bevy::app::App;
use bevy::ecs::message::Messages;
use bevy::math::Vec3;
use criterion::{BenchmarkId, Criterion, criterion_group};
use mingle::kit::SplitMix64;
use mingle::protocol::{PeerId, Realm, SpaceId};
use mingle::proximity::{ClientHandle, PairChange, Proximity, ProximityConfig};
use mingle::server::{
    MinglePeer, MinglePosition, MingleProximityPlugin, MingleSpace, NearbyPeers, PairEntered,
    PairLeft, PeerDirectory, ProximityTick,
};

const NEIGHBOURS: f64 = 5.0;
const RANGE: f32 = 20.0;
const LEAVE: f32 = 25.0;
const MOVING: f64 = 0.15;
const WARMUP_TICKS: usize = 20;
/// The skewed world: this share of the clients stands in towns covering `TOWN_AREA` of it.
const TOWN_SHARE: f64 = 0.8;
const TOWN_AREA: f64 = 0.05;
/// Towns per row of the lattice they are laid out on (one town per lattice cell).
const TOWNS_PER_ROW: usize = 10;

#[path = "proximity/census.rs"]
mod census;

/// Side of a square world where `n` uniform clients have ~NEIGHBOURS within RANGE.
fn world_side(n: usize) -> f32 {
    mingle::kit::world_side(n, NEIGHBOURS, RANGE)
}

/// A world of clients and the moves of the next tick.
struct Walk {
    rng: SplitMix64,
    pos: Vec<[f32; 3]>,
    moves: Vec<u32>,
    /// The two axes clients spread and walk along: XY for a 2D game, XZ for a 3D Y-up one.
    ground: [usize; 2],
    /// Where the towns are, in a skewed world.
    towns: Option<Towns>,
}

/// The towns of a skewed world: discs, one in each cell of a square lattice over the world,
/// placed at random inside its cell (so towns never overlap).
struct Towns {
    centres: Vec<[f32; 2]>,
    radius: f32,
    spacing: f32,
}

impl Towns {
    /// Whether `p` (on the XY plane) stands in a town.
    fn contains(&self, p: [f32; 3]) -> bool {
        // Negative coordinates saturate to lattice cell 0.
        let cell = |v: f32| ((v / self.spacing) as usize).min(TOWNS_PER_ROW - 1);
        let c = self.centres[cell(p[1]) * TOWNS_PER_ROW + cell(p[0])];
        (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2) <= self.radius * self.radius
    }
}

impl Walk {
    /// A 2D world on the XY plane.
    fn uniform(n: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let side = world_side(n);
        let pos = (0..n)
            .map(|_| [rng.unit() * side, rng.unit() * side, 0.0])
            .collect();
        Walk {
            rng,
            pos,
            moves: Vec::new(),
            ground: [0, 1],
            towns: None,
        }
    }

    /// A 2D world as large as `uniform(n)` (the same mean density) where 80 % of the clients
    /// stand in 100 round towns covering 5 % of the area, 16 × the mean density (~80 within
    /// range of each), and the rest spread uniformly over the country between the towns (~1.1
    /// within range of each). Players crowd towns.
    fn skewed(n: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let side = world_side(n);
        let count = TOWNS_PER_ROW * TOWNS_PER_ROW;
        let spacing = side / TOWNS_PER_ROW as f32;
        let radius = side * (TOWN_AREA / count as f64 / std::f64::consts::PI).sqrt() as f32;
        let slack = (spacing / 2.0 - radius).max(0.0);
        let centres = (0..count)
            .map(|k| {
                let (x, y) = ((k % TOWNS_PER_ROW) as f32, (k / TOWNS_PER_ROW) as f32);
                [
                    (x + 0.5) * spacing + rng.signed() * slack,
                    (y + 0.5) * spacing + rng.signed() * slack,
                ]
            })
            .collect();
        let towns = Towns {
            centres,
            radius,
            spacing,
        };
        let in_towns = (n as f64 * TOWN_SHARE) as usize;
        let pos = (0..n)
            .map(|i| {
                if i < in_towns {
                    let c = towns.centres[rng.below(count)];
                    let (a, r) = (
                        rng.unit() * std::f32::consts::TAU,
                        rng.unit().sqrt() * radius,
                    );
                    [c[0] + r * a.cos(), c[1] + r * a.sin(), 0.0]
                } else {
                    loop {
                        let p = [rng.unit() * side, rng.unit() * side, 0.0];
                        if !towns.contains(p) {
                            break p;
                        }
                    }
                }
            })
            .collect();
        Walk {
            rng,
            pos,
            moves: Vec::new(),
            ground: [0, 1],
            towns: Some(towns),
        }
    }

    /// A 3D Y-up world: the same ground density on XZ, clients standing at heights of 0-10
    /// (floors, stairs, terrain).
    fn y_up(n: usize, seed: u64) -> Self {
        let mut walk = Walk::uniform(n, seed);
        for p in &mut walk.pos {
            *p = [p[0], walk.rng.unit() * 10.0, p[1]];
        }
        walk.ground = [0, 2];
        walk
    }

    /// Picks 15 % of clients and moves each up to 1 unit.
    fn next_tick(&mut self) {
        self.moves.clear();
        let n = self.pos.len();
        let count = (n as f64 * MOVING) as usize;
        for _ in 0..count {
            let i = (self.rng.next_u64() % n as u64) as u32;
            let p = &mut self.pos[i as usize];
            p[self.ground[0]] += self.rng.signed() * 0.7;
            p[self.ground[1]] += self.rng.signed() * 0.7;
            self.moves.push(i);
        }
    }
}

fn config() -> ProximityConfig {
    ProximityConfig {
        range: RANGE,
        leave_range: LEAVE,
        ..ProximityConfig::default()
    }
}

/// Feeds a gathered batch of moves by handle, as the server does.
fn feed_batch(core: &mut Proximity, batch: &[(ClientHandle, [f32; 3])]) {
    for &(handle, pos) in batch {
        core.set_position_of(handle, Realm(0), SpaceId(0), pos)
            .expect("finite, held");
    }
}

/// Gathers and feeds the walk's moves (set-up and census; the timed loop gathers untimed).
fn feed(core: &mut Proximity, walk: &Walk, handles: &[ClientHandle]) {
    let mut batch = Vec::new();
    gather(walk, handles, &mut batch);
    feed_batch(core, &batch);
}

/// The tick's inputs as the server holds them: each mover's handle beside its new position
/// (one entity's components). Gathered untimed: picking random clients out of the harness's
/// arrays is the workload generator's cost, not the core's.
fn gather(walk: &Walk, handles: &[ClientHandle], batch: &mut Vec<(ClientHandle, [f32; 3])>) {
    batch.clear();
    batch.extend(
        walk.moves
            .iter()
            .map(|&i| (handles[i as usize], walk.pos[i as usize])),
    );
}

/// A world of `n` after warm-up, with each client's handle.
struct GridWorld {
    core: Proximity,
    walk: Walk,
    handles: Vec<ClientHandle>,
    out: Vec<PairChange>,
}

fn grid_setup(walk: Walk) -> GridWorld {
    let n = walk.pos.len();
    let mut core = Proximity::new(config());
    let handles = (0..n)
        .map(|i| {
            core.set_position(PeerId(i as u64), Realm(0), SpaceId(0), walk.pos[i])
                .expect("finite")
        })
        .collect();
    let mut world = GridWorld {
        core,
        walk,
        handles,
        out: Vec::new(),
    };
    world.core.tick(&mut world.out);
    for _ in 0..WARMUP_TICKS {
        world.walk.next_tick();
        feed(&mut world.core, &world.walk, &world.handles);
        world.out.clear();
        world.core.tick(&mut world.out);
    }
    world
}

/// Times feeding one tick's moves and running the tick; the moves are generated untimed.
fn time_grid_ticks(world: &mut GridWorld, iters: u64) -> Duration {
    let GridWorld {
        core,
        walk,
        handles,
        out,
    } = world;
    let mut total = Duration::ZERO;
    let checks_before = core.distance_checks();
    let mut batch = Vec::new();
    for _ in 0..iters {
        walk.next_tick();
        gather(walk, handles, &mut batch);
        out.clear();
        let start = Instant::now();
        feed_batch(core, &batch);
        core.tick(out);
        total += start.elapsed();
        black_box(&out);
    }
    assert!(
        core.distance_checks() > checks_before || iters == 0,
        "the ticks did work"
    );
    total
}

/// The original's approach: every position update scans every client (squared distance),
/// rebuilds the mover's nearby `HashSet` with hysteresis and diffs it against the old one.
/// Kept charitable: peers' sets are patched directly instead of each being re-scanned.
struct Original {
    pos: Vec<[f32; 3]>,
    nearby: Vec<HashSet<u32>>,
}

impl Original {
    fn new(pos: &[[f32; 3]]) -> Self {
        let mut o = Original {
            pos: pos.to_vec(),
            nearby: vec![HashSet::new(); pos.len()],
        };
        for i in 0..pos.len() as u32 {
            o.update(i, pos[i as usize], &mut Vec::new());
        }
        o
    }

    fn update(&mut self, i: u32, p: [f32; 3], out: &mut Vec<PairChange>) {
        self.pos[i as usize] = p;
        let (r2, l2) = (RANGE * RANGE, LEAVE * LEAVE);
        let mut fresh = HashSet::new();
        for (j, q) in self.pos.iter().enumerate() {
            let j = j as u32;
            if j == i {
                continue;
            }
            let d2 = (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2);
            if d2 <= r2 || (d2 <= l2 && self.nearby[i as usize].contains(&j)) {
                fresh.insert(j);
            }
        }
        let old = std::mem::take(&mut self.nearby[i as usize]);
        for &j in fresh.difference(&old) {
            self.nearby[j as usize].insert(i);
            out.push(PairChange::Entered {
                a: PeerId(i as u64),
                b: PeerId(j as u64),
                cause: mingle::proximity::ArrivalCause::Proximity,
            });
        }
        for &j in old.difference(&fresh) {
            self.nearby[j as usize].remove(&i);
            out.push(PairChange::Left {
                a: PeerId(i as u64),
                b: PeerId(j as u64),
                cause: mingle::proximity::DepartureCause::Range,
            });
        }
        self.nearby[i as usize] = fresh;
    }
}

fn bench_proximity(c: &mut Criterion) {
    let mut group = c.benchmark_group("proximity");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    for n in [1_000usize, 10_000] {
        group.bench_function(BenchmarkId::new("brute_force", n), |b| {
            let mut walk = Walk::uniform(n, 42);
            let mut original = Original::new(&walk.pos);
            let mut out = Vec::new();
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    walk.next_tick();
                    out.clear();
                    let start = Instant::now();
                    for &i in &walk.moves {
                        original.update(i, walk.pos[i as usize], &mut out);
                    }
                    total += start.elapsed();
                    black_box(&out);
                }
                total
            });
        });
    }

    for n in [1_000usize, 10_000, 100_000, 1_000_000] {
        // Set up on first use, so a filtered run builds only the worlds it measures.
        let mut world: Option<GridWorld> = None;
        group.bench_function(BenchmarkId::new("grid", n), |b| {
            let world = world.get_or_insert_with(|| grid_setup(Walk::uniform(n, 42)));
            b.iter_custom(|iters| time_grid_ticks(world, iters));
        });
    }

    {
        // The same workload where players crowd towns. Set up on first use (a filtered-out
        // run does not build it); one tick is ~4 × `grid/1000000`, so criterion samples it
        // flat, one tick a sample, like the uniform million.
        let n = 1_000_000;
        let mut world: Option<GridWorld> = None;
        group.bench_function(BenchmarkId::new("skewed", n), |b| {
            let world = world.get_or_insert_with(|| grid_setup(Walk::skewed(n, 42)));
            b.iter_custom(|iters| time_grid_ticks(world, iters));
        });
    }

    {
        // The same workload in a 3D Y-up game: ground XZ, heights 0-10.
        let mut world: Option<GridWorld> = None;
        group.bench_function(BenchmarkId::new("y_up", 100_000), |b| {
            let world = world.get_or_insert_with(|| grid_setup(Walk::y_up(100_000, 42)));
            b.iter_custom(|iters| time_grid_ticks(world, iters));
        });
    }

    {
        let GridWorld {
            mut core, mut out, ..
        } = grid_setup(Walk::uniform(100_000, 42));
        group.bench_function(BenchmarkId::new("idle", 100_000), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    out.clear();
                    core.tick(&mut out);
                }
                let spent = start.elapsed();
                assert!(out.is_empty(), "nobody moved, nothing changed");
                spent
            });
        });
    }

    {
        // Groups of 5-10 within 5 units of their centre, centres 100 units apart; 15 % of
        // groups step together each tick, alternately forth and back, so no pair changes.
        let n = 100_000;
        let mut rng = SplitMix64::new(7);
        let mut pos = Vec::with_capacity(n);
        let mut groups: Vec<(u32, u32)> = Vec::new();
        let per_row = (n as f64 / 7.5).sqrt().ceil() as usize;
        let mut g = 0usize;
        while pos.len() < n {
            let size = (5 + rng.next_u64() % 6) as usize;
            let size = size.min(n - pos.len());
            let (cx, cy) = ((g % per_row) as f32 * 100.0, (g / per_row) as f32 * 100.0);
            groups.push((pos.len() as u32, size as u32));
            for _ in 0..size {
                pos.push([cx + rng.signed() * 3.5, cy + rng.signed() * 3.5, 0.0]);
            }
            g += 1;
        }
        let mut core = Proximity::new(config());
        let handles: Vec<ClientHandle> = pos
            .iter()
            .enumerate()
            .map(|(i, p)| {
                core.set_position(PeerId(i as u64), Realm(0), SpaceId(0), *p)
                    .unwrap()
            })
            .collect();
        let mut out = Vec::new();
        core.tick(&mut out);
        let mut tick = 0u64;
        let mut moving: Vec<usize> = Vec::new();
        group.bench_function(BenchmarkId::new("groups", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    tick += 1;
                    let step = if tick.is_multiple_of(2) { -0.9 } else { 0.9 };
                    moving.clear();
                    let count = (groups.len() as f64 * MOVING) as usize;
                    // Same groups forth and back on alternate ticks.
                    let offset = ((tick / 2) as usize * count) % groups.len();
                    moving.extend((0..count).map(|k| (offset + k) % groups.len()));
                    for &gi in &moving {
                        let (start, len) = groups[gi];
                        for p in &mut pos[start as usize..(start + len) as usize] {
                            p[0] += step;
                        }
                    }
                    out.clear();
                    let start = Instant::now();
                    for &gi in &moving {
                        let (s, len) = groups[gi];
                        for i in s as usize..(s + len) as usize {
                            core.set_position_of(handles[i], Realm(0), SpaceId(0), pos[i])
                                .unwrap();
                        }
                    }
                    core.tick(&mut out);
                    total += start.elapsed();
                    assert!(out.is_empty(), "groups walking together change no pair");
                }
                total
            });
        });
    }
    {
        // 10,000 clients in 10 dense clusters (radius 30, ~250 within range of each), cap 8;
        // each tick 15 % of them mill about, pulled back towards their cluster's centre.
        let n = 10_000;
        let mut rng = SplitMix64::new(11);
        let centres: Vec<[f32; 2]> = (0..10).map(|k| [k as f32 * 500.0, 0.0]).collect();
        let mut pos: Vec<[f32; 3]> = (0..n)
            .map(|i| {
                let c = centres[i % centres.len()];
                let (a, r) = (rng.unit() * std::f32::consts::TAU, rng.unit().sqrt() * 30.0);
                [c[0] + r * a.cos(), c[1] + r * a.sin(), 0.0]
            })
            .collect();
        let mut core = Proximity::new(ProximityConfig {
            max_peers: std::num::NonZeroU32::new(8),
            ..config()
        });
        for (i, p) in pos.iter().enumerate() {
            core.set_position(PeerId(i as u64), Realm(0), SpaceId(0), *p)
                .unwrap();
        }
        let mut out = Vec::new();
        core.tick(&mut out);
        let mut moves = Vec::new();
        let step = |pos: &mut Vec<[f32; 3]>, moves: &mut Vec<u32>, rng: &mut SplitMix64| {
            moves.clear();
            for _ in 0..(n as f64 * MOVING) as usize {
                let i = (rng.next_u64() % n as u64) as usize;
                let c = centres[i % centres.len()];
                let p = &mut pos[i];
                p[0] += rng.signed() * 0.7 + (c[0] - p[0]) * 0.01;
                p[1] += rng.signed() * 0.7 + (c[1] - p[1]) * 0.01;
                moves.push(i as u32);
            }
        };
        for _ in 0..WARMUP_TICKS {
            step(&mut pos, &mut moves, &mut rng);
            for &i in &moves {
                core.set_position(PeerId(i as u64), Realm(0), SpaceId(0), pos[i as usize])
                    .unwrap();
            }
            out.clear();
            core.tick(&mut out);
        }
        group.bench_function(BenchmarkId::new("crowd", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    step(&mut pos, &mut moves, &mut rng);
                    out.clear();
                    let start = Instant::now();
                    for &i in &moves {
                        core.set_position(PeerId(i as u64), Realm(0), SpaceId(0), pos[i as usize])
                            .unwrap();
                    }
                    core.tick(&mut out);
                    total += start.elapsed();
                }
                let most = (0..n as u64)
                    .map(|i| core.nearby(PeerId(i)).map_or(0, |it| it.count()))
                    .max()
                    .unwrap_or(0);
                assert!(most <= 8, "the cap holds: {most}");
                total
            });
        });
    }
    group.finish();
}

/// The real proximity tick schedule over 100,000 client entities, messages included.
fn bench_ecs(c: &mut Criterion) {
    let n = 100_000;
    let mut app = App::new();
    app.add_plugins(MingleProximityPlugin {
        config: config(),
        ..Default::default()
    });
    let mut walk = Walk::uniform(n, 42);
    let mut entities = Vec::with_capacity(n);
    for (i, p) in walk.pos.iter().enumerate() {
        let id = PeerId(i as u64);
        let e = app
            .world_mut()
            .spawn((
                MinglePeer {
                    id,
                    realm: Realm(0),
                },
                MinglePosition(Vec3::from_array(*p)),
                MingleSpace(SpaceId(0)),
                NearbyPeers::default(),
            ))
            .id();
        entities.push(e);
    }
    // The directory is filled by the server's connection observer; fill it by hand here.
    let world = app.world_mut();
    let mut directory = PeerDirectory::default();
    for (i, e) in entities.iter().enumerate() {
        directory.register(PeerId(i as u64), *e);
    }
    world.insert_resource(directory);

    let run_tick = |app: &mut App| {
        app.world_mut().run_schedule(ProximityTick);
        app.world_mut()
            .resource_mut::<Messages<PairEntered>>()
            .update();
        app.world_mut()
            .resource_mut::<Messages<PairLeft>>()
            .update();
    };
    run_tick(&mut app);
    let apply_moves = |app: &mut App, walk: &mut Walk| {
        walk.next_tick();
        let world = app.world_mut();
        for &i in &walk.moves {
            let mut pos = world
                .get_mut::<MinglePosition>(entities[i as usize])
                .expect("spawned");
            pos.0 = Vec3::from_array(walk.pos[i as usize]);
        }
    };
    for _ in 0..WARMUP_TICKS {
        apply_moves(&mut app, &mut walk);
        run_tick(&mut app);
    }
    let mut group = c.benchmark_group("ecs");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function(BenchmarkId::from_parameter(n), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                apply_moves(&mut app, &mut walk);
                let start = Instant::now();
                app.world_mut().run_schedule(ProximityTick);
                total += start.elapsed();
                app.world_mut()
                    .resource_mut::<Messages<PairEntered>>()
                    .update();
                app.world_mut()
                    .resource_mut::<Messages<PairLeft>>()
                    .update();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, bench_proximity, bench_ecs);

/// `criterion_main!`, unless a measurement mode of `census.rs` is asked for.
fn main() {
    if census::run_if_requested() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
