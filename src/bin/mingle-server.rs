//! The dedicated mingle server: headless, paced, on the embedded defaults unless told otherwise.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::log::{LogPlugin, info};
use bevy::prelude::*;
use mingle::auth::{generate_key, generate_token};
use mingle::cli::{ServerArgs, ServerCommand, load_admin_secret, load_key, load_turn_secret};
use mingle::server::{MingleServerPlugin, bind_socket, install_prometheus};

/// Set by SIGTERM / SIGINT.
#[derive(Resource, Clone)]
struct StopRequested(Arc<AtomicBool>);

fn stop_on_signal(stop: Res<StopRequested>, mut exit: MessageWriter<AppExit>) {
    if stop.0.load(Ordering::Relaxed) {
        exit.write(AppExit::Success);
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("mingle-server: {message}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let args = ServerArgs::parse_with_defaults();
    let key = match load_key(args.key_file.as_deref()) {
        Ok(key) => key,
        Err(err) => return fail(2, err),
    };
    match &args.command {
        Some(ServerCommand::Keygen) => {
            println!("{}", generate_key());
            return ExitCode::SUCCESS;
        }
        Some(command @ ServerCommand::Token { .. }) => {
            let Some(key) = key else {
                return fail(
                    2,
                    "token needs the server's key: --key-file FILE or MINGLE_PRIVATE_KEY",
                );
            };
            let request = command.token_request().expect("a token command");
            return match generate_token(&request, &key) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(err) => fail(2, err),
            };
        }
        None => {}
    }
    let config = match args.load() {
        Ok(config) => config,
        Err(err) => return fail(2, err),
    };
    if let Err(err) = args.check_security(&config, key.as_ref()) {
        return fail(2, err);
    }
    let turn_secret = match load_turn_secret(args.turn_secret_file.as_deref()) {
        Ok(secret) => secret,
        Err(err) => return fail(2, err),
    };
    if turn_secret.is_none()
        && config
            .ice_servers
            .iter()
            .any(|u| mingle::server::is_turn_url(u))
    {
        return fail(
            2,
            "`ice_servers` has TURN URLs but no TURN secret: give --turn-secret-file FILE or MINGLE_TURN_SECRET",
        );
    }
    if let Some(addr) = config.metrics_addr
        && let Err(err) = install_prometheus(addr)
    {
        return fail(1, err);
    }
    // Voice rules' admin HTTP API (#17), bound before the app so a failure is an exit code.
    let admin = match config.voice_rules.admin_addr {
        Some(addr) => {
            let secret = match load_admin_secret(args.admin_secret_file.as_deref()) {
                Ok(secret) => secret,
                Err(err) => return fail(2, err),
            };
            match mingle::server::MingleAdminPlugin::bind(addr, secret) {
                Ok(admin) => Some(admin),
                Err(err @ mingle::server::AdminError::NoSecret(_)) => return fail(2, err),
                Err(err) => return fail(1, err),
            }
        }
        None => None,
    };
    let socket = match bind_socket(config.bind) {
        Ok(socket) => socket,
        Err(err) => return fail(1, format!("cannot bind UDP {}: {err}", config.bind)),
    };
    let stop = StopRequested(Arc::new(AtomicBool::new(false)));
    let flag = Arc::clone(&stop.0);
    if let Err(err) = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed)) {
        return fail(1, format!("cannot install the signal handler: {err}"));
    }
    let period = Duration::from_secs_f64(1.0 / config.loop_hz);
    let local_addr = socket.local_addr().unwrap_or(config.bind);
    let mut plugin = MingleServerPlugin::with_socket(config.clone(), socket);
    if let Some(key) = key {
        plugin = plugin.with_private_key(key);
    }
    if let Some(secret) = turn_secret {
        plugin = plugin.with_turn_secret(secret);
    }
    let mut app = App::new();
    #[cfg(feature = "debug-window")]
    let windowed = args.debug_window;
    #[cfg(not(feature = "debug-window"))]
    let windowed = false;
    if windowed {
        #[cfg(feature = "debug-window")]
        app.add_plugins((
            DefaultPlugins.set(log_plugin()).set(WindowPlugin {
                primary_window: Some(Window {
                    title: "mingle".into(),
                    resolution: (800, 600).into(),
                    ..default()
                }),
                ..default()
            }),
            plugin,
            mingle::server::MingleDebugWindowPlugin {
                demo_bots: args.demo_bots,
                layout: match args.demo_layout.as_str() {
                    "pair" => mingle::server::DemoLayout::Pair,
                    _ => mingle::server::DemoLayout::Walking,
                },
                screenshot: args.screenshot.clone(),
                exit_after_frames: args.exit_after_frames,
            },
        ));
    } else {
        app.add_plugins((
            MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(period)),
            log_plugin(),
            plugin,
        ));
    }
    if let Some(admin) = admin {
        app.add_plugins(admin);
    }
    app.insert_resource(stop).add_systems(First, stop_on_signal);
    info!(
        "mingle-server listening on udp://{} (range {}, leave_range {}, tick {} Hz, loop {} Hz, max_clients {}, idle_timeout {} s, {}, metrics {})",
        local_addr,
        config.proximity.range,
        config.proximity.leave_range,
        config.tick_hz,
        config.loop_hz,
        config.max_clients,
        config.idle_timeout_secs,
        if key.is_some() {
            "secure: signed tokens only"
        } else {
            "unsecure: loopback or --insecure"
        },
        config
            .metrics_addr
            .map_or("off".to_owned(), |a| format!("http://{a}/metrics"))
    );
    match app.run() {
        AppExit::Success => {
            info!("mingle-server stopped");
            ExitCode::SUCCESS
        }
        AppExit::Error(code) => ExitCode::from(code.get()),
    }
}

/// Bevy's log setup with renetcode's per-datagram error lines off: the transport counts and
/// summarises rejected datagrams instead (SECURITY.md, "Logs").
fn log_plugin() -> LogPlugin {
    LogPlugin {
        filter: format!(
            "{},{}",
            bevy::log::DEFAULT_FILTER,
            mingle::server::QUIET_TRANSPORT_LOGS
        ),
        ..default()
    }
}
