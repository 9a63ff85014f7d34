//! Encoding and validating decoding of both message enums with one bincode 2 configuration.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    ClientToServer, IceServer, MAX_COORDINATE, MAX_ICE_SERVERS, MAX_ICE_TEXT_BYTES, MAX_ICE_URLS,
    MAX_MESSAGE_BYTES, MAX_PEERS_PER_MESSAGE, MAX_SIGNAL_PAYLOAD_BYTES, ServerToClient,
};

type WireConfig = Configuration<LittleEndian, Varint, Limit<MAX_MESSAGE_BYTES>>;

/// The one bincode configuration of the wire: little endian, varints, [`MAX_MESSAGE_BYTES`] limit.
const WIRE: WireConfig = bincode::config::standard().with_limit::<MAX_MESSAGE_BYTES>();

/// Why bytes did not decode into a valid message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input is longer than [`MAX_MESSAGE_BYTES`], or declares a collection that would be.
    TooLarge {
        /// Bytes given (or declared).
        len: usize,
    },
    /// The input ended in the middle of a message.
    Truncated,
    /// The bytes are not a message of this direction (unknown variant, bad integer, ...).
    Malformed,
    /// A whole message decoded but bytes were left over.
    TrailingBytes {
        /// How many bytes were left.
        extra: usize,
    },
    /// A coordinate is NaN or infinite.
    NonFiniteCoordinate,
    /// A coordinate lies beyond [`MAX_COORDINATE`].
    OutOfWorld,
    /// A signal payload exceeds [`MAX_SIGNAL_PAYLOAD_BYTES`].
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
    },
    /// A peer list exceeds [`MAX_PEERS_PER_MESSAGE`].
    TooManyPeers {
        /// The list's length.
        len: usize,
    },
    /// An ICE server list exceeds [`MAX_ICE_SERVERS`], or one server's URLs [`MAX_ICE_URLS`].
    TooManyIceEntries {
        /// The list's length.
        len: usize,
    },
    /// An ICE URL, username or credential exceeds [`MAX_ICE_TEXT_BYTES`].
    IceTextTooLong {
        /// Its length.
        len: usize,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooLarge { len } => write!(
                f,
                "message of {len} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes"
            ),
            DecodeError::Truncated => write!(f, "message is truncated"),
            DecodeError::Malformed => write!(f, "message is malformed"),
            DecodeError::TrailingBytes { extra } => {
                write!(f, "{extra} trailing bytes after the message")
            }
            DecodeError::NonFiniteCoordinate => write!(f, "coordinate is NaN or infinite"),
            DecodeError::OutOfWorld => write!(
                f,
                "coordinate lies beyond the world limit of {MAX_COORDINATE} units"
            ),
            DecodeError::PayloadTooLarge { len } => write!(
                f,
                "signal payload of {len} bytes exceeds the limit of {MAX_SIGNAL_PAYLOAD_BYTES} bytes"
            ),
            DecodeError::TooManyPeers { len } => write!(
                f,
                "peer list of {len} exceeds the limit of {MAX_PEERS_PER_MESSAGE}"
            ),
            DecodeError::TooManyIceEntries { len } => write!(
                f,
                "ICE list of {len} exceeds the limit of {MAX_ICE_SERVERS} servers / {MAX_ICE_URLS} URLs"
            ),
            DecodeError::IceTextTooLong { len } => write!(
                f,
                "ICE text of {len} bytes exceeds the limit of {MAX_ICE_TEXT_BYTES} bytes"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

// `DecodeError` is `Copy` and small (<= 16 bytes): checked by the compiler.
const _: () = assert!(std::mem::size_of::<DecodeError>() <= 16);

impl DecodeError {
    /// The rejection a client is sent for this error.
    pub fn reject_reason(self) -> super::RejectReason {
        use super::RejectReason;
        match self {
            DecodeError::NonFiniteCoordinate | DecodeError::OutOfWorld => {
                RejectReason::InvalidPosition
            }
            DecodeError::PayloadTooLarge { .. } => RejectReason::PayloadTooLarge,
            _ => RejectReason::Undecodable,
        }
    }
}

fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(msg, WIRE)
        .expect("wire types hold no maps or unsized fields, so they always encode")
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge { len: bytes.len() });
    }
    let (msg, read) = bincode::serde::decode_from_slice(bytes, WIRE).map_err(|e| match e {
        bincode::error::DecodeError::UnexpectedEnd { .. } => DecodeError::Truncated,
        bincode::error::DecodeError::LimitExceeded => DecodeError::TooLarge { len: bytes.len() },
        _ => DecodeError::Malformed,
    })?;
    match bytes.len() - read {
        0 => Ok(msg),
        extra => Err(DecodeError::TrailingBytes { extra }),
    }
}

