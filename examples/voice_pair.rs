//! Two players, one mingle server, one real WebRTC data channel between them.
//!
//! Starts a server, connects two clients 30 units apart, walks one into range: mingle
//! introduces them, relays the offer and answer, the data channel opens over 127.0.0.1 host
//! candidates, each sends the other a message (where a game sends Opus frames), then one walks
//! away and the channel closes. Prints each step and exits 0.
//!
//! ```text
//! cargo run --release --features webrtc --example voice_pair
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use mingle::client::{
    LinkClosed, LinkData, LinkOpened, MingleClientConfig, MingleClientPlugin, MingleLocal,
    MingleServer, MingleWebRtcPlugin, PeerEntered, PeerLeft, WebRtcLinks,
};
use mingle::protocol::{PeerId, Realm};
use mingle::server::{MingleServerConfig, MingleServerPlugin, ServerAddress, ServerStats};

/// What one client saw, for the story and the checks.
#[derive(Debug, Default, Resource)]
struct Story {
    opened: Vec<PeerId>,
    heard: Vec<(PeerId, String)>,
    closed: Vec<PeerId>,
}

fn narrate(
    name: Res<Player>,
    mut story: ResMut<Story>,
    mut entered: MessageReader<PeerEntered>,
    mut left: MessageReader<PeerLeft>,
    mut opened: MessageReader<LinkOpened>,
    mut data: MessageReader<LinkData>,
    mut closed: MessageReader<LinkClosed>,
) {
    let name = name.0;
    for PeerEntered(p) in entered.read() {
        println!("{name}: mingle introduced {p}");
    }
    for LinkOpened(p) in opened.read() {
        println!("{name}: WebRTC data channel to {p} is open");
        story.opened.push(*p);
    }
    for LinkData { from, data } in data.read() {
        let text = String::from_utf8_lossy(data).into_owned();
        println!("{name}: received from {from}: {text:?}");
        story.heard.push((*from, text));
    }
    for PeerLeft(p) in left.read() {
        println!("{name}: mingle says {p} left");
    }
    for LinkClosed(p) in closed.read() {
        println!("{name}: data channel to {p} closed");
        story.closed.push(*p);
    }
}

/// This app's player name, for the printout.
#[derive(Resource)]
struct Player(&'static str);

fn player(name: &'static str, id: u64, server: SocketAddr, x: f32) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(
            MingleClientPlugin::new(MingleClientConfig {
                position_hz: 60.0,
                ..default()
            })
            .connect_to(MingleServer::Unsecure {
                server,
                id: PeerId(id),
                realm: Realm(0),
            }),
        )
        .add_plugins(MingleWebRtcPlugin::default())
        .insert_resource(Player(name))
        .init_resource::<Story>()
        .add_systems(Update, narrate);
    app.world_mut()
        .spawn((MingleLocal::default(), Transform::from_xyz(x, 0.0, 0.0)));
    app
}

fn walk_to(app: &mut App, x: f32) {
    let world = app.world_mut();
    let mut q = world.query_filtered::<&mut Transform, With<MingleLocal>>();
    q.single_mut(world).expect("one player").translation.x = x;
}

/// Steps all three apps until `done` or `limit`.
fn run_until(
    apps: &mut [&mut App],
    limit: Duration,
    mut done: impl FnMut(&[&mut App]) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        for app in apps.iter_mut() {
            app.update();
        }
        if done(apps) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn story(app: &App) -> &Story {
    app.world().resource::<Story>()
}

fn main() -> ExitCode {
    let mut server = App::new();
    server
        .add_plugins(MinimalPlugins)
        .add_plugins(MingleServerPlugin::new(MingleServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..default()
        }));
    server.update(); // binds the socket
    let addr = server.world().resource::<ServerAddress>().0;
    println!("server: listening on udp://{addr}");

    let mut alice = player("alice", 1, addr, 0.0);
    let mut bob = player("bob", 2, addr, 30.0);
    println!("alice at x=0, bob at x=30: out of range (20)");
    run_until(
        &mut [&mut server, &mut alice, &mut bob],
        Duration::from_millis(500),
        |_| false,
    );

    println!("bob walks to x=5");
    walk_to(&mut bob, 5.0);
    let open = run_until(
        &mut [&mut server, &mut alice, &mut bob],
        Duration::from_secs(20),
        |a| !story(a[1]).opened.is_empty() && !story(a[2]).opened.is_empty(),
    );
    if !open {
        eprintln!("the data channel did not open within 20 s");
        return ExitCode::FAILURE;
    }
    alice
        .world_mut()
        .resource_mut::<WebRtcLinks>()
        .send(PeerId(2), b"hello bob (an Opus frame would go here)");
    bob.world_mut()
        .resource_mut::<WebRtcLinks>()
        .send(PeerId(1), b"hello alice");
    let heard = run_until(
        &mut [&mut server, &mut alice, &mut bob],
        Duration::from_secs(10),
        |a| !story(a[1]).heard.is_empty() && !story(a[2]).heard.is_empty(),
    );
    if !heard {
        eprintln!("the messages did not arrive within 10 s");
        return ExitCode::FAILURE;
    }

    println!("bob walks away to x=100");
    walk_to(&mut bob, 100.0);
    let closed = run_until(
        &mut [&mut server, &mut alice, &mut bob],
        Duration::from_secs(10),
        |a| !story(a[1]).closed.is_empty() && !story(a[2]).closed.is_empty(),
    );
    if !closed {
        eprintln!("the channel did not close within 10 s");
        return ExitCode::FAILURE;
    }
    let stats = server.world().resource::<ServerStats>();
    println!(
        "server: {} introduction(s), {} signal(s) relayed, {} successful connection report(s)",
        stats.introductions, stats.signals_relayed, stats.reports_connected
    );
    ExitCode::SUCCESS
}
