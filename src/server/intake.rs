//! Reads every client's messages: positions, refresh requests, signals, reports.

use bevy::log::{debug, warn};
use bevy::math::Vec3;
use bevy::prelude::{
    Commands, DetectChangesMut, Entity, Local, MessageWriter, Mut, Query, Res, ResMut, Time,
};
use bevy::time::Real;
use bevy_renet::RenetServer;

use super::components::{
    ClientHealth, MinglePeer, MinglePosition, MingleSpace, NearbyPeers, PeerDirectory,
};
use super::config::MingleServerConfig;
use super::messages::ConnectionReported;
use super::stats::ServerStats;
use super::{Outgoing, send};
use crate::protocol::{
    Channel, ClientToServer, ConnectionOutcome, DecodeError, Limited, PeerId, RejectReason,
    ServerToClient, SpaceId, decode_client,
};

type ClientQuery<'w, 's> = Query<
    'w,
    's,
    (
        &'static NearbyPeers,
        &'static mut ClientHealth,
        Option<&'static mut MinglePosition>,
        Option<&'static mut MingleSpace>,
    ),
>;

/// One client's messages being read this frame: who sent them, when, and what answers and
/// counts they cause. Each message kind has one handler below.
struct Sender<'a, 'w> {
    id: PeerId,
    now: f64,
    health: &'a mut ClientHealth,
    out: &'a mut Outgoing<'w>,
    stats: &'a mut ServerStats,
    config: &'a MingleServerConfig,
}

/// What the server does with the rest of a client's messages after one was handled.
#[derive(PartialEq, Eq)]
enum Then {
    ReadOn,
    Disconnected,
}

/// Drains the channels of every client that sent something this frame. One client's bad input
/// is answered for that client alone (rejection, then disconnect after too many); the loop
/// always goes on.
pub(crate) fn intake(
    mut commands: Commands,
    mut out: Outgoing,
    directory: Res<PeerDirectory>,
    config: Res<MingleServerConfig>,
    mut stats: ResMut<ServerStats>,
    time: Res<Time<Real>>,
    mut clients: ClientQuery,
    nearby_sets: Query<&NearbyPeers>,
    mut reports: MessageWriter<ConnectionReported>,
    mut delivered: Local<Vec<u64>>,
    mut rules: super::rules::RuleInputs,
) {
    let now = time.elapsed_secs_f64();
    // Only clients whose packets reached renet in this frame can have messages to read.
    delivered.clear();
    delivered.extend_from_slice(out.transport.delivered());
    for &client_id in delivered.iter() {
        let id = PeerId(client_id);
        let Some(entity) = directory.get(id) else {
            continue;
        };
        let Ok((nearby, mut health, mut position, mut space)) = clients.get_mut(entity) else {
            continue;
        };
        refill(&mut health, now, &config);
        let mut sender = Sender {
            id,
            now,
            health: &mut health,
            out: &mut out,
            stats: &mut stats,
            config: &config,
        };
        'channels: for channel in Channel::ALL {
            while let Some(bytes) = sender.out.server.receive_message(id.0, channel) {
                sender.health.last_heard_secs = now;
                let msg = match decode_client(&bytes) {
                    Ok(msg) if msg.channel() == channel => msg,
                    Ok(_) => {
                        sender.stats.rejected_inputs += 1;
                        sender.reject(RejectReason::WrongChannel);
                        continue;
                    }
                    Err(err) => match sender.on_undecodable(err) {
                        Then::ReadOn => continue,
                        Then::Disconnected => break 'channels,
                    },
                };
                match msg {
                    ClientToServer::Position {
                        space: s,
                        position: p,
                    } => {
                        if let Some((p, s)) = sender.on_position(p, s) {
                            place(&mut commands, entity, &mut position, &mut space, p, s);
                        }
                    }
                    ClientToServer::RequestPeerRefresh => sender.on_refresh(nearby),
                    ClientToServer::Signal { to, payload } => {
                        if rules.signal_blocked(id, to) {
                            sender.reject(RejectReason::Blocked { peer: to });
                            continue;
                        }
                        sender.relay_signal(&directory, &nearby_sets, to, payload);
                    }
                    ClientToServer::ConnectionReport { peer, outcome } => {
                        sender.on_report(peer, outcome, &mut reports);
                    }
                    ClientToServer::Block { peer, blocked } => {
                        if let Err(reason) = rules.block(id, peer, blocked) {
                            sender.reject(reason);
                        }
                    }
                    ClientToServer::SetVoiceRange { multiplier } => {
                        if let Err(reason) = rules.voice(id, multiplier) {
                            sender.reject(reason);
                        }
                    }
                }
            }
        }
    }
}

/// Writes a client's accepted position and space, only where they changed: a still client's
/// keepalive must not count as a move.
fn place(
    commands: &mut Commands,
    entity: Entity,
    position: &mut Option<Mut<MinglePosition>>,
    space: &mut Option<Mut<MingleSpace>>,
    p: Vec3,
    s: MingleSpace,
) {
    match (position.as_mut(), space.as_mut()) {
        (Some(position), Some(space)) => {
            position.set_if_neq(MinglePosition(p));
            space.set_if_neq(s);
        }
        _ => {
            commands.entity(entity).insert((MinglePosition(p), s));
        }
    }
}

impl Sender<'_, '_> {
    fn reject(&mut self, reason: RejectReason) {
        send(self.out, self.id, &ServerToClient::Rejected { reason });
    }

