#!/usr/bin/env python3
"""Sorts the samples of a `perf record` of the proximity bench into the per-mover components of
BENCHMARKS.md's breakdown, by each sample's inlined call chain (addr2line -i on the bench
binary, which the bench profile builds with line tables).

Record with ASLR off, so the binary loads at a known base, and with the census module's profile
mode, so only steady-state ticks are sampled (see benches/proximity/census.rs):

    MINGLE_PROXIMITY_PROFILE=grid/10000 setarch x86_64 -R \
        perf record -e cpu-clock -F 2000 -D <set-up ms> -o g10k.data bin/proximity
    python3 benches/proximity/perf_buckets.py g10k.data bin/proximity [--ns 291] [--chains 5]

`--ns`: the tick's cost per mover (criterion's median / movers a tick), to print each
component in ns per mover too; `--chains`: the commonest inlined call chains of each component,
to check the attribution.

The component of a sample comes from where in the core's source it lies (file and line ranges
of src/proximity/core.rs and grid.rs at the commit measured; check `RANGES` against the source
when it changes). Prints samples and % per component, of the whole loop and of the timed tick.
"""

import collections
import re
import subprocess
import sys

# Line ranges of src/proximity/core.rs (commit 420ca2b).
EXAMINE = (1258, 1357)
EXAMINE_SCAN = (1284, 1298)  # the cell scan: for_each_cell_near and its closure
EXAMINE_FILTER = (1291, 1296)  # the distance filter inside the closure
DIST_SQ = (278, 283)
EXAMINE_MATCH = (1300, 1309)  # near candidates against the sorted set (binary search)
EXAMINE_PAIRS = (1310, 1348)  # ended and entered pairs
SET_POSITION_STATUS = 463  # set_position_of reads the status of the handle's client
TICK = (825, 904)
TICK_SORT = (837, 837)
TICK_PLACE = (840, 861)
TICK_EXAMINE_LOOP = (862, 879)


def inside(line, span):
    return span[0] <= line <= span[1]


def classify(symbol, frames):
    """symbol: perf's name of the function the sample lies in; frames: addr2line -i's
    [(function, file, line)], innermost first, the last one's location in `symbol`'s own body."""
    funcs = [f for f, _, _ in frames]
    _, _, line = frames[-1]
    if any(n in symbol for n in ("next_tick", "census::", "Instant", "Timespec")):
        return "harness (move generation, untimed)"
    if "proximity::feed" in symbol:
        return "input: the caller's handle and position (bench side, timed)"
    if "set_position_of" in symbol and line == SET_POSITION_STATUS:
        return "input: status check"
    if any(n in symbol for n in ("set_position_of", "move_client", "zone_id")):
        return "input: set_position_of, other"
    if any(n in symbol for n in ("insert_sorted", "remove_sorted")):
        return "pair changes"
    if any("sort::" in f for f in funcs) or any("slice/sort" in p for _, p, _ in frames):
        return "sort"
    if any(n in symbol for n in ("Proximity::place", "Proximity::unplace", "Grid::",
                                 "hashbrown", "HashMap", "remove_entry")):
        return "placement"
    if "Proximity::examine" in symbol and "examine_" not in symbol:
        if inside(line, EXAMINE_SCAN):
            mine = [(p, l) for _, p, l in frames if p.endswith(("core.rs", "grid.rs"))]
            p, l = mine[0] if mine else ("", 0)
            if p.endswith("core.rs") and (inside(l, EXAMINE_FILTER) or inside(l, DIST_SQ)):
                return "distance checks"
            return "cell visits"
        if inside(line, EXAMINE_MATCH):
            return "set look-ups"
        if inside(line, EXAMINE_PAIRS):
            return "pair changes"
        return "examine: record, scratch"
    if symbol.endswith("Proximity::tick"):
        if any(p.endswith("prefetch.rs") for _, p, _ in frames):
            # A prefetch stalls when too many misses are in flight, or on a TLB miss: these
            # samples are the wait for the movers' records.
            if inside(line, TICK_PLACE):
                return "placement: waiting on records (prefetch)"
            return "examination: waiting on records (prefetch)"
        if inside(line, TICK_PLACE):
            return "placement"
        if inside(line, TICK_EXAMINE_LOOP):
            return "examine loop: prefetch, call"
        if inside(line, TICK_SORT):
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
    args = args.parse_args()
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
