//! The `every-update` baseline ([`NotifyMode::EveryUpdate`]), kept apart from the production
//! path: its own plugin, its own system, run only in that mode.

use bevy::app::{App, Plugin, PostUpdate};
use bevy::prelude::{Changed, IntoScheduleConfigs, Local, MessageReader, Or, Query, Res, ResMut};

use super::MingleServerSystems;
use super::components::{MinglePeer, MinglePosition, MingleSpace, NearbyPeers, PeerDirectory};
use super::config::{MingleServerConfig, NotifyMode};
use super::messages::{PairEntered, PairLeft};
use super::outbox::{Note, collect_notes};
use super::stats::ServerStats;
use super::{Outgoing, send};
use crate::protocol::{PeerId, ServerToClient};

/// Clients whose position or space changed since the baseline last ran.
type Moved = Or<(Changed<MinglePosition>, Changed<MingleSpace>)>;

/// Sends full lists in place of changes when the config asks for the baseline.
pub(crate) struct EveryUpdateBaseline;

impl Plugin for EveryUpdateBaseline {
    fn build(&self, app: &mut App) {
        app.add_systems(
            PostUpdate,
            send_full_lists
                .run_if(|config: Res<MingleServerConfig>| config.notify == NotifyMode::EveryUpdate)
                .in_set(MingleServerSystems::Send),
        );
    }
}

/// The baseline, as the original behaved before its one-shot change: every client that moved
/// this frame, and each of its peers, gets its whole current set (no batching across frames),
/// and every client whose set changed in the tick but got no such list gets one too.
fn send_full_lists(
    mut out: Outgoing,
    mut introductions: MessageReader<PairEntered>,
    mut departures: MessageReader<PairLeft>,
    mut stats: ResMut<ServerStats>,
    movers: Query<&MinglePeer, Moved>,
    directory: Res<PeerDirectory>,
    sets: Query<&NearbyPeers>,
    mut notes: Local<Vec<Note>>,
    mut recipients: Local<Vec<PeerId>>,
) {
    collect_notes(&mut introductions, &mut departures, &mut notes);
    recipients.clear();
    for mover in &movers {
        recipients.push(mover.id);
        if let Some(set) = directory.get(mover.id).and_then(|e| sets.get(e).ok()) {
            recipients.extend(set.iter());
        }
    }
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
            send(&mut out, to, &ServerToClient::PeerSnapshot { peers });
        }
    }
}
