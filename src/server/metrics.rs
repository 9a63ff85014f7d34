//! Prometheus metrics: what the server did, connection success, introduction analytics.
//!
//! [`MingleMetricsPlugin`] feeds the `metrics` facade; it costs nothing until a recorder is
//! installed, which [`install_prometheus`] does (an HTTP listener serving the text exposition
//! format at `/metrics`; `mingle-server --metrics-addr 127.0.0.1:9464`).

use std::net::SocketAddr;
use std::time::Instant;

use bevy::app::{App, First, Last, Plugin, PostUpdate};
use bevy::prelude::{
    IntoScheduleConfigs, Local, MessageReader, Query, Res, ResMut, Resource, Time,
};
use bevy::time::Real;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use rustc_hash::FxHashMap;

use super::MingleServerSystems;
use super::components::MinglePeer;
use super::messages::{ConnectionReported, PairEntered, PairLeft};
use super::stats::ServerStats;
use crate::kit::ordered;
use crate::protocol::{ConnectionOutcome, PeerId, Realm};

/// Seconds after an introduction within which both sides should have reported an outcome.
pub const REPORT_TIMEOUT_SECS: f64 = 30.0;

/// Why the exporter could not start.
#[derive(Debug)]
pub struct MetricsError(String);

impl std::fmt::Display for MetricsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot start the metrics exporter: {}", self.0)
    }
}

impl std::error::Error for MetricsError {}

/// Installs the process-wide Prometheus recorder with an HTTP listener on `addr`
/// (`GET /metrics`). Once per process.
///
/// # Errors
/// A recorder is already installed, or the listener cannot start.
pub fn install_prometheus(addr: SocketAddr) -> Result<(), MetricsError> {
    let seconds = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    ];
    let lifetimes = [
        1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ];
    let setup = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0];
    let per_minute = [0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];
    let err = |e: metrics_exporter_prometheus::BuildError| MetricsError(e.to_string());
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full("mingle_proximity_tick_seconds".into()),
            &seconds,
        )
        .map_err(err)?
        .set_buckets_for_metric(Matcher::Full("mingle_frame_seconds".into()), &seconds)
        .map_err(err)?
        .set_buckets_for_metric(
            Matcher::Full("mingle_pair_lifetime_seconds".into()),
            &lifetimes,
        )
        .map_err(err)?
        .set_buckets_for_metric(
            Matcher::Full("mingle_connection_setup_seconds".into()),
            &setup,
        )
        .map_err(err)?
        .set_buckets_for_metric(
            Matcher::Full("mingle_client_introductions_per_minute".into()),
            &per_minute,
        )
        .map_err(err)?
        .install()
        .map_err(err)
}

/// Exports the server's counts as metrics, tracks connection success per introduction, and
/// records introduction analytics. Added by [`MingleServerPlugin`](super::MingleServerPlugin).
pub struct MingleMetricsPlugin;

impl Plugin for MingleMetricsPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<IntroductionLedger>()
            .init_resource::<FrameStart>()
            .add_systems(First, |mut start: ResMut<FrameStart>| {
                start.0 = Some(Instant::now())
            })
            .add_systems(
                PostUpdate,
                (track_introductions, export_counts)
                    .chain()
                    .after(MingleServerSystems::Send),
            )
            .add_systems(Last, record_frame_time);
    }
}

/// When this frame began.
#[derive(Debug, Default, Resource)]
struct FrameStart(Option<Instant>);

fn record_frame_time(start: Res<FrameStart>) {
    if let Some(at) = start.0 {
        histogram!("mingle_frame_seconds").record(at.elapsed().as_secs_f64());
    }
}

/// One introduced pair, from the introduction on.
#[derive(Debug, Clone, Copy)]
struct PairRecord {
    since: f64,
    /// Bit 1: the smaller id reported; bit 2: the larger.
    reported: u8,
    /// Whether the report deadline passed (counted once).
    overdue: bool,
}

/// Every currently introduced pair with when it began and who reported, plus each client's
/// introductions in the current minute.
#[derive(Debug, Default, Resource)]
pub struct IntroductionLedger {
    pairs: FxHashMap<(PeerId, PeerId), PairRecord>,
    this_minute: FxHashMap<PeerId, u32>,
    minute_started: f64,
}

