//! Sends each client at most one `PeersChanged` per tick, built from the tick's messages.

use bevy::prelude::{Local, MessageReader, Query, Res, ResMut, Resource};

use super::components::{NearbyPeers, PeerDirectory};
use super::config::{MingleServerConfig, NotifyMode};
use super::messages::{PairEntered, PairLeft};
use super::stats::ServerStats;
use super::{Outgoing, send};
use crate::protocol::{PeerId, ServerToClient};
use crate::proximity::{ArrivalCause, DepartureCause};

/// Clients that sent a position since the last send, for [`NotifyMode::EveryUpdate`] only.
#[derive(Debug, Default, Resource)]
pub(crate) struct PositionUpdates(pub Vec<PeerId>);

/// One side's view of a pair change: (recipient, left?, the other peer, why). Sorted, each
/// recipient's notes are contiguous, introductions first, each list ascending.
type Note = (PeerId, bool, PeerId, Cause);

/// Why, in either direction (one note type for both lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Cause {
    Arrival(ArrivalCause),
    Departure(DepartureCause),
}

/// Batches the tick's introductions and departures per recipient and sends them.
pub(crate) fn send_peer_changes(
    mut out: Outgoing,
    mut introductions: MessageReader<PairEntered>,
    mut departures: MessageReader<PairLeft>,
    mut stats: ResMut<ServerStats>,
    config: Res<MingleServerConfig>,
    mut updates: ResMut<PositionUpdates>,
    directory: Res<PeerDirectory>,
    sets: Query<&NearbyPeers>,
    mut notes: Local<Vec<Note>>,
    mut recipients: Local<Vec<PeerId>>,
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
    if config.notify == NotifyMode::EveryUpdate {
        send_full_lists(
            &mut out,
            &mut stats,
            &mut updates,
            &directory,
            &sets,
            &notes,
            &mut recipients,
        );
        return;
    }
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

/// The baseline, as the original behaved before its one-shot change: every position update
/// sends the mover and each of its peers their whole current set (no batching across updates),
/// and every client whose set changed in the tick but got no such list gets one too.
fn send_full_lists(
    out: &mut Outgoing,
    stats: &mut ServerStats,
    updates: &mut PositionUpdates,
    directory: &PeerDirectory,
    sets: &Query<&NearbyPeers>,
    notes: &[Note],
    recipients: &mut Vec<PeerId>,
) {
    recipients.clear();
    for &mover in &updates.0 {
        recipients.push(mover);
        if let Some(set) = directory.get(mover).and_then(|e| sets.get(e).ok()) {
            recipients.extend(set.iter());
        }
    }
    updates.0.clear();
    let told = recipients.len();
    let mut changed: Vec<PeerId> = notes.iter().map(|n| n.0).collect();
    changed.sort_unstable();
    changed.dedup();
    recipients.sort_unstable();
    changed.retain(|p| recipients[..told].binary_search(p).is_err());
    recipients.extend(changed);
    for &to in recipients.iter() {
        let Some(set) = directory.get(to).and_then(|e| sets.get(e).ok()) else {
            continue;
        };
        if out.server.is_connected(to.0) {
            stats.snapshots_sent += 1;
            let peers = set.as_slice().to_vec();
            send(out, to, &ServerToClient::PeerSnapshot { peers });
        }
    }
}
