//! Checks a decrypted renet packet's header before renet sees it.
//!
//! renet 2.0.1 trusts two fields it should not: a slice packet's `slice_index` (an index
//! `>= num_slices` panics in `channel/slice_constructor.rs:41`) and `num_slices` itself (up to
//! 1,000,000 is accepted, and a slice constructor allocates `num_slices × 1,200` bytes: 1.2 GB
//! from one datagram). Every client can send such a packet once connected, and with unsecure
//! authentication anyone can connect. This reads the header the way renet does (`packet.rs`,
//! QUIC varints) and refuses what renet would mishandle.

use crate::protocol::{Channel, MAX_MESSAGE_BYTES};

/// renet's slice size (`packet::SLICE_SIZE`).
const SLICE_SIZE: usize = 1200;

/// Most slices a message of ours can need: our messages are at most [`MAX_MESSAGE_BYTES`].
pub const MAX_SLICES: u64 = MAX_MESSAGE_BYTES.div_ceil(SLICE_SIZE) as u64;

/// Why a packet was refused before reaching renet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketFault {
    /// The header ended early or its type is unknown; renet would reject it too.
    Malformed,
    /// A channel id we never configured.
    UnknownChannel(u8),
    /// `slice_index >= num_slices`: the renet 2.0.1 panic.
    SliceIndexOutOfRange {
        /// The index sent.
        slice_index: u64,
        /// The count sent.
        num_slices: u64,
    },
    /// More slices than any message of ours needs (renet would allocate them all).
    TooManySlices(u64),
}

impl std::fmt::Display for PacketFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PacketFault::Malformed => write!(f, "malformed renet packet"),
            PacketFault::UnknownChannel(c) => write!(f, "renet packet on unknown channel {c}"),
            PacketFault::SliceIndexOutOfRange {
                slice_index,
                num_slices,
            } => write!(
                f,
                "slice index {slice_index} out of range of {num_slices} slices"
            ),
            PacketFault::TooManySlices(n) => {
                write!(f, "{n} slices exceed the limit of {MAX_SLICES}")
            }
        }
    }
}

impl std::error::Error for PacketFault {}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, PacketFault> {
        let (&b, rest) = self.0.split_first().ok_or(PacketFault::Malformed)?;
        self.0 = rest;
        Ok(b)
    }

    /// A QUIC variable-length integer, as the `octets` crate writes it.
    fn varint(&mut self) -> Result<u64, PacketFault> {
        let first = self.u8()?;
        let len = 1usize << (first >> 6);
        let mut v = u64::from(first & 0x3f);
        for _ in 1..len {
            v = (v << 8) | u64::from(self.u8()?);
        }
        Ok(v)
    }
}

fn known_channel(id: u8) -> Result<(), PacketFault> {
    match Channel::ALL.iter().any(|c| *c as u8 == id) {
        true => Ok(()),
        false => Err(PacketFault::UnknownChannel(id)),
    }
}

/// Checks the header of one decrypted renet packet.
///
/// # Errors
/// A [`PacketFault`] for a packet renet must not see.
pub fn check(packet: &[u8]) -> Result<(), PacketFault> {
    let mut r = Reader(packet);
    match r.u8()? {
        // SmallReliable, SmallUnreliable: sequence, channel.
        0 | 1 => {
            r.varint()?;
            known_channel(r.u8()?)
        }
        // ReliableSlice, UnreliableSlice: sequence, channel, message id, index, count.
        2 | 3 => {
            r.varint()?;
            known_channel(r.u8()?)?;
            r.varint()?;
            let slice_index = r.varint()?;
            let num_slices = r.varint()?;
            if num_slices > MAX_SLICES {
                return Err(PacketFault::TooManySlices(num_slices));
            }
            if slice_index >= num_slices {
                return Err(PacketFault::SliceIndexOutOfRange {
                    slice_index,
                    num_slices,
                });
            }
            Ok(())
        }
        // Ack, Disconnect: renet parses these safely.
        4 | 5 => Ok(()),
        _ => Err(PacketFault::Malformed),
    }
}

/// Writes a slice packet with a full-size slice (for tests and the hostile-input suite): with
/// `slice_index >= num_slices` it is the packet that crashes renet 2.0.1.
pub fn slice_packet(reliable: bool, channel: u8, slice_index: u64, num_slices: u64) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, v: u64) {
        // Always the 8-byte form: valid for any value below 2^62.
        out.extend_from_slice(&(v | (0b11 << 62)).to_be_bytes());
    }
    let mut p = vec![if reliable { 2 } else { 3 }];
    varint(&mut p, 0); // sequence
    p.push(channel);
    varint(&mut p, 0); // message id
    varint(&mut p, slice_index);
    varint(&mut p, num_slices);
    // A full slice: renet checks a non-last slice's size before it indexes.
    varint(&mut p, SLICE_SIZE as u64);
    p.extend(std::iter::repeat_n(7u8, SLICE_SIZE));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_renet_panic_packet_is_refused() {
        let p = slice_packet(true, 0, 5, 5);
        assert_eq!(
            check(&p),
            Err(PacketFault::SliceIndexOutOfRange {
                slice_index: 5,
                num_slices: 5
            })
        );
        assert_eq!(
            check(&slice_packet(false, 1, 9, 2)).unwrap_err(),
            PacketFault::SliceIndexOutOfRange {
                slice_index: 9,
                num_slices: 2
            }
        );
    }

    #[test]
    fn a_gigabyte_of_slices_is_refused() {
        assert_eq!(
            check(&slice_packet(true, 0, 0, 1_000_000)),
            Err(PacketFault::TooManySlices(1_000_000))
        );
    }

    #[test]
    fn valid_slices_and_small_packets_pass() {
        assert_eq!(check(&slice_packet(true, 2, 0, 5)), Ok(()));
        assert_eq!(check(&slice_packet(true, 2, 54, MAX_SLICES)), Ok(()));
        assert_eq!(check(&[0, 0x01, 0, 0, 0]), Ok(()));
        assert_eq!(check(&[4, 1, 1, 1]), Ok(()));
    }

    #[test]
    fn unknown_channels_and_garbage_are_refused() {
        assert_eq!(
            check(&[0, 0x01, 9, 0, 0]),
            Err(PacketFault::UnknownChannel(9))
        );
        assert_eq!(check(&[]), Err(PacketFault::Malformed));
        assert_eq!(check(&[2, 0x40]), Err(PacketFault::Malformed));
        assert_eq!(check(&[200]), Err(PacketFault::Malformed));
    }
}
