//! A long fuzz run of the server's whole receive path, in process: structure-aware netcode
//! datagrams (every type, broken prefixes and lengths, replays, bit flips of real captured
//! packets, crafted renet slices) from a connected client's own address, through the netcode
//! guard, renetcode, the renet guard, the slice ledger and renet. Any panic aborts the run;
//! at the end a new client must still connect and be heard.
//!
//! ```text
//! cargo run --release --example fuzz_transport -- 10000000
//! ```

#[path = "../tests/common/transport_fuzz.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod transport_fuzz;

use std::time::Instant;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let started = Instant::now();
    let mut fuzz = transport_fuzz::TransportFuzz::new(0x6d69_6e67_6c65);
    let chunk = 1_000_000.min(n);
    while fuzz.sent < n {
        fuzz.run(chunk.min(n - fuzz.sent));
        let t = fuzz.transport.totals;
        println!(
            "{} datagrams, {:.0} s: malformed {}, refused by netcode {}, crafted {}, stale slices {}, caught panics {}, reconnects {}",
            fuzz.sent,
            started.elapsed().as_secs_f64(),
            t.malformed,
            t.netcode_rejected,
            t.guarded,
            t.stale_slices,
            t.netcode_panics + t.renet_panics,
            fuzz.reconnects
        );
    }
    let serving = fuzz.still_serving();
    println!("still serving: {serving}");
    let t = fuzz.transport.totals;
    if !serving || t.netcode_panics + t.renet_panics > 0 {
        std::process::exit(1);
    }
}
