//! A disconnecting client's former peers are all told, and the server forgets it.

mod common;

use bevy::math::Vec3;
use common::ids;
use common::memory::MemoryHarness;
use mingle::server::PeerDirectory;

#[test]
fn disconnect_tells_every_peer() {
    let mut h = MemoryHarness::new();
    let _a = h.connect(1, Vec3::ZERO);
    let _b = h.connect(2, Vec3::new(5.0, 0.0, 0.0));
    let _c = h.connect(3, Vec3::new(0.0, 5.0, 0.0));
    let _far = h.connect(4, Vec3::new(500.0, 0.0, 0.0));
    h.steps(3);
    assert_eq!(h.client(0).nearby(), ids(&[2, 3]));

    let gone = h.disconnect(0);
    assert_eq!(gone.id.0, 1);
    h.steps(3);
    // Indices shifted: B, C, far are now 0, 1, 2.
    assert_eq!(h.client(0).recorder().left, ids(&[1]), "B told A left");
    assert_eq!(h.client(1).recorder().left, ids(&[1]), "C told A left");
    assert!(
        h.client(2).recorder().left.is_empty(),
        "a stranger is told nothing"
    );
    assert_eq!(h.client(0).nearby(), ids(&[3]), "B and C stay introduced");
    assert_eq!(h.server.world().resource::<PeerDirectory>().len(), 3);
    assert_eq!(h.server_stats().disconnects, 1);
}

#[test]
fn a_reconnecting_client_is_introduced_again() {
    let mut h = MemoryHarness::new();
    let _a = h.connect(1, Vec3::ZERO);
    let _b = h.connect(2, Vec3::new(5.0, 0.0, 0.0));
    h.steps(3);
    h.disconnect(0);
    h.steps(3);
    let again = h.connect(1, Vec3::new(1.0, 0.0, 0.0));
    h.steps(3);
    assert_eq!(h.client(again).nearby(), ids(&[2]));
    assert_eq!(
        h.client(0).recorder().entered,
        ids(&[1, 1]),
        "B: entered, left, entered"
    );
    assert_eq!(h.client(0).recorder().left, ids(&[1]));
}
