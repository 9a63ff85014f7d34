//! One simulated client: a plain renet + netcode client with its own UDP socket, no Bevy app.
//!
//! Bots are cheap so that thousands fit beside the server on a 2-core machine: the run polls
//! every bot's socket with one `epoll` (mio) and services a bot only when its socket is
//! readable, when it has something to send, or every [`SERVICE_SECS`] for netcode's timers.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use mio::net::UdpSocket;
use renet::RenetClient;
use renetcode::{ClientAuthentication, NETCODE_MAX_PACKET_BYTES, NetcodeClient};

use super::report::Counters;
use crate::protocol::{
    Channel, ClientToServer, PROTOCOL_ID, PeerId, Realm, ServerToClient, SpaceId,
    connection_config, decode_server, encode_client,
};

/// What a bot learned from one server message, for latency tracking.
pub(crate) enum Heard {
    Entered(PeerId),
}

/// Longest time a bot goes unserviced (netcode's handshake and keep-alive timers), seconds.
pub(crate) const SERVICE_SECS: f64 = 0.05;
/// How often netcode's timers run once connected.
const NETCODE_TIMERS: std::time::Duration = std::time::Duration::from_secs(1);
/// After the server sent messages, acks go out at `send_hz` for this long, seconds; after
/// that an idle bot writes once every [`IDLE_FLUSH_SECS`] (renet would otherwise ack the
/// server's acks at `send_hz` forever).
const ACK_WINDOW_SECS: f64 = 0.5;
/// Longest time between two writes of a connected bot, seconds.
const IDLE_FLUSH_SECS: f64 = 1.0;

/// A simulated client.
pub(crate) struct Bot {
    pub id: PeerId,
    client: RenetClient,
    netcode: NetcodeClient,
    /// Its socket, registered with the run's poll under the token `id`.
    pub socket: UdpSocket,
    /// The poll said the socket is readable.
    pub readable: bool,
    last_service: Instant,
    /// Where the bot stands now.
    pub pos: [f32; 3],
    /// The last position it sent, and when (seconds since the run started).
    pub sent: Option<([f32; 3], f64)>,
    /// Its peer set, built only from what it received.
    pub peers: BTreeSet<PeerId>,
    pub welcomed: bool,
    /// A message is queued: flush now rather than at the next paced send.
    dirty: bool,
    last_flush: f64,
    /// Until when (seconds) acks go out at `send_hz`: the server sent messages lately.
    acking_until: f64,
    /// Time not yet given to netcode (its timers run once a second once connected).
    netcode_due: std::time::Duration,
}

impl Bot {
    pub fn connect(id: PeerId, server: SocketAddr, pos: [f32; 3]) -> std::io::Result<Bot> {
        let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let auth = ClientAuthentication::Unsecure {
            protocol_id: PROTOCOL_ID,
            client_id: id.0,
            server_addr: server,
            user_data: Some(Realm(0).to_user_data()),
        };
        let netcode = NetcodeClient::new(now, auth).map_err(std::io::Error::other)?;
        Ok(Bot {
            id,
            client: RenetClient::new(connection_config()),
            netcode,
            socket,
            readable: true,
            last_service: Instant::now(),
            pos,
            sent: None,
            peers: BTreeSet::new(),
            welcomed: false,
            dirty: true,
            last_flush: f64::NEG_INFINITY,
            acking_until: 0.0,
            netcode_due: std::time::Duration::ZERO,
        })
    }

    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Whether the bot is due a service at `now` (its socket is readable, or its timers ran).
    pub fn due(&self, now: Instant) -> bool {
        self.readable
            || self.dirty
            || now.duration_since(self.last_service).as_secs_f64() >= SERVICE_SECS
    }

