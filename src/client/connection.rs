//! Connecting at runtime: where to, the connection's state, and reconnecting after a drop.
//!
//! The plugin opens nothing when added. A game calls
//! [`MingleClient::connect`](super::MingleClient::connect) (after its login screen, with a
//! token from its backend) or builds the plugin with
//! [`MingleClientPlugin::connect_to`](super::MingleClientPlugin::connect_to); the socket is
//! bound by a system in [`PreUpdate`](bevy::app::PreUpdate). A connection that drops is
//! redialled with backoff (every peer leaves first, with `PeerLeft`, and is introduced again
//! by the new session); a failure is a [`MingleConnectionState`] and a
//! [`MingleConnectionChanged`] message, never a panic.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bevy::log::{info, warn};
use bevy::prelude::{Commands, Message, MessageWriter, Res, ResMut, Resource, Time};
use bevy::time::Real;
use bevy_renet::RenetClient;
use renetcode::{ClientAuthentication, DisconnectReason};

use super::config::MingleClientConfig;
use super::link::ServerLink;
use super::session::ClientSession;
use crate::protocol::{PROTOCOL_ID, PeerId, Realm, connection_config};

/// Which server to connect to, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MingleServer {
    /// A connect token from the game's backend, as hex text (see [`crate::auth`];
    /// `mingle-server token` prints one). The server address, the id and the realm come from
    /// the token, and the server accepts only tokens it signed.
    Token(String),
    /// A development server in unsecure mode (loopback, or `--insecure`): the client picks
    /// its own id.
    Unsecure {
        /// The server's UDP address.
        server: SocketAddr,
        /// The id to connect as.
        id: PeerId,
        /// The realm (tenant) to join.
        realm: Realm,
    },
}

impl MingleServer {
    /// A development connection to `server` as `id`, in realm 0.
    pub fn unsecure(server: SocketAddr, id: PeerId) -> Self {
        MingleServer::Unsecure {
            server,
            id,
            realm: Realm::default(),
        }
    }

    fn authentication(&self) -> Result<ClientAuthentication, ConnectError> {
        Ok(match self {
            MingleServer::Token(text) => ClientAuthentication::Secure {
                connect_token: crate::auth::parse_token(text)
                    .map_err(|e| ConnectError::BadToken(e.to_string()))?,
            },
            MingleServer::Unsecure { server, id, realm } => ClientAuthentication::Unsecure {
                protocol_id: PROTOCOL_ID,
                client_id: id.0,
                server_addr: *server,
                user_data: Some(realm.to_user_data()),
            },
        })
    }
}

