//! The system parameter a game uses to talk to the server.

use bevy::ecs::system::SystemParam;
use bevy::prelude::{Res, ResMut};
use bevy_renet::RenetClient;

use super::connection::{Connection, MingleConnectionState, MingleServer, Request};
use super::state::MingleWelcome;
use super::transport::FlushNow;
use crate::protocol::{
    ClientToServer, ConnectionOutcome, MAX_SIGNAL_PAYLOAD_BYTES, PeerId, encode_client,
};

/// Why a client request was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientError {
    /// Not connected to a server (yet, or any more).
    NotConnected,
    /// The signal payload exceeds [`MAX_SIGNAL_PAYLOAD_BYTES`].
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
    },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NotConnected => write!(f, "not connected to a mingle server"),
            ClientError::PayloadTooLarge { len } => write!(
                f,
                "signal payload of {len} bytes exceeds the limit of {MAX_SIGNAL_PAYLOAD_BYTES} bytes"
            ),
        }
    }
}

impl std::error::Error for ClientError {}

/// Connects to and disconnects from the mingle server; sends signals, refresh requests and
/// connection reports.
///
/// ```
/// # use bevy::prelude::*;
/// use mingle::client::{MingleClient, MingleServer};
///
/// /// The login screen got a token from the game's backend.
/// fn on_login(In(token): In<String>, mut mingle: MingleClient) {
///     mingle.connect(MingleServer::Token(token));
/// }
/// ```
///
/// ```
/// # use bevy::prelude::*;
/// use mingle::client::{MingleClient, PeerEntered};
///
/// fn offer_to_newcomers(mut entered: MessageReader<PeerEntered>, mut mingle: MingleClient) {
///     for PeerEntered(peer) in entered.read() {
///         let _ = mingle.send_signal(*peer, b"v=0 ...".to_vec());
///     }
/// }
/// ```
#[derive(SystemParam)]
pub struct MingleClient<'w> {
    client: Option<ResMut<'w, RenetClient>>,
    session: Option<Res<'w, MingleWelcome>>,
    flush: ResMut<'w, FlushNow>,
    connection: ResMut<'w, Connection>,
    state: Res<'w, MingleConnectionState>,
}

impl MingleClient<'_> {
    /// Connects to `server` (at the start of the next frame, in `PreUpdate`), dropping any
    /// current connection first. Progress arrives as
    /// [`MingleConnectionChanged`](super::MingleConnectionChanged) messages; after a drop the
    /// plugin redials by itself (see [`MingleClientConfig`](super::MingleClientConfig)).
    pub fn connect(&mut self, server: MingleServer) {
        self.connection.request(Request::Connect(server));
    }

    /// Says goodbye to the server (every peer leaves at once) and stays disconnected.
    pub fn disconnect(&mut self) {
        self.connection.request(Request::Disconnect);
    }

    /// Where the connection stands.
    pub fn state(&self) -> &MingleConnectionState {
        &self.state
    }

    /// Whether the connection is up and the server has welcomed this client.
    pub fn is_connected(&self) -> bool {
        self.session.is_some() && self.client.as_ref().is_some_and(|c| c.is_connected())
    }

    /// This client's peer id, once welcomed.
    pub fn local_id(&self) -> Option<PeerId> {
        self.session.as_ref().map(|s| s.you)
    }

    fn send(&mut self, msg: &ClientToServer) -> Result<(), ClientError> {
        match self.client.as_mut() {
            Some(client) if client.is_connected() => {
                client.send_message(msg.channel(), encode_client(msg));
                self.flush.0 = true;
                Ok(())
            }
            _ => Err(ClientError::NotConnected),
        }
    }

    /// Sends WebRTC signaling to an introduced peer via the server. The server refuses it
    /// (a [`MessageRejected`](super::MessageRejected) follows) unless the peer is introduced.
    ///
    /// # Errors
    /// [`ClientError::PayloadTooLarge`] or [`ClientError::NotConnected`]; nothing was sent.
    pub fn send_signal(&mut self, to: PeerId, payload: Vec<u8>) -> Result<(), ClientError> {
        if payload.len() > MAX_SIGNAL_PAYLOAD_BYTES {
            return Err(ClientError::PayloadTooLarge { len: payload.len() });
        }
        self.send(&ClientToServer::Signal { to, payload })
    }

    /// Asks for the full peer set; the answer replaces [`NearbyPeers`](super::NearbyPeers) and
    /// yields `PeerEntered` / `PeerLeft` for any difference.
    ///
    /// # Errors
    /// [`ClientError::NotConnected`].
    pub fn request_refresh(&mut self) -> Result<(), ClientError> {
        self.send(&ClientToServer::RequestPeerRefresh)
    }

    /// Reports how the WebRTC link to `peer` turned out.
    ///
    /// # Errors
    /// [`ClientError::NotConnected`].
    pub fn report_connection(
        &mut self,
        peer: PeerId,
        outcome: ConnectionOutcome,
    ) -> Result<(), ClientError> {
        self.send(&ClientToServer::ConnectionReport { peer, outcome })
    }

    /// Blocks `peer` for the rest of this session (or, with `blocked` false, takes the block
    /// back): never introduced again, no signal passes; an introduced pair ends at the next
    /// tick ([`DepartureCause::Blocked`](crate::proximity::DepartureCause::Blocked)).
    ///
    /// # Errors
    /// [`ClientError::NotConnected`].
    pub fn block(&mut self, peer: PeerId, blocked: bool) -> Result<(), ClientError> {
        self.send(&ClientToServer::Block { peer, blocked })
    }

    /// Sets this client's voice range multiplier (whisper 0.5, normal 1, shout 2), if the
    /// server lets clients do so; otherwise it answers with
    /// [`RejectReason::VoiceRangeRefused`](crate::protocol::RejectReason::VoiceRangeRefused).
    ///
    /// # Errors
    /// [`ClientError::NotConnected`].
    pub fn set_voice_range(&mut self, multiplier: f32) -> Result<(), ClientError> {
        self.send(&ClientToServer::SetVoiceRange { multiplier })
    }
}