    /// Advances the connection to `now`, reads the socket and applies every server message.
    pub fn service(
        &mut self,
        now: Instant,
        buf: &mut [u8; NETCODE_MAX_PACKET_BYTES],
        counters: &mut Counters,
        heard: &mut Vec<Heard>,
    ) {
        let dt = now.duration_since(self.last_service);
        self.last_service = now;
        self.client.update(dt);
        if self.netcode.is_connected() {
            self.client.set_connected();
        } else if self.netcode.is_connecting() {
            self.client.set_connecting();
        } else {
            self.client.disconnect_due_to_transport();
            return;
        }
        if self.readable {
            // Edge-triggered: read until the socket is empty.
            while let Ok((len, _)) = self.socket.recv_from(&mut buf[..]) {
                if let Some(payload) = self.netcode.process_packet(&mut buf[..len]) {
                    // renet packet types 0..=3 carry messages, which want a timely ack.
                    if payload.first().is_some_and(|&t| t <= 3) {
                        self.acking_until = f64::INFINITY;
                    }
                    self.client.process_packet(payload);
                }
            }
            self.readable = false;
        }
        // Once connected, netcode's keep-alive and timeout timers run once a second: its own
        // pace (a keep-alive after 250 ms without a send) would be 4 datagrams a second.
        self.netcode_due += dt;
        if !self.netcode.is_connected() || self.netcode_due >= NETCODE_TIMERS {
            if let Some((packet, addr)) = self.netcode.update(self.netcode_due) {
                let _ = self.socket.send_to(packet, addr);
            }
            self.netcode_due = std::time::Duration::ZERO;
        }
        for channel in [Channel::Control, Channel::Signal] {
            while let Some(bytes) = self.client.receive_message(channel) {
                let Ok(msg) = decode_server(&bytes) else {
                    counters.count("undecodable", bytes.len());
                    continue;
                };
                let kind = match &msg {
                    ServerToClient::Welcome { .. } => "Welcome",
                    ServerToClient::PeersChanged { .. } => "PeersChanged",
                    ServerToClient::PeerSnapshot { .. } => "PeerSnapshot",
                    ServerToClient::Signal { .. } => "Signal",
                    ServerToClient::Rejected { .. } => "Rejected",
                };
                counters.count(kind, bytes.len());
                match msg {
                    ServerToClient::Welcome { .. } => self.welcomed = true,
                    ServerToClient::PeersChanged { entered, left } => {
                        counters.left += left.len() as u64;
                        counters.entered += entered.len() as u64;
                        for p in left {
                            self.peers.remove(&p);
                        }
                        for p in entered {
                            self.peers.insert(p);
                            heard.push(Heard::Entered(p));
                        }
                    }
                    ServerToClient::PeerSnapshot { peers } => {
                        let fresh: BTreeSet<PeerId> = peers.into_iter().collect();
                        for &p in fresh.difference(&self.peers) {
                            counters.entered += 1;
                            heard.push(Heard::Entered(p));
                        }
                        counters.left += self.peers.difference(&fresh).count() as u64;
                        self.peers = fresh;
                    }
                    ServerToClient::Signal { .. } | ServerToClient::Rejected { .. } => {}
                }
            }
        }
    }

    /// Sends the current position.
    pub fn send_position(&mut self, now: f64) {
        let msg = ClientToServer::Position {
            space: SpaceId(0),
            position: self.pos,
        };
        self.client
            .send_message(Channel::Position, encode_client(&msg));
        self.sent = Some((self.pos, now));
        self.dirty = true;
    }

    /// Asks the server for the full peer set.
    pub fn request_refresh(&mut self) {
        let msg = ClientToServer::RequestPeerRefresh;
        self.client
            .send_message(Channel::Control, encode_client(&msg));
        self.dirty = true;
    }

    /// Writes queued packets to the socket: at once if a message is queued; acks at most
    /// `send_hz` times a second for a while after the server sent messages; otherwise once a
    /// second.
    pub fn flush(&mut self, now: f64, send_hz: f64) {
        if !self.netcode.is_connected() {
            return;
        }
        if self.acking_until == f64::INFINITY {
            self.acking_until = now + ACK_WINDOW_SECS;
        }
        let paced = now - self.last_flush >= 1.0 / send_hz;
        let acking = paced && now < self.acking_until;
        if self.dirty || acking || now - self.last_flush >= IDLE_FLUSH_SECS {
            for packet in self.client.get_packets_to_send() {
                if let Ok((addr, payload)) = self.netcode.generate_payload_packet(&packet) {
                    let _ = self.socket.send_to(payload, addr);
                }
            }
            self.dirty = false;
            self.last_flush = now;
        }
    }

    /// Says goodbye (netcode disconnect packets, sent at once).
    pub fn disconnect(&mut self) {
        if let Ok((addr, packet)) = self.netcode.disconnect() {
            let _ = self.socket.send_to(packet, addr);
        }
    }
}
