//! Feeds server messages to the [`ClientSession`] and turns its events into the game-facing
//! resources and messages.

use bevy::log::warn;
use bevy::prelude::{Commands, MessageWriter, ResMut};
use bevy_renet::RenetClient;

use super::messages::{MessageRejected, PeerEntered, PeerLeft, SignalReceived};
use super::session::{ClientSession, SessionEvent};
use super::state::{MingleClientStats, MingleIceServers, NearbyPeers};
use crate::protocol::Channel;

/// Drains the control and signal channels into the session.
pub(crate) fn receive(mut client: ResMut<RenetClient>, mut session: ResMut<ClientSession>) {
    for channel in [Channel::Control, Channel::Signal] {
        while let Some(bytes) = client.receive_message(channel) {
            if let Err(err) = session.handle_bytes(&bytes) {
                warn!("mingle: undecodable server message: {err}");
            }
        }
    }
}

/// Everything the session's events are mirrored into.
#[derive(bevy::ecs::system::SystemParam)]
pub(crate) struct Mirrors<'w, 's> {
    commands: Commands<'w, 's>,
    nearby: ResMut<'w, NearbyPeers>,
    ice: ResMut<'w, MingleIceServers>,
    stats: ResMut<'w, MingleClientStats>,
    entered: MessageWriter<'w, PeerEntered>,
    left: MessageWriter<'w, PeerLeft>,
    signals: MessageWriter<'w, SignalReceived>,
    rejected: MessageWriter<'w, MessageRejected>,
    causes: ResMut<'w, super::PeerCauses>,
}

/// Writes the session's events as messages and mirrors its state into resources (also after
/// a lost connection, which has no server message).
pub(crate) fn publish(mut session: ResMut<ClientSession>, mut out: Mirrors) {
    let mut peers_changed = false;
    while let Some(event) = session.poll_event() {
        peers_changed |= matches!(
            event,
            SessionEvent::PeerEntered(_) | SessionEvent::PeerLeft(_)
        );
        match event {
            SessionEvent::Welcomed(welcome) => out.commands.insert_resource(welcome),
            SessionEvent::PeerEntered(peer) => {
                out.nearby.0.insert(peer);
                out.entered.write(PeerEntered(peer));
            }
            SessionEvent::PeerLeft(peer) => {
                out.nearby.0.remove(&peer);
                out.left.write(PeerLeft(peer));
            }
            SessionEvent::Signal { from, payload } => {
                out.signals.write(SignalReceived { from, payload });
            }
            SessionEvent::IceServers => *out.ice = session.ice_servers().clone(),
            SessionEvent::Rejected(reason) => {
                warn!("mingle: server rejected a message: {reason:?}");
                out.rejected.write(MessageRejected(reason));
            }
        }
    }
    if peers_changed {
        out.causes.clone_from(session.causes());
    }
    let stats = session.stats();
    if *out.stats != stats {
        *out.stats = stats;
    }
}
