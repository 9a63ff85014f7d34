//! Hostile input through the public path (real UDP, real renet): every rule answers with a
//! typed rejection or a clean disconnect, the server survives, and other clients carry on.

mod common;

use std::time::Duration;

use bevy::math::Vec3;
use common::Harness;
use common::raw::{RawClient, until};
use mingle::protocol::{
    Channel, ClientToServer, Limited, MAX_SIGNAL_PAYLOAD_BYTES, PeerId, Realm, RejectReason,
    ServerToClient, SpaceId, encode_client,
};
use mingle::server::renet_guard::slice_packet;
use mingle::server::{MingleServerConfig, PeerDirectory, ServerStats};

/// Two well-behaved clients, introduced, and a raw client ("mallory") connected beside them.
fn setup() -> (Harness, RawClient) {
    let mut h = Harness::new();
    h.connect(1, Vec3::ZERO);
    h.connect(2, Vec3::new(5.0, 0.0, 0.0));
    let mut m = RawClient::new(h.addr(), 666, Realm(1));
    let connected = until(Duration::from_secs(5), || {
        m.pump();
        h.step();
        m.is_connected()
    });
    assert!(connected, "mallory connects");
    (h, m)
}

fn pump(h: &mut Harness, m: &mut RawClient, rounds: usize) {
    for _ in 0..rounds {
        m.pump();
        h.step();
    }
    m.pump();
}

fn rejections(m: &mut RawClient) -> Vec<RejectReason> {
    m.drain()
        .into_iter()
        .filter_map(|msg| match msg {
            ServerToClient::Rejected { reason } => Some(reason),
            _ => None,
        })
        .collect()
}

fn stats(h: &Harness) -> ServerStats {
    h.server_stats()
}

#[test]
fn renet_2_0_1_slice_index_panic_regression() {
    // renet 2.0.1 panics (channel/slice_constructor.rs:41) on a slice packet whose
    // slice_index >= num_slices. Prove the crafted packet is the real crash, straight into
    // renet's server, so the test below can fail.
    let mut server = renet::RenetServer::new(mingle::protocol::connection_config());
    server.add_connection(9);
    let packet = slice_packet(true, Channel::Control as u8, 5, 5);
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = server.process_packet_from(&packet, 9);
    }))
    .is_err();
    assert!(crashed, "renet itself panics on this packet");
}

#[test]
fn a_crafted_slice_packet_disconnects_only_its_sender() {
    let (mut h, mut m) = setup();
    m.send_raw_packet(&slice_packet(true, Channel::Control as u8, 5, 5));
    let gone = until(Duration::from_secs(5), || {
        m.pump();
        h.step();
        m.is_disconnected()
    });
    assert!(gone, "the sender is disconnected");
    assert_eq!(
        m.disconnect_reason(),
        Some(renetcode::DisconnectReason::DisconnectedByServer)
    );
    assert_eq!(
        stats(&h).receive.guarded,
        1,
        "the guard refused it before renet saw it"
    );
    assert_eq!(stats(&h).receive.renet_panics, 0);
    h.steps(3);
    assert!(
        h.server
            .world()
            .resource::<PeerDirectory>()
            .get(PeerId(666))
            .is_none()
    );
    h.assert_still_serving();
}

#[test]
fn the_two_step_slice_attack_disconnects_only_its_sender() {
    // Slice 0 of a 2-slice message, then slice 40 of a "50-slice" message with the same id:
    // each passes a per-packet check; renet would index its 2-slice constructor with 40.
    let (mut h, mut m) = setup();
    m.send_raw_packet(&slice_packet(true, Channel::Signal as u8, 0, 2));
    pump(&mut h, &mut m, 2);
    assert!(m.is_connected(), "the first slice is a valid one");
    m.send_raw_packet(&slice_packet(true, Channel::Signal as u8, 40, 50));
    assert!(until(Duration::from_secs(5), || {
        m.pump();
        h.step();
        m.is_disconnected()
    }));
    assert_eq!(stats(&h).receive.guarded, 1, "the slice ledger refused it");
    assert_eq!(stats(&h).receive.renet_panics, 0, "renet never saw it");
    h.assert_still_serving();
}

#[test]
fn a_gigabyte_slice_count_is_refused() {
    let (mut h, mut m) = setup();
    m.send_raw_packet(&slice_packet(false, Channel::Position as u8, 0, 1_000_000));
    assert!(until(Duration::from_secs(5), || {
        m.pump();
        h.step();
        m.is_disconnected()
    }));
    assert_eq!(stats(&h).receive.guarded, 1);
    h.assert_still_serving();
}

fn position(p: [f32; 3]) -> Vec<u8> {
    encode_client(&ClientToServer::Position {
        space: SpaceId(0),
        position: p,
    })
}

#[test]
fn non_finite_and_out_of_world_positions_are_rejected() {
    let (mut h, mut m) = setup();
    for p in [
        [f32::NAN, 0.0, 0.0],
        [0.0, f32::INFINITY, 0.0],
        [0.0, 0.0, -1.0e9],
    ] {
        m.send(Channel::Position, position(p));
    }
    pump(&mut h, &mut m, 4);
    assert_eq!(
        rejections(&mut m),
        vec![RejectReason::InvalidPosition],
        "answered once a second, not once per position"
    );
    assert_eq!(stats(&h).invalid_positions, 3, "each one is counted");
    h.assert_still_serving();
}

