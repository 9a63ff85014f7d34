//! Reads every client's messages: positions, refresh requests, signals, reports.

use bevy::log::{debug, warn};
use bevy::math::Vec3;
use bevy::prelude::{Commands, Local, MessageWriter, Query, Res, ResMut, Time};
use bevy::time::Real;
use bevy_renet::RenetServer;

use super::components::{
    ClientHealth, MinglePeer, MinglePosition, MingleSpace, NearbyPeers, PeerDirectory,
};
use super::config::{MingleServerConfig, NotifyMode};
use super::messages::ConnectionReported;
use super::outbox::PositionUpdates;
use super::stats::ServerStats;
use super::{Outgoing, send};
use crate::protocol::{
    Channel, ClientToServer, ConnectionOutcome, Limited, PeerId, RejectReason, ServerToClient,
    decode_client,
};

type ClientQuery<'w, 's> = Query<
    'w,
    's,
    (
        &'static MinglePeer,
        &'static NearbyPeers,
        &'static mut ClientHealth,
        Option<&'static mut MinglePosition>,
        Option<&'static mut MingleSpace>,
    ),
>;

/// Drains the channels of every client that sent something this frame. One client's bad input is answered for that
/// client alone (rejection, then disconnect after too many); the loop always goes on.
pub(crate) fn intake(
    mut commands: Commands,
    mut out: Outgoing,
    directory: Res<PeerDirectory>,
    config: Res<MingleServerConfig>,
    mut stats: ResMut<ServerStats>,
    time: Res<Time<Real>>,
    mut clients: ClientQuery,
    nearby_sets: Query<&NearbyPeers>,
    mut updates: ResMut<PositionUpdates>,
    mut reports: MessageWriter<ConnectionReported>,
    mut delivered: Local<Vec<u64>>,
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
        let Ok((peer, nearby, mut health, mut position, mut space)) = clients.get_mut(entity)
        else {
            continue;
        };
        refill(&mut health, now, &config);
        'channels: for channel in Channel::ALL {
            while let Some(bytes) = out.server.receive_message(id.0, channel) {
                health.last_heard_secs = now;
                let msg = match decode_client(&bytes) {
                    Ok(msg) => msg,
                    // An invalid position (NaN, out of world) is a game's glitch more often
                    // than an attack: it spends a position token like a valid one, is answered
                    // at most once a second, and never counts toward a disconnect.
                    Err(err) if err.reject_reason() == RejectReason::InvalidPosition => {
                        if !take_token(&mut health.position_tokens) {
                            stats.rate_limited_positions += 1;
                            limited(&mut out, &mut health, id, now, Limited::Position);
                            continue;
                        }
                        stats.invalid_positions += 1;
                        if now - health.last_invalid_position_secs >= 1.0 {
                            health.last_invalid_position_secs = now;
                            reject(&mut out, id, RejectReason::InvalidPosition);
                        }
                        continue;
                    }
                    Err(err) => {
                        health.decode_failures += 1;
                        debug!("{id}: undecodable message: {err}");
                        let reason = err.reject_reason();
                        if reason == RejectReason::PayloadTooLarge {
                            stats.oversized_payloads += 1;
                        } else {
                            stats.decode_failures += 1;
                        }
                        reject(&mut out, id, reason);
                        if health.decode_failures >= config.max_decode_failures {
                            warn!(
                                "{id}: {} undecodable messages, disconnecting",
                                health.decode_failures
                            );
                            stats.kicked += 1;
                            out.server.disconnect(id.0);
                            break 'channels;
                        }
                        continue;
                    }
                };
                if msg.channel() != channel {
                    stats.rejected_inputs += 1;
                    reject(&mut out, id, RejectReason::WrongChannel);
                    continue;
                }
                match msg {
                    ClientToServer::Position {
                        space: s,
                        position: p,
                    } => {
                        if !take_token(&mut health.position_tokens) {
                            stats.rate_limited_positions += 1;
                            limited(&mut out, &mut health, id, now, Limited::Position);
                            continue;
                        }
                        stats.position_updates += 1;
                        let (p, s) = (Vec3::from_array(p), MingleSpace(s));
                        // set_if_neq: a still client's keepalive must not count as a move.
                        let moved = match (position.as_mut(), space.as_mut()) {
                            (Some(position), Some(space)) => {
                                let moved = position.0 != p || space.0 != s.0;
                                if position.0 != p {
                                    position.0 = p;
                                }
                                if space.0 != s.0 {
                                    space.0 = s.0;
                                }
                                moved
                            }
                            _ => {
                                commands.entity(entity).insert((MinglePosition(p), s));
                                true
                            }
                        };
                        if moved && config.notify == NotifyMode::EveryUpdate {
                            updates.0.push(peer.id);
                        }
                    }
                    ClientToServer::RequestPeerRefresh => {
                        if !take_token(&mut health.refresh_tokens) {
                            stats.rate_limited_refreshes += 1;
                            limited(&mut out, &mut health, id, now, Limited::Refresh);
                            continue;
                        }
                        stats.refreshes += 1;
                        stats.snapshots_sent += 1;
                        let peers = nearby.as_slice().to_vec();
                        send(&mut out, id, &ServerToClient::PeerSnapshot { peers });
                    }
                    ClientToServer::Signal { to, payload } => {
                        relay_signal(
                            &mut out,
                            &directory,
                            &nearby_sets,
                            &mut stats,
                            peer.id,
                            to,
                            payload,
                        );
                    }
                    ClientToServer::ConnectionReport {
                        peer: other,
                        outcome,
                    } => {
                        let word = match outcome {
                            ConnectionOutcome::Connected => {
                                stats.reports_connected += 1;
                                "connected"
                            }
                            ConnectionOutcome::Failed => {
                                stats.reports_failed += 1;
                                "failed"
                            }
                            ConnectionOutcome::TimedOut => {
                                stats.reports_timed_out += 1;
                                "timed out"
                            }
                        };
                        debug!("{id} -> {other}: {word}");
                        reports.write(ConnectionReported {
                            from: id,
                            peer: other,
                            outcome,
                        });
                    }
                }
            }
        }
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

/// Tells a client it is rate-limited, at most once a second, so the answer to a flood is not
/// a flood.
fn limited(out: &mut Outgoing, health: &mut ClientHealth, id: PeerId, now: f64, what: Limited) {
    if now - health.last_limited_secs >= 1.0 {
        health.last_limited_secs = now;
        reject(out, id, RejectReason::RateLimited { what });
    }
}

fn reject(out: &mut Outgoing, id: PeerId, reason: RejectReason) {
    send(out, id, &ServerToClient::Rejected { reason });
}

/// Forwards a signal only between currently introduced peers; anything else is refused.
fn relay_signal(
    out: &mut Outgoing,
    directory: &PeerDirectory,
    nearby_sets: &Query<&NearbyPeers>,
    stats: &mut ServerStats,
    from: PeerId,
    to: PeerId,
    payload: Vec<u8>,
) {
    let Some(target) = directory.get(to) else {
        stats.signals_to_unknown += 1;
        return reject(out, from, RejectReason::UnknownPeer { peer: to });
    };
    // NearbySets are symmetric, so the addressee's set answers for both sides.
    let introduced = nearby_sets.get(target).is_ok_and(|set| set.contains(from));
    if !introduced {
        stats.signals_to_strangers += 1;
        return reject(out, from, RejectReason::NotIntroduced { peer: to });
    }
    stats.signals_relayed += 1;
    send(out, to, &ServerToClient::Signal { from, payload });
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
