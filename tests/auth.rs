//! Secure mode: only connect tokens signed with the server's key, for this server's address,
//! this protocol and not expired, get in; the realm in the token isolates tenants.

mod common;

use std::time::{Duration, SystemTime};

use bevy::math::Vec3;
use common::{Harness, ids};
use mingle::auth::{TokenRequest, generate_key, generate_token, generate_token_at, parse_key};
use mingle::protocol::{PROTOCOL_ID, PeerId, Realm};
use mingle::server::{MingleServerConfig, ServerStats};

fn key() -> [u8; 32] {
    parse_key(&generate_key()).unwrap()
}

fn request(h: &Harness, client_id: u64, realm: u64) -> TokenRequest {
    TokenRequest {
        client_id,
        realm: Realm(realm),
        server: h.addr(),
        expire_secs: 60,
        // Refused clients give up after this long instead of netcode's usual 15 s.
        timeout_secs: 1,
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
}

#[test]
fn a_valid_token_connects_with_the_id_it_grants() {
    let key = key();
    let mut h = Harness::secure(MingleServerConfig::default(), key);
    let token = generate_token(&request(&h, 4242, 1), &key).unwrap();
    let a = h
        .connect_with_token(&token, Vec3::ZERO)
        .expect("valid token connects");
    assert_eq!(h.client(a).id, PeerId(4242), "the id comes from the token");
}

fn assert_refused(h: &mut Harness, token: &str, what: &str) {
    let result = h.connect_with_token(token, Vec3::ZERO);
    assert!(result.is_err(), "{what} must be refused, got {result:?}");
    assert_eq!(
        h.server.world().resource::<ServerStats>().connects,
        0,
        "{what}: no connect"
    );
}

#[test]
fn an_expired_token_is_refused() {
    let key = key();
    let mut h = Harness::secure(MingleServerConfig::default(), key);
    let req = TokenRequest {
        expire_secs: 1,
        ..request(&h, 1, 1)
    };
    let stale =
        generate_token_at(&req, &key, now() - Duration::from_secs(3600), PROTOCOL_ID).unwrap();
    assert_refused(&mut h, &stale, "an expired token");
}

#[test]
fn a_token_signed_with_another_key_is_refused() {
    let mut h = Harness::secure(MingleServerConfig::default(), key());
    let forged = generate_token(&request(&h, 1, 1), &key()).unwrap();
    assert_refused(&mut h, &forged, "a token with the wrong key");
}

#[test]
fn a_token_for_another_protocol_is_refused() {
    let key = key();
    let mut h = Harness::secure(MingleServerConfig::default(), key);
    let old = generate_token_at(&request(&h, 1, 1), &key, now(), PROTOCOL_ID ^ 1).unwrap();
    assert_refused(&mut h, &old, "a token for another protocol");
}

#[test]
fn a_token_for_another_server_address_is_refused() {
    let key = key();
    // The server's public address differs from the address the token names (and the client dials).
    let config = MingleServerConfig {
        public_addr: Some("127.0.0.2:7".parse().unwrap()),
        ..MingleServerConfig::default()
    };
    let mut h = Harness::secure(config, key);
    let token = generate_token(&request(&h, 1, 1), &key).unwrap();
    assert_refused(&mut h, &token, "a token for another address");
}

#[test]
fn two_realms_never_meet() {
    let key = key();
    let mut h = Harness::secure(MingleServerConfig::default(), key);
    let t1 = generate_token(&request(&h, 1, 100), &key).unwrap();
    let t2 = generate_token(&request(&h, 2, 200), &key).unwrap();
    let t3 = generate_token(&request(&h, 3, 100), &key).unwrap();
    let a = h.connect_with_token(&t1, Vec3::ZERO).unwrap();
    let b = h.connect_with_token(&t2, Vec3::ZERO).unwrap();
    let c = h.connect_with_token(&t3, Vec3::new(1.0, 0.0, 0.0)).unwrap();
    h.steps(3);
    assert_eq!(h.client(a).nearby(), ids(&[3]), "same realm meets");
    assert!(
        h.client(b).nearby().is_empty(),
        "another realm at the same spot never meets"
    );
    assert_eq!(h.client(c).nearby(), ids(&[1]));
}
