//! Running totals of what the server did, and the periodic stats log line.

use std::fmt::Write;

use bevy::log::info;
use bevy::prelude::{Res, ResMut, Resource, Time};
use bevy::time::Real;

use super::components::PeerDirectory;
use super::config::MingleServerConfig;
use super::udp::ReceiveCounts;

/// Running totals since startup. Read it from a system, or in tests. Each event is counted in
/// one field; sums are methods ([`departures`](Self::departures),
/// [`signals_rejected`](Self::signals_rejected), [`connection_reports`](Self::connection_reports)),
/// and every field is exported under one metric name (`server::metrics::COUNTERS`).
#[derive(Debug, Clone, Default, Resource)]
pub struct ServerStats {
    /// Clients that connected.
    pub connects: u64,
    /// Clients that disconnected (any reason).
    pub disconnects: u64,
    /// Position updates decoded.
    pub position_updates: u64,
    /// Pairs introduced.
    pub introductions: u64,
    /// Pairs that ended because the two moved apart.
    pub departures_range: u64,
    /// Pairs that ended because one side disconnected.
    pub departures_disconnect: u64,
    /// Pairs that ended because one side changed space.
    pub departures_space_change: u64,
    /// Pairs that ended because a peer cap made room for a nearer client.
    pub departures_replaced: u64,
    /// `RequestPeerRefresh` answered.
    pub refreshes: u64,
    /// Signals relayed to an introduced peer.
    pub signals_relayed: u64,
    /// Signals refused because the addressee is not introduced to the sender.
    pub signals_to_strangers: u64,
    /// Signals refused because no connected client has the addressee's id.
    pub signals_to_unknown: u64,
    /// Reports of a link that connected.
    pub reports_connected: u64,
    /// Reports of a link that failed.
    pub reports_failed: u64,
    /// Reports of a link attempt that timed out.
    pub reports_timed_out: u64,
    /// Introductions for which a side sent no report within the report timeout.
    pub unreported_introductions: u64,
    /// Messages that failed to decode, oversized signal payloads apart (`oversized_payloads`).
    pub decode_failures: u64,
    /// Messages refused for arriving on the wrong channel.
    pub rejected_inputs: u64,
    /// Positions refused as NaN, infinite or out of world (not in `decode_failures`: they never
    /// disconnect a client).
    pub invalid_positions: u64,
    /// Signals refused for an oversized payload (not in `decode_failures`; both count toward
    /// the sender's disconnect).
    pub oversized_payloads: u64,
    /// Position updates dropped by the rate limit.
    pub rate_limited_positions: u64,
    /// Refresh requests dropped by the rate limit.
    pub rate_limited_refreshes: u64,
    /// Clients disconnected by the server (garbage, idle).
    pub kicked: u64,
    /// `PeersChanged` messages sent.
    pub peers_changed_sent: u64,
    /// `PeerSnapshot` messages sent (refresh answers, and every update in the baseline mode).
    pub snapshots_sent: u64,
    /// Squared-distance evaluations by the proximity core.
    pub distance_checks: u64,
    /// Proximity ticks run.
    pub ticks: u64,
    /// How long the last proximity tick took, seconds.
    pub last_tick_secs: f64,
    /// What the transport read and refused: datagrams and bytes in, and every rejected
    /// datagram or packet by cause (flood, malformed prefix, refused by netcode, crafted renet
    /// packet, caught panics).
    pub receive: ReceiveCounts,
    /// UDP datagrams written.
    pub datagrams_out: u64,
    /// UDP bytes written.
    pub bytes_out: u64,
    /// TURN credentials issued (first ones and renewals).
    pub turn_credentials_issued: u64,
}

impl ServerStats {
    /// Pairs that ended, every cause.
    pub fn departures(&self) -> u64 {
        self.departures_range
            + self.departures_disconnect
            + self.departures_space_change
            + self.departures_replaced
    }

    /// Signals refused: to a stranger, to an unknown id, or with an oversized payload.
    pub fn signals_rejected(&self) -> u64 {
        self.signals_to_strangers + self.signals_to_unknown + self.oversized_payloads
    }

    /// Connection reports received, every outcome.
    pub fn connection_reports(&self) -> u64 {
        self.reports_connected + self.reports_failed + self.reports_timed_out
    }
}

/// Reads one total from the stats.
type Total = fn(&ServerStats) -> u64;

/// The totals of the stats log line, in order: each key beside where its value comes from.
/// `mingle-loadgen` reads some of them back (`loadgen/server_process.rs`).
const LOG_LINE: &[(&str, Total)] = &[
    ("introductions", |s| s.introductions),
    ("departures", ServerStats::departures),
    ("refreshes", |s| s.refreshes),
    ("signals_relayed", |s| s.signals_relayed),
    ("signals_rejected", ServerStats::signals_rejected),
    ("decode_failures", |s| {
        s.decode_failures + s.oversized_payloads
    }),
    ("position_updates", |s| s.position_updates),
    ("peers_changed_sent", |s| s.peers_changed_sent),
    ("snapshots_sent", |s| s.snapshots_sent),
    ("distance_checks", |s| s.distance_checks),
    ("reports_connected", |s| s.reports_connected),
    ("reports_failed", |s| s.reports_failed),
    ("reports_timed_out", |s| s.reports_timed_out),
    ("unreported_introductions", |s| s.unreported_introductions),
    ("ticks", |s| s.ticks),
    ("datagrams_in", |s| s.receive.datagrams),
    ("bytes_in", |s| s.receive.bytes),
    ("datagrams_out", |s| s.datagrams_out),
    ("bytes_out", |s| s.bytes_out),
    ("datagrams_rejected", |s| s.receive.rejected()),
];

/// Logs one line of totals every `stats_interval_secs`.
pub(crate) fn log_stats(
    stats: Res<ServerStats>,
    directory: Res<PeerDirectory>,
    config: Res<MingleServerConfig>,
    time: Res<Time<Real>>,
    mut next_at: bevy::prelude::Local<f64>,
) {
    let now = time.elapsed_secs_f64();
    if *next_at == 0.0 {
        *next_at = now + config.stats_interval_secs;
        return;
    }
    if now < *next_at {
        return;
    }
    *next_at = now + config.stats_interval_secs;
    let mut line = format!("mingle stats: clients={}", directory.len());
    for (key, read) in LOG_LINE {
        // Writing to a String cannot fail.
        let _ = write!(line, " {key}={}", read(&stats));
    }
    info!("{line}");
}

/// Advances `ServerStats::ticks` (kept apart so the tick system stays about proximity only).
pub(crate) fn count_tick(mut stats: ResMut<ServerStats>) {
    stats.ticks += 1;
}
