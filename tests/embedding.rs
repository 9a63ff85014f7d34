//! Embedding mingle in a game's app: the game's clocks stay the game's, and entities the game
//! spawns itself take part in proximity through their component hooks alone.

use std::net::SocketAddr;
use std::time::Duration;

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use mingle::protocol::{PeerId, Realm, SpaceId};
use mingle::proximity::DepartureCause;
use mingle::server::{
    MinglePeer, MinglePosition, MingleProximityPlugin, MingleServerConfig, MingleServerPlugin,
    MingleServerStatus, MingleSpace, NearbyPeers, PairEntered, PairLeft, PeerDirectory,
    ProximityClock,
};

/// How often the game's own `FixedUpdate` ran.
#[derive(Resource, Default)]
struct PhysicsSteps(u64);

fn physics_step(mut steps: ResMut<PhysicsSteps>) {
    steps.0 += 1;
}

#[test]
fn an_embedded_server_leaves_the_games_fixed_update_at_64_hz() {
    let frame = Duration::from_millis(5);
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(TimeUpdateStrategy::ManualDuration(frame))
        // The game's physics rate, set before mingle is added (mingle must not override it).
        .insert_resource(Time::<Fixed>::from_hz(64.0))
        .init_resource::<PhysicsSteps>()
        .add_systems(FixedUpdate, physics_step)
        .add_plugins(MingleServerPlugin::new(MingleServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tick_hz: 20.0,
            ..MingleServerConfig::default()
        }));
    app.update();
    assert!(
        matches!(
            app.world().resource::<MingleServerStatus>(),
            MingleServerStatus::Serving(_)
        ),
        "the server started in its Startup system"
    );
    let (physics0, ticks0) = (
        app.world().resource::<PhysicsSteps>().0,
        app.world().resource::<ProximityClock>().ticks(),
    );
    // Four seconds of game time.
    for _ in 0..800 {
        app.update();
    }
    let physics = app.world().resource::<PhysicsSteps>().0 - physics0;
    let ticks = app.world().resource::<ProximityClock>().ticks() - ticks0;
    assert_eq!(
        app.world().resource::<Time<Fixed>>().timestep(),
        Duration::from_secs_f64(1.0 / 64.0),
        "the game's fixed timestep is untouched"
    );
    assert!(
        (254..=258).contains(&physics),
        "the game's FixedUpdate ran {physics} times in 4 s, expected 256 (64 Hz)"
    );
    assert!(
        (79..=81).contains(&ticks),
        "the proximity tick ran {ticks} times in 4 s, expected 80 (20 Hz)"
    );
}

#[test]
fn a_server_that_cannot_bind_reports_failed_instead_of_panicking() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(MingleServerPlugin::new(MingleServerConfig {
            bind: taken.local_addr().expect("addr"),
            ..MingleServerConfig::default()
        }));
    app.update();
    app.update();
    match app.world().resource::<MingleServerStatus>() {
        MingleServerStatus::Failed(why) => assert!(why.contains("cannot bind"), "{why}"),
        other => panic!("expected Failed, got {other:?}"),
    }
}

/// Everything the proximity plugin wrote, in order.
#[derive(Resource, Default)]
struct Seen {
    entered: Vec<(PeerId, PeerId)>,
    left: Vec<(PeerId, PeerId, DepartureCause)>,
}

fn see(mut seen: ResMut<Seen>, mut e: MessageReader<PairEntered>, mut l: MessageReader<PairLeft>) {
    // Pairs in ascending order: which side is `a` is not part of the contract.
    seen.entered
        .extend(e.read().map(|m| (m.a.min(m.b), m.a.max(m.b))));
    seen.left
        .extend(l.read().map(|m| (m.a.min(m.b), m.a.max(m.b), m.cause)));
}

fn game_spawned(id: u64, x: f32) -> (MinglePeer, MinglePosition, MingleSpace) {
    (
        MinglePeer {
            id: PeerId(id),
            realm: Realm(0),
        },
        MinglePosition(Vec3::new(x, 0.0, 0.0)),
        MingleSpace(SpaceId(0)),
    )
}

#[test]
fn the_proximity_plugin_alone_follows_game_spawned_entities_through_their_hooks() {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(
            50,
        )))
        .add_plugins(MingleProximityPlugin::default())
        .init_resource::<Seen>()
        .add_systems(Update, see);
    let a = app.world_mut().spawn(game_spawned(1, 0.0)).id();
    let b = app.world_mut().spawn(game_spawned(2, 5.0)).id();
    app.world_mut().spawn(game_spawned(3, 500.0));
    for _ in 0..3 {
        app.update();
    }
    assert_eq!(
        app.world().resource::<PeerDirectory>().len(),
        3,
        "spawning registers"
    );
    assert_eq!(
        app.world().resource::<Seen>().entered,
        vec![(PeerId(1), PeerId(2))]
    );
    let nearby = |app: &App, e: Entity| -> Vec<PeerId> {
        app.world()
            .get::<NearbyPeers>(e)
            .expect("required")
            .iter()
            .collect()
    };
    assert_eq!(nearby(&app, a), vec![PeerId(2)]);

    app.world_mut().despawn(b);
    for _ in 0..3 {
        app.update();
    }
    assert_eq!(
        app.world().resource::<Seen>().left,
        vec![(PeerId(1), PeerId(2), DepartureCause::Disconnect)],
        "despawning ends the entity's pairs with a departure"
    );
    assert_eq!(nearby(&app, a), Vec::<PeerId>::new());
    assert_eq!(
        app.world().resource::<PeerDirectory>().len(),
        2,
        "despawning unregisters"
    );

    // The id comes back on a new entity: introduced afresh.
    app.world_mut().spawn(game_spawned(2, 3.0));
    for _ in 0..3 {
        app.update();
    }
    assert_eq!(
        app.world().resource::<Seen>().entered,
        vec![(PeerId(1), PeerId(2)), (PeerId(1), PeerId(2))]
    );
}
