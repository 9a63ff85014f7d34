//! Why each peer arrived or left (#17): the game tells "party" from "nearby".

use std::collections::BTreeMap;

use bevy::prelude::Resource;

use crate::protocol::PeerId;
use crate::proximity::{ArrivalCause, DepartureCause};

/// Why each introduced peer was introduced, and why each peer that left did, as the server
/// said in its `PeersChanged`. Read it beside [`PeerEntered`](super::PeerEntered) and
/// [`PeerLeft`](super::PeerLeft): updated by the system that writes them.
/// Peers learned from a full snapshot have no cause.
#[derive(Debug, Clone, Default, Resource)]
pub struct PeerCauses {
    arrivals: BTreeMap<PeerId, ArrivalCause>,
    departures: BTreeMap<PeerId, DepartureCause>,
}

impl PeerCauses {
    /// Why `peer` was introduced (nearby, or a group you share), while it is.
    pub fn arrival(&self, peer: PeerId) -> Option<ArrivalCause> {
        self.arrivals.get(&peer).copied()
    }

    /// Why `peer` last left (range, blocked, left the group, ...).
    pub fn departure(&self, peer: PeerId) -> Option<DepartureCause> {
        self.departures.get(&peer).copied()
    }

    pub(crate) fn entered(&mut self, peer: PeerId, cause: ArrivalCause) {
        self.departures.remove(&peer);
        self.arrivals.insert(peer, cause);
    }

    pub(crate) fn left(&mut self, peer: PeerId, cause: DepartureCause) {
        self.arrivals.remove(&peer);
        self.departures.insert(peer, cause);
    }

    /// A new session: nothing held any more.
    pub(crate) fn clear(&mut self) {
        self.arrivals.clear();
        self.departures.clear();
    }
}
