//! The proximity tick's outputs, as Bevy messages games and the outbox can read.

use bevy::prelude::Message;

use crate::protocol::{ConnectionOutcome, PeerId};
use crate::proximity::{ArrivalCause, DepartureCause};

/// Two clients were introduced this tick. Written once per pair in [`FixedUpdate`](bevy::app::FixedUpdate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
pub struct PairEntered {
    /// The side whose move caused it.
    pub a: PeerId,
    /// The other side.
    pub b: PeerId,
    /// Why: nearby, or a group they share.
    pub cause: ArrivalCause,
}

/// An introduced pair ended this tick. Written once per pair in [`FixedUpdate`](bevy::app::FixedUpdate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
pub struct PairLeft {
    /// The side whose move, space change or disconnect caused it.
    pub a: PeerId,
    /// The other side.
    pub b: PeerId,
    /// Why the pair ended.
    pub cause: DepartureCause,
}

/// A client reported how its WebRTC link to an introduced peer turned out. Written in
/// [`PreUpdate`](bevy::app::PreUpdate) by the intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
pub struct ConnectionReported {
    /// The reporting client.
    pub from: PeerId,
    /// The peer its link was to.
    pub peer: PeerId,
    /// The outcome.
    pub outcome: ConnectionOutcome,
}
