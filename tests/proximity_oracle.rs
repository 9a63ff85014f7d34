//! The proximity core agrees with the brute-force oracle on every tick of random runs:
//! moves, hysteresis, spaces, realms, joins, leaves and teleports across the world.

use mingle::protocol::{PeerId, Realm, SpaceId};
use mingle::proximity::{
    BruteForce, ClientHandle, DepartureCause, PairChange, Proximity, ProximityConfig,
    ProximityError, SpaceRules,
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
                PairChange::Entered { a, b } => (a, b, 0),
                PairChange::Left { a, b, cause } => (
                    a,
                    b,
                    match cause {
                        DepartureCause::Range => 1,
                        DepartureCause::Disconnect => 2,
                        DepartureCause::SpaceChange => 3,
                        DepartureCause::Replaced => 4,
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn core_matches_oracle_every_tick(ops in proptest::collection::vec(op_strategy(), 1..300)) {
        // Space 1 is a "stage" with its own, longer distances.
        let config = ProximityConfig {
            spaces: vec![(SpaceId(1), SpaceRules { range: 35.0, leave_range: 40.0, max_peers: None })],
            ..ProximityConfig::default()
        };
        let mut core = Proximity::new(config.clone());
        let mut oracle = BruteForce::new(config);
        let mut spaces = [0u32; PEERS as usize];
        // Moves go by id, teleports by handle where one is held: both input paths are checked.
        let mut handles: [Option<ClientHandle>; PEERS as usize] = [None; PEERS as usize];
        let (mut got, mut want) = (Vec::new(), Vec::new());
        for (step, op) in ops.iter().chain(std::iter::once(&Op::Tick)).enumerate() {
            match *op {
                Op::Move { peer, space, pos } => {
                    spaces[peer as usize] = space;
                    let handle = core.set_position(PeerId(peer), realm_of(peer), SpaceId(space), pos).unwrap();
                    handles[peer as usize] = Some(handle);
                    oracle.set_position(PeerId(peer), realm_of(peer), SpaceId(space), pos);
                }
                Op::Teleport { peer, pos } => {
                    let space = SpaceId(spaces[peer as usize]);
                    match handles[peer as usize] {
                        Some(handle) => core.set_position_of(handle, realm_of(peer), space, pos).unwrap(),
                        None => {
                            let handle = core.set_position(PeerId(peer), realm_of(peer), space, pos).unwrap();
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
                Op::Tick => {
                    got.clear();
                    want.clear();
                    core.tick(&mut got);
                    oracle.tick(&mut want);
                    prop_assert_eq!(normalized(&got), normalized(&want), "changes at step {}", step);
                    for p in 0..PEERS {
                        let mut mine: Vec<PeerId> = core.nearby(PeerId(p)).map(|it| it.collect()).unwrap_or_default();
                        mine.sort_unstable();
                        prop_assert_eq!(&mine, &oracle.nearby(PeerId(p)), "nearby set of {} at step {}", p, step);
                    }
                }
            }
        }
    }
}
