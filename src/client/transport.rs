//! The client's renet wiring: netcode over one UDP socket, with paced sends.
//!
//! bevy_renet's `NetcodeClientPlugin` writes packets every frame, and renet answers every
//! packet with an ack packet, so a 60 fps game would send 60 packets a second to the server
//! forever. mingle's traffic is a few messages a second: packets are written at once when a
//! message is queued, and otherwise (acks, keep-alives) at most `send_hz` times a second.

use std::net::{SocketAddr, UdpSocket};
use std::time::SystemTime;

use bevy::log::warn;
use bevy::prelude::{AppExit, Local, MessageReader, Res, ResMut, Resource, Time};
use bevy::time::Real;
use bevy_renet::RenetClient;
use bevy_renet::netcode::{ClientAuthentication, NetcodeClientTransport};

use super::config::MingleClientConfig;
use crate::protocol::PROTOCOL_ID;

/// Set when a message was queued this frame: the next send writes packets at once.
#[derive(Debug, Default, Resource)]
pub(crate) struct FlushNow(pub bool);

/// Binds a UDP socket of the server's address family and starts the netcode handshake.
pub(crate) fn connect(config: &MingleClientConfig) -> std::io::Result<NetcodeClientTransport> {
    let local: SocketAddr = match config.server {
        SocketAddr::V4(a) if a.ip().is_loopback() => ([127, 0, 0, 1], 0).into(),
        SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let auth = match &config.connect_token {
        Some(text) => ClientAuthentication::Secure {
            connect_token: crate::auth::parse_token(text).map_err(std::io::Error::other)?,
        },
        None => ClientAuthentication::Unsecure {
            protocol_id: PROTOCOL_ID,
            client_id: config.client_id,
            server_addr: config.server,
            user_data: Some(config.realm.to_user_data()),
        },
    };
    NetcodeClientTransport::new(now, auth, socket).map_err(std::io::Error::other)
}

/// Reads the socket and advances netcode (runs in `RenetReceive`).
pub(crate) fn receive_packets(
    mut transport: ResMut<NetcodeClientTransport>,
    mut client: ResMut<RenetClient>,
    time: Res<Time<Real>>,
    mut warned: Local<bool>,
) {
    if let Err(err) = transport.update(time.delta(), &mut client)
        && !*warned
    {
        warn!("mingle: client transport error: {err}");
        *warned = true;
    }
}

/// Writes packets: at once when a message was queued, else at most `send_hz` times a second.
pub(crate) fn send_packets(
    mut transport: ResMut<NetcodeClientTransport>,
    mut client: ResMut<RenetClient>,
    mut flush: ResMut<FlushNow>,
    config: Res<MingleClientConfig>,
    time: Res<Time<Real>>,
    mut last: Local<Option<f64>>,
) {
    if client.is_disconnected() || transport.disconnect_reason().is_some() {
        return; // nothing to send to; `receive_packets` reported why once
    }
    let now = time.elapsed_secs_f64();
    let due = last.is_none_or(|at| now - at >= 1.0 / config.send_hz);
    if !(flush.0 || due || client.is_connecting()) {
        return;
    }
    if let Err(err) = transport.send_packets(&mut client) {
        warn!("mingle: could not send packets: {err}");
    }
    flush.0 = false;
    *last = Some(now);
}

/// Says goodbye to the server when the app exits, so peers are told at once.
pub(crate) fn disconnect_on_exit(
    exit: MessageReader<AppExit>,
    mut transport: ResMut<NetcodeClientTransport>,
) {
    if !exit.is_empty() {
        transport.disconnect();
    }
}
