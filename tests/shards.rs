//! The transport past netcode's 1,024: several netcode shards behind one socket, one id served
//! once, half-open handshakes that fill nothing, and a packet budget per client.

mod common;

use std::time::{Duration, Instant};

use bevy::math::Vec3;
use common::Harness;
use common::raw::{RawClient, until};
use mingle::protocol::Realm;
use mingle::server::{MingleServerConfig, SHARD_CLIENTS, ServerTransport};

fn harness(max_clients: usize) -> Harness {
    Harness::with_config(MingleServerConfig {
        max_clients,
        ..MingleServerConfig::default()
    })
}

fn connect_all(h: &mut Harness, bots: &mut [RawClient]) -> bool {
    until(Duration::from_secs(30), || {
        for b in bots.iter_mut() {
            b.pump();
        }
        h.step();
        bots.iter().all(|b| b.is_connected())
    })
}

#[test]
fn more_than_1024_clients_connect_to_one_server() {
    let mut h = harness(1_200);
    let shards = h.server.world().resource::<ServerTransport>().shard_count();
    assert!(shards > 1_200 / SHARD_CLIENTS, "{shards} shards");
    let mut bots: Vec<RawClient> = Vec::new();
    for batch in 0..6 {
        let mut more: Vec<RawClient> = (0..200)
            .map(|k| RawClient::new(h.addr(), 10_000 + batch * 200 + k, Realm(1)))
            .collect();
        assert!(connect_all(&mut h, &mut more), "batch {batch} connects");
        bots.append(&mut more);
    }
    // Keep everyone alive while counting.
    for _ in 0..3 {
        for b in &mut bots {
            b.pump();
        }
        h.step();
    }
    assert_eq!(bots.len(), 1_200);
    assert!(bots.iter().all(|b| b.is_connected()), "all 1,200 connected");
    assert_eq!(h.server_stats().connects, 1_200);
}

#[test]
fn one_id_is_served_by_one_shard_at_a_time() {
    let mut h = harness(1_024);
    let mut first = RawClient::new(h.addr(), 77, Realm(1));
    assert!(connect_all(&mut h, std::slice::from_mut(&mut first)));
    // The same id from many other addresses: they hash to other shards, and each is refused.
    let mut others: Vec<RawClient> = (0..16)
        .map(|_| RawClient::new(h.addr(), 77, Realm(1)))
        .collect();
    // 60 steps, 3 s of server time (each step is one 50 ms tick): handshakes retry meanwhile.
    for _ in 0..60 {
        first.pump();
        for o in &mut others {
            o.pump();
        }
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        first.is_connected(),
        "the first connection keeps its id: {:?}",
        first.disconnect_reason()
    );
    assert_eq!(
        h.server_stats().connects,
        1,
        "no second connection with id 77"
    );
    let renet = h.server.world().resource::<bevy_renet::RenetServer>();
    assert!(renet.is_connected(77));
    assert_eq!(renet.connected_clients(), 1);
}

#[test]
fn half_open_handshakes_fill_no_shard() {
    // Two shards' worth of clients, and three times as many handshakes that never finish.
    let mut h = harness(2 * SHARD_CLIENTS);
    let half_open: Vec<RawClient> = (0..6 * SHARD_CLIENTS as u64)
        .map(|k| {
            let mut c = RawClient::new(h.addr(), 50_000 + k, Realm(1));
            c.pump(); // the connection request only
            c
        })
        .collect();
    h.steps(5);
    let mut late: Vec<RawClient> = (0..2 * SHARD_CLIENTS as u64)
        .map(|k| RawClient::new(h.addr(), 1 + k, Realm(1)))
        .collect();
    assert!(
        connect_all(&mut h, &mut late),
        "every slot is still there for clients that finish their handshake"
    );
    drop(half_open);
}

#[test]
fn idle_clients_are_written_to_about_once_a_second() {
    let mut h = harness(1_024);
    h.connect(1, Vec3::ZERO);
    let mut bots: Vec<RawClient> = (0..50)
        .map(|k| RawClient::new(h.addr(), 100 + k, Realm(1)))
        .collect();
    assert!(connect_all(&mut h, &mut bots));
    // Let the welcomes and their acks settle, then count two seconds of idling: the server
    // steps 20 times a second, so without a budget it writes an ack to each client per step.
    // One server step per 50 ms of real time: the server's clock matches the wall clock.
    let idle = |h: &mut Harness, bots: &mut [RawClient], for_: Duration| {
        let start = Instant::now();
        while start.elapsed() < for_ {
            for b in bots.iter_mut() {
                b.pump();
            }
            h.step();
            std::thread::sleep(Duration::from_millis(50));
        }
        start.elapsed().as_secs_f64()
    };
    idle(&mut h, &mut bots, Duration::from_millis(600));
    let before = h.server_stats().datagrams_out;
    let secs = idle(&mut h, &mut bots, Duration::from_secs(2));
    let per_client_sec = (h.server_stats().datagrams_out - before) as f64 / 51.0 / secs;
    assert!(
        per_client_sec <= 2.0,
        "an idle client gets {per_client_sec:.2} datagrams a second (keep-alive once a second)"
    );
}
