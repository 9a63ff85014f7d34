//! A small game with proximity voice: log in, connect, walk past a friend, survive a server
//! restart.
//!
//! ```sh
//! cargo run --example game                          # headless: a scripted walk, ~9 s
//! cargo run --example game --features debug-window  # a window: walk with the arrow keys
//! ```
//!
//! Everything a game needs runs in this one process, each part in its own thread:
//! - **the game's backend** (`backend::login`): signs a mingle connect token for a player who
//!   logged in — in a real game, your HTTP login service holds the private key;
//! - **a mingle server**, secure (only signed tokens), which is stopped after 4 s and started
//!   again on the same port half a second later, as a deploy would;
//! - **a friend**: another client standing near the road;
//! - **the game**: a login screen (half a second), then `MingleClient::connect` with the token;
//!   the player walks along the road past the friend. It logs who it is introduced to and
//!   what happens to the connection; the client redials by itself after the restart and is
//!   introduced to the friend again. Headless, it exits non-zero if any of that did not happen.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use mingle::client::prelude::*;
use mingle::server::{MingleServerConfig, MingleServerPlugin};

/// Seconds the first server runs before its "deploy".
const SERVER_UP_SECS: f64 = 4.0;
/// Seconds the server is down.
const SERVER_DOWN_SECS: f64 = 0.5;
/// Seconds the headless game runs.
#[cfg(not(feature = "debug-window"))]
const GAME_SECS: f64 = 9.0;
/// Where the friend stands.
const FRIEND_AT: Vec3 = Vec3::new(0.0, 5.0, 0.0);

/// A stand-in for the game's login service.
mod backend {
    use std::net::SocketAddr;

    use mingle::auth::{TokenRequest, generate_token};
    use mingle::protocol::Realm;

    /// The key the backend and the mingle server share (from `mingle-server keygen` in
    /// production; random here).
    pub fn key() -> [u8; 32] {
        mingle::auth::parse_key(&mingle::auth::generate_key()).expect("a fresh key parses")
    }

    /// A player logged in: the connect token that lets them into `server` as `player_id`.
    pub fn login(key: &[u8; 32], server: SocketAddr, player_id: u64) -> String {
        let request = TokenRequest {
            client_id: player_id,
            realm: Realm(0),
            server,
            expire_secs: 300,
            timeout_secs: 5,
        };
        generate_token(&request, key).expect("the backend signs tokens")
    }
}

/// The mingle server, run for `secs` on `socket`.
fn run_server(socket: UdpSocket, key: [u8; 32], secs: f64) {
    App::new()
        .add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(10))))
        .add_plugins(
            MingleServerPlugin::with_socket(MingleServerConfig::default(), socket)
                .with_private_key(key),
        )
        .add_systems(
            Update,
            move |time: Res<Time>, mut exit: MessageWriter<AppExit>| {
                if time.elapsed_secs_f64() >= secs {
                    exit.write(AppExit::Success); // every client is told goodbye
                }
            },
        )
        .run();
}

/// The friend: a client standing by the road for `secs`.
fn run_friend(token: String, secs: f64) {
    App::new()
        .add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(16))))
        .add_plugins(MingleClientPlugin::default().connect_to(MingleServer::Token(token)))
        .add_systems(Startup, |mut commands: Commands| {
            commands.spawn((
                MingleLocal::default(),
                Transform::from_translation(FRIEND_AT),
            ));
        })
        .add_systems(
            Update,
            move |time: Res<Time>, mut exit: MessageWriter<AppExit>| {
                if time.elapsed_secs_f64() >= secs {
                    exit.write(AppExit::Success);
                }
            },
        )
        .run();
}

/// What the game needs to log in.
#[derive(Resource)]
struct Login {
    key: [u8; 32],
    server: SocketAddr,
    done: bool,
}

/// What happened, for the headless run's verdict.
#[derive(Resource, Default)]
struct Story {
    introductions: u32,
    departures: u32,
    connected: u32,
    reconnecting: u32,
}

/// The login screen: after half a second the player "logs in", the backend answers with a
/// token, and the game connects with it.
fn login_screen(time: Res<Time>, mut login: ResMut<Login>, mut mingle: MingleClient) {
    if login.done || time.elapsed_secs_f64() < 0.5 {
        return;
    }
    login.done = true;
    let token = backend::login(&login.key, login.server, 1);
    info!("logged in; connecting to the voice server");
    mingle.connect(MingleServer::Token(token));
}

/// Shows what the game would show: who is within earshot, and the connection.
fn show(
    mut entered: MessageReader<PeerEntered>,
    mut left: MessageReader<PeerLeft>,
    mut changes: MessageReader<MingleConnectionChanged>,
    mut story: ResMut<Story>,
    player: Query<&Transform, With<MingleLocal>>,
) {
    let x = player.single().map_or(0.0, |t| t.translation.x);
    for PeerEntered(peer) in entered.read() {
        story.introductions += 1;
        info!("x = {x:5.1}: {peer} is within earshot (open a voice link)");
    }
    for PeerLeft(peer) in left.read() {
        story.departures += 1;
        info!("x = {x:5.1}: {peer} left (close the link)");
    }
    for MingleConnectionChanged(state) in changes.read() {
        match state {
            MingleConnectionState::Connected { .. } => story.connected += 1,
            MingleConnectionState::Reconnecting { .. } => story.reconnecting += 1,
            _ => {}
        }
        info!("voice connection: {state:?}");
    }
}