/// Why a connection could not be made or kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The connect token is not a token (the backend sent something else).
    BadToken(String),
    /// The connect token expired: fetch a new one from the backend and connect again.
    TokenExpired,
    /// No UDP socket could be bound.
    Socket(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::BadToken(why) => write!(f, "not a connect token: {why}"),
            ConnectError::TokenExpired => {
                write!(
                    f,
                    "the connect token expired: get a new one and connect again"
                )
            }
            ConnectError::Socket(why) => write!(f, "no UDP socket: {why}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Where the connection stands. A resource, and the payload of [`MingleConnectionChanged`].
#[derive(Debug, Clone, PartialEq, Resource)]
pub enum MingleConnectionState {
    /// Not connected, and not trying (the start, or after
    /// [`MingleClient::disconnect`](super::MingleClient::disconnect)).
    Disconnected,
    /// The handshake is under way (`attempt` 1 is the first try).
    Connecting {
        /// Tries since the last connected session.
        attempt: u32,
    },
    /// Connected and welcomed by the server.
    Connected {
        /// This client's peer id.
        you: PeerId,
    },
    /// The connection dropped or could not be made; the next try is scheduled.
    Reconnecting {
        /// The number of the next try since the last connected session (1 is the first).
        attempt: u32,
        /// Why the last try ended.
        reason: DisconnectReason,
        /// Seconds until the next try.
        retry_in_secs: f64,
    },
    /// Given up: the game must act (a new token) and connect again.
    Failed(ConnectError),
}

impl MingleConnectionState {
    /// Whether connected and welcomed.
    pub fn is_connected(&self) -> bool {
        matches!(self, MingleConnectionState::Connected { .. })
    }
}

/// The connection state changed (connected, dropped, retrying, failed). Written in
/// [`PreUpdate`](bevy::app::PreUpdate).
#[derive(Debug, Clone, PartialEq, Message)]
pub struct MingleConnectionChanged(pub MingleConnectionState);

/// What the game asked for, applied in [`PreUpdate`](bevy::app::PreUpdate).
#[derive(Debug, Clone)]
pub(crate) enum Request {
    Connect(MingleServer),
    Disconnect,
}

/// The connection's bookkeeping: the target, the pending request and the retry schedule.
#[derive(Debug, Default, Resource)]
pub(crate) struct Connection {
    pub(crate) request: Option<Request>,
    target: Option<MingleServer>,
    attempt: u32,
    /// When the next try is due (seconds of real time), while reconnecting.
    retry_at: Option<f64>,
}

impl Connection {
    pub(crate) fn request(&mut self, request: Request) {
        self.request = Some(request);
    }
}

/// Seconds to wait before the next try after `failed` tries since the last connected session
/// (0 after a drop): `reconnect_min_secs`, doubled per failure, at most `reconnect_max_secs`.
pub(crate) fn backoff_secs(config: &MingleClientConfig, failed: u32) -> f64 {
    let doubled = config.reconnect_min_secs * 2f64.powi(failed.min(30) as i32);
    doubled.min(config.reconnect_max_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_to_the_maximum() {
        let config = MingleClientConfig::default();
        let waits: Vec<f64> = (0..7).map(|n| backoff_secs(&config, n)).collect();
        assert_eq!(waits, vec![0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]);
    }
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Everything [`drive_connection`] and [`watch_connection`] change.
#[derive(bevy::ecs::system::SystemParam)]
pub(crate) struct ConnectionParts<'w, 's> {
    commands: Commands<'w, 's>,
    connection: ResMut<'w, Connection>,
    state: ResMut<'w, MingleConnectionState>,
    session: ResMut<'w, ClientSession>,
    link: Option<ResMut<'w, ServerLink>>,
    changed: MessageWriter<'w, MingleConnectionChanged>,
    config: Res<'w, MingleClientConfig>,
    time: Res<'w, Time<Real>>,
}

impl ConnectionParts<'_, '_> {
    fn set_state(&mut self, state: MingleConnectionState) {
        if *self.state != state {
            *self.state = state.clone();
            self.changed.write(MingleConnectionChanged(state));
        }
    }

    /// Opens a connection to the target: on a fresh socket for a new target, on the same
    /// socket for a retry (a connect token is bound to the address it was first used from).
    fn dial(&mut self, fresh: bool) {
        let Some(target) = self.connection.target.clone() else {
            return;
        };
        let auth = match target.authentication() {
            Ok(auth) => auth,
            Err(err) => return self.fail(err),
        };
        let dialled = match self.link.as_deref_mut() {
            Some(link) if !fresh => link.redial(unix_now(), auth).map(|()| None),
            _ => ServerLink::connect(unix_now(), auth).map(Some),
        };
        match dialled {
            Ok(new_link) => {
                if let Some(link) = new_link {
                    self.commands.insert_resource(link);
                }
                self.commands
                    .insert_resource(RenetClient::new(connection_config()));
                self.connection.attempt += 1;
                self.connection.retry_at = None;
                let attempt = self.connection.attempt;
                self.set_state(MingleConnectionState::Connecting { attempt });
            }
            Err(err) => self.fail(ConnectError::Socket(err.to_string())),
        }
    }

    fn fail(&mut self, err: ConnectError) {
        warn!("mingle: connection failed: {err}");
        self.close();
        self.connection.target = None;
        self.set_state(MingleConnectionState::Failed(err));
    }

    /// Says goodbye if connected and drops the link; every peer leaves.
    fn close(&mut self) {
        if let Some(link) = self.link.as_deref_mut() {
            link.disconnect();
        }
        self.commands.remove_resource::<ServerLink>();
        self.commands.remove_resource::<RenetClient>();
        self.lose_session();
    }

    fn lose_session(&mut self) {
        self.session.connection_lost();
        self.commands.remove_resource::<super::MingleWelcome>();
    }
}

/// Applies the game's connect/disconnect requests and due retries (before the transport
/// reads the socket).
pub(crate) fn drive_connection(mut parts: ConnectionParts) {
    match parts.connection.request.take() {
        Some(Request::Connect(target)) => {
            parts.close();
            parts.connection.target = Some(target);
            parts.connection.attempt = 0;
            parts.dial(true);
            return;
        }
        Some(Request::Disconnect) => {
            parts.close();
            parts.connection.target = None;
            parts.connection.retry_at = None;
            parts.set_state(MingleConnectionState::Disconnected);
            return;
        }
        None => {}
    }
    let now = parts.time.elapsed_secs_f64();
    if let Some(at) = parts.connection.retry_at {
        if now >= at {
            parts.dial(false);
        } else if let MingleConnectionState::Reconnecting {
            attempt, reason, ..
        } = *parts.state
        {
            let retry_in_secs = at - now;
            *parts.state = MingleConnectionState::Reconnecting {
                attempt,
                reason,
                retry_in_secs,
            };
        }
    }
}

/// Notices the welcome and the end of a connection (after the transport ran); schedules
/// the retry.
pub(crate) fn watch_connection(mut parts: ConnectionParts) {
    let Some((ended, linked)) = parts
        .link
        .as_deref()
        .map(|link| (link.disconnect_reason(), link.is_connected()))
    else {
        return;
    };
    if let Some(reason) = ended {
        if parts.connection.retry_at.is_some() || parts.connection.target.is_none() {
            return; // already handled
        }
        parts.lose_session();
        match reason {
            DisconnectReason::ConnectTokenExpired => parts.fail(ConnectError::TokenExpired),
            _ if !parts.config.reconnect => {
                info!("mingle: disconnected ({reason:?}); not reconnecting");
                parts.close();
                parts.connection.target = None;
                parts.set_state(MingleConnectionState::Disconnected);
            }
            _ => {
                // Tries made since the last connected session (a drop of a connected one: 0).
                let failed = parts.connection.attempt;
                let attempt = failed + 1;
                let wait = backoff_secs(&parts.config, failed);
                info!("mingle: disconnected ({reason:?}); retrying in {wait:.1} s");
                parts.connection.retry_at = Some(parts.time.elapsed_secs_f64() + wait);
                parts.set_state(MingleConnectionState::Reconnecting {
                    attempt,
                    reason,
                    retry_in_secs: wait,
                });
            }
        }
        return;
    }
    if let Some(welcome) = parts.session.welcome().copied()
        && !parts.state.is_connected()
        && linked
    {
        parts.connection.attempt = 0;
        parts.set_state(MingleConnectionState::Connected { you: welcome.you });
    }
}
