//! Different spaces and different realms never meet; changing space is a departure.

mod common;

use bevy::math::Vec3;
use common::ids;
use common::memory::MemoryHarness;
use mingle::protocol::{Realm, SpaceId};

#[test]
fn different_spaces_never_meet() {
    let mut h = MemoryHarness::new();
    let a = h.connect_in(1, Realm(1), SpaceId(0), Vec3::ZERO);
    let b = h.connect_in(2, Realm(1), SpaceId(1), Vec3::ZERO);
    h.steps(3);
    assert!(h.client(a).nearby().is_empty());
    assert!(h.client(b).nearby().is_empty());

    h.set_space(b, SpaceId(0));
    assert_eq!(
        h.client(a).nearby(),
        ids(&[2]),
        "same space now: introduced"
    );
    h.set_space(b, SpaceId(7));
    assert!(h.client(a).nearby().is_empty(), "left the space: departed");
    assert_eq!(h.client(a).recorder().left, ids(&[2]));
}

#[test]
fn different_realms_never_meet() {
    let mut h = MemoryHarness::new();
    let a = h.connect_in(1, Realm(10), SpaceId(0), Vec3::ZERO);
    let b = h.connect_in(2, Realm(20), SpaceId(0), Vec3::ZERO);
    let c = h.connect_in(3, Realm(10), SpaceId(0), Vec3::new(1.0, 0.0, 0.0));
    h.steps(3);
    assert_eq!(h.client(a).nearby(), ids(&[3]));
    assert!(h.client(b).nearby().is_empty(), "same spot, other realm");
    assert_eq!(h.client(c).nearby(), ids(&[1]));
}
