//! Sends each client at most one `PeersChanged` per tick, built from the tick's messages.

use bevy::prelude::{Local, MessageReader, ResMut};
use bevy_renet::RenetServer;

use super::messages::{Departure, Introduction};
use super::send;
use super::stats::ServerStats;
use crate::protocol::{PeerId, ServerToClient};

/// One side's view of a pair change: (recipient, left?, the other peer). Sorted, each
/// recipient's notes are contiguous, introductions first, each list ascending.
type Note = (PeerId, bool, PeerId);

/// Batches the tick's introductions and departures per recipient and sends them.
pub(crate) fn send_peer_changes(
    mut server: ResMut<RenetServer>,
    mut introductions: MessageReader<Introduction>,
    mut departures: MessageReader<Departure>,
    mut stats: ResMut<ServerStats>,
    mut notes: Local<Vec<Note>>,
) {
    notes.clear();
    for &Introduction { a, b } in introductions.read() {
        notes.extend([(a, false, b), (b, false, a)]);
    }
    for &Departure { a, b, .. } in departures.read() {
        notes.extend([(a, true, b), (b, true, a)]);
    }
    if notes.is_empty() {
        return;
    }
    notes.sort_unstable();
    for group in notes.chunk_by(|x, y| x.0 == y.0) {
        let recipient = group[0].0;
        if !server.is_connected(recipient.0) {
            continue;
        }
        let split = group.partition_point(|n| !n.1);
        let entered = group[..split].iter().map(|n| n.2).collect();
        let left = group[split..].iter().map(|n| n.2).collect();
        stats.peers_changed_sent += 1;
        send(
            &mut server,
            recipient,
            &ServerToClient::PeersChanged { entered, left },
        );
    }
}
