//! One simulated client: the client plugin's [`ClientSession`] and [`ServerLink`] with a renet
//! client, no Bevy app.
//!
//! Bots are cheap so that thousands fit beside the server on a 2-core machine: the run polls
//! every bot's socket with one `epoll` (mio) and services a bot only when its socket is
//! readable, when it has something to send, or every [`SERVICE_SECS`] for netcode's timers.
//! Their writes follow the same budget as the plugin's, so the server sees real clients.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use renet::RenetClient;
use renetcode::ClientAuthentication;

use super::report::Counters;
use crate::client::{ClientSession, ServerLink, SessionEvent};
use crate::protocol::{
    Channel, ClientToServer, PROTOCOL_ID, PeerId, ServerToClient, SpaceId, connection_config,
    decode_server, encode_client,
};

/// What a bot learned from one server message, for latency tracking.
pub(crate) enum Heard {
    Entered(PeerId),
}

/// Longest time a bot goes unserviced (netcode's handshake and keep-alive timers), seconds.
pub(crate) const SERVICE_SECS: f64 = 0.05;

/// A simulated client.
pub(crate) struct Bot {
    pub id: PeerId,
    client: RenetClient,
    /// Its connection; the socket is registered with the run's poll under the token `id`.
    pub link: ServerLink,
    /// The poll said the socket is readable.
    pub readable: bool,
    last_service: Instant,
    /// Where the bot stands now.
    pub pos: [f32; 3],
    /// The last position it sent, and when (seconds since the run started).
    pub sent: Option<([f32; 3], f64)>,
    /// Its protocol state: the peer set, built only from what it received.
    session: ClientSession,
    /// A message is queued: flush now rather than at the next paced send.
    dirty: bool,
}

impl Bot {
    /// Connects with `user_data` in its (unsecure) connect token: realm 0, and its party's
    /// group in the `party` scenario.
    pub fn connect(
        id: PeerId,
        server: SocketAddr,
        pos: [f32; 3],
        user_data: [u8; 256],
    ) -> std::io::Result<Bot> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let auth = ClientAuthentication::Unsecure {
            protocol_id: PROTOCOL_ID,
            client_id: id.0,
            server_addr: server,
            user_data: Some(user_data),
        };
        Ok(Bot {
            id,
            client: RenetClient::new(connection_config()),
            link: ServerLink::connect(now, auth)?,
            readable: true,
            last_service: Instant::now(),
            pos,
            sent: None,
            session: ClientSession::new(),
            dirty: true,
        })
    }

    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Whether the server welcomed it.
    pub fn welcomed(&self) -> bool {
        self.session.welcome().is_some()
    }

    /// Its peer set, built only from what it received.
    pub fn peers(&self) -> &BTreeSet<PeerId> {
        self.session.peers()
    }

    /// Whether the bot is due a service at `now` (its socket is readable, or its timers ran).
    pub fn due(&self, now: Instant) -> bool {
        self.readable
            || self.dirty
            || now.duration_since(self.last_service).as_secs_f64() >= SERVICE_SECS
    }

    /// Advances the connection to `now`, reads the socket if readable and applies every
    /// server message.
    pub fn service(&mut self, now: Instant, counters: &mut Counters, heard: &mut Vec<Heard>) {
        let dt = now.duration_since(self.last_service);
        self.last_service = now;
        self.client.update(dt);
        self.link
            .receive(dt, &mut self.client, std::mem::take(&mut self.readable));
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
                self.session.handle_message(msg);
            }
        }
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::PeerEntered(p) => {
                    counters.entered += 1;
                    heard.push(Heard::Entered(p));
                }
                SessionEvent::PeerLeft(_) => counters.left += 1,
                _ => {}
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

    /// Queues a control message (a block, a voice range).
    pub fn send_control(&mut self, msg: &ClientToServer) {
        self.client
            .send_message(Channel::Control, encode_client(msg));
        self.dirty = true;
    }

    /// Writes queued packets as the [`ServerLink`] budget allows.
    pub fn flush(&mut self, now: f64, send_hz: f64) {
        self.link.flush(
            now,
            &mut self.client,
            send_hz,
            std::mem::take(&mut self.dirty),
        );
    }

    /// Says goodbye (netcode disconnect packets, sent at once).
    pub fn disconnect(&mut self) {
        self.link.disconnect();
    }
}
