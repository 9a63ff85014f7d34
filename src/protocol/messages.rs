//! The message types of both directions.

use serde::{Deserialize, Serialize};

use crate::proximity::{ArrivalCause, DepartureCause, GroupId};

/// A connected client's identity: its renet client id.
///
/// In secure mode it comes from a connect token the game's backend issued, so a client cannot
/// pick another's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerId(pub u64);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer#{}", self.0)
    }
}

/// A tenant (game) isolated from every other: peers of two realms never meet.
///
/// Read from the first 8 bytes (little endian) of the connect token's user data, so the
/// client cannot choose it in secure mode.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct Realm(pub u64);

impl Realm {
    /// Reads the realm from netcode connect-token user data (first 8 bytes, little endian).
    pub fn from_user_data(user_data: &[u8; 256]) -> Self {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&user_data[..8]);
        Realm(u64::from_le_bytes(bytes))
    }

    /// Writes the realm into netcode connect-token user data, the inverse of [`Realm::from_user_data`].
    pub fn to_user_data(self) -> [u8; 256] {
        let mut data = [0u8; 256];
        data[..8].copy_from_slice(&self.0.to_le_bytes());
        data
    }
}

/// Most groups a connect token can carry.
pub const MAX_TOKEN_GROUPS: usize = 30;

/// Connect-token user data for `realm` with initial `groups` (at most [`MAX_TOKEN_GROUPS`], the
/// rest dropped): bytes 0..8 the realm (as [`Realm::to_user_data`]), byte 8 the group count,
/// then each group id as 8 bytes little endian.
pub fn token_user_data(realm: Realm, groups: &[GroupId]) -> [u8; 256] {
    let mut data = realm.to_user_data();
    let n = groups.len().min(MAX_TOKEN_GROUPS);
    data[8] = n as u8;
    for (k, g) in groups[..n].iter().enumerate() {
        data[9 + 8 * k..17 + 8 * k].copy_from_slice(&g.0.to_le_bytes());
    }
    data
}

/// The initial groups in connect-token user data (see [`token_user_data`]); none in a token
/// that carries only a realm.
pub fn token_groups(data: &[u8; 256]) -> Vec<GroupId> {
    let n = (data[8] as usize).min(MAX_TOKEN_GROUPS);
    (0..n)
        .map(|k| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&data[9 + 8 * k..17 + 8 * k]);
            GroupId(u64::from_le_bytes(b))
        })
        .collect()
}

/// A space inside a realm (a map, a channel, a room): only peers in the same space meet.
///
/// Chosen by the client with every position update, so moving to another map is just a
/// position in another space.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct SpaceId(pub u32);

/// What a client reports after trying to open a WebRTC link to an introduced peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnectionOutcome {
    /// The peer-to-peer link is up.
    Connected,
    /// The attempt failed (ICE failed, no route).
    Failed,
    /// The attempt did not finish in time.
    TimedOut,
}

/// One STUN or TURN server a client may use to gather ICE candidates, as in WebRTC's
/// `RTCIceServer`. Sent in [`ServerToClient::IceServers`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port?transport=udp` URLs (RFC 7064 / RFC 7065), at most
    /// [`MAX_ICE_URLS`](super::MAX_ICE_URLS), each at most
    /// [`MAX_ICE_TEXT_BYTES`](super::MAX_ICE_TEXT_BYTES).
    pub urls: Vec<String>,
    /// TURN username in the TURN REST scheme: `"<unix expiry>:<peer id>"`; empty for STUN.
    pub username: String,
    /// TURN password: `base64(HMAC-SHA1(secret, username))`; empty for STUN.
    pub credential: String,
}

impl std::fmt::Debug for IceServer {
    /// Shows the URLs and username, never the credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &"<redacted>")
            .finish()
    }
}

/// Why the server refused a client's message. Sent in [`ServerToClient::Rejected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RejectReason {
    /// The message did not decode (malformed, truncated, oversized, trailing bytes).
    Undecodable,
    /// A position had a NaN or infinite coordinate, or one beyond
    /// [`MAX_COORDINATE`](super::MAX_COORDINATE).
    /// The position is dropped; this answer comes at most once a second, and invalid positions
    /// never count toward a disconnect.
    InvalidPosition,
    /// A signal payload exceeded [`MAX_SIGNAL_PAYLOAD_BYTES`](super::MAX_SIGNAL_PAYLOAD_BYTES).
    PayloadTooLarge,
    /// Too many messages of this kind too fast; the excess was dropped. Sent at most once a
    /// second per kind.
    RateLimited {
        /// Which kind.
        what: Limited,
    },
    /// The message arrived on a channel other than the one its kind travels on.
    WrongChannel,
    /// A signal was addressed to a connected peer that is not currently introduced to the sender.
    NotIntroduced {
        /// The addressee.
        peer: PeerId,
    },
    /// A signal was addressed to an id no connected client has.
    UnknownPeer {
        /// The addressee.
        peer: PeerId,
    },
    /// A [`ClientToServer::SetVoiceRange`] was refused: clients may not set their range on this
    /// server, or the multiplier is outside the bounds it allows.
    VoiceRangeRefused,
    /// A [`ClientToServer::Block`] was refused: this session already blocks the most peers a
    /// session may.
    TooManyBlocks,
    /// A signal was addressed to a peer blocked from or by the sender.
    Blocked {
        /// The addressee.
        peer: PeerId,
    },
}

