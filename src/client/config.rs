//! The client plugin's configuration.

use bevy::prelude::Resource;

use super::session::PositionPacing;

/// How often to report the position and how to reconnect. Where to connect is given at
/// connect time ([`MingleServer`](super::MingleServer)).
#[derive(Debug, Clone, PartialEq, Resource)]
pub struct MingleClientConfig {
    /// Most position updates per second while moving. Default: 10.0 Hz.
    pub position_hz: f64,
    /// Seconds between position re-sends while standing still. Default: 1.0 s.
    pub keepalive_secs: f64,
    /// Most writes per second that only ack the server's messages; a queued message is
    /// written at once, and an idle client writes once a second (see
    /// [`ServerLink`](super::ServerLink)). Default: 10.0 Hz.
    pub send_hz: f64,
    /// Redial after the connection drops (server restart, network change). Default: true.
    pub reconnect: bool,
    /// Wait before the first redial; doubled after each failed one. Default: 0.5 s.
    pub reconnect_min_secs: f64,
    /// Longest wait between redials. Default: 8.0 s.
    pub reconnect_max_secs: f64,
}

impl MingleClientConfig {
    /// The position pacing part of the configuration.
    pub fn pacing(&self) -> PositionPacing {
        PositionPacing {
            position_hz: self.position_hz,
            keepalive_secs: self.keepalive_secs,
        }
    }
}

impl Default for MingleClientConfig {
    fn default() -> Self {
        MingleClientConfig {
            position_hz: 10.0,
            keepalive_secs: 1.0,
            send_hz: 10.0,
            reconnect: true,
            reconnect_min_secs: 0.5,
            reconnect_max_secs: 8.0,
        }
    }
}
