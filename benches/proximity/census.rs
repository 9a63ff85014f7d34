//! Measurement modes of the proximity bench that a plain `cargo bench` never enters: the counts
//! and micro-measurements behind BENCHMARKS.md's per-mover breakdown and floor, and a ticking
//! loop to profile. Build once (`cargo bench --bench proximity --no-run` prints the binary),
//! then run the binary with one of:
//!
//! - `MINGLE_PROXIMITY_CENSUS=grid/10000,grid/1000000,skewed/1000000`: per world (`grid/N`
//!   uniform, `skewed/N` towns), after the bench's warm-up: tick time per mover, movers per
//!   tick, distance checks per mover (the core's counter), pair changes, occupied cells; for
//!   the last tick's movers, recomputed here from the positions with the core's cell geometry:
//!   cells a query visits, clients scanned (cross-checked against the core's counter), clients
//!   within `leave_range` and `range`, nearby set sizes; the skewed world split into town and
//!   country movers; the size of the structures a tick walks.
//! - `MINGLE_PROXIMITY_FLOOR=1`: the cost of one distance check in the examination's loop, of
//!   one set look-up, of sorting the movers, and of memory (dependent and independent random
//!   reads over growing buffers), each in a tight loop.
//! - `MINGLE_PROXIMITY_PROFILE=grid/10000` (`MINGLE_PROXIMITY_SECONDS`, default 20): sets the
//!   world up, then only ticks as the bench does. With `MINGLE_PROXIMITY_PERF_CTL=ctl.fifo` it
//!   writes `enable` there once set up, so `perf record -D -1 --control fifo:ctl.fifo` samples
//!   nothing but steady-state ticks (and their untimed move generation):
//!
//!   ```text
//!   mkfifo ctl.fifo
//!   MINGLE_PROXIMITY_PROFILE=grid/1000000 MINGLE_PROXIMITY_PERF_CTL=ctl.fifo setarch -R \
//!       perf record -e cpu-clock -F 1000 -D -1 --control fifo:ctl.fifo -o g1m.data bin/proximity
//!   python3 benches/proximity/perf_buckets.py g1m.data bin/proximity --ns <tick ns / movers>
//!   ```

use super::{GridWorld, LEAVE, RANGE, Walk, feed, grid_setup};
use mingle::kit::SplitMix64;
use mingle::protocol::PeerId;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Runs the mode the environment asks for, if any; returns whether it did.
pub(crate) fn run_if_requested() -> bool {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut ran = false;
    if let Some(worlds) = var("MINGLE_PROXIMITY_CENSUS") {
        for name in worlds.split(',') {
            census(name.trim());
        }
        ran = true;
    }
    if var("MINGLE_PROXIMITY_FLOOR").is_some() {
        floor();
        ran = true;
    }
    if let Some(name) = var("MINGLE_PROXIMITY_PROFILE") {
        let seconds = var("MINGLE_PROXIMITY_SECONDS").map_or(20.0, |s| s.parse().expect("seconds"));
        profile(&name, Duration::from_secs_f64(seconds));
        ran = true;
    }
    ran
}

/// The world a bench id names: `grid/N` (uniform) or `skewed/N`.
fn world(name: &str) -> Walk {
    let (kind, n) = name.split_once('/').expect("kind/clients");
    let n = n.parse().expect("a client count");
    match kind {
        "grid" => Walk::uniform(n, 42),
        "skewed" => Walk::skewed(n, 42),
        _ => panic!("unknown world {name}: grid/N or skewed/N"),
    }
}

