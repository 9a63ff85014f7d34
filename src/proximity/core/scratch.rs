//! Buffers the examination paths reuse tick after tick, so a steady-state tick allocates
//! nothing. Each is taken out of the core while in use and put back after.

use super::slab::Move;
use crate::protocol::PeerId;

/// The core's scratch buffers.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// Plain examination: clients in the scanned cells with their squared distance (those
    /// within `leave_range` first; the length is a high-water mark).
    pub candidates: Vec<(u32, f32)>,
    /// Plain examination: which of the examined client's pairs were seen near.
    pub seen: Vec<bool>,
    /// Every path: clients to introduce.
    pub entering: Vec<u32>,
    /// Capped admission: candidates by distance.
    pub ranked: Vec<(f32, PeerId, u32)>,
    /// Ruled examination: proximity candidates with their squared distance.
    pub ruled_near: Vec<(u32, f32)>,
    /// The tick's radix sort of movers: its second buffer.
    pub sorted_moves: Vec<Move>,
    /// `net_changes`: changes by pair, and which to keep.
    pub net_order: Vec<((u64, u64), usize)>,
    pub net_keep: Vec<bool>,
}
