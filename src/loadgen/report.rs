//! What a run measured, as a table for people and JSON for machines.

use std::collections::BTreeMap;

use serde::Serialize;

/// Server → client traffic by message kind, as the bots received it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counters {
    pub by_kind: BTreeMap<&'static str, (u64, u64)>,
    /// Peer entries in `entered` lists (each introduced pair counts once per side).
    pub entered: u64,
    /// Peer entries in `left` lists.
    pub left: u64,
    pub positions_sent: u64,
    pub refreshes_sent: u64,
}

impl Counters {
    pub fn count(&mut self, kind: &'static str, bytes: usize) {
        let e = self.by_kind.entry(kind).or_default();
        e.0 += 1;
        e.1 += bytes as u64;
    }
}

/// Count and volume of one message kind over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct KindStats {
    /// Messages received by all bots.
    pub count: u64,
    /// Messages per second.
    pub per_sec: f64,
    /// Encoded bytes (application payload, before renet/netcode framing).
    pub bytes: u64,
    /// Encoded bytes per second.
    pub bytes_per_sec: f64,
}

/// Introduction latency: from the position update that first put a pair in range to the
/// introduction arriving, one sample per side.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencyStats {
    /// Samples taken.
    pub samples: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

impl LatencyStats {
    pub(crate) fn from_samples(mut ms: Vec<f64>) -> Self {
        if ms.is_empty() {
            return LatencyStats::default();
        }
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        LatencyStats {
            samples: ms.len(),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: *ms.last().expect("not empty"),
        }
    }
}

/// Peers per client at the end of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerCounts {
    /// Largest peer set.
    pub max: usize,
    /// Median peer set.
    pub p50: usize,
    /// Mean peer set.
    pub mean: f64,
}

/// What the server itself reported (its stats log line), over the measured window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerSide {
    /// Squared-distance evaluations per second.
    pub distance_checks_per_sec: f64,
    /// Position updates decoded per second.
    pub position_updates_per_sec: f64,
    /// `PeersChanged` sent per second.
    pub peers_changed_per_sec: f64,
    /// `PeerSnapshot` sent per second.
    pub snapshots_per_sec: f64,
    /// Introductions (pairs) per second.
    pub introductions_per_sec: f64,
    /// Departures (pairs) per second.
    pub departures_per_sec: f64,
    /// UDP datagrams the server read per second.
    pub datagrams_in_per_sec: f64,
    /// UDP bytes the server read per second.
    pub bytes_in_per_sec: f64,
    /// UDP datagrams the server wrote per second.
    pub datagrams_out_per_sec: f64,
    /// UDP bytes the server wrote per second.
    pub bytes_out_per_sec: f64,
}

/// The result of one load-generator run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Server notify mode.
    pub notify: String,
    /// Bots asked for.
    pub clients_requested: usize,
    /// Bots connected at the end of the measured window.
    pub clients_connected: usize,
    /// Bots that never connected.
    pub connect_failures: usize,
    /// Seconds the burst of initial connects took.
    pub connect_secs: f64,
    /// Length of the measured window, s.
    pub duration_secs: f64,
    /// Position updates sent per second by all bots.
    pub position_updates_per_sec: f64,
    /// Server → client traffic by kind.
    pub messages: BTreeMap<String, KindStats>,
    /// All server → client messages per second.
    pub messages_per_sec: f64,
    /// All server → client bytes per second.
    pub bytes_per_sec: f64,
    /// Introductions per second, counted in pairs (entered entries ÷ 2).
    pub introductions_per_sec: f64,
    /// Departures per second, counted in pairs.
    pub departures_per_sec: f64,
    /// Refresh requests sent.
    pub refreshes: u64,
    /// Introduction latency.
    pub latency: LatencyStats,
    /// Server CPU, % of one core, over the window (spawned server or `--server-pid`).
    pub server_cpu_percent: Option<f64>,
    /// Server CPU per connected client and second of the window, µs: the cost of a client.
    pub server_cpu_us_per_client_sec: Option<f64>,
    /// Server resident memory at the end, MiB.
    pub server_rss_mib: Option<f64>,
    /// The load generator's own CPU, % of one core.
    pub loadgen_cpu_percent: Option<f64>,
    /// Figures from the server's own stats line (spawned server only).
    pub server: Option<ServerSide>,
    /// Peer set sizes at the end.
    pub peers_per_client: PeerCounts,
    /// Pairs where a bot's peer set disagrees with the brute-force oracle after settling.
    pub mismatches: usize,
    /// A few of them, for diagnosis.
    pub mismatch_examples: Vec<String>,
    /// The machine it ran on.
    pub machine: String,
}

