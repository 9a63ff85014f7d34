//! A bounded flood on loopback: 100,000 garbage datagrams do not stop introductions.

mod common;

use std::net::UdpSocket;

use bevy::math::Vec3;
use common::{Harness, ids};

#[test]
fn a_garbage_flood_does_not_stop_introductions() {
    let mut h = Harness::new();
    let a = h.connect(1, Vec3::ZERO);
    let b = h.connect(2, Vec3::new(100.0, 0.0, 0.0));
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    flood.set_nonblocking(true).unwrap();
    let mut rng = 0x1234_5678_u64;
    let mut sent = 0u32;
    let mut datagram = [0u8; 200];
    let mut x = 100.0;
    while sent < 100_000 {
        for _ in 0..5_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            datagram[..8].copy_from_slice(&rng.to_le_bytes());
            let len = 1 + (rng % 199) as usize;
            // A full socket buffer just drops the datagram, as the network would.
            if flood.send_to(&datagram[..len], h.addr()).is_ok() {
                sent += 1;
            }
        }
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
    assert!(
        stats.receive.datagrams > 10_000,
        "the flood reached the server: {}",
        stats.receive.datagrams
    );
}
