//! Sends each client at most one `PeersChanged` per tick, built from the tick's messages.

use bevy::prelude::{Local, MessageReader, Res, ResMut};

use super::config::{MingleServerConfig, NotifyMode};
use super::messages::{PairEntered, PairLeft};
use super::stats::ServerStats;
use super::{Outgoing, send};
use crate::protocol::{PeerId, ServerToClient};
use crate::proximity::{ArrivalCause, DepartureCause};

/// One side's view of a pair change: (recipient, left?, the other peer, why). Sorted, each
/// recipient's notes are contiguous, introductions first, each list ascending.
pub(crate) type Note = (PeerId, bool, PeerId, Cause);

/// Why, in either direction (one note type for both lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Cause {
    Arrival(ArrivalCause),
    Departure(DepartureCause),
}

/// Each side's view of the tick's introductions and departures, into `notes` (unsorted).
pub(crate) fn collect_notes(
    introductions: &mut MessageReader<PairEntered>,
    departures: &mut MessageReader<PairLeft>,
    notes: &mut Vec<Note>,
) {
    notes.clear();
    for &PairEntered { a, b, cause } in introductions.read() {
        let why = Cause::Arrival(cause);
        notes.extend([(a, false, b, why), (b, false, a, why)]);
    }
    for &PairLeft { a, b, cause } in departures.read() {
        let why = Cause::Departure(cause);
        // `a` of a disconnect is the connection that ended: the id may already belong to a
        // new connection, which never held `b` and must not hear of it.
        if cause != DepartureCause::Disconnect {
            notes.push((a, true, b, why));
        }
        notes.push((b, true, a, why));
    }
}

/// Batches the tick's introductions and departures per recipient and sends them.
pub(crate) fn send_peer_changes(
    mut out: Outgoing,
    mut introductions: MessageReader<PairEntered>,
    mut departures: MessageReader<PairLeft>,
    mut stats: ResMut<ServerStats>,
    config: Res<MingleServerConfig>,
    mut notes: Local<Vec<Note>>,
) {
    if config.notify != NotifyMode::Changes {
        return; // the baseline (`baseline.rs`) sends instead
    }
    collect_notes(&mut introductions, &mut departures, &mut notes);
    if notes.is_empty() {
        return;
    }
    notes.sort_unstable();
    for group in notes.chunk_by(|x, y| x.0 == y.0) {
        let recipient = group[0].0;
        if !out.server.is_connected(recipient.0) {
            continue;
        }
        let split = group.partition_point(|n| !n.1);
        let entered = group[..split]
            .iter()
            .filter_map(|n| match n.3 {
                Cause::Arrival(why) => Some((n.2, why)),
                Cause::Departure(_) => None,
            })
            .collect();
        let left = group[split..]
            .iter()
            .filter_map(|n| match n.3 {
                Cause::Departure(why) => Some((n.2, why)),
                Cause::Arrival(_) => None,
            })
            .collect();
        stats.peers_changed_sent += 1;
        send(
            &mut out,
            recipient,
            &ServerToClient::PeersChanged { entered, left },
        );
    }
}