/// Headless: the player walks the road at 8 units a second from x = -30.
#[cfg(not(feature = "debug-window"))]
fn walk(time: Res<Time>, mut player: Query<&mut Transform, With<MingleLocal>>) {
    if let Ok(mut t) = player.single_mut() {
        t.translation.x = -30.0 + 8.0 * (time.elapsed_secs() - 0.5).max(0.0);
    }
}

/// Headless: ends the run with a verdict.
#[cfg(not(feature = "debug-window"))]
fn verdict(time: Res<Time>, story: Res<Story>, mut exit: MessageWriter<AppExit>) {
    if time.elapsed_secs_f64() < GAME_SECS {
        return;
    }
    let ok = story.introductions >= 2
        && story.departures >= 2
        && story.connected >= 2
        && story.reconnecting >= 1;
    println!(
        "introductions {} · departures {} · connected {} times · reconnecting {} times: {}",
        story.introductions,
        story.departures,
        story.connected,
        story.reconnecting,
        if ok { "ok" } else { "FAILED" }
    );
    exit.write(if ok {
        AppExit::Success
    } else {
        AppExit::error()
    });
}

/// With a window: arrow keys walk, the camera follows, circles show the ranges.
#[cfg(feature = "debug-window")]
mod window {
    use bevy::prelude::*;
    use mingle::client::prelude::*;

    pub fn walk(
        keys: Res<ButtonInput<KeyCode>>,
        time: Res<Time>,
        mut player: Query<&mut Transform, With<MingleLocal>>,
    ) {
        let mut dir = Vec3::ZERO;
        for (key, d) in [
            (KeyCode::ArrowLeft, Vec3::NEG_X),
            (KeyCode::ArrowRight, Vec3::X),
            (KeyCode::ArrowUp, Vec3::Y),
            (KeyCode::ArrowDown, Vec3::NEG_Y),
        ] {
            if keys.pressed(key) {
                dir += d;
            }
        }
        if let Ok(mut t) = player.single_mut() {
            t.translation += dir.normalize_or_zero() * 10.0 * time.delta_secs();
        }
    }

    pub fn draw(
        mut gizmos: Gizmos,
        player: Query<&Transform, With<MingleLocal>>,
        welcome: Option<Res<MingleWelcome>>,
        nearby: Res<NearbyPeers>,
    ) {
        let scale = 8.0;
        let Ok(t) = player.single() else { return };
        let me = t.translation.truncate() * scale;
        gizmos.circle_2d(me, 6.0, Color::WHITE);
        gizmos.circle_2d(
            super::FRIEND_AT.truncate() * scale,
            6.0,
            Color::srgb(0.4, 0.8, 1.0),
        );
        if let Some(w) = welcome {
            let colour = if nearby.is_empty() {
                Color::srgb(0.5, 0.5, 0.5)
            } else {
                Color::srgb(0.3, 1.0, 0.4)
            };
            gizmos.circle_2d(me, w.range * scale, colour);
        }
    }
}

fn main() {
    let key = backend::key();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback port");
    let server = socket.local_addr().expect("bound");

    // The server, its restart, and the friend.
    std::thread::spawn(move || {
        run_server(socket, key, SERVER_UP_SECS);
        std::thread::sleep(Duration::from_secs_f64(SERVER_DOWN_SECS));
        let again = UdpSocket::bind(server).expect("the same port again");
        run_server(again, key, 3600.0);
    });
    let friend_token = backend::login(&key, server, 2);
    std::thread::spawn(move || run_friend(friend_token, 3600.0));

    let mut app = App::new();
    #[cfg(feature = "debug-window")]
    app.add_plugins(DefaultPlugins)
        .add_systems(Startup, |mut commands: Commands| {
            commands.spawn(Camera2d);
        })
        .add_systems(Update, (window::walk, window::draw));
    #[cfg(not(feature = "debug-window"))]
    app.add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(16))))
        .add_plugins(bevy::log::LogPlugin {
            // renetcode logs a line per refused datagram; mingle counts them instead.
            filter: format!("info,{}", mingle::server::QUIET_TRANSPORT_LOGS),
            ..default()
        })
        .add_systems(Update, (walk, verdict));
    app.add_plugins(MingleClientPlugin::default())
        .insert_resource(Login {
            key,
            server,
            done: false,
        })
        .init_resource::<Story>()
        .add_systems(Startup, |mut commands: Commands| {
            commands.spawn((MingleLocal::default(), Transform::from_xyz(-30.0, 0.0, 0.0)));
        })
        .add_systems(Update, (login_screen, show));
    let exit = app.run();
    std::process::exit(if exit.is_success() { 0 } else { 1 });
}
