//! `RequestPeerRefresh` is answered with the full current peer set.

mod common;

use bevy::math::Vec3;
use common::ids;
use common::memory::MemoryHarness;

#[test]
fn refresh_returns_the_full_set() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::ZERO);
    for (id, x) in [(2, 3.0), (3, 6.0), (4, 9.0), (5, 300.0)] {
        h.connect(id, Vec3::new(x, 0.0, 0.0));
    }
    h.steps(3);
    let before = h.client(a).stats().snapshots;
    h.client_mut(a).request_refresh();
    h.steps(3);
    assert_eq!(
        h.client(a).stats().snapshots,
        before + 1,
        "one snapshot arrived"
    );
    assert_eq!(h.client(a).nearby(), ids(&[2, 3, 4]));
    // A snapshot that matches what the client held yields no spurious events.
    assert_eq!(h.client(a).recorder().entered, ids(&[2, 3, 4]));
    assert_eq!(h.server_stats().refreshes, 1);
}

#[test]
fn refresh_repairs_a_client_that_lost_track() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::ZERO);
    h.connect(2, Vec3::new(3.0, 0.0, 0.0));
    h.steps(3);
    // Simulate a client that lost track: a session welcomed afresh, holding no peer.
    let world = h.client_mut(a).app.world_mut();
    let welcome = *world.resource::<mingle::client::MingleWelcome>();
    let mut session = mingle::client::ClientSession::new();
    session.handle_message(mingle::protocol::ServerToClient::Welcome {
        you: welcome.you,
        range: welcome.range,
        leave_range: welcome.leave_range,
        tick_hz: welcome.tick_hz,
    });
    world.insert_resource(session);
    world.insert_resource(mingle::client::NearbyPeers::default());
    h.client_mut(a).request_refresh();
    h.steps(3);
    assert_eq!(h.client(a).nearby(), ids(&[2]));
    assert_eq!(
        h.client(a).recorder().entered,
        ids(&[2, 2]),
        "re-entered after the refresh"
    );
}
