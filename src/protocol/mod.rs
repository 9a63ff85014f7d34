//! The wire protocol: message types, their bincode codec and the renet channel layout.
//!
//! Nothing here knows Bevy or sockets. Both directions are plain enums,
//! [`ClientToServer`] and [`ServerToClient`], encoded with one bincode 2 configuration that
//! carries a byte limit ([`MAX_MESSAGE_BYTES`]). Decoding validates every field, so a decoded
//! message is always valid: finite coordinates inside [`MAX_COORDINATE`], signal payloads no
//! larger than [`MAX_SIGNAL_PAYLOAD_BYTES`], no trailing bytes.
//!
//! ```
//! use mingle::protocol::{decode_client, encode_client, ClientToServer, SpaceId};
//!
//! let msg = ClientToServer::Position { space: SpaceId(1), position: [1.0, 2.0, 0.0] };
//! let bytes = encode_client(&msg);
//! assert_eq!(decode_client(&bytes), Ok(msg));
//! assert!(decode_client(&bytes[..1]).is_err());
//! ```

mod channels;
mod codec;
mod messages;

pub use channels::{Channel, RELIABLE_MEMORY_BYTES, connection_config};
pub use codec::{DecodeError, decode_client, decode_server, encode_client, encode_server};
pub use messages::{
    ClientToServer, ConnectionOutcome, IceServer, Limited, MAX_TOKEN_GROUPS, PeerId, Realm,
    RejectReason, ServerToClient, SpaceId, token_groups, token_user_data,
};

/// Identifies this wire format at the netcode handshake: a client built against another
/// version is refused before it sends a single message. Changes whenever the wire types do.
pub const PROTOCOL_ID: u64 = 0x6d69_6e67_6c65_0004;

/// Largest encoded message, in bytes, that either side decodes. Default: 64 KiB.
///
/// Large enough for a [`ServerToClient::PeerSnapshot`] of several thousand peers and a
/// [`MAX_SIGNAL_PAYLOAD_BYTES`] signal; anything larger is rejected unread.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Largest opaque WebRTC signaling payload (SDP offer/answer, ICE candidate), in bytes: 16 KiB.
pub const MAX_SIGNAL_PAYLOAD_BYTES: usize = 16 * 1024;

/// Largest absolute coordinate accepted on any axis, in world units: 10,000,000.
///
/// Positions beyond it are "out of world" and rejected at decode.
pub const MAX_COORDINATE: f32 = 10_000_000.0;

/// Most peer ids one server message may list (in `entered`, `left` or a snapshot): 4,096.
///
/// netcode caps a server at 1,024 clients, so a real server never comes close.
pub const MAX_PEERS_PER_MESSAGE: usize = 4096;

/// Most ICE servers in one [`ServerToClient::IceServers`]: 8.
pub const MAX_ICE_SERVERS: usize = 8;

/// Most URLs of one [`IceServer`]: 8.
pub const MAX_ICE_URLS: usize = 8;

/// Longest URL, username or credential of an [`IceServer`], in bytes: 512.
pub const MAX_ICE_TEXT_BYTES: usize = 512;
