//! Unit tests of the core's contract on small hand-made worlds.

use super::*;
use crate::protocol::{Realm, SpaceId};
use crate::proximity::{GroupId, ProximityConfig, RuleError};

const R: Realm = Realm(1);
const S: SpaceId = SpaceId(0);

fn tick(core: &mut Proximity) -> Vec<PairChange> {
    let mut out = Vec::new();
    core.tick(&mut out);
    out
}

#[test]
fn exactly_at_range_is_in() {
    let mut core = Proximity::new(ProximityConfig::default());
    core.set_position(PeerId(1), R, S, [0.0, 0.0, 0.0]).unwrap();
    core.set_position(PeerId(2), R, S, [0.0, 20.0, 0.0])
        .unwrap();
    assert_eq!(tick(&mut core).len(), 1);
    assert!(core.are_introduced(PeerId(1), PeerId(2)));
    assert!(core.are_introduced(PeerId(2), PeerId(1)));
}

#[test]
fn hysteresis_keeps_then_drops() {
    let mut core = Proximity::new(ProximityConfig::default());
    core.set_position(PeerId(1), R, S, [0.0, 0.0, 0.0]).unwrap();
    core.set_position(PeerId(2), R, S, [10.0, 0.0, 0.0])
        .unwrap();
    tick(&mut core);
    core.set_position(PeerId(2), R, S, [25.0, 0.0, 0.0])
        .unwrap();
    assert!(
        tick(&mut core).is_empty(),
        "within leave_range keeps the pair"
    );
    core.set_position(PeerId(2), R, S, [25.01, 0.0, 0.0])
        .unwrap();
    assert_eq!(
        tick(&mut core),
        vec![PairChange::Left {
            a: PeerId(2),
            b: PeerId(1),
            cause: DepartureCause::Range
        }]
    );
    core.set_position(PeerId(2), R, S, [21.0, 0.0, 0.0])
        .unwrap();
    assert!(
        tick(&mut core).is_empty(),
        "between range and leave: not re-introduced"
    );
}

#[test]
fn idle_tick_yields_nothing() {
    let mut core = Proximity::new(ProximityConfig::default());
    for k in 0..50 {
        core.set_position(PeerId(k), R, S, [k as f32 * 3.0, 0.0, 0.0])
            .unwrap();
    }
    assert!(!tick(&mut core).is_empty());
    let before = core.distance_checks();
    assert!(tick(&mut core).is_empty());
    assert_eq!(
        core.distance_checks(),
        before,
        "an idle tick examines nothing"
    );
}

#[test]
fn spaces_and_realms_never_meet() {
    let mut core = Proximity::new(ProximityConfig::default());
    core.set_position(PeerId(1), R, S, [0.0; 3]).unwrap();
    core.set_position(PeerId(2), R, SpaceId(1), [0.0; 3])
        .unwrap();
    core.set_position(PeerId(3), Realm(2), S, [0.0; 3]).unwrap();
    assert!(tick(&mut core).is_empty());
    core.set_position(PeerId(2), R, S, [1.0, 0.0, 0.0]).unwrap();
    assert_eq!(tick(&mut core).len(), 1);
    core.set_position(PeerId(2), R, SpaceId(5), [1.0, 0.0, 0.0])
        .unwrap();
    assert_eq!(
        tick(&mut core),
        vec![PairChange::Left {
            a: PeerId(2),
            b: PeerId(1),
            cause: DepartureCause::SpaceChange
        }]
    );
}

#[test]
fn remove_reports_every_pair_and_frees_the_slot() {
    let mut core = Proximity::new(ProximityConfig::default());
    for k in 0..4 {
        core.set_position(PeerId(k), R, S, [k as f32, 0.0, 0.0])
            .unwrap();
    }
    assert_eq!(tick(&mut core).len(), 6);
    assert!(core.remove(PeerId(0)));
    assert!(!core.remove(PeerId(0)));
    let left = tick(&mut core);
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|c| matches!(
        c,
        PairChange::Left {
            a: PeerId(0),
            cause: DepartureCause::Disconnect,
            ..
        }
    )));
    assert_eq!(core.nearby(PeerId(1)).unwrap().count(), 2);
    core.set_position(PeerId(9), R, S, [0.0; 3]).unwrap();
    assert_eq!(tick(&mut core).len(), 3, "reused slot starts clean");
}

#[test]
fn non_finite_position_is_refused() {
    let mut core = Proximity::new(ProximityConfig::default());
    assert_eq!(
        core.set_position(PeerId(1), R, S, [f32::NAN, 0.0, 0.0]),
        Err(ProximityError::NonFinitePosition)
    );
    assert!(core.is_empty());
}

