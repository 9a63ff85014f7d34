//! A headless game client: stands at a start position, optionally walks away after a delay,
//! and logs every introduction and departure mingle tells it about.
//!
//! ```text
//! cargo run --release --bin mingle-server
//! cargo run --release --example walker -- --id 1 --x 0
//! cargo run --release --example walker -- --id 2 --x 5 --walk-after 3 --vx 10
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::log::LogPlugin;
use bevy::prelude::*;
use clap::Parser;
use mingle::client::{
    MingleClientPlugin, MingleLocal, MingleServer, MingleWelcome, PeerEntered, PeerLeft,
    mingle_connected,
};
use mingle::protocol::{PeerId, Realm, SpaceId};

/// A walking mingle client.
#[derive(Debug, Clone, Parser, Resource)]
struct Args {
    /// The mingle server's UDP address.
    #[arg(long, default_value = "127.0.0.1:5000")]
    server: SocketAddr,
    /// This client's id (unsecure mode).
    #[arg(long, default_value_t = 1)]
    id: u64,
    /// Start position, x.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    x: f32,
    /// Start position, y.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    y: f32,
    /// Seconds to stand still before walking.
    #[arg(long, default_value_t = 0.0)]
    walk_after: f32,
    /// Walking speed along x, units per second (0 stands still).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    vx: f32,
    /// Exit after this many seconds (0 runs forever).
    #[arg(long, default_value_t = 0.0)]
    run_for: f32,
}

fn main() {
    let args = Args::parse();
    App::new()
        .add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(16))),
            LogPlugin::default(),
            MingleClientPlugin::default().connect_to(MingleServer::Unsecure {
                server: args.server,
                id: PeerId(args.id),
                realm: Realm(0),
            }),
        ))
        .insert_resource(args.clone())
        .add_systems(Startup, move |mut commands: Commands| {
            commands.spawn((
                MingleLocal { space: SpaceId(0) },
                Transform::from_xyz(args.x, args.y, 0.0),
            ));
        })
        .add_systems(
            Update,
            (
                walk.run_if(mingle_connected),
                log_peers,
                log_welcome,
                stop_after,
            ),
        )
        .run();
}

fn walk(args: Res<Args>, time: Res<Time>, mut player: Single<&mut Transform, With<MingleLocal>>) {
    if time.elapsed_secs() >= args.walk_after {
        player.translation.x += args.vx * time.delta_secs();
    }
}

fn log_welcome(session: Option<Res<MingleWelcome>>) {
    if let Some(s) = session.filter(|s| s.is_added()) {
        info!(
            "welcomed as {} (range {}, leave_range {})",
            s.you, s.range, s.leave_range
        );
    }
}

fn log_peers(
    mut entered: MessageReader<PeerEntered>,
    mut left: MessageReader<PeerLeft>,
    player: Single<&Transform, With<MingleLocal>>,
) {
    let at = player.translation;
    for PeerEntered(peer) in entered.read() {
        info!("introduced to {peer} (I am at {:.1}, {:.1})", at.x, at.y);
    }
    for PeerLeft(peer) in left.read() {
        info!("{peer} left (I am at {:.1}, {:.1})", at.x, at.y);
    }
}

fn stop_after(args: Res<Args>, time: Res<Time>, mut exit: MessageWriter<AppExit>) {
    if args.run_for > 0.0 && time.elapsed_secs() >= args.run_for {
        exit.write(AppExit::Success);
    }
}
