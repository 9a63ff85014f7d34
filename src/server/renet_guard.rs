//! Checks a decrypted renet packet's header before renet sees it.
//!
//! renet 2.0.1 trusts two fields it should not: a slice packet's `slice_index` (an index
//! `>= num_slices` panics in `channel/slice_constructor.rs:41`) and `num_slices` itself (up to
//! 1,000,000 is accepted, and a slice constructor allocates `num_slices × 1,200` bytes: 1.2 GB
//! from one datagram). Every client can send such a packet once connected, and with unsecure
//! authentication anyone can connect. This reads the header the way renet does (`packet.rs`,
//! QUIC varints) and refuses what renet would mishandle.
//!
//! One packet's header is not enough: renet keeps a slice constructor per message id, sized by
//! the first slice it saw, and indexes it with later slices' indices. Slice 0 of a 2-slice
//! message followed by slice 40 of a "50-slice" message with the same id passes any per-packet
//! check and panics renet. [`SliceLedger`] remembers, per client and channel, each message id's
//! slice count, and refuses a slice that disagrees with it.

use std::collections::BTreeMap;

use crate::protocol::{Channel, MAX_MESSAGE_BYTES};

/// renet's slice size (`packet::SLICE_SIZE`).
pub const SLICE_SIZE: usize = 1200;

/// Message ids a client's channel may have in the [`SliceLedger`] at once. A mingle client has a
/// few sliced messages in flight (signals up to 16 KiB); past this the lowest id is forgotten
/// and slices below it are dropped.
pub const LEDGER_IDS_PER_CHANNEL: usize = 256;

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
    /// A slice of a message whose earlier slices announced another slice count.
    InconsistentSliceCount {
        /// The message id.
        message_id: u64,
        /// The count its first slice announced.
        first: u64,
        /// The count this slice announced.
        now: u64,
    },
    /// A slice of the wrong size: every slice but the last is [`SLICE_SIZE`] bytes, the last
    /// 1 to [`SLICE_SIZE`].
    BadSliceSize {
        /// The slice's index.
        slice_index: u64,
        /// Its size in bytes.
        len: u64,
    },
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
            PacketFault::InconsistentSliceCount {
                message_id,
                first,
                now,
            } => write!(
                f,
                "slice of message {message_id} claims {now} slices, its first claimed {first}"
            ),
            PacketFault::BadSliceSize { slice_index, len } => {
                write!(
                    f,
                    "slice {slice_index} has {len} bytes (non-last slices are exactly {SLICE_SIZE}, the last 1 to {SLICE_SIZE})"
                )
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

/// The header fields of a slice packet that the [`SliceLedger`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceHeader {
    /// The channel id.
    pub channel: u8,
    /// The message the slice belongs to.
    pub message_id: u64,
    /// Which slice.
    pub slice_index: u64,
    /// How many slices the message has, as this slice claims.
    pub num_slices: u64,
    /// The slice's payload bytes.
    pub len: u64,
}

/// Checks the header of one decrypted renet packet; returns the slice header of a slice packet.
///
/// # Errors
/// A [`PacketFault`] for a packet renet must not see.
pub fn check(packet: &[u8]) -> Result<Option<SliceHeader>, PacketFault> {
    let mut r = Reader(packet);
    match r.u8()? {
        // SmallReliable, SmallUnreliable: sequence, channel.
        0 | 1 => {
            r.varint()?;
            known_channel(r.u8()?)?;
            Ok(None)
        }
        // ReliableSlice, UnreliableSlice: sequence, channel, message id, index, count, length.
        2 | 3 => {
            r.varint()?;
            let channel = r.u8()?;
            known_channel(channel)?;
            let message_id = r.varint()?;
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
            let len = r.varint()?;
            let last = slice_index + 1 == num_slices;
            let size_ok = match last {
                true => (1..=SLICE_SIZE as u64).contains(&len),
                false => len == SLICE_SIZE as u64,
            };
            if !size_ok {
                return Err(PacketFault::BadSliceSize { slice_index, len });
            }
            Ok(Some(SliceHeader {
                channel,
                message_id,
                slice_index,
                num_slices,
                len,
            }))
        }
        // Ack, Disconnect: renet parses these safely.
        4 | 5 => Ok(None),
        _ => Err(PacketFault::Malformed),
    }
}

/// What the ledger decided about one slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceVerdict {
    /// Consistent with every earlier slice of its message: hand it to renet.
    Pass,
    /// Below the ids the ledger still remembers: dropped unseen (renet has that message
    /// assembled already, or it is an attacker's; a sender of ours never lags that far).
    Stale,
}