#[test]
fn a_party_hears_across_spaces_until_blocked_or_gone() {
    let mut core = Proximity::new(ProximityConfig::default());
    core.set_max_group_size(2);
    let party = GroupId(4);
    core.set_position(PeerId(1), R, S, [0.0; 3]).unwrap();
    core.set_position(PeerId(2), R, SpaceId(3), [900.0, 0.0, 0.0])
        .unwrap();
    assert_eq!(core.join_group(PeerId(1), R, party), Ok(true));
    assert_eq!(core.join_group(PeerId(2), R, party), Ok(true));
    assert_eq!(
        core.join_group(PeerId(3), R, party),
        Err(RuleError::GroupFull { limit: 2 })
    );
    assert_eq!(
        tick(&mut core),
        vec![PairChange::Entered {
            a: PeerId(1),
            b: PeerId(2),
            cause: ArrivalCause::Group
        }]
    );
    core.set_blocked(PeerId(2), PeerId(1), true);
    assert!(matches!(
        tick(&mut core)[..],
        [PairChange::Left {
            cause: DepartureCause::Blocked,
            ..
        }]
    ));
    core.set_blocked(PeerId(1), PeerId(2), false);
    assert_eq!(tick(&mut core).len(), 1, "unblocked: the party meets again");
    assert!(core.leave_group(PeerId(2), R, party));
    assert!(matches!(
        tick(&mut core)[..],
        [PairChange::Left {
            cause: DepartureCause::GroupLeft,
            ..
        }]
    ));
    assert!(core.leave_group(PeerId(1), R, party));
    assert!(tick(&mut core).is_empty());
    assert!(!core.has_rules(), "back to the plain path");
}

#[test]
fn a_shout_is_heard_by_whoever_moves_into_it() {
    let mut core = Proximity::new(ProximityConfig::default());
    core.set_position(PeerId(1), R, S, [0.0; 3]).unwrap();
    core.set_voice_range(PeerId(1), 2.0).unwrap();
    assert_eq!(
        core.set_voice_range(PeerId(1), f32::NAN),
        Err(RuleError::VoiceRangeOutOfBounds)
    );
    tick(&mut core);
    // The quiet one moves: it must find the shouter beyond its own range.
    core.set_position(PeerId(2), R, S, [39.0, 0.0, 0.0])
        .unwrap();
    assert_eq!(tick(&mut core).len(), 1);
    core.set_position(PeerId(2), R, S, [49.0, 0.0, 0.0])
        .unwrap();
    assert!(tick(&mut core).is_empty(), "within twice leave_range");
    core.set_voice_range(PeerId(1), 0.5).unwrap();
    assert!(matches!(
        tick(&mut core)[..],
        [PairChange::Left {
            cause: DepartureCause::Range,
            ..
        }]
    ));
}

#[test]
fn core_is_send_sync_and_changes_are_small() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Proximity>();
    // Sizes are asserted at compile time, beside `Client`, `Status` and `PairChange`.
}

#[test]
fn a_crowd_with_long_sets_matches_the_oracle() {
    // 90 clients in a 40 × 40 square: sets of dozens, spilled to the heap and searched long,
    // while clients mill, walk out and come back, leave and rejoin.
    use crate::kit::SplitMix64;
    use crate::proximity::BruteForce;
    let config = ProximityConfig::default();
    let mut core = Proximity::new(config.clone());
    let mut oracle = BruteForce::new(config);
    let mut rng = SplitMix64::new(7);
    let mut longest = 0;
    for step in 0..200 {
        for _ in 0..12 {
            let peer = PeerId(rng.below(90) as u64);
            if rng.below(40) == 0 {
                core.remove(peer);
                oracle.remove(peer);
                continue;
            }
            let spread = if rng.below(10) == 0 { 120.0 } else { 40.0 };
            let pos = [rng.unit() * spread, rng.unit() * spread, 0.0];
            core.set_position(peer, R, S, pos).unwrap();
            oracle.set_position(peer, R, S, pos);
        }
        let (mut got, mut want) = (Vec::new(), Vec::new());
        core.tick(&mut got);
        oracle.tick(&mut want);
        core.check_invariants().unwrap();
        for p in 0..90 {
            let mut mine: Vec<PeerId> = core
                .nearby(PeerId(p))
                .map(|it| it.collect())
                .unwrap_or_default();
            mine.sort_unstable();
            longest = longest.max(mine.len());
            assert_eq!(mine, oracle.nearby(PeerId(p)), "peer {p} at step {step}");
        }
    }
    assert!(longest >= 48, "sets long enough: {longest}");
}
