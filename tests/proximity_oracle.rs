//! The proximity core agrees with the brute-force oracle on every tick of random runs:
//! moves, hysteresis, spaces, realms, joins, leaves and teleports across the world; and with
//! the voice rules changing mid-run (groups joined and left, pairs blocked and unblocked,
//! whisper and shout), on every tick, causes included.

use mingle::protocol::{PeerId, Realm, SpaceId};
use mingle::proximity::{
    ArrivalCause, BruteForce, ClientHandle, DepartureCause, GroupId, PairChange, Proximity,
    ProximityConfig, ProximityError, SpaceRules,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Small step (or exact placement on integer coordinates) in a space.
    Move {
        peer: u64,
        space: u32,
        pos: [f32; 3],
    },
    /// Jump far across the world.
    Teleport {
        peer: u64,
        pos: [f32; 3],
    },
    Remove {
        peer: u64,
    },
    Tick,
    /// Voice rules (only in the runs with rules).
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

const PEERS: u64 = 24;

fn pos_strategy() -> impl Strategy<Value = [f32; 3]> {
    prop_oneof![
        // A 2D game on the XY plane, integer coordinates so exact-range distances occur.
        (-40i32..40, -40i32..40).prop_map(|(x, y)| [x as f32, y as f32, 0.0]),
        // A 3D Y-up game.
        (-50.0f32..50.0, -3.0f32..3.0, -50.0f32..50.0).prop_map(|(x, y, z)| [x, y, z]),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..PEERS, prop_oneof![8 => Just(0u32), 1 => Just(1u32)], pos_strategy())
            .prop_map(|(peer, space, pos)| Op::Move { peer, space, pos }),
        1 => (0..PEERS, -1.0e6f32..1.0e6).prop_map(|(peer, x)| Op::Teleport { peer, pos: [x, 0.0, -x] }),
        1 => (0..PEERS).prop_map(|peer| Op::Remove { peer }),
        4 => Just(Op::Tick),
    ]
}

fn normalized(changes: &[PairChange]) -> Vec<(u64, u64, u8)> {
    let mut v: Vec<_> = changes
        .iter()
        .map(|c| {
            let (a, b, tag) = match *c {
                PairChange::Entered { a, b, cause } => (
                    a,
                    b,
                    match cause {
                        ArrivalCause::Proximity => 0,
                        ArrivalCause::Group => 5,
                    },
                ),
                PairChange::Left { a, b, cause } => (
                    a,
                    b,
                    match cause {
                        DepartureCause::Range => 1,
                        DepartureCause::Disconnect => 2,
                        DepartureCause::SpaceChange => 3,
                        DepartureCause::Replaced => 4,
                        DepartureCause::Blocked => 6,
                        DepartureCause::GroupLeft => 7,
                    },
                ),
            };
            (a.0.min(b.0), a.0.max(b.0), tag)
        })
        .collect();
    v.sort_unstable();
    v
}

fn realm_of(peer: u64) -> Realm {
    // A few peers live in a second realm and must never meet the others.
    Realm(if peer % 7 == 6 { 2 } else { 1 })
}

fn rule_op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..PEERS, prop_oneof![8 => Just(0u32), 1 => Just(1u32)], pos_strategy())
            .prop_map(|(peer, space, pos)| Op::Move { peer, space, pos }),
        1 => (0..PEERS, -1.0e6f32..1.0e6).prop_map(|(peer, x)| Op::Teleport { peer, pos: [x, 0.0, -x] }),
        1 => (0..PEERS).prop_map(|peer| Op::Remove { peer }),
        4 => Just(Op::Tick),
        2 => (0..PEERS, 0..4u64).prop_map(|(peer, group)| Op::Join { peer, group }),
        1 => (0..PEERS, 0..4u64).prop_map(|(peer, group)| Op::Leave { peer, group }),
        2 => (0..PEERS, 0..PEERS, prop::bool::weighted(0.7)).prop_map(|(a, b, on)| Op::Block { a, b, on }),
        2 => (0..PEERS, prop_oneof![Just(0.5f32), Just(1.0), Just(2.0), Just(3.0)])
            .prop_map(|(peer, voice)| Op::Voice { peer, voice }),
    ]
}

/// Groups hold at most this many in the runs: joins beyond it are refused by both.
const GROUP_LIMIT: usize = 5;

