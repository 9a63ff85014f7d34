#!/usr/bin/env python3
"""Sorts the samples of a `perf record` of the proximity bench into the per-mover components of
BENCHMARKS.md's breakdown, by each sample's inlined call chain (addr2line -i on the bench
binary, which the bench profile builds with line tables).

Record with ASLR off, so the binary loads at a known base, and with the census module's profile
mode, so only steady-state ticks are sampled (see benches/proximity/census.rs):

    mkfifo ctl.fifo
    MINGLE_PROXIMITY_PROFILE=grid/10000 MINGLE_PROXIMITY_PERF_CTL=ctl.fifo setarch x86_64 -R \
        perf record -e cpu-clock -F 1000 -D -1 --control fifo:ctl.fifo -o g10k.data bin/proximity
    python3 benches/proximity/perf_buckets.py g10k.data bin/proximity [--ns 291] [--chains 5]

`--ns`: the tick's cost per mover (criterion's median / movers a tick), to print each
component in ns per mover too; `--chains`: the commonest inlined call chains of each component,
to check the attribution.

The component of a sample comes from where in the core's source it lies: line ranges found by
markers (lines of the core, see `find_ranges`) in the tree the binary was built from
(`--source`, default this worktree's src/proximity), so they follow the code as it moves; a
marker that is gone stops the script. Prints samples and % per component, of the whole loop and
of the timed tick.
"""

import collections
import re
import subprocess
import sys

# The source the ranges are found in (the worktree the binary was built from).
SOURCE = __file__.rsplit("/benches/", 1)[0] + "/src"


def find_ranges(root):
    """(file name, first line, last line) of each part of the core the components are made of,
    found by markers in the source, so that they follow the code as it moves (the markers are
    lines of the core; if one is gone, update it here)."""
    import pathlib
    files = {f: f.read_text().splitlines() for f in pathlib.Path(root).rglob("*.rs")}

    def at(marker, after=None):
        """(file, 1-based line) of the first line containing `marker` (after `after`)."""
        for f, lines in files.items():
            if after and f != after[0]:
                continue
            for k, text in enumerate(lines, 1):
                if marker in text and (not after or k > after[1]):
                    return f, k
        sys.exit(f"marker not found in {root}: {marker!r} (update find_ranges)")

    def span(first, last):
        assert first[0] == last[0], (first, last)
        return first[0].name, first[1], last[1]

    scan = at(".for_each_cell_near(zone, pos, rules.query_radius")
    scan_end = at("self.distance_checks += checks;", scan)
    filt = at("for m in members {", scan)
    near = at("near += kept;", filt)
    match = at("for &(j, d2) in &candidates[..near] {", scan_end)
    pairs = at("if seen.iter().any(|s| !s) {", match)
    pairs_end = at("self.clients[i as usize].nearby = mine;", pairs)
    dist = at("pub fn dist_sq(a: [f32; 3], b: [f32; 3]) -> f32 {")
    status = at("Some(s) if s.live && s.generation == handle.generation")
    sort_call = at("sort_by_cell(&mut moved, ")
    sort = at("fn sort_by_cell(moved", sort_call)
    sort_end = at("std::mem::swap(moved, spare);", sort)
    place = at("let mut live = 0;", sort_call)
    place_end = at("moved.truncate(live);", place)
    budget = at("let mut budget", place_end)
    return {
        # The cell scan: for_each_cell_near and its closure (from the `self.grid` line).
        "scan": span((scan[0], scan[1] - 1), (scan_end[0], scan_end[1] - 1)),
        # The distance filter inside the closure.
        "filter": span(filt, (near[0], near[1] - 1)),
        "dist_sq": span(dist, (dist[0], dist[1] + 4)),
        # Near candidates against the sorted set (binary search).
        "match": span(match, (pairs[0], pairs[1] - 1)),
        # Ended and entered pairs.
        "pairs": span(pairs, (pairs_end[0], pairs_end[1] - 1)),
        # set_position_of reads the status of the handle's client (the match and its guard).
        "status": span((status[0], status[1] - 1), status),
        "sort": span(sort, sort_end),
        "place": span(place, place_end),
        "examine_loop": span((place_end[0], place_end[1] + 1), (budget[0], budget[1] - 1)),
    }


RANGES = {}


def inside(file, line, part):
    name, first, last = RANGES[part]
    return file.endswith("/" + name) and first <= line <= last


