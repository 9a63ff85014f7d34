//! The peer cap, property-tested: on every tick of random runs (crowds forming and milling,
//! joins, leaves, teleports, a stage space with its own rules) the introduced pairs are
//! symmetric, within leave_range, at most max_peers per client, use all free room, prefer
//! nearer peers, and replace a pair only for one nearer by the margin.

use std::collections::{BTreeMap, BTreeSet};

use mingle::protocol::{PeerId, Realm, SpaceId};
use mingle::proximity::{
    DepartureCause, PairChange, Proximity, ProximityConfig, SpaceRules, check_capped,
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
        max_peers: Some(CAP),
        replace_margin: 2.0,
        spaces: vec![(
            STAGE,
            SpaceRules {
                range: 40.0,
                leave_range: 45.0,
                max_peers: Some(6),
            },
        )],
        ..ProximityConfig::default()
    }
}

fn dist(a: [f32; 3], b: [f32; 3]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_tick_keeps_every_rule_of_the_cap(ops in proptest::collection::vec(op(), 1..250)) {
        let config = config();
        let mut core = Proximity::new(config.clone());
        let mut at: BTreeMap<u64, (SpaceId, [f32; 3])> = BTreeMap::new();
        let mut out = Vec::new();
        for (step, op) in ops.iter().chain(std::iter::once(&Op::Tick)).enumerate() {
            match *op {
                Op::Move { peer, stage, pos } => {
                    let space = if stage { STAGE } else { SpaceId(0) };
                    core.set_position(PeerId(peer), Realm(1), space, pos).unwrap();
                    at.insert(peer, (space, pos));
                }
                Op::Remove { peer } => {
                    core.remove(PeerId(peer));
                    at.remove(&peer);
                }
                Op::Tick => {
                    out.clear();
                    core.tick(&mut out);
                    // The pair set, and its symmetry.
                    let mut pairs = BTreeSet::new();
                    for &p in at.keys() {
                        for q in core.nearby(PeerId(p)).unwrap() {
                            prop_assert!(core.are_introduced(q, PeerId(p)), "symmetric at step {}", step);
                            pairs.insert(if PeerId(p) < q { (PeerId(p), q) } else { (q, PeerId(p)) });
                        }
                    }
                    let clients: Vec<_> = at.iter().map(|(&p, &(s, pos))| (PeerId(p), Realm(1), s, pos)).collect();
                    let bad = check_capped(&config, &clients, &pairs);
                    prop_assert!(bad.is_empty(), "step {}: {:?}", step, bad);
                    // Stability: a pair replaced in this tick made way for one nearer by the margin.
                    for change in &out {
                        if let PairChange::Left { a, b, cause: DepartureCause::Replaced } = *change {
                            let (Some(&(_, pa)), Some(&(_, pb))) = (at.get(&a.0), at.get(&b.0)) else { continue };
                            let replaced = dist(pa, pb);
                            let nearer = out.iter().any(|c| match *c {
                                PairChange::Entered { a: x, b: y } if x == a || y == a => {
                                    let other = if x == a { y } else { x };
                                    at.get(&other.0).is_some_and(|&(_, po)| dist(pa, po) + config.replace_margin <= replaced + 1e-3)
                                }
                                _ => false,
                            });
                            prop_assert!(nearer, "step {}: {:?} replaced without a nearer peer", step, change);
                        }
                    }
                }
            }
        }
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