/// Runs `ops` on the core and the oracle and compares every tick.
fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    // Space 1 is a "stage" with its own, longer distances.
    let config = ProximityConfig {
        spaces: vec![(
            SpaceId(1),
            SpaceRules {
                range: 35.0,
                leave_range: 40.0,
                max_peers: None,
            },
        )],
        ..ProximityConfig::default()
    };
    let mut core = Proximity::new(config.clone());
    let mut oracle = BruteForce::new(config);
    core.set_max_group_size(GROUP_LIMIT);
    oracle.set_max_group_size(GROUP_LIMIT);
    let mut spaces = [0u32; PEERS as usize];
    // Moves go by id, teleports by handle where one is held: both input paths are checked.
    let mut handles: [Option<ClientHandle>; PEERS as usize] = [None; PEERS as usize];
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for (step, op) in ops.iter().chain(std::iter::once(&Op::Tick)).enumerate() {
        match *op {
            Op::Move { peer, space, pos } => {
                spaces[peer as usize] = space;
                let handle = core
                    .set_position(PeerId(peer), realm_of(peer), SpaceId(space), pos)
                    .unwrap();
                handles[peer as usize] = Some(handle);
                oracle.set_position(PeerId(peer), realm_of(peer), SpaceId(space), pos);
            }
            Op::Teleport { peer, pos } => {
                let space = SpaceId(spaces[peer as usize]);
                match handles[peer as usize] {
                    Some(handle) => core
                        .set_position_of(handle, realm_of(peer), space, pos)
                        .unwrap(),
                    None => {
                        let handle = core
                            .set_position(PeerId(peer), realm_of(peer), space, pos)
                            .unwrap();
                        handles[peer as usize] = Some(handle);
                    }
                }
                oracle.set_position(PeerId(peer), realm_of(peer), space, pos);
            }
            Op::Remove { peer } => {
                core.remove(PeerId(peer));
                oracle.remove(PeerId(peer));
                if let Some(stale) = handles[peer as usize].take() {
                    prop_assert_eq!(
                        core.set_position_of(stale, realm_of(peer), SpaceId(0), [0.0; 3]),
                        Err(ProximityError::StaleHandle)
                    );
                }
            }
            Op::Join { peer, group } => {
                let (p, r, g) = (PeerId(peer), realm_of(peer), GroupId(group));
                prop_assert_eq!(
                    core.join_group(p, r, g),
                    oracle.join_group(p, r, g),
                    "join at step {}",
                    step
                );
            }
            Op::Leave { peer, group } => {
                let (p, r, g) = (PeerId(peer), realm_of(peer), GroupId(group));
                prop_assert_eq!(
                    core.leave_group(p, r, g),
                    oracle.leave_group(p, r, g),
                    "leave at step {}",
                    step
                );
            }
            Op::Block { a, b, on } => {
                prop_assert_eq!(
                    core.set_blocked(PeerId(a), PeerId(b), on),
                    oracle.set_blocked(PeerId(a), PeerId(b), on)
                );
            }
            Op::Voice { peer, voice } => {
                core.set_voice_range(PeerId(peer), voice).unwrap();
                oracle.set_voice_range(PeerId(peer), voice).unwrap();
            }
            Op::Tick => {
                got.clear();
                want.clear();
                core.tick(&mut got);
                oracle.tick(&mut want);
                prop_assert_eq!(
                    core.check_invariants(),
                    Ok(()),
                    "invariants at step {}",
                    step
                );
                prop_assert_eq!(
                    normalized(&got),
                    normalized(&want),
                    "changes at step {}",
                    step
                );
                for p in 0..PEERS {
                    let mut mine: Vec<PeerId> = core
                        .nearby(PeerId(p))
                        .map(|it| it.collect())
                        .unwrap_or_default();
                    mine.sort_unstable();
                    prop_assert_eq!(
                        &mine,
                        &oracle.nearby(PeerId(p)),
                        "nearby set of {} at step {}",
                        p,
                        step
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn core_matches_oracle_every_tick(ops in proptest::collection::vec(op_strategy(), 1..300)) {
        run(&ops)?;
    }

    #[test]
    fn core_matches_oracle_with_voice_rules_changing(ops in proptest::collection::vec(rule_op_strategy(), 1..300)) {
        run(&ops)?;
    }
}

/// Rules set and then all taken back: the core goes back to its plain path and still agrees.
#[test]
fn rules_taken_back_leave_plain_proximity() {
    let ops = [
        Op::Move {
            peer: 1,
            space: 0,
            pos: [0.0, 0.0, 0.0],
        },
        Op::Move {
            peer: 2,
            space: 0,
            pos: [300.0, 0.0, 0.0],
        },
        Op::Move {
            peer: 3,
            space: 0,
            pos: [30.0, 0.0, 0.0],
        },
        Op::Join { peer: 1, group: 7 },
        Op::Join { peer: 2, group: 7 },
        Op::Voice {
            peer: 3,
            voice: 2.0,
        },
        Op::Block {
            a: 1,
            b: 3,
            on: true,
        },
        Op::Tick,
        Op::Block {
            a: 1,
            b: 3,
            on: false,
        },
        Op::Leave { peer: 1, group: 7 },
        Op::Voice {
            peer: 3,
            voice: 1.0,
        },
        Op::Tick,
        Op::Move {
            peer: 1,
            space: 0,
            pos: [1.0, 0.0, 0.0],
        },
        Op::Tick,
    ];
    run(&ops).unwrap();
}
