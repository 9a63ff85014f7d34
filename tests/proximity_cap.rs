//! The peer cap, property-tested: on every tick of random runs (crowds forming and milling,
//! joins, leaves, teleports, a stage space with its own rules) the introduced pairs are
//! symmetric, within leave_range, at most max_peers per client, use all free room, prefer
//! nearer peers (no pair both sides would take over a farther one by the margin), and tell
//! clients exactly the net change. A jittering crowd does not churn. With voice rules changing
//! mid-run (groups, blocks, whisper and shout), group pairs stand whatever the cap, blocked
//! pairs never form, and proximity fills the rest by the same rules.

use std::collections::{BTreeMap, BTreeSet};

use mingle::kit::ordered;
use mingle::protocol::{PeerId, Realm, SpaceId};
use mingle::proximity::{
    BruteForce, DepartureCause, GroupId, PairChange, Proximity, ProximityConfig, SpaceRules,
    check_capped_with_rules,
};
use proptest::prelude::*;

const PEERS: u64 = 30;
const CAP: u32 = 3;
const STAGE: SpaceId = SpaceId(9);

#[derive(Debug, Clone)]
enum Op {
    Move {
        peer: u64,
        stage: bool,
        pos: [f32; 3],
    },
    Remove {
        peer: u64,
    },
    Tick,
    Join {
        peer: u64,
        group: u64,
    },
    Leave {
        peer: u64,
        group: u64,
    },
    Block {
        a: u64,
        b: u64,
        on: bool,
    },
    Voice {
        peer: u64,
        voice: f32,
    },
}

fn rule_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => op(),
        2 => (0..PEERS, 0..3u64).prop_map(|(peer, group)| Op::Join { peer, group }),
        1 => (0..PEERS, 0..3u64).prop_map(|(peer, group)| Op::Leave { peer, group }),
        2 => (0..PEERS, 0..PEERS, prop::bool::weighted(0.7)).prop_map(|(a, b, on)| Op::Block { a, b, on }),
        2 => (0..PEERS, prop_oneof![Just(0.5f32), Just(1.0), Just(2.0)])
            .prop_map(|(peer, voice)| Op::Voice { peer, voice }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // A dense crowd: everyone within a few units, so the cap binds.
        12 => (0..PEERS, prop::bool::weighted(0.15), -12i32..12, -12i32..12)
            .prop_map(|(peer, stage, x, y)| Op::Move { peer, stage, pos: [x as f32, y as f32, 0.0] }),
        2 => (0..PEERS, -200.0f32..200.0, -200.0f32..200.0)
            .prop_map(|(peer, x, y)| Op::Move { peer, stage: false, pos: [x, y, 0.0] }),
        1 => (0..PEERS).prop_map(|peer| Op::Remove { peer }),
        5 => Just(Op::Tick),
    ]
}

fn config() -> ProximityConfig {
    ProximityConfig {
        max_peers: std::num::NonZeroU32::new(CAP),
        replace_margin: 2.0,
        spaces: vec![(
            STAGE,
            SpaceRules {
                range: 40.0,
                leave_range: 45.0,
                max_peers: std::num::NonZeroU32::new(6),
            },
        )],
        ..ProximityConfig::default()
    }
}