/// Sets up `name` and ticks it for `duration`, as the bench's timed loop does.
fn profile(name: &str, duration: Duration) {
    let start = Instant::now();
    let mut world = grid_setup(world(name));
    eprintln!(
        "{name}: set up in {} ms; ticking for {duration:?}",
        start.elapsed().as_millis()
    );
    // `perf record --control fifo:CTL -D -1` samples from here on, however long the set-up took.
    if let Some(ctl) = std::env::var_os("MINGLE_PROXIMITY_PERF_CTL") {
        use std::io::Write;
        let mut fifo = std::fs::OpenOptions::new()
            .write(true)
            .open(ctl)
            .expect("perf's control fifo");
        fifo.write_all(b"enable\n").expect("perf listens");
    }
    let GridWorld {
        core,
        walk,
        handles,
        out,
    } = &mut world;
    let (start, mut ticks, mut timed) = (Instant::now(), 0u64, Duration::ZERO);
    while start.elapsed() < duration {
        walk.next_tick();
        out.clear();
        let t = Instant::now();
        feed(core, walk, handles);
        core.tick(out);
        timed += t.elapsed();
        black_box(&out);
        ticks += 1;
    }
    eprintln!(
        "{name}: {ticks} ticks, {:.3} ms a tick timed, {:.1} % of the loop",
        timed.as_secs_f64() * 1e3 / ticks as f64,
        100.0 * timed.as_secs_f64() / start.elapsed().as_secs_f64()
    );
}

/// The core's cell geometry, recomputed: cells `2 × 1.05 × leave_range (1 + 1e-4)` wide,
/// offset half a cell; a query covers `leave_range (1 + 1e-4)` around the mover on each axis.
struct CensusGrid {
    inv_cell: f32,
    half_cell: f32,
    query: f32,
    cells: HashMap<(i32, i32), Vec<u32>>,
}

impl CensusGrid {
    fn new(pos: &[[f32; 3]]) -> Self {
        let radius = LEAVE * (1.0 + 1.0e-4);
        let cell = 2.0 * radius * 1.05;
        let mut grid = CensusGrid {
            inv_cell: 1.0 / cell,
            half_cell: cell / 2.0,
            query: radius,
            cells: HashMap::new(),
        };
        for (i, p) in pos.iter().enumerate() {
            let key = (grid.coord(p[0]), grid.coord(p[1]));
            grid.cells.entry(key).or_default().push(i as u32);
        }
        grid
    }

    /// As the core computes it, rounding included.
    fn coord(&self, v: f32) -> i32 {
        ((v + self.half_cell) * self.inv_cell).floor() as i32
    }

    /// The occupied cells a query around `p` visits.
    fn visited(&self, p: [f32; 3]) -> Vec<&[u32]> {
        let mut found = Vec::new();
        for y in self.coord(p[1] - self.query)..=self.coord(p[1] + self.query) {
            for x in self.coord(p[0] - self.query)..=self.coord(p[0] + self.query) {
                if let Some(members) = self.cells.get(&(x, y)) {
                    found.push(members.as_slice());
                }
            }
        }
        found
    }
}

/// Sums over a set of movers, for means per mover.
#[derive(Default)]
struct Tally {
    movers: u64,
    cells: u64,
    scanned: u64,
    within_leave: u64,
    within_range: u64,
    set: u64,
    spilled: u64,
}

impl Tally {
    fn print(&self, label: &str) {
        if self.movers == 0 {
            return;
        }
        let per = |v: u64| v as f64 / self.movers as f64;
        println!(
            "  {label:<8} movers {:>7}: cells visited {:.2}, clients scanned {:.1} ({:.1} a \
             cell), within leave_range {:.2}, within range {:.2} (self excluded), nearby set \
             {:.2}, sets spilled {:.1} %",
            self.movers,
            per(self.cells),
            per(self.scanned),
            self.scanned as f64 / self.cells as f64,
            per(self.within_leave),
            per(self.within_range),
            per(self.set),
            100.0 * per(self.spilled)
        );
    }
}

