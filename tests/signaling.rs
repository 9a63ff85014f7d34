//! Signals are relayed only between introduced peers.

mod common;

use bevy::math::Vec3;
use common::memory::MemoryHarness;
use mingle::protocol::{ConnectionOutcome, PeerId, RejectReason};

#[test]
fn a_signal_reaches_an_introduced_peer() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::ZERO);
    let b = h.connect(2, Vec3::new(5.0, 0.0, 0.0));
    h.steps(3);
    let sdp = vec![b'x'; 5000]; // a realistic SDP size, several renet slices
    h.client_mut(a).send_signal(PeerId(2), &sdp);
    h.steps(5);
    assert_eq!(h.client(b).recorder().signals, vec![(PeerId(1), sdp)]);
    assert!(h.client(a).recorder().rejections.is_empty());
    assert_eq!(h.server_stats().signals_relayed, 1);
}

#[test]
fn a_signal_to_a_stranger_is_rejected() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::ZERO);
    let far = h.connect(2, Vec3::new(100.0, 0.0, 0.0));
    h.steps(3);
    h.client_mut(a).send_signal(PeerId(2), b"offer");
    h.client_mut(a).send_signal(PeerId(99), b"offer");
    h.steps(5);
    assert!(
        h.client(far).recorder().signals.is_empty(),
        "nothing reached the stranger"
    );
    assert_eq!(
        h.client(a).recorder().rejections,
        vec![
            RejectReason::NotIntroduced { peer: PeerId(2) },
            RejectReason::UnknownPeer { peer: PeerId(99) }
        ]
    );
    assert_eq!(h.server_stats().signals_rejected(), 2);
}

#[test]
fn connection_reports_are_counted() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::ZERO);
    h.connect(2, Vec3::new(5.0, 0.0, 0.0));
    h.steps(3);
    h.client_mut(a)
        .report(PeerId(2), ConnectionOutcome::Connected);
    h.steps(3);
    assert_eq!(h.server_stats().connection_reports(), 1);
}
