//! The proximity core: who is near whom, and what changed since the last tick.
//!
//! A state machine with no Bevy, no clock and no I/O. Inputs go in with
//! [`Proximity::set_position`] and [`Proximity::remove`]; one [`Proximity::tick`] computes and
//! appends every pair that changed to a buffer the caller owns.
//!
//! Contract:
//! - Two clients meet only in the same [`Realm`](crate::protocol::Realm) and
//!   [`SpaceId`](crate::protocol::SpaceId).
//! - A pair is introduced when `dx² + dy² + dz² <= range²` and kept until the squared distance
//!   exceeds `leave_range²` (hysteresis; no square roots anywhere).
//! - Pairs are symmetric: a [`PairChange`] names both sides once, and [`Proximity::nearby`] of
//!   either lists the other.
//! - Cost follows movement: only clients whose position was set since the last tick are
//!   examined, in cell order, against a uniform grid of cells a little over twice
//!   `leave_range` wide. A tick in which nobody moved does nothing.
//! - [`Proximity::set_position`] returns a [`ClientHandle`]; moving a client by its handle
//!   ([`Proximity::set_position_of`]) skips the id lookup and is the fast path (the server keeps
//!   the handle in [`ProximitySlot`](crate::server::ProximitySlot)).
//!
//! ```
//! use mingle::proximity::{PairChange, Proximity, ProximityConfig};
//! use mingle::protocol::{PeerId, Realm, SpaceId};
//!
//! let mut core = Proximity::new(ProximityConfig::default()); // range 20, leave 25
//! let (realm, space) = (Realm(1), SpaceId(0));
//! core.set_position(PeerId(1), realm, space, [0.0, 0.0, 0.0]).unwrap();
//! core.set_position(PeerId(2), realm, space, [20.0, 0.0, 0.0]).unwrap();
//! let mut changes = Vec::new();
//! core.tick(&mut changes);
//! assert_eq!(changes.len(), 1); // introduced once, both sides named
//! assert!(matches!(changes[0], PairChange::Entered { .. }));
//!
//! changes.clear();
//! core.set_position(PeerId(2), realm, space, [24.0, 0.0, 0.0]).unwrap();
//! core.tick(&mut changes);
//! assert!(changes.is_empty()); // between range and leave_range: kept
//! ```

mod brute_force;
mod core;
mod grid;
mod prefetch;
mod rules;

pub use brute_force::{BruteForce, CapViolation, check_capped, check_capped_with_rules};
pub use core::{ArrivalCause, ClientHandle, DepartureCause, PairChange, Proximity, ProximityError};
pub use grid::GridFootprint;
pub use rules::{
    DEFAULT_MAX_GROUP_SIZE, GroupId, MAX_VOICE_RANGE, ProximityConfig, RuleError, SpaceRules,
    VoiceRules, voice_in_bounds,
};
