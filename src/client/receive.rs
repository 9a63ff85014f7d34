//! Applies server messages to [`NearbyPeers`] and turns them into game-facing messages.

use bevy::log::warn;
use bevy::prelude::{Commands, MessageWriter, ResMut};
use bevy_renet::RenetClient;

use super::messages::{MessageRejected, PeerEntered, PeerLeft, SignalReceived};
use super::state::{MingleClientStats, MingleIceServers, MingleSession, NearbyPeers};
use crate::protocol::{Channel, ServerToClient, decode_server};

/// Drains the control and signal channels.
pub(crate) fn receive(
    mut commands: Commands,
    mut client: ResMut<RenetClient>,
    mut nearby: ResMut<NearbyPeers>,
    mut ice: ResMut<MingleIceServers>,
    mut stats: ResMut<MingleClientStats>,
    mut entered: MessageWriter<PeerEntered>,
    mut left: MessageWriter<PeerLeft>,
    mut signals: MessageWriter<SignalReceived>,
    mut rejected: MessageWriter<MessageRejected>,
    mut causes: ResMut<super::PeerCauses>,
) {
    for channel in [Channel::Control, Channel::Signal] {
        while let Some(bytes) = client.receive_message(channel) {
            let msg = match decode_server(&bytes) {
                Ok(msg) => msg,
                Err(err) => {
                    stats.undecodable += 1;
                    warn!("mingle: undecodable server message: {err}");
                    continue;
                }
            };
            match msg {
                ServerToClient::Welcome {
                    you,
                    range,
                    leave_range,
                    tick_hz,
                } => {
                    // A new session: whatever we held belonged to the old one.
                    causes.clear();
                    for peer in std::mem::take(&mut nearby.0) {
                        left.write(PeerLeft(peer));
                    }
                    commands.insert_resource(MingleSession {
                        you,
                        range,
                        leave_range,
                        tick_hz,
                    });
                }
                ServerToClient::PeersChanged {
                    entered: came,
                    left: went,
                } => {
                    stats.peers_changed += 1;
                    for (peer, cause) in went {
                        causes.left(peer, cause);
                        if nearby.0.remove(&peer) {
                            left.write(PeerLeft(peer));
                        }
                    }
                    for (peer, cause) in came {
                        causes.entered(peer, cause);
                        if nearby.0.insert(peer) {
                            entered.write(PeerEntered(peer));
                        }
                    }
                }
                ServerToClient::PeerSnapshot { peers } => {
                    stats.snapshots += 1;
                    let fresh: std::collections::BTreeSet<_> = peers.into_iter().collect();
                    for &peer in nearby.0.difference(&fresh) {
                        left.write(PeerLeft(peer));
                    }
                    for &peer in fresh.difference(&nearby.0) {
                        entered.write(PeerEntered(peer));
                    }
                    nearby.0 = fresh;
                }
                ServerToClient::Signal { from, payload } => {
                    stats.signals += 1;
                    signals.write(SignalReceived { from, payload });
                }
                ServerToClient::IceServers {
                    servers,
                    expires_unix,
                } => {
                    ice.servers = servers;
                    ice.expires_unix = expires_unix;
                    ice.generation += 1;
                }
                ServerToClient::Rejected { reason } => {
                    stats.rejections += 1;
                    warn!("mingle: server rejected a message: {reason:?}");
                    rejected.write(MessageRejected(reason));
                }
            }
        }
    }
}
