//! Checks a received datagram's netcode prefix before renetcode sees it, and runs the
//! third-party decoders so that a panic in them costs its sender, never the server.
//!
//! renetcode 2.0.0 trusts the prefix byte of every packet from an address it holds a key for
//! (a pending or connected client): its upper nibble is the sequence length, and
//! `packet.rs:375` slices an 8-byte buffer with it, so 9–15 panic. A sequence that leaves fewer
//! than 16 bytes for the MAC underflows in `crypto.rs` (`buffer.len() - NETCODE_MAC_BYTES`) and
//! panics too. [`check_datagram`] refuses both, and everything else renetcode would only log
//! and drop (so a flood of garbage costs a counter, not a log line per datagram).
//!
//! [`isolate`] is the second line: it runs a decoder inside `catch_unwind` with the process's
//! panic hook silenced for that call, so a caught panic captures no backtrace and prints
//! nothing, also under `RUST_BACKTRACE=1` (where the default hook's backtrace cost ~250 ms and
//! ~115 MiB per panic).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

/// Bytes of a netcode MAC (Poly1305 tag).
pub const NETCODE_MAC_BYTES: usize = 16;
/// Most sequence bytes a netcode prefix may announce.
pub const MAX_SEQUENCE_BYTES: u8 = 8;
/// Bytes of a netcode connection request: prefix, version, protocol id, expiry, nonce, token.
pub const CONNECTION_REQUEST_BYTES: usize = 1 + 13 + 8 + 8 + 24 + 1024;
/// The version string every netcode 1.02 connection request starts with.
pub const NETCODE_VERSION: &[u8; 13] = b"NETCODE 1.02\0";
/// Smallest datagram renetcode reads at all (a prefix, a sequence byte, a MAC).
pub const MIN_DATAGRAM_BYTES: usize = 2 + NETCODE_MAC_BYTES;

/// Why a datagram was dropped before reaching renetcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramFault {
    /// Shorter than its type needs.
    TooShort {
        /// The datagram's length.
        len: usize,
        /// The least its prefix allows.
        needed: usize,
    },
    /// A packet type netcode does not have (its prefix's low nibble is above 6).
    UnknownType(u8),
    /// The prefix announces more than [`MAX_SEQUENCE_BYTES`] sequence bytes (the renetcode
    /// 2.0.0 panic).
    SequenceTooLong(u8),
    /// A connection request for another netcode version or another protocol id.
    ForeignRequest,
}

impl std::fmt::Display for DatagramFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatagramFault::TooShort { len, needed } => {
                write!(f, "datagram of {len} bytes, its prefix needs {needed}")
            }
            DatagramFault::UnknownType(t) => write!(f, "unknown netcode packet type {t}"),
            DatagramFault::SequenceTooLong(n) => write!(
                f,
                "prefix announces {n} sequence bytes, the limit is {MAX_SEQUENCE_BYTES}"
            ),
            DatagramFault::ForeignRequest => {
                write!(f, "connection request for another version or protocol")
            }
        }
    }
}

impl std::error::Error for DatagramFault {}

/// Checks one datagram's netcode prefix and length the way renetcode will read them.
///
/// # Errors
/// A [`DatagramFault`] for a datagram renetcode must not see.
pub fn check_datagram(datagram: &[u8], protocol_id: u64) -> Result<(), DatagramFault> {
    let too_short = |needed: usize| match datagram.len() < needed {
        true => Err(DatagramFault::TooShort {
            len: datagram.len(),
            needed,
        }),
        false => Ok(()),
    };
    too_short(MIN_DATAGRAM_BYTES)?;
    let prefix = datagram[0];
    let (kind, sequence_bytes) = (prefix & 0x0f, prefix >> 4);
    match kind {
        // Connection request: plain text, fixed layout; renetcode ignores the upper nibble.
        0 => {
            too_short(CONNECTION_REQUEST_BYTES)?;
            let version = &datagram[1..14];
            let protocol = &datagram[14..22];
            if version != NETCODE_VERSION || protocol != protocol_id.to_le_bytes() {
                return Err(DatagramFault::ForeignRequest);
            }
            Ok(())
        }
        // Encrypted packets: prefix, sequence, ciphertext and MAC.
        1..=6 => {
            if sequence_bytes > MAX_SEQUENCE_BYTES {
                return Err(DatagramFault::SequenceTooLong(sequence_bytes));
            }
            too_short(1 + usize::from(sequence_bytes) + NETCODE_MAC_BYTES)
        }
        _ => Err(DatagramFault::UnknownType(kind)),
    }
}