/// The counts of one world, after the bench's warm-up; see the module docs.
fn census(name: &str) {
    const TICKS: usize = 20;
    let start = Instant::now();
    let mut world = grid_setup(world(name));
    let setup = start.elapsed();
    let GridWorld {
        core,
        walk,
        handles,
        out,
    } = &mut world;
    let n = walk.pos.len();
    let mut times = Vec::with_capacity(TICKS);
    let (mut movers, mut moves, mut checks, mut changes) = (0u64, 0u64, 0u64, 0u64);
    let mut last = Vec::new();
    let mut last_checks = 0;
    let mut mark = vec![false; n];
    for _ in 0..TICKS {
        walk.next_tick();
        out.clear();
        let before = core.distance_checks();
        let t = Instant::now();
        feed(core, walk, handles);
        core.tick(out);
        times.push(t.elapsed());
        last_checks = core.distance_checks() - before;
        checks += last_checks;
        changes += out.len() as u64;
        moves += walk.moves.len() as u64;
        last.clear();
        for &i in &walk.moves {
            if !std::mem::replace(&mut mark[i as usize], true) {
                last.push(i);
            }
        }
        for &i in &last {
            mark[i as usize] = false;
        }
        movers += last.len() as u64;
    }
    times.sort_unstable();
    let median = times[TICKS / 2];
    let per_tick = movers as f64 / TICKS as f64;
    println!(
        "{name}: {n} clients, set up in {:.1} s; {TICKS} ticks: median {:.3} ms a tick, {:.1} ns \
         a mover; {per_tick:.0} movers a tick ({:.0} moves, {:.2} % repeats), {:.2} distance \
         checks a mover, {:.3} pair changes a mover ({:.0} a tick)",
        setup.as_secs_f64(),
        median.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e9 / per_tick,
        moves as f64 / TICKS as f64,
        100.0 * (moves - movers) as f64 / moves as f64,
        checks as f64 / movers as f64,
        changes as f64 / movers as f64,
        changes as f64 / TICKS as f64,
    );

    let grid = CensusGrid::new(&walk.pos);
    let (leave_sq, range_sq) = (LEAVE * LEAVE, RANGE * RANGE);
    let mut tallies = [Tally::default(), Tally::default(), Tally::default()];
    for &i in &last {
        let p = walk.pos[i as usize];
        let visited = grid.visited(p);
        let (mut scanned, mut leave, mut range) = (0u64, 0u64, 0u64);
        for members in &visited {
            scanned += members.len() as u64;
            for &j in members.iter().filter(|&&j| j != i) {
                let d2 = mingle::kit::dist_sq(p, walk.pos[j as usize]);
                leave += u64::from(d2 <= leave_sq);
                range += u64::from(d2 <= range_sq);
            }
        }
        let set = core.nearby(PeerId(u64::from(i))).expect("held").count() as u64;
        let town = walk.towns.as_ref().map(|t| t.contains(p));
        let slots: &[usize] = match town {
            None => &[0],
            Some(true) => &[0, 1],
            Some(false) => &[0, 2],
        };
        for &slot in slots {
            let t = &mut tallies[slot];
            t.movers += 1;
            t.cells += visited.len() as u64;
            t.scanned += scanned;
            t.within_leave += leave;
            t.within_range += range;
            t.set += set;
            t.spilled += u64::from(set > 12);
        }
    }
    let scanned = tallies[0].scanned;
    println!(
        "  last tick: {scanned} clients scanned here, {last_checks} distance checks counted by \
         the core ({})",
        if scanned == last_checks {
            "equal"
        } else {
            "differ"
        }
    );
    tallies[0].print("all");
    tallies[1].print("town");
    tallies[2].print("country");
    let occupied = core.occupied_cells();
    if occupied != grid.cells.len() {
        println!("  occupied cells differ: {} here", grid.cells.len());
    }
    let sizes: Vec<usize> = grid.cells.values().map(Vec::len).collect();
    let crowded = sizes.iter().filter(|&&s| s > 24).count();
    let biggest = sizes.iter().copied().max().unwrap_or(0);
    println!(
        "  occupied cells {occupied}: {:.1} clients a cell, {crowded} cells over 24 (spilled), \
         largest {biggest}",
        n as f64 / occupied as f64
    );
    // Sizes: a record is 128 bytes, a status 16, a cell 16 (key) + a SmallVec of 24 16-byte
    // members (~408); a move 32.
    let mib = |b: f64| b / (1 << 20) as f64;
    let (records, status, cells) = (n as f64 * 128.0, n as f64 * 16.0, occupied as f64 * 408.0);
    // (`max`: an empty sum is -0.)
    let spilled_cells = sizes
        .iter()
        .filter(|&&s| s > 24)
        .map(|&s| (s.next_power_of_two().max(64) * 16) as f64)
        .sum::<f64>()
        .max(0.0);
    println!(
        "  structures: records {:.1} MiB, statuses {:.1} MiB, cells {:.1} MiB inline + {:.1} MiB \
         spilled, moved list {:.2} MiB; touched by one tick's movers: records {:.1} MiB, \
         statuses {:.2} MiB",
        mib(records),
        mib(status),
        mib(cells),
        mib(spilled_cells),
        mib(per_tick * 32.0),
        mib(per_tick * 128.0),
        mib(per_tick * 64.0),
    );
}

