//! The server intake under random input, through the real path: a connected raw client sends
//! random bytes and mutated valid messages on every channel. The server must never panic,
//! must answer or drop the sender, and the well-behaved pair beside it must stay intact.

mod common;

use std::time::{Duration, Instant};

use bevy::math::Vec3;
use common::raw::{RawClient, until};
use common::{Harness, ids};
use mingle::protocol::{
    Channel, ClientToServer, PeerId, Realm, ServerToClient, SpaceId, encode_client,
};
use proptest::prelude::*;

fn message() -> impl Strategy<Value = (u8, Vec<u8>)> {
    let valid = prop_oneof![
        (any::<u32>(), any::<[f32; 3]>()).prop_map(|(s, p)| encode_client(
            &ClientToServer::Position {
                space: SpaceId(s),
                position: p
            }
        )),
        Just(encode_client(&ClientToServer::RequestPeerRefresh)),
        (0u64..4, proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(to, payload)| {
            encode_client(&ClientToServer::Signal {
                to: PeerId(to),
                payload,
            })
        }),
    ];
    let mutated = (valid.clone(), any::<usize>(), any::<u8>()).prop_map(|(mut bytes, at, b)| {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] ^= b | 1;
        }
        bytes
    });
    let bytes = prop_oneof![
        valid,
        mutated,
        proptest::collection::vec(any::<u8>(), 0..80)
    ];
    (0u8..3, bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_input_never_hurts_the_server_or_others(msgs in proptest::collection::vec(message(), 1..40)) {
        let mut h = Harness::new();
        h.connect(1, Vec3::ZERO);
        h.connect(2, Vec3::new(5.0, 0.0, 0.0));
        let mut m = RawClient::new(h.addr(), 99, Realm(1));
        let connected = until(Duration::from_secs(5), || {
            m.pump();
            h.step();
            m.is_connected()
        });
        prop_assert!(connected, "the fuzzing client connects");
        for (channel, bytes) in msgs {
            let channel = [Channel::Control, Channel::Position, Channel::Signal][channel as usize];
            m.send(channel, bytes);
        }
        for _ in 0..6 {
            m.pump();
            h.step();
        }
        // The fuzzing client was answered or dropped: the server either disconnected it, or
        // still serves it (a refresh request, repeated past the rate limit, gets a snapshot).
        m.drain();
        let mut answered = false;
        let mut asked_at: Option<Instant> = None;
        let settled = until(Duration::from_secs(5), || {
            if asked_at.is_none_or(|t| t.elapsed() > Duration::from_millis(300)) {
                m.send(Channel::Control, encode_client(&ClientToServer::RequestPeerRefresh));
                asked_at = Some(Instant::now());
            }
            m.pump();
            h.step();
            answered |= m
                .drain()
                .iter()
                .any(|msg| matches!(msg, ServerToClient::PeerSnapshot { .. }));
            answered || m.is_disconnected()
        });
        prop_assert!(settled, "the fuzzing client was neither answered nor dropped");
        prop_assert_eq!(h.client(0).nearby(), ids(&[2]));
        prop_assert_eq!(h.client(1).nearby(), ids(&[1]));
        let c = h.connect(3, Vec3::new(0.0, 3.0, 0.0));
        h.steps(3);
        prop_assert!(h.client(c).nearby().contains(&PeerId(1)), "introductions go on");
    }
}
