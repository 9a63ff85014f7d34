//! One simulated client: a plain renet client with its own UDP socket, no Bevy app.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime};

use renet::RenetClient;
use renet_netcode::{ClientAuthentication, NetcodeClientTransport};

use super::report::Counters;
use crate::protocol::{
    Channel, ClientToServer, PROTOCOL_ID, PeerId, Realm, ServerToClient, SpaceId,
    connection_config, decode_server, encode_client,
};

/// What a bot learned from one server message, for latency tracking.
pub(crate) enum Heard {
    Entered(PeerId),
}

/// A simulated client.
pub(crate) struct Bot {
    pub id: PeerId,
    client: RenetClient,
    transport: NetcodeClientTransport,
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
        let transport =
            NetcodeClientTransport::new(now, auth, socket).map_err(std::io::Error::other)?;
        Ok(Bot {
            id,
            client: RenetClient::new(connection_config()),
            transport,
            pos,
            sent: None,
            peers: BTreeSet::new(),
            welcomed: false,
            dirty: true,
            last_flush: f64::NEG_INFINITY,
        })
    }

    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Advances the connection by `dt`, reads the socket and applies every server message.
    pub fn pump(&mut self, dt: Duration, counters: &mut Counters, heard: &mut Vec<Heard>) {
        self.client.update(dt);
        if self.transport.update(dt, &mut self.client).is_err() {
            return;
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
                    ServerToClient::IceServers { .. } => "IceServers",
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
                    ServerToClient::Signal { .. }
                    | ServerToClient::Rejected { .. }
                    | ServerToClient::IceServers { .. } => {}
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

    /// Writes queued packets to the socket: at once if a message is queued, otherwise (acks,
    /// keep-alives) at most `send_hz` times a second, as the client plugin does.
    pub fn flush(&mut self, now: f64, send_hz: f64) {
        if self.dirty || now - self.last_flush >= 1.0 / send_hz {
            let _ = self.transport.send_packets(&mut self.client);
            self.dirty = false;
            self.last_flush = now;
        }
    }

    /// Says goodbye (netcode disconnect packets, sent at once).
    pub fn disconnect(&mut self) {
        self.transport.disconnect();
    }
}
