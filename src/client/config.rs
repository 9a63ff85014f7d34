//! The client plugin's configuration.

use std::net::SocketAddr;

use bevy::prelude::Resource;

use crate::protocol::Realm;

/// Where to connect and how often to report the position.
#[derive(Debug, Clone, PartialEq, Resource)]
pub struct MingleClientConfig {
    /// The server's UDP address. Default: `127.0.0.1:5000`.
    pub server: SocketAddr,
    /// This client's id (unsecure mode: the client chooses it). Default: 1.
    pub client_id: u64,
    /// The realm (tenant) to join (unsecure mode). Default: `Realm(0)`.
    pub realm: Realm,
    /// A connect token from the game's backend, as hex text (`mingle-server token` prints
    /// one). With it the connection is secure and the id and realm come from the token;
    /// `client_id` and `realm` are ignored. Default: none (unsecure).
    pub connect_token: Option<String>,
    /// Most position updates per second while moving. Default: 10.0 Hz.
    pub position_hz: f64,
    /// Seconds between position re-sends while standing still. Default: 1.0 s.
    pub keepalive_secs: f64,
    /// Most writes per second that only ack the server's messages; a queued message is
    /// written at once, and an idle client writes once a second (see
    /// [`ServerLink`](super::ServerLink)). Default: 10.0 Hz.
    pub send_hz: f64,
}

impl Default for MingleClientConfig {
    fn default() -> Self {
        MingleClientConfig {
            server: SocketAddr::from(([127, 0, 0, 1], 5000)),
            client_id: 1,
            realm: Realm(0),
            connect_token: None,
            position_hz: 10.0,
            keepalive_secs: 1.0,
            send_hz: 10.0,
        }
    }
}
