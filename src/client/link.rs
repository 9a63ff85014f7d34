//! The client's connection to the mingle server: netcode over one UDP socket, with a write
//! budget. Used by the client plugin and the load generator's bots alike.
//!
//! renet answers every packet with an ack packet, and acks the other side's acks, so two renet
//! peers that each write on every frame ack each other forever: a 60 fps game would send 60
//! datagrams a second to an idle server. netcode adds a keep-alive after 250 ms without a
//! write. [`ServerLink`] writes at once when a message is queued; acks messages the server sent
//! with the next write at most `1 / send_hz` after the previous one (before renet's 200 ms
//! resend); otherwise writes once every [`IDLE_WRITE_SECS`]; and runs netcode's keep-alive and
//! timeout timers once a second once connected. The server paces its side the same way.
//!
//! Time comes in as arguments; the only I/O is the socket.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use bevy::prelude::Resource;
use renet::RenetClient;
use renetcode::{ClientAuthentication, DisconnectReason, NETCODE_MAX_PACKET_BYTES, NetcodeClient};

/// Longest time between two writes of a connected client, seconds.
pub const IDLE_WRITE_SECS: f64 = 1.0;
/// How often netcode's keep-alive and timeout timers run once connected (the client's
/// positions, re-sent every second, keep the server's side alive anyway).
pub const NETCODE_TIMERS: Duration = Duration::from_secs(2);
/// renet's packet type of an ack-only packet.
const ACK_PACKET: u8 = 4;

/// The connection to the mingle server: a netcode client, its UDP socket and its write budget.
/// Present as a resource while the client plugin holds a connection.
#[derive(Resource)]
pub struct ServerLink {
    socket: UdpSocket,
    netcode: NetcodeClient,
    buffer: Box<[u8; NETCODE_MAX_PACKET_BYTES]>,
    /// The server sent messages since the last write: an ack is owed.
    owes_ack: bool,
    last_write: f64,
    /// Time not yet given to netcode's timers.
    netcode_due: Duration,
}

impl std::fmt::Debug for ServerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLink")
            .field("local", &self.socket.local_addr().ok())
            .field("server", &self.netcode.server_addr())
            .field("connected", &self.netcode.is_connected())
            .finish_non_exhaustive()
    }
}

impl ServerLink {
    /// Binds a UDP socket of the server's address family (loopback for a loopback server)
    /// and starts the netcode handshake. `now` is the Unix time (netcode checks token expiry).
    ///
    /// # Errors
    /// No socket can be bound, or the token is unusable.
    pub fn connect(now: Duration, auth: ClientAuthentication) -> std::io::Result<ServerLink> {
        let server = match &auth {
            ClientAuthentication::Unsecure { server_addr, .. } => Some(*server_addr),
            ClientAuthentication::Secure { connect_token } => connect_token
                .server_addresses
                .iter()
                .flatten()
                .next()
                .copied(),
        };
        let local: SocketAddr = match server {
            Some(SocketAddr::V4(a)) if a.ip().is_loopback() => ([127, 0, 0, 1], 0).into(),
            Some(SocketAddr::V6(_)) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            _ => ([0, 0, 0, 0], 0).into(),
        };
        let socket = UdpSocket::bind(local)?;
        socket.set_nonblocking(true)?;
        let netcode = NetcodeClient::new(now, auth).map_err(std::io::Error::other)?;
        Ok(ServerLink {
            socket,
            netcode,
            buffer: Box::new([0; NETCODE_MAX_PACKET_BYTES]),
            owes_ack: false,
            last_write: f64::NEG_INFINITY,
            netcode_due: Duration::ZERO,
        })
    }

    /// Starts a new handshake on the same socket (after the last one ended): the server sees
    /// the same address, which a connect token is bound to once used.
    ///
    /// # Errors
    /// The token is unusable.
    pub fn redial(&mut self, now: Duration, auth: ClientAuthentication) -> std::io::Result<()> {
        self.netcode = NetcodeClient::new(now, auth).map_err(std::io::Error::other)?;
        self.owes_ack = false;
        self.last_write = f64::NEG_INFINITY;
        self.netcode_due = Duration::ZERO;
        // Datagrams of the old connection are of no use to the new one.
        while self.socket.recv_from(&mut self.buffer[..]).is_ok() {}
        Ok(())
    }

