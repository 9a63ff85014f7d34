//! The server's renet wiring: the UDP socket, netcode, and connect/disconnect events.
//!
//! The only server module that knows renet_netcode; replacing the transport touches this file.

use std::net::{SocketAddr, UdpSocket};
use std::time::SystemTime;

use bevy::log::{debug, info};
use bevy::prelude::{Commands, On, Res, ResMut, Resource};
use bevy_renet::netcode::{NetcodeServerTransport, ServerAuthentication, ServerConfig};
use bevy_renet::renet::ServerEvent;
use bevy_renet::{RenetServer, RenetServerEvent};

use super::components::{ClientHealth, NearbySet, Peer, PeerDirectory};
use super::config::MingleServerConfig;
use super::stats::ServerStats;
use super::{ProximityIndex, send};
use crate::protocol::{PROTOCOL_ID, PeerId, Realm, ServerToClient, connection_config};

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

/// Builds renet's server and netcode transport over `socket`.
///
/// # Errors
/// The socket's address cannot be read or it cannot be made non-blocking.
pub(crate) fn build_transport(
    config: &MingleServerConfig,
    socket: UdpSocket,
) -> std::io::Result<(RenetServer, NetcodeServerTransport, SocketAddr)> {
    let addr = socket.local_addr()?;
    let current_time = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let netcode = ServerConfig {
        current_time,
        max_clients: config.max_clients,
        protocol_id: PROTOCOL_ID,
        public_addresses: vec![addr],
        authentication: ServerAuthentication::Unsecure,
    };
    let transport = NetcodeServerTransport::new(netcode, socket)?;
    Ok((RenetServer::new(connection_config()), transport, addr))
}

/// Spawns a client entity on connect (and welcomes it), despawns it on disconnect.
pub(crate) fn on_server_event(
    event: On<RenetServerEvent>,
    mut commands: Commands,
    mut server: ResMut<RenetServer>,
    transport: Res<NetcodeServerTransport>,
    mut directory: ResMut<PeerDirectory>,
    mut index: ResMut<ProximityIndex>,
    mut stats: ResMut<ServerStats>,
    config: Res<MingleServerConfig>,
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
                    ClientHealth {
                        last_heard_secs: time.elapsed_secs_f64(),
                        decode_failures: 0,
                    },
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
