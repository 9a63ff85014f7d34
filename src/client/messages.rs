//! What the client plugin tells the game, as Bevy messages.

use bevy::prelude::Message;

use crate::protocol::{PeerId, RejectReason};

/// A peer came within range: open a voice link to it. Written in [`PreUpdate`](bevy::app::PreUpdate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
pub struct PeerEntered(pub PeerId);

/// A peer left range or disconnected: close the voice link. Written in [`PreUpdate`](bevy::app::PreUpdate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
pub struct PeerLeft(pub PeerId);

/// WebRTC signaling from an introduced peer. Written in [`PreUpdate`](bevy::app::PreUpdate).
#[derive(Debug, Clone, PartialEq, Eq, Message)]
pub struct SignalReceived {
    /// The sender.
    pub from: PeerId,
    /// Opaque bytes as the sender sent them.
    pub payload: Vec<u8>,
}

/// The server refused one of this client's messages. Written in [`PreUpdate`](bevy::app::PreUpdate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
pub struct MessageRejected(pub RejectReason);