    /// The link's UDP socket (to register it with a poller).
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Whether the handshake is done.
    pub fn is_connected(&self) -> bool {
        self.netcode.is_connected()
    }

    /// Why the link ended, once it did.
    pub fn disconnect_reason(&self) -> Option<DisconnectReason> {
        self.netcode.disconnect_reason()
    }

    /// Advances the link by `dt`: reads the socket (unless `read` is false: a poller said
    /// there is nothing), feeds renet, runs netcode's timers, and mirrors netcode's state into
    /// `renet`.
    pub fn receive(&mut self, dt: Duration, renet: &mut RenetClient, read: bool) {
        if renet.disconnect_reason().is_some() && !self.netcode.is_disconnected() {
            // renet gave up (a channel error): tell the server at once.
            self.disconnect();
        }
        if self.netcode.is_disconnected() {
            // Over: nothing to read or time until the next dial (netcode would log an error
            // on every update).
            renet.disconnect_due_to_transport();
            return;
        }
        if read {
            while let Ok((len, from)) = self.socket.recv_from(&mut self.buffer[..]) {
                if from != self.netcode.server_addr() {
                    continue;
                }
                if let Some(payload) = self.netcode.process_packet(&mut self.buffer[..len]) {
                    // Reliable messages (renet packet types 0 and 2) want a timely ack.
                    if payload.first().is_some_and(|&t| t == 0 || t == 2) {
                        self.owes_ack = true;
                    }
                    renet.process_packet(payload);
                }
            }
        }
        self.netcode_due += dt;
        if !self.netcode.is_connected() || self.netcode_due >= NETCODE_TIMERS {
            if let Some((packet, addr)) = self.netcode.update(self.netcode_due) {
                let _ = self.socket.send_to(packet, addr);
            }
            self.netcode_due = Duration::ZERO;
        }
        if self.netcode.is_connected() {
            renet.set_connected();
        } else if self.netcode.is_connecting() {
            renet.set_connecting();
        } else {
            renet.disconnect_due_to_transport();
        }
    }

    /// Writes renet's packets if a write is due at `now` (seconds): at once when `queued` (a
    /// message was queued); when an ack is owed for the server's messages, at most `send_hz`
    /// times a second; otherwise every [`IDLE_WRITE_SECS`]. Returns the datagrams written.
    pub fn flush(
        &mut self,
        now: f64,
        renet: &mut RenetClient,
        send_hz: f64,
        queued: bool,
    ) -> usize {
        if !self.netcode.is_connected() {
            return 0;
        }
        let since = now - self.last_write;
        let ack_due = self.owes_ack && since >= 1.0 / send_hz;
        if !(queued || ack_due || since >= IDLE_WRITE_SECS) {
            return 0;
        }
        self.last_write = now;
        let owed = std::mem::take(&mut self.owes_ack);
        let mut written = 0;
        for packet in renet.get_packets_to_send() {
            // renet writes an ack packet (type 4) whenever it has acks pending, and they stay
            // pending until the server acks the ack: with nothing reliable to acknowledge, it
            // is not worth a datagram.
            if packet.first() == Some(&ACK_PACKET) && !owed {
                continue;
            }
            if let Ok((addr, payload)) = self.netcode.generate_payload_packet(&packet)
                && self.socket.send_to(payload, addr).is_ok()
            {
                written += 1;
            }
        }
        written
    }

    /// Says goodbye: netcode's disconnect packet, sent at once.
    pub fn disconnect(&mut self) {
        if self.netcode.is_disconnected() {
            return;
        }
        if let Ok((addr, packet)) = self.netcode.disconnect() {
            let _ = self.socket.send_to(packet, addr);
        }
    }
}
