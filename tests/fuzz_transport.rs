//! The whole receive path under structure-aware netcode datagrams (every packet type, broken
//! prefixes and lengths, replays, bit flips of real captured packets, crafted renet slices),
//! sent as a connected client's own address: no panic, and the server still serves. The long
//! run (10 million datagrams) is `cargo run --release --example fuzz_transport`; here a short
//! in-process run, and a short run over real UDP against a server app.

mod common;

use std::time::Duration;

use bevy::math::Vec3;
use common::Harness;
use common::raw::{RawClient, until};
use common::transport_fuzz::{Rng, TransportFuzz, datagram};
use mingle::protocol::Realm;

#[test]
fn fuzzed_datagrams_in_process_never_panic_and_the_server_still_serves() {
    let mut fuzz = TransportFuzz::new(0x5eed);
    fuzz.run(30_000);
    let totals = fuzz.transport.totals;
    assert!(
        totals.datagrams >= fuzz.sent,
        "every datagram went through the path"
    );
    assert!(totals.malformed > 0, "prefix faults were exercised");
    assert!(totals.guarded > 0, "crafted renet packets were exercised");
    assert!(
        totals.netcode_rejected > 0,
        "replays and bit flips were exercised"
    );
    assert_eq!(
        totals.netcode_panics + totals.renet_panics,
        0,
        "no decoder panicked"
    );
    assert!(fuzz.still_serving(), "a new client connects and is heard");
}

#[test]
fn fuzzed_datagrams_over_real_udp_leave_the_server_serving() {
    let mut h = Harness::new();
    h.connect(1, Vec3::ZERO);
    h.connect(2, Vec3::new(5.0, 0.0, 0.0));
    let mut rng = Rng(0xfeed);
    let mut captured = Vec::new();
    let mut sent = 0u64;
    for round in 0..20 {
        let mut m = RawClient::new(h.addr(), 1000 + round, Realm(1));
        assert!(until(Duration::from_secs(5), || {
            m.pump();
            h.step();
            m.is_connected()
        }));
        captured.clear();
        for _ in 0..250 {
            let d = {
                let mut seal = |p: &[u8]| m.payload_packet(p);
                datagram(&mut rng, &mut captured, &mut seal)
            };
            if !d.is_empty() {
                m.send_datagram(&d);
                sent += 1;
            }
            if sent.is_multiple_of(50) {
                h.step();
            }
        }
        h.steps(2);
    }
    let receive = h.server_stats().receive;
    assert!(receive.datagrams >= sent / 2, "the datagrams arrived");
    assert_eq!(receive.netcode_panics + receive.renet_panics, 0);
    h.assert_still_serving();
}
