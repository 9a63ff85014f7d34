//! ICE servers through the real path: a client connecting to a server with STUN and TURN URLs
//! and a TURN secret receives them right after its welcome, with TURN REST credentials of its
//! own that coturn would accept, and fresh ones when its renewal falls due. Without any ICE
//! server configured nothing is sent.

mod common;

use std::net::SocketAddr;

use bevy::prelude::*;
use common::Harness;
use mingle::client::MingleIceServers;
use mingle::protocol::PeerId;
use mingle::server::{
    IceRenewal, MingleServerConfig, ServerStats, TurnSecret, turn_rest_credential,
};

const SECRET: &str = "lab-secret";

fn harness_with_turn() -> Harness {
    let config = MingleServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ice_servers: vec![
            "stun:203.0.113.1:3478".into(),
            "turn:203.0.113.1:3478?transport=udp".into(),
        ],
        turn_credential_ttl_secs: 600,
        ..MingleServerConfig::default()
    };
    Harness::with_turn_secret(config, SECRET)
}

fn ice(h: &Harness, i: usize) -> MingleIceServers {
    h.client(i)
        .app
        .world()
        .resource::<MingleIceServers>()
        .clone()
}

#[test]
fn clients_get_their_own_turn_credentials_and_renewals() {
    let mut h = harness_with_turn();
    let a = h.connect(5, Vec3::ZERO);
    h.steps(3);
    let got = ice(&h, a);
    assert_eq!(got.generation, 1, "one IceServers after the welcome");
    assert_eq!(got.servers.len(), 2);
    assert_eq!(got.servers[0].urls, ["stun:203.0.113.1:3478"]);
    let turn = &got.servers[1];
    assert_eq!(turn.urls, ["turn:203.0.113.1:3478?transport=udp"]);
    assert_eq!(turn.username, format!("{}:5", got.expires_unix));
    let secret = TurnSecret::new(SECRET).unwrap();
    let expected = turn_rest_credential(&secret, got.expires_unix, PeerId(5)).1;
    assert_eq!(turn.credential, expected);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 590..=now + 610).contains(&got.expires_unix));

    // Renewal falls due (as it would after half the TTL): the client gets a fresh set.
    let world = h.server.world_mut();
    let mut q = world.query::<&mut IceRenewal>();
    for mut r in q.iter_mut(world) {
        r.due_unix = 0;
    }
    h.steps(3);
    let renewed = ice(&h, a);
    assert_eq!(renewed.generation, 2, "renewed once");
    let due = h
        .server
        .world_mut()
        .query::<&IceRenewal>()
        .single(h.server.world())
        .unwrap()
        .due_unix;
    assert!(due >= now + 299, "next renewal at half the TTL");
    assert_eq!(
        h.server
            .world()
            .resource::<ServerStats>()
            .turn_credentials_issued,
        2
    );
}

#[test]
fn no_ice_servers_configured_sends_none() {
    let mut h = Harness::new();
    let a = h.connect(6, Vec3::ZERO);
    h.steps(3);
    assert_eq!(ice(&h, a), MingleIceServers::default());
    assert_eq!(h.server_stats().turn_credentials_issued, 0);
}
