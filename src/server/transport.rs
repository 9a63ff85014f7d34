//! The server's renet wiring: the UDP socket, the transport systems, connect/disconnect events.
//!
//! With `udp.rs`, the only server modules that know netcode; replacing the transport touches
//! these two files.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bevy::log::{debug, info, warn};
use bevy::prelude::{AppExit, Commands, Local, MessageReader, On, Res, ResMut, Resource, Time};
use bevy::time::Real;
use bevy_renet::renet::ServerEvent;
use bevy_renet::{RenetServer, RenetServerEvent};

use super::components::{ClientHealth, MinglePeer, PeerDirectory};
use super::config::MingleServerConfig;
use super::ice::{self, TurnSecret};
use super::stats::ServerStats;
use super::udp::{ReceiveCounts, ServerTransport};
use super::{Outgoing, send};
use crate::protocol::{PeerId, Realm, ServerToClient};

/// The address the server actually listens on (useful when binding port 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Resource)]
pub struct ServerAddress(pub SocketAddr);

/// Socket buffer size asked for: a burst of 1,024 connection requests (1,078-byte datagrams)
/// needs ~1.1 MB; the default receive buffer (208 KiB) drops all but ~200 of them.
pub const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Binds the server's UDP socket with receive and send buffers of [`SOCKET_BUFFER_BYTES`]
/// (the kernel may cap them at `net.core.rmem_max` / `wmem_max`; that is not an error).
///
/// # Errors
/// The address cannot be bound.
pub fn bind_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(err) = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES) {
        bevy::log::warn!("could not enlarge the UDP receive buffer: {err}");
    }
    if let Err(err) = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES) {
        bevy::log::warn!("could not enlarge the UDP send buffer: {err}");
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Reads the socket and feeds renet (runs in `RenetReceive`, before renet's events are emitted).
///
/// netcode's clock is the wall clock, not `Time<Real>`: its timers (client timeouts,
/// keep-alives) measure silence on the network, which an app that steps its time by hand (a
/// test's `TimeUpdateStrategy`) must not speed up or slow down.
pub(crate) fn receive_packets(
    mut transport: ResMut<ServerTransport>,
    mut server: ResMut<RenetServer>,
    mut stats: ResMut<ServerStats>,
    mut last: Local<Option<Instant>>,
) {
    let now = Instant::now();
    let dt = last.map_or(Duration::ZERO, |at| now.duration_since(at));
    *last = Some(now);
    transport.receive(dt, &mut server);
    stats.receive = transport.totals;
}

/// The log filter directive that silences renetcode's line per refused datagram (add it to
/// `LogPlugin::filter`); the transport counts those datagrams and logs a summary instead.
pub const QUIET_TRANSPORT_LOGS: &str = "renetcode=off";

/// At startup, warns once if renetcode's per-datagram error lines are enabled: a flood of
/// garbage would then write a log line per datagram.
pub(crate) fn warn_if_transport_logs_loud() {
    if bevy::log::tracing::enabled!(target: "renetcode::server", bevy::log::Level::ERROR) {
        warn!(
            "renetcode logs a line per refused datagram, so a flood can fill the log: add \"{QUIET_TRANSPORT_LOGS}\" to LogPlugin's filter (mingle counts and summarises them)"
        );
    }
}

/// Seconds between two summary lines of rejected datagrams.
pub const REJECTION_LOG_INTERVAL_SECS: f64 = 10.0;

/// Logs at most one line per [`REJECTION_LOG_INTERVAL_SECS`] summing up the datagrams refused
/// since the last line, by cause; never a line per datagram, so a flood cannot flood the log.
pub(crate) fn log_rejections(
    stats: Res<ServerStats>,
    time: Res<Time<Real>>,
    mut last: bevy::prelude::Local<(f64, ReceiveCounts)>,
) {
    let now = time.elapsed_secs_f64();
    let (logged_at, before) = *last;
    let r = stats.receive;
    if now - logged_at < REJECTION_LOG_INTERVAL_SECS || r.rejected() == before.rejected() {
        return;
    }
    warn!(
        "rejected {} datagrams in the last {:.0} s: flood {}, malformed {}, refused by netcode {}, crafted packets {}, stale slices {}, caught panics {}",
        r.rejected() - before.rejected(),
        now - logged_at,
        r.flood_dropped - before.flood_dropped,
        r.malformed - before.malformed,
        r.netcode_rejected - before.netcode_rejected,
        r.guarded - before.guarded,
        r.stale_slices - before.stale_slices,
        (r.netcode_panics + r.renet_panics) - (before.netcode_panics + before.renet_panics),
    );
    *last = (now, r);
}

/// Writes every queued packet (runs in `RenetSend`).
pub(crate) fn send_packets(
    mut transport: ResMut<ServerTransport>,
    mut server: ResMut<RenetServer>,
    mut stats: ResMut<ServerStats>,
) {
    transport.send(&mut server);
    (stats.datagrams_out, stats.bytes_out) = transport.sent();
}

/// On app exit every client gets netcode's disconnect packets, so they see a clean disconnect
/// at once instead of a timeout.
pub(crate) fn disconnect_on_exit(
    exit: MessageReader<AppExit>,
    mut transport: ResMut<ServerTransport>,
    mut server: ResMut<RenetServer>,
) {
    if !exit.is_empty() {
        info!(
            "shutting down: disconnecting {} clients",
            server.connected_clients()
        );
        transport.disconnect_all(&mut server);
    }
}

/// Spawns a client entity on connect (and welcomes it), despawns it on disconnect.
pub(crate) fn on_server_event(
    event: On<RenetServerEvent>,
    mut commands: Commands,
    mut out: Outgoing,
    directory: Res<PeerDirectory>,
    mut stats: ResMut<ServerStats>,
    config: Res<MingleServerConfig>,
    turn_secret: Option<Res<TurnSecret>>,
    time: Res<bevy::prelude::Time<bevy::time::Real>>,
) {
    match **event {
        ServerEvent::ClientConnected { client_id } => {
            let id = PeerId(client_id);
            let realm = out
                .transport
                .user_data(client_id)
                .map(|data| Realm::from_user_data(&data))
                .unwrap_or_default();
            // Registered in the directory by `MinglePeer`'s hook.
            let entity = commands
                .spawn((
                    MinglePeer { id, realm },
                    ClientHealth::new(
                        time.elapsed_secs_f64(),
                        config.max_position_hz,
                        config.refresh_burst as f64,
                    ),
                ))
                .id();
            stats.connects += 1;
            send(
                &mut out,
                id,
                &ServerToClient::Welcome {
                    you: id,
                    range: config.proximity.range,
                    leave_range: config.proximity.leave_range,
                    tick_hz: config.tick_hz as f32,
                },
            );
            if let Some(renewal) = ice::issue(
                &mut out,
                &mut stats,
                &config,
                turn_secret.as_deref(),
                id,
                ice::unix_now(),
            ) {
                commands.entity(entity).insert(renewal);
            }
            info!("{id} connected (realm {})", realm.0);
        }
        ServerEvent::ClientDisconnected { client_id, reason } => {
            let id = PeerId(client_id);
            // `MinglePeer`'s hook takes it out of the directory and the core: its pairs
            // become departures at the next proximity tick.
            if let Some(entity) = directory.get(id) {
                commands.entity(entity).despawn();
            }
            stats.disconnects += 1;
            debug!("{id} disconnected: {reason}");
        }
    }
}