/// Runs `ops` and checks every tick against every rule of the cap (and the voice rules).
fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let config = config();
    let mut core = Proximity::new(config.clone());
    // Holds the voice rules for the checker (never ticked).
    let mut rules = BruteForce::new(config.clone());
    core.set_max_group_size(5);
    rules.set_max_group_size(5);
    let mut at: BTreeMap<u64, (SpaceId, [f32; 3])> = BTreeMap::new();
    let mut out = Vec::new();
    // What clients believe: the previous tick's pairs with this tick's changes applied the
    // way the client plugin applies them (departures first, then introductions).
    let mut told: BTreeSet<(PeerId, PeerId)> = BTreeSet::new();
    for (step, op) in ops.iter().chain(std::iter::once(&Op::Tick)).enumerate() {
        match *op {
            Op::Move { peer, stage, pos } => {
                let space = if stage { STAGE } else { SpaceId(0) };
                core.set_position(PeerId(peer), Realm(1), space, pos)
                    .unwrap();
                at.insert(peer, (space, pos));
            }
            Op::Remove { peer } => {
                core.remove(PeerId(peer));
                at.remove(&peer);
            }
            Op::Join { peer, group } => {
                let (p, g) = (PeerId(peer), GroupId(group));
                prop_assert_eq!(
                    core.join_group(p, Realm(1), g),
                    rules.join_group(p, Realm(1), g)
                );
            }
            Op::Leave { peer, group } => {
                let (p, g) = (PeerId(peer), GroupId(group));
                prop_assert_eq!(
                    core.leave_group(p, Realm(1), g),
                    rules.leave_group(p, Realm(1), g)
                );
            }
            Op::Block { a, b, on } => {
                prop_assert_eq!(
                    core.set_blocked(PeerId(a), PeerId(b), on),
                    rules.set_blocked(PeerId(a), PeerId(b), on)
                );
            }
            Op::Voice { peer, voice } => {
                core.set_voice_range(PeerId(peer), voice).unwrap();
                rules.set_voice_range(PeerId(peer), voice).unwrap();
            }
            Op::Tick => {
                out.clear();
                core.tick(&mut out);
                prop_assert_eq!(
                    core.check_invariants(),
                    Ok(()),
                    "invariants at step {}",
                    step
                );
                // The pair set, and its symmetry.
                let mut pairs = BTreeSet::new();
                for &p in at.keys() {
                    for q in core.nearby(PeerId(p)).unwrap() {
                        prop_assert!(
                            core.are_introduced(q, PeerId(p)),
                            "symmetric at step {}",
                            step
                        );
                        pairs.insert(ordered(PeerId(p), q));
                    }
                }
                for change in &out {
                    if let PairChange::Left { a, b, .. } = *change {
                        told.remove(&ordered(a, b));
                    }
                }
                for change in &out {
                    if let PairChange::Entered { a, b, .. } = *change {
                        told.insert(ordered(a, b));
                    }
                }
                prop_assert_eq!(
                    &told,
                    &pairs,
                    "step {}: what clients were told is the state",
                    step
                );
                let clients: Vec<_> = at
                    .iter()
                    .map(|(&p, &(s, pos))| (PeerId(p), Realm(1), s, pos))
                    .collect();
                let bad = check_capped_with_rules(&config, rules.rules(), &clients, &pairs);
                prop_assert!(bad.is_empty(), "step {}: {:?}", step, bad);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_tick_keeps_every_rule_of_the_cap(ops in proptest::collection::vec(op(), 1..250)) {
        run(&ops)?;
    }

    #[test]
    fn every_tick_keeps_the_cap_and_the_voice_rules(ops in proptest::collection::vec(rule_op(), 1..250)) {
        run(&ops)?;
    }
}

#[test]
fn a_crowd_of_fifty_on_one_spot_gets_exactly_the_cap() {
    let mut core = Proximity::new(config());
    for k in 0..50u64 {
        let pos = [(k % 7) as f32, (k / 7) as f32, 0.0];
        core.set_position(PeerId(k), Realm(1), SpaceId(0), pos)
            .unwrap();
    }
    core.tick(&mut Vec::new());
    for k in 0..50u64 {
        assert_eq!(
            core.nearby(PeerId(k)).unwrap().count(),
            CAP as usize,
            "client {k}"
        );
    }
    // Nobody moves: nothing changes, tick after tick.
    let mut out = Vec::new();
    for _ in 0..5 {
        core.tick(&mut out);
    }
    assert!(out.is_empty());
}

#[test]
fn the_stage_space_carries_further_with_its_own_cap() {
    let mut core = Proximity::new(config());
    core.set_position(PeerId(1), Realm(1), STAGE, [0.0; 3])
        .unwrap();
    core.set_position(PeerId(2), Realm(1), STAGE, [35.0, 0.0, 0.0])
        .unwrap();
    core.set_position(PeerId(3), Realm(1), SpaceId(0), [0.0; 3])
        .unwrap();
    core.set_position(PeerId(4), Realm(1), SpaceId(0), [35.0, 0.0, 0.0])
        .unwrap();
    core.tick(&mut Vec::new());
    assert!(
        core.are_introduced(PeerId(1), PeerId(2)),
        "35 units apart on the stage: heard"
    );
    assert!(
        !core.are_introduced(PeerId(3), PeerId(4)),
        "35 units apart elsewhere: not"
    );
}

/// Everyone in a packed crowd shuffles a little every tick; returns how many pairs were
/// replaced over 50 ticks.
fn churn_in_a_shuffling_crowd(margin: f32) -> usize {
    let mut core = Proximity::new(ProximityConfig {
        replace_margin: margin,
        ..config()
    });
    let mut rng = 7u64;
    let mut jitter = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % 1000) as f32 / 1000.0 * 0.5 - 0.25
    };
    let home = |k: u64| [(k % 7) as f32 * 1.5, (k / 7) as f32 * 1.5, 0.0];
    for k in 0..49u64 {
        core.set_position(PeerId(k), Realm(1), SpaceId(0), home(k))
            .unwrap();
    }
    core.tick(&mut Vec::new());
    let mut replaced = 0;
    let mut out = Vec::new();
    for _ in 0..50 {
        for k in 0..49u64 {
            let h = home(k);
            core.set_position(
                PeerId(k),
                Realm(1),
                SpaceId(0),
                [h[0] + jitter(), h[1] + jitter(), 0.0],
            )
            .unwrap();
        }
        out.clear();
        core.tick(&mut out);
        replaced += out
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    PairChange::Left {
                        cause: DepartureCause::Replaced,
                        ..
                    }
                )
            })
            .count();
    }
    replaced
}

#[test]
fn a_shuffling_crowd_does_not_churn() {
    let (with_margin, without) = (
        churn_in_a_shuffling_crowd(2.0),
        churn_in_a_shuffling_crowd(0.0),
    );
    assert!(
        without > 20,
        "without a margin the crowd churns: {without} replacements"
    );
    assert!(
        with_margin * 10 <= without,
        "the margin cuts churn at least tenfold: {with_margin} vs {without}"
    );
}
