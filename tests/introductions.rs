//! Introductions and departures (in memory): once per pair, both sides, with hysteresis.

mod common;

use bevy::math::Vec3;
use common::ids;
use common::memory::MemoryHarness;

#[test]
fn both_sides_are_introduced_once() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::new(0.0, 0.0, 0.0));
    let b = h.connect(2, Vec3::new(5.0, 0.0, 0.0));
    h.steps(3);
    assert_eq!(
        h.client(a).recorder().entered,
        ids(&[2]),
        "A told of B once"
    );
    assert_eq!(
        h.client(b).recorder().entered,
        ids(&[1]),
        "B told of A once"
    );
    assert_eq!(h.client(a).nearby(), ids(&[2]));
    assert_eq!(h.client(b).nearby(), ids(&[1]));
    assert_eq!(
        h.server_stats().introductions,
        1,
        "one introduction per pair"
    );
}

#[test]
fn moving_inside_range_sends_nothing() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::ZERO);
    let b = h.connect(2, Vec3::new(5.0, 0.0, 0.0));
    h.steps(3);
    let (sa, sb) = (h.client(a).stats(), h.client(b).stats());
    let before = h.server_stats();
    for k in 1..=10 {
        h.move_to(a, Vec3::new(k as f32, 1.0, 0.0));
    }
    let after = h.server_stats();
    assert!(
        after.position_updates >= before.position_updates + 10,
        "the moves reached the server ({} -> {})",
        before.position_updates,
        after.position_updates
    );
    assert_eq!(
        h.client(a).stats().peers_changed,
        sa.peers_changed,
        "mover got nothing"
    );
    assert_eq!(
        h.client(b).stats().peers_changed,
        sb.peers_changed,
        "peer got nothing"
    );
    assert_eq!(
        after.peers_changed_sent, before.peers_changed_sent,
        "server sent nothing"
    );
}

#[test]
fn a_client_exactly_at_range_is_in() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::ZERO);
    let _b = h.connect(2, Vec3::new(12.0, 16.0, 0.0)); // distance exactly 20
    let _c = h.connect(3, Vec3::new(-20.001, 0.0, 0.0)); // just outside
    h.steps(3);
    assert_eq!(h.client(a).nearby(), ids(&[2]));
}

#[test]
fn leaving_beyond_leave_range_tells_both() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::ZERO);
    let b = h.connect(2, Vec3::new(10.0, 0.0, 0.0));
    h.steps(3);
    h.move_to(b, Vec3::new(25.5, 0.0, 0.0));
    assert_eq!(h.client(a).recorder().left, ids(&[2]), "A told B left");
    assert_eq!(h.client(b).recorder().left, ids(&[1]), "B told A left");
    assert!(h.client(a).nearby().is_empty());
    assert!(h.client(b).nearby().is_empty());
}

#[test]
fn staying_between_range_and_leave_range_keeps_the_pair() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::ZERO);
    let b = h.connect(2, Vec3::new(10.0, 0.0, 0.0));
    h.steps(3);
    for x in [21.0, 24.0, 25.0, 22.0] {
        h.move_to(b, Vec3::new(x, 0.0, 0.0));
        assert_eq!(h.client(a).nearby(), ids(&[2]), "pair kept at x = {x}");
    }
    assert!(h.client(a).recorder().left.is_empty());
    // Walking in from between the bands re-introduces nobody: the pair never ended.
    h.move_to(b, Vec3::new(3.0, 0.0, 0.0));
    assert_eq!(h.client(b).recorder().entered, ids(&[1]));
}

#[test]
fn three_dimensional_positions_count_every_axis() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::ZERO);
    let _b = h.connect(2, Vec3::new(0.0, 30.0, 0.0)); // above, out of range
    let _c = h.connect(3, Vec3::new(0.0, 0.0, -19.0));
    h.steps(3);
    assert_eq!(h.client(a).nearby(), ids(&[3]));
}