impl IntroductionLedger {
    /// Currently introduced pairs being tracked.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no pair is tracked.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Follows each introduced pair from introduction to reports to departure.
fn track_introductions(
    mut ledger: ResMut<IntroductionLedger>,
    mut stats: ResMut<ServerStats>,
    mut introductions: MessageReader<PairEntered>,
    mut departures: MessageReader<PairLeft>,
    mut reports: MessageReader<ConnectionReported>,
    time: Res<Time<Real>>,
) {
    let now = time.elapsed_secs_f64();
    let ledger = &mut *ledger;
    for &PairEntered { a, b, .. } in introductions.read() {
        ledger.pairs.insert(
            ordered(a, b),
            PairRecord {
                since: now,
                reported: 0,
                overdue: false,
            },
        );
        *ledger.this_minute.entry(a).or_default() += 1;
        *ledger.this_minute.entry(b).or_default() += 1;
    }
    for report in reports.read() {
        let key = ordered(report.from, report.peer);
        let Some(pair) = ledger.pairs.get_mut(&key) else {
            continue; // a report on a pair that already ended, or was never introduced
        };
        let side = if report.from == key.0 { 1 } else { 2 };
        if pair.reported & side == 0 {
            pair.reported |= side;
            if report.outcome == ConnectionOutcome::Connected {
                histogram!("mingle_connection_setup_seconds").record(now - pair.since);
            }
        }
    }
    for &PairLeft { a, b, .. } in departures.read() {
        if let Some(pair) = ledger.pairs.remove(&ordered(a, b)) {
            histogram!("mingle_pair_lifetime_seconds").record(now - pair.since);
        }
    }
    // Introductions nobody (or only one side) reported on in time.
    for pair in ledger.pairs.values_mut() {
        if !pair.overdue && pair.reported != 3 && now - pair.since > REPORT_TIMEOUT_SECS {
            pair.overdue = true;
            stats.unreported_introductions += 1;
        }
    }
    if now - ledger.minute_started >= 60.0 {
        for (_, n) in ledger.this_minute.drain() {
            histogram!("mingle_client_introductions_per_minute").record(f64::from(n));
        }
        ledger.minute_started = now;
    }
}

/// One exported counter series: its name, its one label (if any), what it counts, and where
/// [`ServerStats`] keeps it.
#[derive(Debug, Clone, Copy)]
pub struct CounterSeries {
    /// The metric's name.
    pub name: &'static str,
    /// Its label, as `(key, value)`.
    pub label: Option<(&'static str, &'static str)>,
    /// What the metric counts (its `# HELP`).
    pub help: &'static str,
    read: fn(&ServerStats) -> u64,
}

impl CounterSeries {
    /// The series as a scrape names it, e.g. `mingle_departures_total{cause="range"}`.
    pub fn series(&self) -> String {
        match self.label {
            Some((key, value)) => format!("{}{{{key}=\"{value}\"}}", self.name),
            None => self.name.to_owned(),
        }
    }
}

macro_rules! counters {
    ($($name:literal $(, $key:literal = $value:literal)? : $help:literal => |$s:ident| $read:expr;)*) => {
        &[$(CounterSeries {
            name: $name,
            label: counters!(@label $($key, $value)?),
            help: $help,
            read: |$s: &ServerStats| $read,
        },)*]
    };
    (@label $key:literal, $value:literal) => { Some(($key, $value)) };
    (@label) => { None };
}

/// Every counter the server exports, each written once: exported from the first frame on (at
/// 0 until it moves, so `rate()` and alerts work), each event under one name. README's metrics
/// table documents the same names (`tests/metrics.rs` checks both).
pub const COUNTERS: &[CounterSeries] = counters! {
    "mingle_introductions_total": "Pairs introduced" => |s| s.introductions;
    "mingle_departures_total", "cause" = "range": "Pairs ended" => |s| s.departures_range;
    "mingle_departures_total", "cause" = "disconnect": "Pairs ended" => |s| s.departures_disconnect;
    "mingle_departures_total", "cause" = "space_change": "Pairs ended" => |s| s.departures_space_change;
    "mingle_departures_total", "cause" = "replaced": "Pairs ended" => |s| s.departures_replaced;
    "mingle_refresh_requests_total": "RequestPeerRefresh answered" => |s| s.refreshes;
    "mingle_turn_credentials_issued_total": "TURN credentials issued" => |s| s.turn_credentials_issued;
    "mingle_signals_relayed_total": "Signals forwarded to an introduced peer" => |s| s.signals_relayed;
    "mingle_signals_rejected_total", "reason" = "not_introduced": "Signals refused" => |s| s.signals_to_strangers;
    "mingle_signals_rejected_total", "reason" = "unknown_peer": "Signals refused" => |s| s.signals_to_unknown;
    "mingle_signals_rejected_total", "reason" = "payload_too_large": "Signals refused" => |s| s.oversized_payloads;
    "mingle_rejected_inputs_total", "reason" = "undecodable": "Client messages refused" => |s| s.decode_failures;
    "mingle_rejected_inputs_total", "reason" = "invalid_position": "Client messages refused" => |s| s.invalid_positions;
    "mingle_rejected_inputs_total", "reason" = "wrong_channel": "Client messages refused" => |s| s.rejected_inputs;
    "mingle_rejected_inputs_total", "reason" = "rate_limited_position": "Client messages refused" => |s| s.rate_limited_positions;
    "mingle_rejected_inputs_total", "reason" = "rate_limited_refresh": "Client messages refused" => |s| s.rate_limited_refreshes;
    "mingle_connection_reports_total", "outcome" = "connected": "Clients' WebRTC link outcomes" => |s| s.reports_connected;
    "mingle_connection_reports_total", "outcome" = "failed": "Clients' WebRTC link outcomes" => |s| s.reports_failed;
    "mingle_connection_reports_total", "outcome" = "timed_out": "Clients' WebRTC link outcomes" => |s| s.reports_timed_out;
    "mingle_introductions_unreported_total": "Introductions without both reports within 30 s" => |s| s.unreported_introductions;
    "mingle_rejected_datagrams_total", "cause" = "flood": "Datagrams refused on the receive path" => |s| s.receive.flood_dropped;
    "mingle_rejected_datagrams_total", "cause" = "malformed": "Datagrams refused on the receive path" => |s| s.receive.malformed;
    "mingle_rejected_datagrams_total", "cause" = "netcode_refused": "Datagrams refused on the receive path" => |s| s.receive.netcode_rejected;
    "mingle_rejected_datagrams_total", "cause" = "crafted_packet": "Datagrams refused on the receive path" => |s| s.receive.guarded;
    "mingle_rejected_datagrams_total", "cause" = "stale_slice": "Datagrams refused on the receive path" => |s| s.receive.stale_slices;
    "mingle_rejected_datagrams_total", "cause" = "caught_panic": "Datagrams refused on the receive path" => |s| s.receive.netcode_panics + s.receive.renet_panics;
    "mingle_position_updates_total": "Position updates accepted" => |s| s.position_updates;
    "mingle_peers_changed_sent_total": "PeersChanged messages sent" => |s| s.peers_changed_sent;
    "mingle_datagrams_received_total": "UDP datagrams read" => |s| s.receive.datagrams;
    "mingle_bytes_received_total": "UDP bytes read" => |s| s.receive.bytes;
    "mingle_datagrams_sent_total": "UDP datagrams written" => |s| s.datagrams_out;
    "mingle_bytes_sent_total": "UDP bytes written" => |s| s.bytes_out;
    "mingle_distance_checks_total": "Squared-distance evaluations by the proximity core" => |s| s.distance_checks;
    "mingle_clients_kicked_total": "Clients the server disconnected (garbage, idle, crafted packets)" => |s| s.kicked;
};

/// Every histogram the server records, with what it measures.
pub const HISTOGRAMS: &[(&str, &str)] = &[
    (
        "mingle_connection_setup_seconds",
        "Introduction to a connected report",
    ),
    (
        "mingle_pair_lifetime_seconds",
        "How long pairs stay introduced",
    ),
    (
        "mingle_client_introductions_per_minute",
        "Introductions per client, each minute",
    ),
    ("mingle_proximity_tick_seconds", "One proximity tick"),
    ("mingle_frame_seconds", "One whole server frame"),
];

/// Turns the growth of [`ServerStats`] since the last frame into counters (every series, so
/// each exists from the first frame), and refreshes the gauges once a second.
fn export_counts(
    stats: Res<ServerStats>,
    mut last: Local<Option<ServerStats>>,
    peers: Query<&MinglePeer>,
    time: Res<Time<Real>>,
    mut gauges_at: Local<f64>,
    mut realms: Local<FxHashMap<Realm, u64>>,
) {
    let first_frame = last.is_none();
    let before = last.get_or_insert_with(ServerStats::default);
    for series in COUNTERS {
        let (now, then) = ((series.read)(&stats), (series.read)(before));
        let counter = match series.label {
            Some((key, value)) => counter!(series.name, key => value),
            None => counter!(series.name),
        };
        counter.increment(now.saturating_sub(then));
    }
    if first_frame {
        for series in COUNTERS {
            describe_counter!(series.name, series.help);
        }
        for &(name, help) in HISTOGRAMS {
            describe_histogram!(name, help);
            let _registered = histogram!(name);
        }
        describe_gauge!("mingle_connected_clients", "Clients connected, per realm");
    }
    before.clone_from(&stats);

    let now = time.elapsed_secs_f64();
    if now - *gauges_at < 1.0 && *gauges_at != 0.0 {
        return;
    }
    *gauges_at = now;
    // Every realm seen so far is set, so one that emptied drops to zero.
    for count in realms.values_mut() {
        *count = 0;
    }
    for peer in &peers {
        *realms.entry(peer.realm).or_default() += 1;
    }
    for (realm, count) in realms.iter() {
        gauge!("mingle_connected_clients", "realm" => realm.0.to_string()).set(*count as f64);
    }
    if let Some((cpu, rss)) = process_usage() {
        gauge!("process_cpu_seconds_total").set(cpu);
        gauge!("process_resident_memory_bytes").set(rss);
    }
}

/// CPU seconds and resident bytes of this process, from /proc (Linux).
fn process_usage() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let pages: f64 = fields.get(21)?.parse().ok()?;
    // USER_HZ is 100 and pages are 4 KiB on the Linux machines mingle runs on.
    Some((ticks / 100.0, pages * 4096.0))
}