    /// Tells the client it is rate-limited, at most once a second, so the answer to a flood is
    /// not a flood.
    fn limited(&mut self, what: Limited) {
        if self.now - self.health.last_limited_secs >= 1.0 {
            self.health.last_limited_secs = self.now;
            self.reject(RejectReason::RateLimited { what });
        }
    }

    /// A message that did not decode. An invalid position (NaN, out of world) is a game's
    /// glitch more often than an attack: it spends a position token like a valid one, is
    /// answered at most once a second, and never counts toward a disconnect. Anything else is
    /// refused, and too many of them disconnect the client.
    fn on_undecodable(&mut self, err: DecodeError) -> Then {
        let reason = err.reject_reason();
        if reason == RejectReason::InvalidPosition {
            if !take_token(&mut self.health.position_tokens) {
                self.stats.rate_limited_positions += 1;
                self.limited(Limited::Position);
            } else {
                self.stats.invalid_positions += 1;
                if self.now - self.health.last_invalid_position_secs >= 1.0 {
                    self.health.last_invalid_position_secs = self.now;
                    self.reject(RejectReason::InvalidPosition);
                }
            }
            return Then::ReadOn;
        }
        self.health.decode_failures += 1;
        debug!("{}: undecodable message: {err}", self.id);
        if reason == RejectReason::PayloadTooLarge {
            self.stats.oversized_payloads += 1;
        } else {
            self.stats.decode_failures += 1;
        }
        self.reject(reason);
        if self.health.decode_failures < self.config.max_decode_failures {
            return Then::ReadOn;
        }
        warn!(
            "{}: {} undecodable messages, disconnecting",
            self.id, self.health.decode_failures
        );
        self.stats.kicked += 1;
        self.out.server.disconnect(self.id.0);
        Then::Disconnected
    }

    /// A position update: accepted within the rate limit, then written by [`place`].
    fn on_position(&mut self, p: [f32; 3], s: SpaceId) -> Option<(Vec3, MingleSpace)> {
        if !take_token(&mut self.health.position_tokens) {
            self.stats.rate_limited_positions += 1;
            self.limited(Limited::Position);
            return None;
        }
        self.stats.position_updates += 1;
        Some((Vec3::from_array(p), MingleSpace(s)))
    }

    /// A refresh request: answered with the whole current set, within the rate limit.
    fn on_refresh(&mut self, nearby: &NearbyPeers) {
        if !take_token(&mut self.health.refresh_tokens) {
            self.stats.rate_limited_refreshes += 1;
            return self.limited(Limited::Refresh);
        }
        self.stats.refreshes += 1;
        self.stats.snapshots_sent += 1;
        let peers = nearby.as_slice().to_vec();
        send(self.out, self.id, &ServerToClient::PeerSnapshot { peers });
    }

    /// Forwards a signal only between currently introduced peers; anything else is refused.
    fn relay_signal(
        &mut self,
        directory: &PeerDirectory,
        nearby_sets: &Query<&NearbyPeers>,
        to: PeerId,
        payload: Vec<u8>,
    ) {
        let from = self.id;
        let Some(target) = directory.get(to) else {
            self.stats.signals_to_unknown += 1;
            return self.reject(RejectReason::UnknownPeer { peer: to });
        };
        // NearbySets are symmetric, so the addressee's set answers for both sides.
        let introduced = nearby_sets.get(target).is_ok_and(|set| set.contains(from));
        if !introduced {
            self.stats.signals_to_strangers += 1;
            return self.reject(RejectReason::NotIntroduced { peer: to });
        }
        self.stats.signals_relayed += 1;
        send(self.out, to, &ServerToClient::Signal { from, payload });
    }

    /// A client's report on its link to `peer`: counted and passed on as a message.
    fn on_report(
        &mut self,
        peer: PeerId,
        outcome: ConnectionOutcome,
        reports: &mut MessageWriter<ConnectionReported>,
    ) {
        let count = match outcome {
            ConnectionOutcome::Connected => &mut self.stats.reports_connected,
            ConnectionOutcome::Failed => &mut self.stats.reports_failed,
            ConnectionOutcome::TimedOut => &mut self.stats.reports_timed_out,
        };
        *count += 1;
        debug!("{} -> {peer}: {outcome:?}", self.id);
        reports.write(ConnectionReported {
            from: self.id,
            peer,
            outcome,
        });
    }
}

/// Refills a client's rate-limit buckets for the time since the last refill.
fn refill(health: &mut ClientHealth, now: f64, config: &MingleServerConfig) {
    let elapsed = (now - health.refilled_secs).max(0.0);
    health.refilled_secs = now;
    health.position_tokens =
        (health.position_tokens + elapsed * config.max_position_hz).min(config.max_position_hz);
    health.refresh_tokens =
        (health.refresh_tokens + elapsed * config.refresh_per_sec).min(config.refresh_burst as f64);
}

fn take_token(tokens: &mut f64) -> bool {
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        true
    } else {
        false
    }
}

/// Disconnects clients silent for longer than `idle_timeout_secs`.
pub(crate) fn disconnect_idle(
    mut server: ResMut<RenetServer>,
    config: Res<MingleServerConfig>,
    time: Res<Time<Real>>,
    mut stats: ResMut<ServerStats>,
    clients: Query<(&MinglePeer, &ClientHealth)>,
) {
    let now = time.elapsed_secs_f64();
    for (peer, health) in &clients {
        if now - health.last_heard_secs > config.idle_timeout_secs && server.is_connected(peer.id.0)
        {
            debug!(
                "{}: idle for {:.1} s, disconnecting",
                peer.id,
                now - health.last_heard_secs
            );
            stats.kicked += 1;
            server.disconnect(peer.id.0);
        }
    }
}