/// A cell member as the grid stores it.
#[derive(Clone, Copy)]
struct Member {
    pos: [f32; 3],
    client: u32,
}

fn dist_sq(a: [f32; 3], b: [f32; 3]) -> f32 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    dx * dx + dy * dy + dz * dz
}

/// The examination's branch-free filter, as the core writes it.
#[inline(never)]
fn filter(pos: [f32; 3], members: &[Member], out: &mut [(u32, f32)], leave_sq: f32) -> usize {
    let mut kept = 0;
    for m in members {
        let d2 = dist_sq(pos, m.pos);
        out[kept] = (m.client, d2);
        kept += usize::from(d2 <= leave_sq);
    }
    kept
}

/// Nanoseconds per call of `f`, over enough calls for ~0.3 s, best of 3.
fn per_call(mut f: impl FnMut()) -> f64 {
    let mut calls = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..calls {
            f();
        }
        if t.elapsed() > Duration::from_millis(100) {
            break;
        }
        calls *= 2;
    }
    calls *= 3;
    (0..3)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..calls {
                f();
            }
            t.elapsed().as_secs_f64() * 1e9 / calls as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// A mover to match: its index, its set (sorted for the binary search), its near candidates
/// (index, squared distance).
type Case = (u32, Vec<u32>, Vec<(u32, f32)>);