/// One client's memory of the slice counts its sliced messages announced, per channel.
///
/// A sender of ours never sends two slice counts for one message id, so the first count seen
/// for an id is the only valid one. Ids are remembered up to [`LEDGER_IDS_PER_CHANNEL`] per
/// channel; when one is forgotten, every slice at or below it is dropped from then on, so
/// renet never sees a slice for an id whose count the ledger no longer knows.
#[derive(Debug, Default)]
pub struct SliceLedger {
    channels: [ChannelLedger; Channel::ALL.len()],
}

#[derive(Debug, Default)]
struct ChannelLedger {
    counts: BTreeMap<u64, u64>,
    /// Slices of ids below this are dropped.
    floor: u64,
}

impl SliceLedger {
    /// Admits one slice, remembering its message's slice count.
    ///
    /// # Errors
    /// [`PacketFault::InconsistentSliceCount`] when an earlier slice of the same message
    /// announced another count (the renet panic's second step).
    pub fn admit(&mut self, slice: SliceHeader) -> Result<SliceVerdict, PacketFault> {
        let Some(ledger) = self.channels.get_mut(usize::from(slice.channel)) else {
            return Err(PacketFault::UnknownChannel(slice.channel));
        };
        if slice.message_id < ledger.floor {
            return Ok(SliceVerdict::Stale);
        }
        let first = *ledger
            .counts
            .entry(slice.message_id)
            .or_insert(slice.num_slices);
        if first != slice.num_slices {
            return Err(PacketFault::InconsistentSliceCount {
                message_id: slice.message_id,
                first,
                now: slice.num_slices,
            });
        }
        if ledger.counts.len() > LEDGER_IDS_PER_CHANNEL
            && let Some((lowest, _)) = ledger.counts.pop_first()
        {
            ledger.floor = lowest + 1;
            if slice.message_id < ledger.floor {
                return Ok(SliceVerdict::Stale);
            }
        }
        Ok(SliceVerdict::Pass)
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
        assert!(check(&slice_packet(true, 2, 0, 5)).unwrap().is_some());
        assert!(check(&slice_packet(true, 2, 54, MAX_SLICES)).is_ok());
        assert_eq!(check(&[0, 0x01, 0, 0, 0]), Ok(None));
        assert_eq!(check(&[4, 1, 1, 1]), Ok(None));
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

    fn header(message_id: u64, slice_index: u64, num_slices: u64) -> SliceHeader {
        SliceHeader {
            channel: Channel::Signal as u8,
            message_id,
            slice_index,
            num_slices,
            len: SLICE_SIZE as u64,
        }
    }

    #[test]
    fn two_step_slice_attack_is_refused_by_the_ledger() {
        // Slice 0 of a 2-slice message, then slice 40 of a "50-slice" message, same id.
        let mut ledger = SliceLedger::default();
        assert_eq!(ledger.admit(header(7, 0, 2)), Ok(SliceVerdict::Pass));
        assert_eq!(
            ledger.admit(header(7, 40, 50)),
            Err(PacketFault::InconsistentSliceCount {
                message_id: 7,
                first: 2,
                now: 50
            })
        );
        // Consistent slices, and other ids, pass.
        assert_eq!(ledger.admit(header(7, 1, 2)), Ok(SliceVerdict::Pass));
        assert_eq!(ledger.admit(header(8, 3, 50)), Ok(SliceVerdict::Pass));
    }

    #[test]
    fn a_forgotten_id_is_never_handed_to_renet_again() {
        let mut ledger = SliceLedger::default();
        assert_eq!(ledger.admit(header(0, 0, 2)), Ok(SliceVerdict::Pass));
        for id in 1..=LEDGER_IDS_PER_CHANNEL as u64 {
            assert_eq!(ledger.admit(header(id, 0, 2)), Ok(SliceVerdict::Pass));
        }
        // Id 0 was forgotten: its inconsistent slice is dropped, not passed.
        assert_eq!(ledger.admit(header(0, 40, 50)), Ok(SliceVerdict::Stale));
        // Channels are kept apart.
        let other = SliceHeader {
            channel: Channel::Control as u8,
            ..header(0, 40, 50)
        };
        assert_eq!(ledger.admit(other), Ok(SliceVerdict::Pass));
    }

    #[test]
    fn slice_sizes_are_checked() {
        let mut p = slice_packet(true, 2, 0, 5);
        // The length varint sits after 1 + 8 + 1 + 8 + 8 + 8 bytes; claim 1,000 bytes.
        let at = 1 + 8 + 1 + 8 + 8 + 8;
        p[at..at + 8].copy_from_slice(&(1000u64 | (0b11 << 62)).to_be_bytes());
        assert_eq!(
            check(&p),
            Err(PacketFault::BadSliceSize {
                slice_index: 0,
                len: 1000
            })
        );
    }
}
