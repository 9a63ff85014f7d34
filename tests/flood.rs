//! A bounded flood on loopback: 100,000 valid-looking connection requests from one address are
//! cut to the per-address budget of each update, and introductions go on meanwhile.

mod common;

use std::net::UdpSocket;
use std::time::{SystemTime, UNIX_EPOCH};

use bevy::math::Vec3;
use common::{Harness, ids};
use mingle::kit::SplitMix64;
use mingle::protocol::PROTOCOL_ID;
use mingle::server::MAX_DATAGRAMS_PER_ADDRESS;
use mingle::server::netcode_guard::{CONNECTION_REQUEST_BYTES, NETCODE_VERSION};

/// Datagrams sent between two server updates.
const BURST: u32 = 5_000;

/// A netcode connection request that passes every check short of decrypting its token: the
/// right version, protocol id, a future expiry, random nonce and token bytes.
fn connection_request(rng: &mut SplitMix64) -> [u8; CONNECTION_REQUEST_BYTES] {
    let mut request = [0u8; CONNECTION_REQUEST_BYTES];
    request[1..14].copy_from_slice(NETCODE_VERSION);
    request[14..22].copy_from_slice(&PROTOCOL_ID.to_le_bytes());
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300;
    request[22..30].copy_from_slice(&expires.to_le_bytes());
    for chunk in request[30..].chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes()[..chunk.len()]);
    }
    request
}

#[test]
fn a_connection_request_flood_is_cut_per_address_and_introductions_go_on() {
    let mut h = Harness::new();
    let a = h.connect(1, Vec3::ZERO);
    let b = h.connect(2, Vec3::new(100.0, 0.0, 0.0));
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    flood.set_nonblocking(true).unwrap();
    let mut rng = SplitMix64::new(0x1234_5678);
    let mut sent = 0u32;
    let mut x = 100.0;
    let mut dropped_in_bursts = 0;
    while sent < 100_000 {
        for _ in 0..BURST {
            let request = connection_request(&mut rng);
            // A full socket buffer just drops the datagram, as the network would.
            if flood.send_to(&request, h.addr()).is_ok() {
                sent += 1;
            }
        }
        // One server update reads the burst (and whatever the two clients sent last): past
        // the per-address budget, every datagram is read and dropped unhandled.
        let before = h.server_stats().receive;
        h.server.update();
        let after = h.server_stats().receive;
        let read = after.datagrams - before.datagrams;
        let dropped = after.flood_dropped - before.flood_dropped;
        let budget = 3 * u64::from(MAX_DATAGRAMS_PER_ADDRESS); // the flood, A and B
        assert!(
            read > budget,
            "the burst reached the server: {read} datagrams"
        );
        assert!(
            dropped >= read - budget,
            "one update handles at most {MAX_DATAGRAMS_PER_ADDRESS} datagrams per address: \
             read {read}, dropped {dropped}"
        );
        dropped_in_bursts += dropped;
        // Meanwhile B walks towards A, and away again.
        x = if x > 10.0 { x - 10.0 } else { 100.0 };
        h.set_transform(b, Vec3::new(x, 0.0, 0.0));
        h.steps(2);
    }
    h.move_to(b, Vec3::new(3.0, 0.0, 0.0));
    assert_eq!(
        h.client(a).nearby(),
        ids(&[2]),
        "introduced during the flood"
    );
    let stats = h.server_stats();
    assert!(
        stats.introductions >= 3,
        "B was introduced on each pass: {}",
        stats.introductions
    );
    assert_eq!(
        stats.receive.flood_dropped, dropped_in_bursts,
        "only the bursts exceeded the budget"
    );
}