impl Report {
    /// A human-readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut t = String::new();
        let opt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.1}"));
        let _ = writeln!(
            t,
            "mingle-loadgen: {} (notify {}) on {}",
            self.scenario, self.notify, self.machine
        );
        let _ = writeln!(
            t,
            "  clients connected        {:>10} / {} (connect burst {:.2} s, {} failed)",
            self.clients_connected,
            self.clients_requested,
            self.connect_secs,
            self.connect_failures
        );
        let _ = writeln!(
            t,
            "  measured window          {:>10.1} s",
            self.duration_secs
        );
        let _ = writeln!(
            t,
            "  position updates/s       {:>10.1}",
            self.position_updates_per_sec
        );
        let _ = writeln!(
            t,
            "  server->client msgs/s    {:>10.1}   ({:.0} B/s)",
            self.messages_per_sec, self.bytes_per_sec
        );
        for (kind, k) in &self.messages {
            let _ = writeln!(
                t,
                "    {kind:<22} {:>10.1}/s  {:>10.0} B/s  ({} msgs)",
                k.per_sec, k.bytes_per_sec, k.count
            );
        }
        let _ = writeln!(
            t,
            "  introductions/s (pairs)  {:>10.2}",
            self.introductions_per_sec
        );
        let _ = writeln!(
            t,
            "  departures/s (pairs)     {:>10.2}",
            self.departures_per_sec
        );
        let _ = writeln!(t, "  refreshes                {:>10}", self.refreshes);
        let l = &self.latency;
        let _ = writeln!(
            t,
            "  intro latency ms         p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}  ({} samples)",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.samples
        );
        let _ = writeln!(
            t,
            "  server CPU % of a core   {:>10}   ({} µs per client-second)",
            opt(self.server_cpu_percent),
            opt(self.server_cpu_us_per_client_sec)
        );
        let _ = writeln!(
            t,
            "  server RSS MiB           {:>10}",
            opt(self.server_rss_mib)
        );
        let _ = writeln!(
            t,
            "  loadgen CPU % of a core  {:>10}",
            opt(self.loadgen_cpu_percent)
        );
        if let Some(s) = &self.server {
            let _ = writeln!(
                t,
                "  server: distance checks/s {:>9.0}  positions/s {:.1}  PeersChanged/s {:.1}  snapshots/s {:.1}",
                s.distance_checks_per_sec,
                s.position_updates_per_sec,
                s.peers_changed_per_sec,
                s.snapshots_per_sec
            );
            let _ = writeln!(
                t,
                "  server UDP: in {:.0} datagrams/s ({:.0} B/s), out {:.0} datagrams/s ({:.0} B/s)",
                s.datagrams_in_per_sec,
                s.bytes_in_per_sec,
                s.datagrams_out_per_sec,
                s.bytes_out_per_sec
            );
        }
        let p = &self.peers_per_client;
        let _ = writeln!(
            t,
            "  peers per client         max {}  p50 {}  mean {:.2}",
            p.max, p.p50, p.mean
        );
        let _ = writeln!(t, "  MISMATCHES               {:>10}", self.mismatches);
        for m in &self.mismatch_examples {
            let _ = writeln!(t, "    {m}");
        }
        t
    }
}
