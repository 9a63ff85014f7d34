//! Connecting at runtime over real UDP: after a login screen, disconnecting, and redialling
//! by itself when the server restarts.

mod common;

use std::time::Duration;

use bevy::prelude::*;
use common::{Harness, ids};
use mingle::client::{ConnectError, MingleConnectionState, MingleServer, ServerLink};
use mingle::protocol::{PeerId, Realm};
use mingle::server::MingleServerConfig;

fn dev(h: &Harness, id: u64) -> MingleServer {
    MingleServer::Unsecure {
        server: h.addr(),
        id: PeerId(id),
        realm: Realm(1),
    }
}

fn has_link(h: &Harness, index: usize) -> bool {
    h.client(index)
        .app
        .world()
        .get_resource::<ServerLink>()
        .is_some()
}

/// Client `index` (the game at its login screen) connects as id 2 and meets client 1.
fn connect_and_meet(h: &mut Harness, index: usize) {
    let target = dev(h, 2);
    h.client_mut(index).with_api(move |api| api.connect(target));
    assert!(
        h.step_until(Duration::from_secs(10), |h| h.client(index).nearby()
            == ids(&[1])),
        "connected and introduced: {:?}",
        h.state(index)
    );
}

#[test]
fn a_client_connects_after_its_login_screen_and_disconnects_when_told() {
    let mut h = Harness::new();
    h.connect(1, Vec3::ZERO);
    let b = h.add_unconnected(Vec3::new(3.0, 0.0, 0.0));
    h.steps(5);
    assert_eq!(h.state(b), MingleConnectionState::Disconnected);
    assert!(!has_link(&h, b), "no socket before connect");

    connect_and_meet(&mut h, b);
    assert_eq!(
        h.state(b),
        MingleConnectionState::Connected { you: PeerId(2) }
    );

    h.client_mut(b).with_api(|api| api.disconnect());
    h.steps(3);
    assert_eq!(h.state(b), MingleConnectionState::Disconnected);
    assert_eq!(
        h.client(b).recorder().left,
        ids(&[1]),
        "its peers left at once"
    );
    assert_eq!(
        h.client(0).nearby(),
        Vec::<PeerId>::new(),
        "the server told the other side"
    );
    assert!(!has_link(&h, b), "the socket is closed");

    connect_and_meet(&mut h, b);
    assert_eq!(
        h.client(b).recorder().entered,
        ids(&[1, 1]),
        "introduced again"
    );
}

#[test]
fn clients_redial_after_a_server_restart_and_are_introduced_again() {
    let mut h = Harness::new();
    let a = h.connect(1, Vec3::ZERO);
    let b = h.connect(2, Vec3::new(3.0, 0.0, 0.0));
    h.steps(3);
    assert_eq!(h.client(a).nearby(), ids(&[2]));

    h.restart_server(MingleServerConfig::default());
    assert!(
        h.step_until(Duration::from_secs(2), |h| matches!(
            h.state(a),
            MingleConnectionState::Reconnecting { .. } | MingleConnectionState::Connecting { .. }
        )),
        "the drop is seen at once (the server said goodbye): {:?}",
        h.state(a)
    );
    assert_eq!(
        h.client(a).recorder().left,
        ids(&[2]),
        "peers leave on the drop"
    );

    assert!(
        h.step_until(Duration::from_secs(15), |h| h.client(a).nearby()
            == ids(&[2])
            && h.client(b).nearby() == ids(&[1])),
        "both redialled and met again: {:?} / {:?}",
        h.state(a),
        h.state(b)
    );
    assert_eq!(
        h.state(a),
        MingleConnectionState::Connected { you: PeerId(1) }
    );
    assert_eq!(h.client(a).recorder().entered, ids(&[2, 2]));
}

#[test]
fn a_malformed_token_is_a_failed_state_not_a_panic() {
    let mut h = Harness::new();
    let c = h.add_unconnected(Vec3::ZERO);
    h.client_mut(c)
        .with_api(|api| api.connect(MingleServer::Token("not a token".to_owned())));
    h.steps(2);
    assert!(
        matches!(
            h.state(c),
            MingleConnectionState::Failed(ConnectError::BadToken(_))
        ),
        "{:?}",
        h.state(c)
    );
}