fn check_position(position: &[f32; 3]) -> Result<(), DecodeError> {
    for c in position {
        if !c.is_finite() {
            return Err(DecodeError::NonFiniteCoordinate);
        }
        if c.abs() > MAX_COORDINATE {
            return Err(DecodeError::OutOfWorld);
        }
    }
    Ok(())
}

fn check_payload(payload: &[u8]) -> Result<(), DecodeError> {
    match payload.len() {
        len if len > MAX_SIGNAL_PAYLOAD_BYTES => Err(DecodeError::PayloadTooLarge { len }),
        _ => Ok(()),
    }
}

fn check_peers<T>(peers: &[T]) -> Result<(), DecodeError> {
    match peers.len() {
        len if len > MAX_PEERS_PER_MESSAGE => Err(DecodeError::TooManyPeers { len }),
        _ => Ok(()),
    }
}

fn check_ice_servers(servers: &[IceServer]) -> Result<(), DecodeError> {
    if servers.len() > MAX_ICE_SERVERS {
        return Err(DecodeError::TooManyIceEntries { len: servers.len() });
    }
    for server in servers {
        if server.urls.len() > MAX_ICE_URLS {
            return Err(DecodeError::TooManyIceEntries {
                len: server.urls.len(),
            });
        }
        let texts = server
            .urls
            .iter()
            .chain([&server.username, &server.credential]);
        for text in texts {
            if text.len() > MAX_ICE_TEXT_BYTES {
                return Err(DecodeError::IceTextTooLong { len: text.len() });
            }
        }
    }
    Ok(())
}

/// Encodes a client message.
pub fn encode_client(msg: &ClientToServer) -> Vec<u8> {
    encode(msg)
}

/// Encodes a server message.
pub fn encode_server(msg: &ServerToClient) -> Vec<u8> {
    encode(msg)
}

/// Decodes and validates a client message.
///
/// # Errors
/// Any [`DecodeError`]: the bytes are oversized, truncated, malformed, followed by trailing
/// bytes, or carry an invalid field (non-finite or out-of-world coordinate, oversized payload).
pub fn decode_client(bytes: &[u8]) -> Result<ClientToServer, DecodeError> {
    let msg: ClientToServer = decode(bytes)?;
    match &msg {
        ClientToServer::Position { position, .. } => check_position(position)?,
        ClientToServer::Signal { payload, .. } => check_payload(payload)?,
        ClientToServer::RequestPeerRefresh
        | ClientToServer::ConnectionReport { .. }
        | ClientToServer::Block { .. }
        | ClientToServer::SetVoiceRange { .. } => {}
    }
    Ok(msg)
}