#[test]
fn invalid_positions_never_disconnect_a_client() {
    // A physics glitch sending NaN for a while must not cost a player its voice: invalid
    // positions spend position tokens and are counted, but never count toward
    // `max_decode_failures`.
    let (mut h, mut m) = setup();
    let limit = MingleServerConfig::default().max_decode_failures as usize;
    for _ in 0..3 * limit {
        m.send(Channel::Position, position([f32::NAN, 0.0, 0.0]));
        pump(&mut h, &mut m, 1);
    }
    pump(&mut h, &mut m, 4);
    assert!(m.is_connected(), "still connected after {} NaNs", 3 * limit);
    assert_eq!(stats(&h).kicked, 0);
    assert_eq!(stats(&h).decode_failures, 0);
    assert!(stats(&h).invalid_positions + stats(&h).rate_limited_positions >= 3 * limit as u64);
    h.assert_still_serving();
}

#[test]
fn position_floods_are_rate_limited() {
    let (mut h, mut m) = setup();
    for k in 0..200 {
        m.send(Channel::Position, position([k as f32 * 0.01, 300.0, 0.0]));
    }
    pump(&mut h, &mut m, 4);
    let s = stats(&h);
    assert!(
        s.rate_limited_positions >= 160,
        "most of the burst dropped: {}",
        s.rate_limited_positions
    );
    assert!(
        s.position_updates <= 40 + 10,
        "at most a second's worth accepted: {}",
        s.position_updates
    );
    assert_eq!(
        rejections(&mut m),
        vec![RejectReason::RateLimited {
            what: Limited::Position
        }],
        "told once, not once per dropped message"
    );
    h.assert_still_serving();
}

#[test]
fn refresh_spam_is_rate_limited() {
    let (mut h, mut m) = setup();
    for _ in 0..20 {
        m.send(
            Channel::Control,
            encode_client(&ClientToServer::RequestPeerRefresh),
        );
    }
    pump(&mut h, &mut m, 4);
    let got = m.drain();
    let snapshots = got
        .iter()
        .filter(|g| matches!(g, ServerToClient::PeerSnapshot { .. }))
        .count();
    assert_eq!(snapshots, 5, "the burst of 5 is answered");
    assert!(got.contains(&ServerToClient::Rejected {
        reason: RejectReason::RateLimited {
            what: Limited::Refresh
        }
    }));
    assert_eq!(stats(&h).rate_limited_refreshes, 15);
}

#[test]
fn bad_signals_are_rejected_by_reason() {
    let (mut h, mut m) = setup();
    m.send(Channel::Position, position([0.0, 1.0, 0.0]));
    pump(&mut h, &mut m, 3);
    let signal = |to: u64, len: usize| {
        encode_client(&ClientToServer::Signal {
            to: PeerId(to),
            payload: vec![1; len],
        })
    };
    // Mallory is now introduced to 1 and 2; 4242 does not exist; 1 with an oversized payload.
    m.send(Channel::Signal, signal(4242, 10));
    m.send(Channel::Signal, signal(1, MAX_SIGNAL_PAYLOAD_BYTES + 1));
    m.send(Channel::Position, position([500.0, 0.0, 0.0]));
    pump(&mut h, &mut m, 4);
    m.send(Channel::Signal, signal(2, 10)); // no longer introduced
    pump(&mut h, &mut m, 4);
    assert_eq!(
        rejections(&mut m),
        vec![
            RejectReason::UnknownPeer { peer: PeerId(4242) },
            RejectReason::PayloadTooLarge,
            RejectReason::NotIntroduced { peer: PeerId(2) },
        ]
    );
    assert!(
        h.client(0).recorder().signals.is_empty(),
        "nothing was relayed"
    );
    assert!(h.client(1).recorder().signals.is_empty());
}

#[test]
fn messages_on_the_wrong_channel_are_rejected() {
    let (mut h, mut m) = setup();
    m.send(Channel::Control, position([0.0, 0.0, 0.0]));
    m.send(
        Channel::Position,
        encode_client(&ClientToServer::RequestPeerRefresh),
    );
    pump(&mut h, &mut m, 4);
    assert_eq!(rejections(&mut m), vec![RejectReason::WrongChannel; 2]);
    assert_eq!(stats(&h).rejected_inputs, 2);
}

#[test]
fn repeated_garbage_disconnects_the_sender_only() {
    let (mut h, mut m) = setup();
    let limit = MingleServerConfig::default().max_decode_failures as usize;
    for k in 0..limit {
        m.send(Channel::Control, vec![0xEE, k as u8, 0xFF]);
    }
    assert!(until(Duration::from_secs(5), || {
        m.pump();
        h.step();
        m.is_disconnected()
    }));
    assert_eq!(stats(&h).decode_failures, limit as u64);
    assert_eq!(stats(&h).kicked, 1);
    h.assert_still_serving();
}