def classify(symbol, frames):
    """symbol: perf's name of the function the sample lies in; frames: addr2line -i's
    [(function, file, line)], innermost first, the last one's location in `symbol`'s own body."""
    # Methods in impl blocks of the core's files: `core::examine::<impl …::Proximity>::examine`
    # is `…::Proximity::examine`.
    symbol = re.sub(r"[\w:]*::<impl ([\w:]+)>::", r"\1::", symbol)
    funcs = [f for f, _, _ in frames]
    _, file, line = frames[-1]
    if any(n in symbol for n in ("next_tick", "census::", "Instant", "Timespec")):
        return "harness (move generation, untimed)"
    if "proximity::feed" in symbol:
        return "input: the caller's handle and position (bench side, timed)"
    if "set_position_of" in symbol and inside(file, line, "status"):
        return "input: status check"
    if any(n in symbol for n in ("set_position_of", "move_client", "zone_id")):
        return "input: set_position_of, other"
    if any(n in symbol for n in ("insert_sorted", "remove_sorted")):
        return "pair changes"
    if (any("sort::" in f or "sort_by_cell" in f for f in funcs)
            or any("slice/sort" in p for _, p, _ in frames)
            or any(inside(p, l, "sort") for _, p, l in frames)):
        return "sort"
    if any(n in symbol for n in ("Proximity::place", "Proximity::unplace", "Grid::",
                                 "hashbrown", "HashMap", "remove_entry")):
        return "placement"
    if "Proximity::examine" in symbol and "examine_" not in symbol:
        if inside(file, line, "scan"):
            # The innermost frame in the core's own source decides: the filter (or dist_sq
            # inlined into it) is a distance check, the rest of the scan visits cells.
            mine = [(p, l) for _, p, l in frames
                    if "/src/proximity/" in p or p.endswith("/src/kit.rs")]
            p, l = mine[0] if mine else ("", 0)
            if inside(p, l, "filter") or inside(p, l, "dist_sq"):
                return "distance checks"
            return "cell visits"
        if inside(file, line, "match"):
            return "set look-ups"
        if inside(file, line, "pairs"):
            return "pair changes"
        return "examine: record, scratch"
    if symbol.endswith("Proximity::tick"):
        if any(p.endswith("prefetch.rs") for _, p, _ in frames):
            # A prefetch stalls when too many misses are in flight, or on a TLB miss: these
            # samples are the wait for the movers' records.
            if inside(file, line, "place"):
                return "placement: waiting on records (prefetch)"
            return "examination: waiting on records (prefetch)"
        if inside(file, line, "place"):
            return "placement"
        if inside(file, line, "examine_loop"):
            return "examine loop: prefetch, call"
        if inside(file, line, "sort"):
            return "sort"
        return "tick: other"
    return "other: " + symbol[:60]


def main():
    import argparse
    args = argparse.ArgumentParser()
    args.add_argument("data")
    args.add_argument("binary")
    args.add_argument("--ns", type=float)
    args.add_argument("--chains", type=int, default=0)
    args.add_argument("--source", default=SOURCE,
                      help="src of the tree the binary was built from")
    args = args.parse_args()
    RANGES.update(find_ranges(args.source))
    data, binary = args.data, args.binary
    name = binary.rsplit("/", 1)[-1]
    mmaps = subprocess.run(
        ["perf", "script", "-i", data, "--show-mmap-events", "-F", "ip"],
        capture_output=True, text=True, check=True).stdout
    # The executable segment's mapping: vaddr = ip - start + pgoff + (p_vaddr - p_offset).
    segments = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True,
                              check=True).stdout
    shift = None
    for line in segments.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[6:-1]:
            shift = int(f[2], 16) - int(f[1], 16)
    base = None
    for line in mmaps.splitlines():
        m = re.search(r"MMAP2?.*\[(0x[0-9a-f]+)\((0x[0-9a-f]+)\) @ (0x[0-9a-f]+|0) .*r-xp .*"
                      + re.escape(name) + "$", line)
        if m:
            base = int(m.group(1), 16) - int(m.group(3), 16) - shift
            break
    assert base is not None and shift is not None, "no executable mapping of the binary"
    samples = subprocess.run(
        ["perf", "script", "-i", data, "-F", "ip,sym,dso"],
        capture_output=True, text=True, check=True).stdout
    ips = collections.Counter()
    others = collections.Counter()
    for line in samples.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        if name in parts[-1]:
            ips[(int(parts[0], 16) - base, " ".join(parts[1:-1]))] += 1
        else:
            others[parts[-1]] += 1
    addrs = sorted({a for a, _ in ips})
    out = subprocess.run(
        ["addr2line", "-e", binary, "-i", "-f", "-C", "-a"],
        input="".join(f"{a:#x}\n" for a in addrs), capture_output=True, text=True,
        check=True).stdout.splitlines()
    chains = {}
    k = 0
    while k < len(out):
        addr = int(out[k], 16)
        k += 1
        frames = []
        while k + 1 < len(out) and not out[k].startswith("0x"):
            func, loc = out[k], out[k + 1]
            file, _, line = loc.rpartition(":")
            line = int(re.match(r"\d*", line).group() or 0)
            frames.append((func, file, line))
            k += 2
        chains[addr] = frames or [("??", "", 0)]
    buckets = collections.Counter()
    examples = collections.defaultdict(collections.Counter)
    for (a, symbol), n in ips.items():
        b = classify(symbol, chains[a])
        buckets[b] += n
        examples[b][" < ".join(f"{f.rsplit('::', 1)[-1]}@{p.rsplit('/', 1)[-1]}:{l}"
                               for f, p, l in chains[a])] += n
    if args.chains:
        for b, chains_of in examples.items():
            print(b)
            for c, n in chains_of.most_common(args.chains):
                print(f"  {n:6d} {c[:220]}")
    for dso, n in others.items():
        buckets["outside the binary: " + dso.strip("()").rsplit("/", 1)[-1]] += n
    total = sum(buckets.values())
    harness = sum(n for b, n in buckets.items() if b.startswith("harness"))
    print(f"{total} samples; % of all, % of the tick (harness excluded)")
    tick = total - harness
    for b, n in buckets.most_common():
        share = "" if b.startswith("harness") else f"{100 * n / tick:6.1f} %"
        ns = f"{args.ns * n / tick:7.1f} ns" if args.ns and share else ""
        print(f"{n:8d} {100 * n / total:6.1f} %  {share:>8} {ns:>10}  {b}")


if __name__ == "__main__":
    main()