/// Decodes and validates a server message.
///
/// # Errors
/// Any [`DecodeError`], as for [`decode_client`].
pub fn decode_server(bytes: &[u8]) -> Result<ServerToClient, DecodeError> {
    let msg: ServerToClient = decode(bytes)?;
    match &msg {
        ServerToClient::PeersChanged { entered, left } => {
            check_peers(entered)?;
            check_peers(left)?;
        }
        ServerToClient::PeerSnapshot { peers } => check_peers(peers)?,
        ServerToClient::Signal { payload, .. } => check_payload(payload)?,
        ServerToClient::IceServers { servers, .. } => check_ice_servers(servers)?,
        ServerToClient::Welcome { .. } | ServerToClient::Rejected { .. } => {}
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ConnectionOutcome, IceServer, PeerId, RejectReason, SpaceId};

    fn client_messages() -> Vec<ClientToServer> {
        vec![
            ClientToServer::Position {
                space: SpaceId(7),
                position: [1.5, -2.0, MAX_COORDINATE],
            },
            ClientToServer::RequestPeerRefresh,
            ClientToServer::Signal {
                to: PeerId(u64::MAX),
                payload: vec![7; MAX_SIGNAL_PAYLOAD_BYTES],
            },
            ClientToServer::ConnectionReport {
                peer: PeerId(3),
                outcome: ConnectionOutcome::Connected,
            },
            ClientToServer::ConnectionReport {
                peer: PeerId(3),
                outcome: ConnectionOutcome::Failed,
            },
            ClientToServer::ConnectionReport {
                peer: PeerId(3),
                outcome: ConnectionOutcome::TimedOut,
            },
            ClientToServer::Block {
                peer: PeerId(9),
                blocked: true,
            },
            ClientToServer::SetVoiceRange { multiplier: 0.5 },
        ]
    }

    fn server_messages() -> Vec<ServerToClient> {
        vec![
            ServerToClient::Welcome {
                you: PeerId(9),
                range: 20.0,
                leave_range: 25.0,
                tick_hz: 20.0,
            },
            ServerToClient::PeersChanged {
                entered: vec![
                    (PeerId(1), crate::proximity::ArrivalCause::Proximity),
                    (PeerId(2), crate::proximity::ArrivalCause::Group),
                ],
                left: vec![(PeerId(3), crate::proximity::DepartureCause::Blocked)],
            },
            ServerToClient::PeerSnapshot {
                peers: (0..MAX_PEERS_PER_MESSAGE as u64).map(PeerId).collect(),
            },
            ServerToClient::Signal {
                from: PeerId(4),
                payload: b"v=0".to_vec(),
            },
            ServerToClient::IceServers {
                servers: vec![
                    IceServer {
                        urls: vec!["stun:203.0.113.1:3478".into()],
                        username: String::new(),
                        credential: String::new(),
                    },
                    IceServer {
                        urls: vec!["turn:203.0.113.1:3478?transport=udp".into()],
                        username: "1700000000:9".into(),
                        credential: "x".repeat(MAX_ICE_TEXT_BYTES),
                    },
                ],
                expires_unix: 1_700_000_000,
            },
            ServerToClient::Rejected {
                reason: RejectReason::Undecodable,
            },
            ServerToClient::Rejected {
                reason: RejectReason::WrongChannel,
            },
            ServerToClient::Rejected {
                reason: RejectReason::NotIntroduced { peer: PeerId(5) },
            },
            ServerToClient::Rejected {
                reason: RejectReason::UnknownPeer { peer: PeerId(6) },
            },
            ServerToClient::Rejected {
                reason: RejectReason::InvalidPosition,
            },
            ServerToClient::Rejected {
                reason: RejectReason::PayloadTooLarge,
            },
            ServerToClient::Rejected {
                reason: RejectReason::RateLimited {
                    what: crate::protocol::Limited::Position,
                },
            },
            ServerToClient::Rejected {
                reason: RejectReason::RateLimited {
                    what: crate::protocol::Limited::Refresh,
                },
            },
        ]
    }

    #[test]
    fn every_client_message_round_trips() {
        for msg in client_messages() {
            assert_eq!(
                decode_client(&encode_client(&msg)),
                Ok(msg.clone()),
                "{msg:?}"
            );
        }
    }

    #[test]
    fn every_server_message_round_trips() {
        for msg in server_messages() {
            assert_eq!(
                decode_server(&encode_server(&msg)),
                Ok(msg.clone()),
                "{msg:?}"
            );
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        for msg in client_messages() {
            let bytes = encode_client(&msg);
            for cut in 0..bytes.len().min(64) {
                assert_eq!(
                    decode_client(&bytes[..cut]),
                    Err(DecodeError::Truncated),
                    "{msg:?} cut at {cut}"
                );
            }
        }
        for msg in server_messages() {
            let bytes = encode_server(&msg);
            assert!(decode_server(&bytes[..bytes.len() - 1]).is_err(), "{msg:?}");
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode_client(&ClientToServer::RequestPeerRefresh);
        bytes.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode_client(&bytes),
            Err(DecodeError::TrailingBytes { extra: 2 })
        );
    }

    #[test]
    fn oversized_input_is_rejected_unread() {
        let bytes = vec![0u8; MAX_MESSAGE_BYTES + 1];
        assert_eq!(
            decode_client(&bytes),
            Err(DecodeError::TooLarge {
                len: MAX_MESSAGE_BYTES + 1
            })
        );
    }

    #[test]
    fn declared_length_beyond_limit_is_rejected() {
        // Signal variant (2), peer id 1, then a payload length varint of u32::MAX (0xFC + 4 bytes).
        let bytes = [2u8, 1, 0xFC, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(matches!(
            decode_client(&bytes),
            Err(DecodeError::TooLarge { .. } | DecodeError::Truncated)
        ));
    }

    #[test]
    fn unknown_variant_is_malformed() {
        assert_eq!(decode_client(&[200]), Err(DecodeError::Malformed));
        assert_eq!(decode_server(&[77]), Err(DecodeError::Malformed));
    }

    #[test]
    fn non_finite_coordinates_are_rejected() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let msg = ClientToServer::Position {
                space: SpaceId(0),
                position: [0.0, bad, 0.0],
            };
            assert_eq!(
                decode_client(&encode_client(&msg)),
                Err(DecodeError::NonFiniteCoordinate)
            );
        }
    }

    #[test]
    fn out_of_world_coordinates_are_rejected() {
        let msg = ClientToServer::Position {
            space: SpaceId(0),
            position: [0.0, 0.0, -MAX_COORDINATE * 2.0],
        };
        assert_eq!(
            decode_client(&encode_client(&msg)),
            Err(DecodeError::OutOfWorld)
        );
    }

    #[test]
    fn oversized_signal_payload_is_rejected() {
        let msg = ClientToServer::Signal {
            to: PeerId(1),
            payload: vec![0; MAX_SIGNAL_PAYLOAD_BYTES + 1],
        };
        assert_eq!(
            decode_client(&encode_client(&msg)),
            Err(DecodeError::PayloadTooLarge {
                len: MAX_SIGNAL_PAYLOAD_BYTES + 1
            })
        );
    }

    #[test]
    fn too_many_peers_is_rejected() {
        let msg = ServerToClient::PeerSnapshot {
            peers: (0..=MAX_PEERS_PER_MESSAGE as u64).map(PeerId).collect(),
        };
        assert_eq!(
            decode_server(&encode_server(&msg)),
            Err(DecodeError::TooManyPeers {
                len: MAX_PEERS_PER_MESSAGE + 1
            })
        );
    }

    fn ice(servers: usize, urls: usize, text: usize) -> ServerToClient {
        ServerToClient::IceServers {
            servers: (0..servers)
                .map(|_| IceServer {
                    urls: vec!["u".repeat(text); urls],
                    username: String::new(),
                    credential: String::new(),
                })
                .collect(),
            expires_unix: 0,
        }
    }

    #[test]
    fn too_many_ice_servers_is_rejected() {
        let msg = ice(MAX_ICE_SERVERS + 1, 1, 4);
        assert_eq!(
            decode_server(&encode_server(&msg)),
            Err(DecodeError::TooManyIceEntries {
                len: MAX_ICE_SERVERS + 1
            })
        );
    }

    #[test]
    fn too_many_ice_urls_is_rejected() {
        let msg = ice(1, MAX_ICE_URLS + 1, 4);
        assert_eq!(
            decode_server(&encode_server(&msg)),
            Err(DecodeError::TooManyIceEntries {
                len: MAX_ICE_URLS + 1
            })
        );
    }

    #[test]
    fn too_long_ice_text_is_rejected() {
        let msg = ice(1, 1, MAX_ICE_TEXT_BYTES + 1);
        assert_eq!(
            decode_server(&encode_server(&msg)),
            Err(DecodeError::IceTextTooLong {
                len: MAX_ICE_TEXT_BYTES + 1
            })
        );
        assert!(decode_server(&encode_server(&ice(1, 1, MAX_ICE_TEXT_BYTES))).is_ok());
    }

    #[test]
    fn ice_server_debug_hides_the_credential() {
        let server = IceServer {
            urls: vec!["turn:x".into()],
            username: "1:2".into(),
            credential: "s3cr3t".into(),
        };
        assert!(!format!("{server:?}").contains("s3cr3t"));
    }

    #[test]
    fn decode_error_is_small_and_copy() {
        fn is_copy<T: Copy + std::error::Error + Send + Sync>() {}
        is_copy::<DecodeError>();
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            // Whatever decodes must be a valid message that survives its own round trip.
            if let Ok(msg) = decode_client(&bytes) {
                proptest::prop_assert_eq!(decode_client(&encode_client(&msg)), Ok(msg));
            }
            if let Ok(msg) = decode_server(&bytes) {
                proptest::prop_assert_eq!(decode_server(&encode_server(&msg)), Ok(msg));
            }
        }
    }
}