thread_local! {
    /// Set while [`isolate`] runs a call on this thread: the panic hook stays silent.
    static ISOLATING: Cell<bool> = const { Cell::new(false) };
}

static QUIET_HOOK: Once = Once::new();

/// Installs (once per process) a panic hook that stays silent for panics inside [`isolate`]
/// and hands every other panic to the hook that was installed before it.
fn install_quiet_hook() {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !ISOLATING.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// A panic caught by [`isolate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaughtPanic;

/// Runs `f`, turning a panic inside it into `Err(CaughtPanic)` without printing it or capturing
/// a backtrace (whatever `RUST_BACKTRACE` says). Other threads' panics are reported as before.
///
/// # Errors
/// [`CaughtPanic`] if `f` panicked.
pub fn isolate<T>(f: impl FnOnce() -> T) -> Result<T, CaughtPanic> {
    install_quiet_hook();
    let was = ISOLATING.with(|i| i.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    ISOLATING.with(|i| i.set(was));
    result.map_err(|_| CaughtPanic)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTOCOL: u64 = 0x6d69_6e67_6c65;

    fn datagram(prefix: u8, len: usize) -> Vec<u8> {
        let mut d = vec![0u8; len];
        d[0] = prefix;
        d
    }

    #[test]
    fn the_renetcode_sequence_panic_prefix_is_refused() {
        // The datagram of the report: a payload prefix claiming 9 sequence bytes.
        assert_eq!(
            check_datagram(&datagram(0x95, 18), PROTOCOL),
            Err(DatagramFault::SequenceTooLong(9))
        );
        for nibble in 9..=15u8 {
            for kind in 1..=6u8 {
                assert_eq!(
                    check_datagram(&datagram(nibble << 4 | kind, 200), PROTOCOL),
                    Err(DatagramFault::SequenceTooLong(nibble))
                );
            }
        }
    }

    #[test]
    fn a_sequence_that_leaves_no_room_for_the_mac_is_refused() {
        // 8 sequence bytes in 18: renetcode would subtract 16 from 9 remaining bytes.
        assert_eq!(
            check_datagram(&datagram(0x85, 18), PROTOCOL),
            Err(DatagramFault::TooShort {
                len: 18,
                needed: 25
            })
        );
        assert_eq!(check_datagram(&datagram(0x85, 25), PROTOCOL), Ok(()));
        assert_eq!(check_datagram(&datagram(0x05, 18), PROTOCOL), Ok(()));
    }

    #[test]
    fn unknown_types_and_short_datagrams_are_refused() {
        assert_eq!(
            check_datagram(&datagram(0x07, 100), PROTOCOL),
            Err(DatagramFault::UnknownType(7))
        );
        assert_eq!(
            check_datagram(&[5; 17], PROTOCOL),
            Err(DatagramFault::TooShort {
                len: 17,
                needed: 18
            })
        );
    }

    #[test]
    fn connection_requests_must_be_whole_and_ours() {
        let mut request = datagram(0, CONNECTION_REQUEST_BYTES);
        assert_eq!(
            check_datagram(&request, PROTOCOL),
            Err(DatagramFault::ForeignRequest)
        );
        request[1..14].copy_from_slice(NETCODE_VERSION);
        request[14..22].copy_from_slice(&PROTOCOL.to_le_bytes());
        assert_eq!(check_datagram(&request, PROTOCOL), Ok(()));
        assert_eq!(
            check_datagram(&request, PROTOCOL + 1),
            Err(DatagramFault::ForeignRequest)
        );
        assert_eq!(
            check_datagram(&request[..500], PROTOCOL),
            Err(DatagramFault::TooShort {
                len: 500,
                needed: CONNECTION_REQUEST_BYTES
            })
        );
    }

    #[test]
    fn isolate_catches_a_panic_and_restores_its_flag() {
        assert_eq!(isolate(|| 7), Ok(7));
        assert_eq!(
            isolate(|| -> u32 { panic!("inside a decoder") }),
            Err(CaughtPanic)
        );
        assert!(
            !ISOLATING.with(Cell::get),
            "the flag is restored after a caught panic"
        );
        let nested = isolate(|| {
            let inner = isolate(|| -> u8 { panic!("inner") });
            (inner, ISOLATING.with(Cell::get))
        });
        assert_eq!(nested, Ok((Err(CaughtPanic), true)));
    }
}
