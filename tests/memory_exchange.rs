//! The in-memory exchange itself: no socket, the same messages on every run, the connection
//! state a game sees, and the server ending a link.

mod common;

use bevy::math::Vec3;
use bevy_renet::RenetServer;
use common::ids;
use common::memory::MemoryHarness;
use mingle::client::{MemoryLink, MingleConnectionState};
use mingle::protocol::{PeerId, Realm, SpaceId};
use mingle::server::{MingleServerStatus, ServerAddress};

/// Everything every client was told, in order, and the server's counts.
fn scripted_run() -> (Vec<String>, String) {
    let mut h = MemoryHarness::new();
    for (id, x) in [(1, 0.0), (2, 5.0), (3, 12.0), (4, 40.0)] {
        h.connect(id, Vec3::new(x, 0.0, 0.0));
    }
    h.steps(3);
    h.client_mut(0).send_signal(PeerId(2), &[7; 3000]);
    h.client_mut(0).send_signal(PeerId(4), b"stranger");
    h.move_to(3, Vec3::new(22.0, 0.0, 0.0));
    h.move_to(1, Vec3::new(30.0, 0.0, 0.0));
    h.set_space(2, SpaceId(5));
    h.client_mut(1).request_refresh();
    h.disconnect(0);
    h.steps(3);
    let told = h
        .clients
        .iter()
        .map(|c| {
            let r = c.recorder();
            format!(
                "{}: entered {:?} left {:?} signals {:?} rejections {:?} nearby {:?} stats {:?}",
                c.id,
                r.entered,
                r.left,
                r.signals
                    .iter()
                    .map(|(from, p)| (from, p.len()))
                    .collect::<Vec<_>>(),
                r.rejections,
                c.nearby(),
                c.stats()
            )
        })
        .collect();
    // The one wall-clock figure: how long the last tick took to compute.
    let mut stats = h.server_stats();
    stats.last_tick_secs = 0.0;
    (told, format!("{stats:?}"))
}

#[test]
fn the_same_run_gives_the_same_messages() {
    let first = scripted_run();
    let second = scripted_run();
    assert_eq!(first, second);
    assert!(
        first.0.iter().any(|line| line.contains("left [PeerId(1)")),
        "the script did something: {first:?}"
    );
}

#[test]
fn an_in_memory_server_opens_no_socket() {
    let mut h = MemoryHarness::new();
    assert_eq!(
        *h.server.world().resource::<MingleServerStatus>(),
        MingleServerStatus::InMemory
    );
    h.connect(1, Vec3::ZERO);
    assert!(h.server.world().get_resource::<ServerAddress>().is_none());
}

#[test]
fn the_connection_state_follows_the_link() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::ZERO);
    assert_eq!(
        *h.client(a).app.world().resource::<MingleConnectionState>(),
        MingleConnectionState::Connected { you: PeerId(1) }
    );
    let gone = h.disconnect(a);
    assert_eq!(
        *gone.app.world().resource::<MingleConnectionState>(),
        MingleConnectionState::Disconnected
    );
}

#[test]
fn a_second_client_with_a_taken_id_is_refused() {
    let mut h = MemoryHarness::new();
    h.connect(1, Vec3::ZERO);
    let mut twin = h
        .client(0)
        .app
        .world()
        .resource::<MingleConnectionState>()
        .clone();
    assert!(twin.is_connected());
    // A second app asks for id 1 while the first holds it.
    let mut app = bevy::app::App::new();
    app.add_plugins(bevy::MinimalPlugins)
        .add_plugins(mingle::client::MingleClientPlugin::default());
    MemoryLink::connect(app.world_mut(), PeerId(1), Realm(1));
    app.update();
    mingle::memory::exchange(h.server.world_mut(), [app.world_mut()]);
    app.update();
    twin = app.world().resource::<MingleConnectionState>().clone();
    assert_eq!(twin, MingleConnectionState::Disconnected);
    h.steps(2);
    assert!(h.client(0).welcomed(), "the first keeps its connection");
}

#[test]
fn a_client_the_server_drops_loses_its_peers() {
    let mut h = MemoryHarness::new();
    let a = h.connect(1, Vec3::ZERO);
    let b = h.connect(2, Vec3::new(5.0, 0.0, 0.0));
    h.steps(3);
    assert_eq!(h.client(a).nearby(), ids(&[2]));
    h.server
        .world_mut()
        .resource_mut::<RenetServer>()
        .disconnect(1);
    h.steps(3);
    assert_eq!(h.client(a).recorder().left, ids(&[2]), "A lost B");
    assert_eq!(h.client(b).recorder().left, ids(&[1]), "B told A left");
    assert_eq!(
        *h.client(a).app.world().resource::<MingleConnectionState>(),
        MingleConnectionState::Disconnected
    );
}
