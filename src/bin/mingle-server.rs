//! The dedicated mingle server: headless, paced, on the embedded defaults unless told otherwise.

use std::process::ExitCode;
use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::log::{LogPlugin, info};
use bevy::prelude::*;
use clap::Parser;
use mingle::cli::ServerArgs;
use mingle::server::{MingleServerPlugin, ServerAddress, bind_socket};

fn main() -> ExitCode {
    let args = ServerArgs::parse();
    let config = match args.load() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("mingle-server: {err}");
            return ExitCode::from(2);
        }
    };
    let socket = match bind_socket(config.bind) {
        Ok(socket) => socket,
        Err(err) => {
            eprintln!("mingle-server: cannot bind UDP {}: {err}", config.bind);
            return ExitCode::from(1);
        }
    };
    let period = Duration::from_secs_f64(1.0 / config.loop_hz);
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(period)),
        LogPlugin::default(),
        MingleServerPlugin::with_socket(config.clone(), socket),
    ));
    info!(
        "mingle-server listening on udp://{} (range {}, leave_range {}, tick {} Hz, loop {} Hz, max_clients {}, idle_timeout {} s)",
        app.world().resource::<ServerAddress>().0,
        config.range,
        config.leave_range,
        config.tick_hz,
        config.loop_hz,
        config.max_clients,
        config.idle_timeout_secs
    );
    app.run();
    ExitCode::SUCCESS
}