/// The floor's micro-measurements; see the module docs.
fn floor() {
    let mut rng = SplitMix64::new(3);
    let leave_sq = LEAVE * LEAVE;
    let cell = 2.0 * LEAVE * 1.05;
    // Distance checks: members spread over the 2 × 2 cells around the mover, as in the core.
    for scanned in [44usize, 700] {
        let members: Vec<Member> = (0..scanned)
            .map(|k| Member {
                pos: [rng.signed() * cell, rng.signed() * cell, 0.0],
                client: k as u32,
            })
            .collect();
        let mut out = vec![(0u32, 0f32); scanned];
        let ns = per_call(|| {
            black_box(filter(
                black_box([0.0; 3]),
                black_box(&members),
                &mut out,
                leave_sq,
            ));
        });
        println!(
            "distance check, {scanned} members in L1: {:.2} ns a check",
            ns / scanned as f64
        );
    }
    // Set look-ups: a binary search of a sorted set of `len` (present and absent alike).
    for len in [6usize, 84] {
        let set: Vec<u32> = (0..len as u32).map(|k| k * 7).collect();
        let probes: Vec<u32> = (0..1024).map(|_| rng.below(len * 7) as u32).collect();
        let ns = per_call(|| {
            let mut found = 0usize;
            for &p in &probes {
                found += usize::from(black_box(&set).binary_search(&p).is_ok());
            }
            black_box(found);
        });
        println!(
            "set look-up, set of {len}: {:.2} ns a look-up (no branch on the result)",
            ns / probes.len() as f64
        );
    }
    // Matching: the examination's loop over the near candidates, branches included: each
    // looked up in the mover's set, marked seen if there, else noted entering if within range.
    // Per mover as counted by the census: 8.8 near (self included) against a set of 5.5
    // (uniform), 119.7 against 84 (town).
    for (near, set_len, movers) in [(8.8f64, 5.5f64, 4096usize), (119.7, 84.0, 256)] {
        let cases: Vec<Case> = (0..movers)
            .map(|m| {
                let n_near = (near + rng.signed() as f64 * 2.0).round().max(1.0) as usize;
                let n_set = (set_len + rng.signed() as f64 * 2.0).round().max(0.0) as usize;
                let universe = (n_near + n_set + 8) as u32;
                let mut set: Vec<u32> = Vec::new();
                while set.len() < n_set {
                    let v = m as u32 * 1000 + rng.below(universe as usize) as u32;
                    if !set.contains(&v) {
                        set.push(v);
                    }
                }
                set.sort_unstable();
                // Near candidates: the set's members (all within leave_range), the mover
                // itself, and the rest new, within range or not.
                let mut cand: Vec<(u32, f32)> = set.iter().map(|&v| (v, 500.0)).collect();
                cand.push((m as u32 * 1000 + 999, 0.0));
                while cand.len() < n_near {
                    cand.push((
                        m as u32 * 1000 + 500 + rng.below(400) as u32,
                        300.0 + rng.unit() * 400.0,
                    ));
                }
                for k in (1..cand.len()).rev() {
                    cand.swap(k, rng.below(k + 1));
                }
                (m as u32 * 1000 + 999, set, cand)
            })
            .collect();
        let total: usize = cases.iter().map(|c| c.2.len()).sum();
        let (mut seen, mut entering) = (Vec::new(), Vec::new());
        let range_sq = RANGE * RANGE;
        let ns = per_call(|| {
            for (i, mine, cand) in black_box(&cases) {
                seen.clear();
                seen.resize(mine.len(), false);
                entering.clear();
                for &(j, d2) in cand {
                    if j == *i {
                        continue;
                    }
                    match mine.binary_search(&j) {
                        Ok(k) => seen[k] = true,
                        Err(_) if d2 <= range_sq => entering.push(j),
                        Err(_) => {}
                    }
                }
                black_box((&seen, &entering));
            }
        });
        println!(
            "matching, {:.1} near against a set of {set_len}: {:.1} ns a mover, {:.2} ns a \
             candidate",
            total as f64 / movers as f64,
            ns / movers as f64,
            ns / total as f64
        );
    }
    // Matching by a per-client stamp instead of a binary search (a lever, not the core's
    // code): the mover's peers stamped with (mover, slot), then one read per near candidate.
    // Client indices are random over a world of `clients`, as they are in the core (an index
    // says nothing about where a client stands), so the stamps are random reads.
    for (clients, near, set_len, movers) in [
        (10_000usize, 8.8f64, 5.5f64, 4096usize),
        (1_000_000, 8.8, 5.5, 4096),
        (1_000_000, 119.7, 84.0, 256),
    ] {
        let cases: Vec<Case> = (0..movers)
            .map(|_| {
                let n_near = (near + rng.signed() as f64 * 2.0).round().max(1.0) as usize;
                let n_set = ((set_len + rng.signed() as f64 * 2.0).round().max(0.0) as usize)
                    .min(n_near - 1);
                let i = rng.below(clients) as u32;
                let mut cand: Vec<(u32, f32)> = vec![(i, 0.0)];
                while cand.len() < n_near {
                    cand.push((rng.below(clients) as u32, 300.0 + rng.unit() * 400.0));
                }
                let set: Vec<u32> = cand[1..=n_set].iter().map(|c| c.0).collect();
                for k in (1..cand.len()).rev() {
                    cand.swap(k, rng.below(k + 1));
                }
                (i, set, cand)
            })
            .collect();
        let total: usize = cases.iter().map(|c| c.2.len()).sum();
        let mut stamp = vec![0u64; clients];
        let mut tick = 0u64;
        let (mut seen, mut entering) = (Vec::new(), Vec::new());
        let range_sq = RANGE * RANGE;
        let ns = per_call(|| {
            for (i, mine, cand) in black_box(&cases) {
                // A fresh stamp for each mover (its peers' stamps say which of its slots).
                tick += 1;
                seen.clear();
                seen.resize(mine.len(), false);
                entering.clear();
                for (k, &j) in mine.iter().enumerate() {
                    stamp[j as usize] = tick << 32 | k as u64;
                }
                for &(j, d2) in cand {
                    if j == *i {
                        continue;
                    }
                    let s = stamp[j as usize];
                    if s >> 32 == tick {
                        seen[(s & 0xFFFF_FFFF) as usize] = true;
                    } else if d2 <= range_sq {
                        entering.push(j);
                    }
                }
                black_box((&seen, &entering));
            }
        });
        println!(
            "matching by stamps, {clients} clients, {:.1} near against a set of {set_len}: \
             {:.1} ns a mover, {:.2} ns a candidate",
            total as f64 / movers as f64,
            ns / movers as f64,
            ns / total as f64
        );
    }
    // Sorting the movers: 32-byte moves by (cell key, client), keys over the world's cells.
    for (movers, cells) in [(1_500usize, 910u64), (15_000, 9_100), (150_000, 91_000)] {
        #[derive(Clone, Copy)]
        struct Move {
            sort_key: u64,
            client: u32,
            _zone: u32,
            _pos: [f32; 3],
        }
        let fresh: Vec<Move> = (0..movers)
            .map(|_| Move {
                sort_key: rng.next_u64() % cells,
                client: rng.below(movers * 7) as u32,
                _zone: 0,
                _pos: [0.0; 3],
            })
            .collect();
        let mut work = fresh.clone();
        let mut copy = 0.0;
        let ns = per_call(|| {
            work.copy_from_slice(&fresh);
            work.sort_unstable_by_key(|m| (m.sort_key, m.client));
            black_box(&work);
        });
        copy += per_call(|| {
            work.copy_from_slice(&fresh);
            black_box(&work);
        });
        println!(
            "sort of {movers} moves: {:.1} ns a mover (copy excluded)",
            (ns - copy) / movers as f64
        );
    }
    // Memory: a dependent chase through 64-byte lines in a random cycle (latency), and
    // independent reads of random 128-byte records, both lines (what overlapping misses cost).
    for mib in [
        0.03, 0.25, 0.75, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 64.0, 256.0,
    ] {
        let lines = ((mib * (1 << 20) as f64) as usize / 64).max(2);
        let mut next: Vec<[u64; 8]> = vec![[0; 8]; lines];
        // Sattolo's shuffle: one cycle through every line.
        let mut order: Vec<u64> = (0..lines as u64).collect();
        for k in (1..lines).rev() {
            order.swap(k, rng.below(k));
        }
        for k in 0..lines {
            next[order[k] as usize][0] = order[(k + 1) % lines];
        }
        let steps = 1 << 16;
        let mut at = 0u64;
        let chase = per_call(|| {
            for _ in 0..steps {
                at = next[at as usize][0];
            }
            black_box(at);
        }) / steps as f64;
        // As many random picks as there are records: a pass touches ~63 % of the buffer.
        let records = lines / 2;
        let picks: Vec<u32> = (0..records.max(4096))
            .map(|_| rng.below(records) as u32)
            .collect();
        let gather = per_call(|| {
            let mut sum = 0u64;
            for &r in &picks {
                sum = sum.wrapping_add(next[2 * r as usize][1] ^ next[2 * r as usize + 1][1]);
            }
            black_box(sum);
        }) / picks.len() as f64;
        println!(
            "memory, {mib} MiB: dependent read {chase:.1} ns a line; independent random \
             128-byte records {gather:.1} ns a record"
        );
    }
}
