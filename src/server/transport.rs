//! The server's renet wiring: the UDP socket, the transport systems, connect/disconnect events.
//!
//! With `udp.rs`, the only server modules that know netcode; replacing the transport touches
//! these two files.

use std::net::{SocketAddr, UdpSocket};

use bevy::log::{debug, info};
use bevy::prelude::{AppExit, Commands, MessageReader, On, Res, ResMut, Resource, Time};
use bevy::time::Real;
use bevy_renet::renet::ServerEvent;
use bevy_renet::{RenetServer, RenetServerEvent};

use super::components::{ClientHealth, NearbySet, Peer, PeerDirectory};
use super::config::MingleServerConfig;
use super::ice::{self, TurnSecret};
use super::stats::ServerStats;
use super::udp::ServerTransport;
use super::{ProximityIndex, send};
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
pub(crate) fn receive_packets(
    mut transport: ResMut<ServerTransport>,
    mut server: ResMut<RenetServer>,
    mut stats: ResMut<ServerStats>,
    time: Res<Time<Real>>,
) {
    let counts = transport.receive(time.delta(), &mut server);
    stats.datagrams_in += counts.datagrams;
    stats.bytes_in += counts.bytes;
    stats.flood_dropped += counts.flood_dropped;
    stats.guarded_packets += counts.guarded;
    stats.renet_panics += counts.renet_panics;
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
    mut server: ResMut<RenetServer>,
    transport: Res<ServerTransport>,
    mut directory: ResMut<PeerDirectory>,
    mut index: ResMut<ProximityIndex>,
    mut stats: ResMut<ServerStats>,
    config: Res<MingleServerConfig>,
    turn_secret: Option<Res<TurnSecret>>,
    time: Res<bevy::prelude::Time<bevy::time::Real>>,
) {
    match **event {
        ServerEvent::ClientConnected { client_id } => {
            let id = PeerId(client_id);
            let realm = transport
                .user_data(client_id)
                .map(|data| Realm::from_user_data(&data))
                .unwrap_or_default();
            let entity = commands
                .spawn((
                    Peer { id, realm },
                    NearbySet::default(),
                    ClientHealth::new(
                        time.elapsed_secs_f64(),
                        config.max_position_hz,
                        config.refresh_burst as f64,
                    ),
                ))
                .id();
            if let Some(stale) = directory.register(id, entity) {
                // netcode never reports a connect twice without the disconnect between.
                commands.entity(stale).despawn();
            }
            stats.connects += 1;
            send(
                &mut server,
                id,
                &ServerToClient::Welcome {
                    you: id,
                    range: config.range,
                    leave_range: config.leave_range,
                    tick_hz: config.tick_hz as f32,
                },
            );
            if let Some(renewal) = ice::issue(
                &mut server,
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
            if let Some(entity) = directory.unregister(id) {
                commands.entity(entity).despawn();
            }
            // Its pairs become departures at the next proximity tick.
            index.0.remove(id);
            stats.disconnects += 1;
            debug!("{id} disconnected: {reason}");
        }
    }
}
