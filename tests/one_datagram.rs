//! Regression for "one datagram kills the server": renetcode 2.0.0 panics on a netcode prefix
//! announcing 9–15 sequence bytes (`packet.rs:375`), and on a sequence that leaves no room for
//! the MAC (`crypto.rs`), from any address it holds a key for. Sent over real UDP from every kind
//! of sender, in both modes: the server refuses them by their prefix, counts them, keeps the
//! sender's connection (a spoofer must not be able to kick it) and serves everyone.

mod common;

use std::time::Duration;

use bevy::math::Vec3;
use common::raw::{RawClient, until};
use common::{Harness, ids};
use mingle::auth::{TokenRequest, generate_key, generate_token, parse_key, parse_token};
use mingle::protocol::Realm;
use mingle::server::MingleServerConfig;

/// Every prefix renetcode 2.0.0 panics on, in datagrams of the report's 18 bytes and longer.
fn killer_datagrams() -> Vec<Vec<u8>> {
    let mut all = vec![
        // The report's datagram: payload type, 9 sequence bytes.
        [&[0x95u8][..], &[0u8; 17]].concat(),
        // 8 sequence bytes in 18: the MAC length underflows.
        [&[0x85u8][..], &[0u8; 17]].concat(),
    ];
    for nibble in 9..=15u8 {
        for kind in 1..=6u8 {
            let mut d = vec![0xAB; 40];
            d[0] = nibble << 4 | kind;
            all.push(d);
        }
    }
    all
}

fn send_all(m: &RawClient) -> u64 {
    let all = killer_datagrams();
    for d in &all {
        m.send_datagram(d);
    }
    all.len() as u64
}

/// Two introduced clients beside the attacker; they must not notice anything.
fn bystanders(h: &mut Harness) {
    h.connect(1, Vec3::ZERO);
    h.connect(2, Vec3::new(5.0, 0.0, 0.0));
}

fn assert_refused_and_serving(h: &mut Harness, sent: u64) {
    assert_refused(h, sent);
    h.assert_still_serving();
}

fn assert_refused(h: &mut Harness, sent: u64) {
    h.steps(3);
    let stats = h.server_stats();
    assert_eq!(
        stats.receive.malformed, sent,
        "every killer datagram is refused by its prefix"
    );
    assert_eq!(stats.receive.netcode_panics, 0, "none reached renetcode");
    assert_eq!(
        h.client(0).nearby(),
        ids(&[2]),
        "the existing pair is intact"
    );
}

fn connect_raw(h: &mut Harness, m: &mut RawClient) {
    let connected = until(Duration::from_secs(5), || {
        m.pump();
        h.step();
        m.is_connected()
    });
    assert!(connected, "the raw client connects");
}

#[test]
fn from_a_connected_client_unsecure() {
    let mut h = Harness::new();
    bystanders(&mut h);
    let mut m = RawClient::new(h.addr(), 666, Realm(1));
    connect_raw(&mut h, &mut m);
    let sent = send_all(&m);
    assert_refused_and_serving(&mut h, sent);
    for _ in 0..5 {
        m.pump();
        h.step();
    }
    assert!(
        m.is_connected(),
        "the sender keeps its connection: its address can be spoofed"
    );
}

#[test]
fn from_a_pending_client_unsecure() {
    let mut h = Harness::new();
    bystanders(&mut h);
    let mut m = RawClient::new(h.addr(), 666, Realm(1));
    // The connection request only: the server now holds a key for this address.
    m.pump();
    h.step();
    assert!(!m.is_connected());
    let sent = send_all(&m);
    assert_refused_and_serving(&mut h, sent);
    connect_raw(&mut h, &mut m);
}

#[test]
fn from_an_unknown_address() {
    let mut h = Harness::new();
    bystanders(&mut h);
    let stranger = RawClient::new(h.addr(), 777, Realm(1));
    let sent = send_all(&stranger);
    assert_refused_and_serving(&mut h, sent);
}

fn signed(h: &Harness, key: &[u8; 32], client_id: u64) -> String {
    let request = TokenRequest {
        client_id,
        realm: Realm(1),
        server: h.addr(),
        expire_secs: 60,
        timeout_secs: 5,
    };
    generate_token(&request, key).unwrap()
}

#[test]
fn from_token_holders_secure() {
    let key = parse_key(&generate_key()).unwrap();
    let mut h = Harness::secure(MingleServerConfig::default(), key);
    h.connect_with_token(&signed(&h, &key, 1), Vec3::ZERO)
        .unwrap();
    h.connect_with_token(&signed(&h, &key, 2), Vec3::new(5.0, 0.0, 0.0))
        .unwrap();

    // A player whose handshake is under way, and one connected.
    let token = |id| parse_token(&signed(&h, &key, id)).unwrap();
    let mut pending = RawClient::with_token(h.addr(), token(665));
    let mut connected = RawClient::with_token(h.addr(), token(666));
    pending.pump();
    h.step();
    connect_raw(&mut h, &mut connected);

    let sent = send_all(&pending) + send_all(&connected);
    assert_refused(&mut h, sent);
    let c = h
        .connect_with_token(&signed(&h, &key, 3), Vec3::new(0.0, 5.0, 0.0))
        .unwrap();
    h.steps(3);
    assert_eq!(h.client(c).nearby(), ids(&[1, 2]), "introductions go on");
    connect_raw(&mut h, &mut pending);
    for _ in 0..5 {
        connected.pump();
        h.step();
    }
    assert!(connected.is_connected(), "the connected sender stays");
}
