//! What the core reports and refuses: pair changes and their causes, errors, handles.

#[cfg(doc)]
use super::Proximity;
use crate::protocol::PeerId;

/// Why a pair was introduced.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ArrivalCause {
    /// They came within range.
    Proximity,
    /// They share a group (party, team, radio frequency): introduced wherever they stand.
    Group,
}

/// Why an introduced pair ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum DepartureCause {
    /// They moved apart beyond `leave_range`.
    Range,
    /// One side was removed (disconnected).
    Disconnect,
    /// One side moved to another space.
    SpaceChange,
    /// A peer cap is in force and one side was introduced to a nearer client instead.
    Replaced,
    /// One side blocked the other (or the game blocked the pair).
    Blocked,
    /// They no longer share a group, and are not near enough to stay introduced by proximity.
    GroupLeft,
}

impl ArrivalCause {
    /// A short lowercase name, for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ArrivalCause::Proximity => "proximity",
            ArrivalCause::Group => "group",
        }
    }
}

impl DepartureCause {
    /// A short lowercase name, for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DepartureCause::Range => "range",
            DepartureCause::Disconnect => "disconnect",
            DepartureCause::SpaceChange => "space_change",
            DepartureCause::Replaced => "replaced",
            DepartureCause::Blocked => "blocked",
            DepartureCause::GroupLeft => "group_left",
        }
    }
}

/// A pair whose state changed in a tick. Each pair appears once; `a` is the side whose
/// input caused the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairChange {
    /// `a` and `b` are now introduced.
    Entered {
        /// The side that moved (or joined).
        a: PeerId,
        /// The other side.
        b: PeerId,
        /// Why.
        cause: ArrivalCause,
    },
    /// `a` and `b` are no longer introduced.
    Left {
        /// The side that moved, left the space or disconnected.
        a: PeerId,
        /// The other side.
        b: PeerId,
        /// Why.
        cause: DepartureCause,
    },
}

/// An input the core refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProximityError {
    /// A coordinate was NaN or infinite.
    NonFinitePosition,
    /// The handle's client was removed since the handle was issued.
    StaleHandle,
}

/// A client's place in the core, returned by [`Proximity::set_position`]. Moving a client by
/// its handle ([`Proximity::set_position_of`]) skips the id lookup: the fast path for a caller
/// that keeps the handle beside the client (the server keeps it in a component). A handle
/// outlived by its client is refused, never taken for whoever reuses the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientHandle {
    pub(super) index: u32,
    pub(super) generation: u32,
}

impl std::fmt::Display for ProximityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProximityError::NonFinitePosition => {
                write!(f, "position has a NaN or infinite coordinate")
            }
            ProximityError::StaleHandle => write!(f, "the handle's client was removed"),
        }
    }
}

impl std::error::Error for ProximityError {}

// A change is small enough to buffer by the thousand: checked by the compiler.
const _: () = assert!(std::mem::size_of::<PairChange>() <= 24);