/// A message kind the server rate-limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Limited {
    /// Position updates (default limit: 30 a second).
    Position,
    /// Refresh requests (default: 1 a second, bursts of 5).
    Refresh,
}

/// A message from a client to the server.
///
/// [`ClientToServer::Position`] travels on [`Channel::Position`](super::Channel::Position)
/// (unreliable, latest wins), [`ClientToServer::Signal`] on
/// [`Channel::Signal`](super::Channel::Signal), the rest on
/// [`Channel::Control`](super::Channel::Control); see [`ClientToServer::channel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientToServer {
    /// Where the client stands now. Unreliable: the client re-sends at least once a second
    /// even when still, so a lost datagram never leaves a stale position for long.
    Position {
        /// The space (map, channel) the client is in.
        space: SpaceId,
        /// World position, x, y, z. Finite, each axis within [`MAX_COORDINATE`](super::MAX_COORDINATE).
        position: [f32; 3],
    },
    /// Ask for the full current peer set; answered with [`ServerToClient::PeerSnapshot`].
    RequestPeerRefresh,
    /// Opaque WebRTC signaling (offer, answer, ICE) for an introduced peer.
    Signal {
        /// The introduced peer it is for.
        to: PeerId,
        /// Opaque bytes, at most [`MAX_SIGNAL_PAYLOAD_BYTES`](super::MAX_SIGNAL_PAYLOAD_BYTES).
        payload: Vec<u8>,
    },
    /// How the WebRTC link to an introduced peer turned out.
    ConnectionReport {
        /// The peer the link was to.
        peer: PeerId,
        /// The outcome.
        outcome: ConnectionOutcome,
    },
    /// Block (or unblock) a peer for the rest of this session: a blocked pair is never
    /// introduced and no signal passes between them; an introduced one ends at the next tick.
    Block {
        /// The peer to block.
        peer: PeerId,
        /// `true` to block, `false` to take this session's block back.
        blocked: bool,
    },
    /// Set this client's voice range multiplier (whisper 0.5, normal 1, shout 2), if the
    /// server lets clients do so, within its bounds; otherwise answered with
    /// [`RejectReason::VoiceRangeRefused`].
    SetVoiceRange {
        /// The multiplier on `range` and `leave_range`.
        multiplier: f32,
    },
}

impl ClientToServer {
    /// The channel this kind of message must travel on.
    pub fn channel(&self) -> super::Channel {
        use super::Channel;
        match self {
            ClientToServer::Position { .. } => Channel::Position,
            ClientToServer::Signal { .. } => Channel::Signal,
            ClientToServer::RequestPeerRefresh
            | ClientToServer::ConnectionReport { .. }
            | ClientToServer::Block { .. }
            | ClientToServer::SetVoiceRange { .. } => Channel::Control,
        }
    }
}

/// A message from the server to a client.
///
/// [`ServerToClient::Signal`] travels on [`Channel::Signal`](super::Channel::Signal), the rest
/// on [`Channel::Control`](super::Channel::Control), which is reliable and ordered: a client
/// that applies every message in order holds exactly the server's view of its peer set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerToClient {
    /// Sent once, before any other message: who you are and the rules in force.
    Welcome {
        /// Your peer id.
        you: PeerId,
        /// Introduction distance, world units.
        range: f32,
        /// Departure distance, world units (>= `range`).
        leave_range: f32,
        /// Proximity ticks per second.
        tick_hz: f32,
    },
    /// What changed in your peer set during one proximity tick; at most one per tick.
    /// Apply `left` before `entered` (a peer that reconnected within one tick is in both).
    PeersChanged {
        /// Peers introduced to you this tick, ascending, each with why (nearby, or a group
        /// you share).
        entered: Vec<(PeerId, ArrivalCause)>,
        /// Peers no longer introduced to you this tick, ascending, each with why.
        left: Vec<(PeerId, DepartureCause)>,
    },
    /// Your full current peer set, ascending; the answer to
    /// [`ClientToServer::RequestPeerRefresh`]. Replaces whatever set you held.
    PeerSnapshot {
        /// Every peer currently introduced to you.
        peers: Vec<PeerId>,
    },
    /// Signaling relayed from an introduced peer.
    Signal {
        /// The sender.
        from: PeerId,
        /// Opaque bytes as the sender sent them.
        payload: Vec<u8>,
    },
    /// The STUN and TURN servers to gather ICE candidates with, TURN ones with credentials of
    /// your own. Sent right after [`ServerToClient::Welcome`] when the server has any, and again
    /// before the credentials expire (at half their lifetime); each one replaces the last.
    IceServers {
        /// At most [`MAX_ICE_SERVERS`](super::MAX_ICE_SERVERS).
        servers: Vec<IceServer>,
        /// Unix time (seconds) after which the TURN credentials are refused; 0 without TURN.
        expires_unix: u64,
    },
    /// Your message was refused; nothing else happened.
    Rejected {
        /// Why.
        reason: RejectReason,
    },
}

impl ServerToClient {
    /// The channel this kind of message travels on.
    pub fn channel(&self) -> super::Channel {
        match self {
            ServerToClient::Signal { .. } => super::Channel::Signal,
            _ => super::Channel::Control,
        }
    }
}
