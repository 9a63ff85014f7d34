//! The client's protocol state, without I/O: server messages in, events out.
//!
//! [`ClientSession`] is the one place that turns `Welcome` / `PeersChanged` / `PeerSnapshot`
//! / `Signal` / `IceServers` / `Rejected` into a peer set and events, and decides when a
//! position update is due. The client plugin, the load generator's bots and the tests all
//! drive it; it knows no socket, no clock (time comes in as an argument) and no Bevy
//! schedule — the shape of str0m's `handle_input` / `poll_output`.

use std::collections::{BTreeSet, VecDeque};

use bevy::prelude::Resource;

use super::state::{MingleClientStats, MingleIceServers, MingleWelcome};
use crate::protocol::{ClientToServer, PeerId, RejectReason, ServerToClient, SpaceId};

/// What the session has to tell the game, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// The server greeted this client (a new session: any earlier peers were left first).
    Welcomed(MingleWelcome),
    /// A peer came within range.
    PeerEntered(PeerId),
    /// A peer left range, disconnected, or the connection was lost.
    PeerLeft(PeerId),
    /// Signaling from an introduced peer.
    Signal {
        /// The sender.
        from: PeerId,
        /// Opaque bytes as the sender sent them.
        payload: Vec<u8>,
    },
    /// New STUN/TURN servers and credentials (see [`ClientSession::ice_servers`]).
    IceServers,
    /// The server refused one of this client's messages.
    Rejected(RejectReason),
}

/// When position updates go out: promptly after a move, at most `position_hz` a second, and
/// every `keepalive_secs` while standing still.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionPacing {
    /// Most position updates per second while moving.
    pub position_hz: f64,
    /// Seconds between re-sends while standing still.
    pub keepalive_secs: f64,
}

/// The client side of the mingle protocol for one connection, sans I/O (see the module).
#[derive(Debug, Default, Resource)]
pub struct ClientSession {
    welcome: Option<MingleWelcome>,
    peers: BTreeSet<PeerId>,
    ice: MingleIceServers,
    stats: MingleClientStats,
    events: VecDeque<SessionEvent>,
    /// The last position sent: where, in which space, when (seconds).
    last_position: Option<([f32; 3], SpaceId, f64)>,
    /// Why each peer came and went (#17).
    causes: super::PeerCauses,
}

impl ClientSession {
    /// A session before any message.
    pub fn new() -> Self {
        ClientSession::default()
    }

    /// Applies one message from the server; events follow in [`ClientSession::poll_event`].
    pub fn handle_message(&mut self, msg: ServerToClient) {
        match msg {
            ServerToClient::Welcome {
                you,
                range,
                leave_range,
                tick_hz,
            } => {
                // A new session: whatever we held belonged to the old one.
                self.leave_all();
                let welcome = MingleWelcome {
                    you,
                    range,
                    leave_range,
                    tick_hz,
                };
                self.welcome = Some(welcome);
                self.last_position = None;
                self.events.push_back(SessionEvent::Welcomed(welcome));
            }
            ServerToClient::PeersChanged { entered, left } => {
                self.stats.peers_changed += 1;
                // `left` first: a peer that reconnected within one tick is in both.
                for (peer, cause) in left {
                    self.causes.left(peer, cause);
                    if self.peers.remove(&peer) {
                        self.events.push_back(SessionEvent::PeerLeft(peer));
                    }
                }
                for (peer, cause) in entered {
                    self.causes.entered(peer, cause);
                    if self.peers.insert(peer) {
                        self.events.push_back(SessionEvent::PeerEntered(peer));
                    }
                }
            }
            ServerToClient::PeerSnapshot { peers } => {
                self.stats.snapshots += 1;
                let fresh: BTreeSet<PeerId> = peers.into_iter().collect();
                for &peer in self.peers.difference(&fresh) {
                    self.events.push_back(SessionEvent::PeerLeft(peer));
                }
                for &peer in fresh.difference(&self.peers) {
                    self.events.push_back(SessionEvent::PeerEntered(peer));
                }
                self.peers = fresh;
            }
            ServerToClient::Signal { from, payload } => {
                self.stats.signals += 1;
                self.events
                    .push_back(SessionEvent::Signal { from, payload });
            }
            ServerToClient::IceServers {
                servers,
                expires_unix,
            } => {
                self.ice.servers = servers;
                self.ice.expires_unix = expires_unix;
                self.ice.generation += 1;
                self.events.push_back(SessionEvent::IceServers);
            }
            ServerToClient::Rejected { reason } => {
                self.stats.rejections += 1;
                self.events.push_back(SessionEvent::Rejected(reason));
            }
        }
    }

    /// Decodes and applies one message; an undecodable one is counted and returned as the error.
    ///
    /// # Errors
    /// The bytes are not a server message.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), crate::protocol::DecodeError> {
        match crate::protocol::decode_server(bytes) {
            Ok(msg) => {
                self.handle_message(msg);
                Ok(())
            }
            Err(err) => {
                self.stats.undecodable += 1;
                Err(err)
            }
        }
    }

    /// The connection is gone: every peer leaves, the welcome is forgotten.
    pub fn connection_lost(&mut self) {
        self.leave_all();
        self.welcome = None;
        self.last_position = None;
    }

    fn leave_all(&mut self) {
        self.causes.clear();
        for peer in std::mem::take(&mut self.peers) {
            self.events.push_back(SessionEvent::PeerLeft(peer));
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// The position update to send now (`now` in seconds), if one is due; it is counted as
    /// sent. Only once welcomed.
    pub fn position_update(
        &mut self,
        now: f64,
        position: [f32; 3],
        space: SpaceId,
        pacing: PositionPacing,
    ) -> Option<ClientToServer> {
        self.welcome?;
        let due = match self.last_position {
            None => true,
            Some((at_pos, at_space, at)) => {
                let moved = position != at_pos || space != at_space;
                (moved && now - at >= 1.0 / pacing.position_hz) || now - at >= pacing.keepalive_secs
            }
        };
        if !due {
            return None;
        }
        self.last_position = Some((position, space, now));
        self.stats.positions_sent += 1;
        Some(ClientToServer::Position { space, position })
    }

    /// The server's welcome, once greeted.
    pub fn welcome(&self) -> Option<&MingleWelcome> {
        self.welcome.as_ref()
    }

    /// The introduced peers, ascending.
    pub fn peers(&self) -> &BTreeSet<PeerId> {
        &self.peers
    }

    /// The latest STUN/TURN servers.
    pub fn ice_servers(&self) -> &MingleIceServers {
        &self.ice
    }

    /// What was received and sent so far.
    pub fn stats(&self) -> MingleClientStats {
        self.stats
    }

    /// Why each peer came and went, as the server said (#17).
    pub fn causes(&self) -> &super::PeerCauses {
        &self.causes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(entered: &[u64], left: &[u64]) -> ServerToClient {
        ServerToClient::PeersChanged {
            entered: entered
                .iter()
                .map(|&i| (PeerId(i), crate::proximity::ArrivalCause::Proximity))
                .collect(),
            left: left
                .iter()
                .map(|&i| (PeerId(i), crate::proximity::DepartureCause::Range))
                .collect(),
        }
    }

    fn drain(s: &mut ClientSession) -> Vec<SessionEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    #[test]
    fn a_peer_in_both_lists_left_and_came_back() {
        let mut s = ClientSession::new();
        s.handle_message(changed(&[1], &[]));
        s.handle_message(changed(&[1], &[1]));
        assert_eq!(
            drain(&mut s),
            vec![
                SessionEvent::PeerEntered(PeerId(1)),
                SessionEvent::PeerLeft(PeerId(1)),
                SessionEvent::PeerEntered(PeerId(1)),
            ]
        );
    }

    #[test]
    fn a_snapshot_yields_only_the_differences_and_a_lost_connection_leaves_everyone() {
        let mut s = ClientSession::new();
        s.handle_message(changed(&[1, 2], &[]));
        drain(&mut s);
        s.handle_message(ServerToClient::PeerSnapshot {
            peers: vec![PeerId(2), PeerId(3)],
        });
        assert_eq!(
            drain(&mut s),
            vec![
                SessionEvent::PeerLeft(PeerId(1)),
                SessionEvent::PeerEntered(PeerId(3)),
            ]
        );
        s.connection_lost();
        assert_eq!(
            drain(&mut s),
            vec![
                SessionEvent::PeerLeft(PeerId(2)),
                SessionEvent::PeerLeft(PeerId(3)),
            ]
        );
        assert!(s.peers().is_empty());
    }

    #[test]
    fn positions_are_paced_by_the_time_passed_in() {
        let pacing = PositionPacing {
            position_hz: 10.0,
            keepalive_secs: 1.0,
        };
        let mut s = ClientSession::new();
        let here = [0.0; 3];
        assert!(
            s.position_update(0.0, here, SpaceId(0), pacing).is_none(),
            "not welcomed"
        );
        s.handle_message(ServerToClient::Welcome {
            you: PeerId(7),
            range: 20.0,
            leave_range: 25.0,
            tick_hz: 20.0,
        });
        assert!(
            s.position_update(0.0, here, SpaceId(0), pacing).is_some(),
            "first"
        );
        let moved = [1.0, 0.0, 0.0];
        assert!(
            s.position_update(0.05, moved, SpaceId(0), pacing).is_none(),
            "too soon"
        );
        assert!(
            s.position_update(0.1, moved, SpaceId(0), pacing).is_some(),
            "moved"
        );
        assert!(
            s.position_update(0.5, moved, SpaceId(0), pacing).is_none(),
            "still"
        );
        assert!(
            s.position_update(1.1, moved, SpaceId(0), pacing).is_some(),
            "keepalive"
        );
    }
}
