//! The load generator behind `mingle-loadgen`: many simulated clients in one process (plain
//! renet clients, one UDP socket each, no Bevy app per bot) driven by seeded scenarios against
//! a server on 127.0.0.1, measuring what the server sends and checking every bot's peer set.
//!
//! Traffic goes only to loopback: `--server` must be a loopback address.

mod bot;
mod check;
mod party;
mod report;
mod scenario;
mod server_process;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use rustc_hash::FxHashMap;

pub use report::{KindStats, LatencyStats, PeerCounts, Report, ServerSide};
pub use scenario::ScenarioKind;

use bot::{Bot, Heard};
use report::Counters;
use scenario::{Motion, Scenario};
use server_process::ServerProcess;

use crate::kit::ordered;
use crate::protocol::{PeerId, Realm, SpaceId};
use crate::proximity::{PairChange, Proximity, ProximityConfig};
use crate::server::NotifyMode;

/// mingle-loadgen: simulated clients against a mingle server on 127.0.0.1.
#[derive(Debug, Clone, Parser)]
#[command(name = "mingle-loadgen", version, about, long_about = None)]
pub struct LoadgenArgs {
    /// The scenario to run.
    #[arg(value_enum)]
    pub scenario: ScenarioKind,
    /// Number of clients [default: per scenario: seed 50, groups 120, crowd 100, churn 100, scale 1024].
    #[arg(long, env = "MINGLE_LOADGEN_CLIENTS")]
    pub clients: Option<usize>,
    /// Seconds of measured load after all clients connected [default: 20, scale 60].
    #[arg(long, env = "MINGLE_LOADGEN_SECS")]
    pub secs: Option<f64>,
    /// Position updates per second of a moving client.
    #[arg(long, default_value_t = 3.0, env = "MINGLE_LOADGEN_UPDATE_HZ")]
    pub update_hz: f64,
    /// Fraction of clients that walk (seed, scale, churn); the rest stand still.
    #[arg(long, default_value_t = 0.5, env = "MINGLE_LOADGEN_MOVING")]
    pub moving_fraction: f64,
    /// Clients replaced per second in the churn scenario [default: a tenth of the clients].
    #[arg(long, env = "MINGLE_LOADGEN_CHURN_PER_SEC")]
    pub churn_per_sec: Option<f64>,
    /// Refresh requests per second per client (the original's clients asked after a failed
    /// WebRTC attempt; 0 sends none).
    #[arg(long, default_value_t = 0.0, env = "MINGLE_LOADGEN_REFRESH_PER_SEC")]
    pub refresh_per_sec: f64,
    /// Packets per second a bot sends when it has no message queued (acks, keep-alives), like
    /// the client plugin's `send_hz`; a queued message is sent at once.
    #[arg(long, default_value_t = 20.0, env = "MINGLE_LOADGEN_CLIENT_SEND_HZ")]
    pub client_send_hz: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1, env = "MINGLE_LOADGEN_SEED")]
    pub seed: u64,
    /// Start a mingle-server child process on 127.0.0.1 (CPU, memory and stats are read from it).
    #[arg(long, conflicts_with = "server")]
    pub spawn_server: bool,
    /// Address of a running server (loopback only).
    #[arg(long, env = "MINGLE_LOADGEN_SERVER")]
    pub server: Option<SocketAddr>,
    /// With `--server`: its process id, to read its CPU and memory from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The server binary for `--spawn-server` [default: mingle-server beside this binary].
    #[arg(long, env = "MINGLE_SERVER_BIN")]
    pub server_bin: Option<PathBuf>,
    /// Notify mode for the spawned server.
    #[arg(long, value_enum, default_value_t = NotifyMode::default())]
    pub notify: NotifyMode,
    /// Extra argument for the spawned server (repeatable), e.g. `--server-arg=--loop-hz=30`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
    /// Introduction distance the server uses (for the oracle and the spawned server).
    #[arg(long, default_value_t = ProximityConfig::default().range)]
    pub range: f32,
    /// Departure distance the server uses.
    #[arg(long, default_value_t = ProximityConfig::default().leave_range)]
    pub leave_range: f32,
    /// Peer cap of the spawned server (`--max-peers`), also applied by the oracle check.
    #[arg(long)]
    pub max_peers: Option<std::num::NonZeroU32>,
    /// Seconds to let everything settle, standing still, before the peer sets are checked.
    #[arg(long, default_value_t = 1.5)]
    pub settle_secs: f64,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Why a run could not be made.
#[derive(Debug)]
pub enum LoadgenError {
    /// Neither `--spawn-server` nor `--server` was given, or `--server` is not loopback.
    Target(String),
    /// Starting the server or opening a socket failed.
    Io(std::io::Error),
}

impl std::fmt::Display for LoadgenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadgenError::Target(why) => write!(f, "{why}"),
            LoadgenError::Io(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for LoadgenError {}

impl From<std::io::Error> for LoadgenError {
    fn from(err: std::io::Error) -> Self {
        LoadgenError::Io(err)
    }
}

/// One frame of the bots' loop.
const FRAME: Duration = Duration::from_millis(4);
/// Seconds between position re-sends of a client standing still.
const KEEPALIVE_SECS: f64 = 1.0;
/// How long the initial burst of connects may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Pairs the bots' sent positions put in range, not yet introduced to both sides.
#[derive(Default)]
struct LatencyTracker {
    core: Option<Proximity>,
    pending: FxHashMap<(PeerId, PeerId), (Instant, u8)>,
    samples_ms: Vec<f64>,
    recording: bool,
}

impl LatencyTracker {
    fn heard(&mut self, me: PeerId, other: PeerId, now: Instant) {
        let key = ordered(me, other);
        let side = if me == key.0 { 1 } else { 2 };
        if let Some((at, done)) = self.pending.get_mut(&key) {
            if *done & side == 0 {
                *done |= side;
                if self.recording {
                    self.samples_ms
                        .push(now.duration_since(*at).as_secs_f64() * 1000.0);
                }
            }
            if *done == 3 {
                self.pending.remove(&key);
            }
        }
    }

    fn tick(&mut self, now: Instant, changes: &mut Vec<PairChange>) {
        let Some(core) = self.core.as_mut() else {
            return;
        };
        changes.clear();
        core.tick(changes);
        for change in changes.iter() {
            match *change {
                PairChange::Entered { a, b, .. } => {
                    self.pending.entry(ordered(a, b)).or_insert((now, 0));
                }
                PairChange::Left { a, b, .. } => {
                    self.pending.remove(&ordered(a, b));
                }
            }
        }
        // Pairs the server never introduced (in and out between two of its ticks) expire.
        if self.pending.len() > 4096 {
            self.pending
                .retain(|_, (at, _)| now.duration_since(*at) < Duration::from_secs(5));
        }
    }
}

struct Run {
    args: LoadgenArgs,
    scenario: Scenario,
    bots: Vec<Bot>,
    /// One epoll over every bot's socket; a bot's token is its id.
    poll: mio::Poll,
    events: mio::Events,
    /// Where each bot (by id) sits in `bots`.
    slot_of: FxHashMap<u64, usize>,
    motions: Vec<Motion>,
    counters: Counters,
    latency: LatencyTracker,
    start: Instant,
    next_id: u64,
    heard: Vec<Heard>,
    changes: Vec<PairChange>,
    /// The voice rules the bots set (`party` scenario).
    party: party::PartyRules,
}

impl Run {
    fn now_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn add_bot(&mut self, server: SocketAddr, k: usize, n: usize) -> std::io::Result<()> {
        let (pos, motion) = self.scenario.place(k, n);
        self.next_id += 1;
        let id = PeerId(self.next_id);
        let bot = Bot::connect(id, server, pos, party::user_data(self.args.scenario, id))?;
        self.party.joined(self.args.scenario, id);
        party::track(self, id);
        let fd = std::os::fd::AsRawFd::as_raw_fd(bot.link.socket());
        self.poll.registry().register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(self.next_id as usize),
            mio::Interest::READABLE,
        )?;
        self.slot_of.insert(self.next_id, self.bots.len());
        self.bots.push(bot);
        self.motions.push(motion);
        Ok(())
    }

    /// One frame: receive, move, send, account.
    fn frame(&mut self, dt: Duration, phase: f64, moving: bool) {
        let now = Instant::now();
        if self
            .poll
            .poll(&mut self.events, Some(Duration::ZERO))
            .is_ok()
        {
            for event in self.events.iter() {
                if let Some(&k) = self.slot_of.get(&(event.token().0 as u64)) {
                    self.bots[k].readable = true;
                }
            }
        }
        for bot in &mut self.bots {
            if !bot.due(now) {
                continue;
            }
            self.heard.clear();
            bot.service(now, &mut self.counters, &mut self.heard);
            for Heard::Entered(peer) in self.heard.drain(..) {
                self.latency.heard(bot.id, peer, now);
            }
        }
        if moving {
            let mut refs: Vec<(&mut [f32; 3], &mut Motion)> = self
                .bots
                .iter_mut()
                .map(|b| &mut b.pos)
                .zip(self.motions.iter_mut())
                .collect();
            self.scenario.advance(phase, dt.as_secs_f32(), &mut refs);
        }
        let t = self.now_secs();
        let min_gap = 1.0 / self.args.update_hz;
        let refresh_chance = self.args.refresh_per_sec * dt.as_secs_f64();
        if moving && refresh_chance > 0.0 {
            for bot in &mut self.bots {
                let roll = self.scenario.rng().unit() as f64;
                if bot.is_connected() && roll < refresh_chance {
                    bot.request_refresh();
                    self.counters.refreshes_sent += 1;
                }
            }
        }
        for bot in &mut self.bots {
            if !bot.is_connected() {
                continue;
            }
            let due = match bot.sent {
                None => true,
                Some((p, at)) => (p != bot.pos && t - at >= min_gap) || t - at >= KEEPALIVE_SECS,
            };
            if due {
                bot.send_position(t);
                self.counters.positions_sent += 1;
                if let Some(core) = self.latency.core.as_mut() {
                    let _ = core.set_position(bot.id, Realm(0), SpaceId(0), bot.pos);
                }
            }
            bot.flush(t, self.args.client_send_hz);
        }
        self.latency.tick(now, &mut self.changes);
    }

    /// Replaces one random bot with a fresh one (churn).
    fn churn_one(&mut self, server: SocketAddr) -> std::io::Result<()> {
        let k = self.scenario.rng().below(self.bots.len());
        let mut gone = self.bots.swap_remove(k);
        self.motions.swap_remove(k);
        self.slot_of.remove(&gone.id.0);
        if let Some(moved) = self.bots.get(k) {
            self.slot_of.insert(moved.id.0, k);
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(gone.link.socket());
        let _ = self
            .poll
            .registry()
            .deregister(&mut mio::unix::SourceFd(&fd));
        gone.disconnect();
        if let Some(core) = self.latency.core.as_mut() {
            core.remove(gone.id);
        }
        let n = self.bots.len() + 1;
        self.add_bot(server, k, n)
    }
}

fn percent(cpu: Option<(f64, f64)>, wall: f64) -> Option<f64> {
    cpu.map(|(a, b)| (b - a) / wall * 100.0)
}

/// Runs one scenario and reports what it measured.
///
/// # Errors
/// No usable target server, or a socket or the server process could not be started.
pub fn run(args: &LoadgenArgs) -> Result<Report, LoadgenError> {
    let n = args.clients.unwrap_or(args.scenario.default_clients());
    let secs = args.secs.unwrap_or(args.scenario.default_secs());
    let spawned = if args.spawn_server {
        let bin = match &args.server_bin {
            Some(bin) => bin.clone(),
            None => std::env::current_exe()?.with_file_name("mingle-server"),
        };
        let mode = match args.notify {
            NotifyMode::Changes => "changes",
            NotifyMode::EveryUpdate => "every-update",
        };
        let mut server_args = vec![
            "--notify".to_owned(),
            mode.to_owned(),
            format!("--range={}", args.range),
            format!("--leave-range={}", args.leave_range),
        ];
        if let Some(cap) = args.max_peers {
            server_args.push(format!("--max-peers={cap}"));
        }
        server_args.extend(args.server_args.iter().cloned());
        Some(ServerProcess::spawn(&bin, &server_args)?)
    } else {
        None
    };
    let server = match (&spawned, args.server) {
        (Some(s), _) => s.addr,
        (None, Some(addr)) if addr.ip().is_loopback() => addr,
        (None, Some(addr)) => {
            return Err(LoadgenError::Target(format!(
                "--server {addr} is not a loopback address; load runs stay on 127.0.0.1"
            )));
        }
        (None, None) => {
            return Err(LoadgenError::Target(
                "give --spawn-server or --server ADDR".to_owned(),
            ));
        }
    };
    let server_pid = spawned
        .as_ref()
        .map(|s| s.pid())
        .or(args.server_pid)
        .map(|p| p.to_string());

    let config = ProximityConfig {
        range: args.range,
        leave_range: args.leave_range,
        max_peers: args.max_peers,
        ..ProximityConfig::default()
    };
    let mut run = Run {
        args: args.clone(),
        scenario: Scenario::new(
            args.scenario,
            n,
            args.range,
            args.seed,
            args.moving_fraction,
        ),
        bots: Vec::with_capacity(n),
        poll: mio::Poll::new()?,
        events: mio::Events::with_capacity(4096),
        slot_of: FxHashMap::default(),
        motions: Vec::with_capacity(n),
        counters: Counters::default(),
        latency: LatencyTracker {
            core: Some(Proximity::new(config.clone())),
            ..LatencyTracker::default()
        },
        start: Instant::now(),
        next_id: 0,
        heard: Vec::new(),
        changes: Vec::new(),
        party: party::PartyRules::default(),
    };

    // The burst: every bot starts its handshake at once.
    for k in 0..n {
        run.add_bot(server, k, n)?;
    }
    let connect_start = Instant::now();
    let mut last = Instant::now();
    while connect_start.elapsed() < CONNECT_TIMEOUT
        && run.bots.iter().any(|b| !(b.is_connected() && b.welcomed()))
    {
        std::thread::sleep(FRAME);
        let dt = last.elapsed();
        last = Instant::now();
        run.frame(dt, 0.0, false);
    }
    let connect_secs = connect_start.elapsed().as_secs_f64();
    let connect_failures = run.bots.iter().filter(|b| !b.is_connected()).count();
    // Let the initial introductions land before measuring.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(FRAME);
        let dt = last.elapsed();
        last = Instant::now();
        run.frame(dt, 0.0, false);
    }

    // The measured window.
    run.counters = Counters::default();
    run.latency.pending.clear();
    run.latency.recording = true;
    let stats_start = spawned.as_ref().map(|s| s.next_stats(Instant::now()));
    let window_start = Instant::now();
    let cpu_start = server_pid.as_deref().and_then(server_process::cpu_seconds);
    let own_start = server_process::cpu_seconds("self");
    let churn_rate = args.churn_per_sec.unwrap_or(n as f64 / 10.0);
    let mut churn_due = 0.0;
    let mut next_frame = Instant::now();
    while window_start.elapsed().as_secs_f64() < secs {
        next_frame += FRAME;
        if let Some(wait) = next_frame.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let dt = last.elapsed();
        last = Instant::now();
        let phase = window_start.elapsed().as_secs_f64() / secs;
        party::set_rules_mid_run(&mut run, phase);
        run.frame(dt, phase, true);
        if args.scenario == ScenarioKind::Churn {
            churn_due += churn_rate * dt.as_secs_f64();
            while churn_due >= 1.0 {
                churn_due -= 1.0;
                run.churn_one(server)?;
            }
        }
    }
    let wall = window_start.elapsed().as_secs_f64();
    let cpu_end = server_pid.as_deref().and_then(server_process::cpu_seconds);
    let own_end = server_process::cpu_seconds("self");
    let stats_end = spawned.as_ref().map(|s| s.next_stats(Instant::now()));
    let counters = run.counters.clone();
    let clients_connected = run.bots.iter().filter(|b| b.is_connected()).count();

    // Settle: everyone stands still and re-sends where they are, then the sets are checked.
    run.latency.recording = false;
    for bot in &mut run.bots {
        bot.sent = None;
    }
    let settle = Instant::now();
    while settle.elapsed().as_secs_f64() < args.settle_secs {
        std::thread::sleep(FRAME);
        let dt = last.elapsed();
        last = Instant::now();
        run.frame(dt, 1.0, false);
    }
    let (mismatches, mismatch_examples) = check::mismatches(&run.bots, &config, &run.party.rules);
    let mut sizes: Vec<usize> = run
        .bots
        .iter()
        .filter(|b| b.is_connected())
        .map(|b| b.peers().len())
        .collect();
    sizes.sort_unstable();
    let peers_per_client = PeerCounts {
        max: sizes.last().copied().unwrap_or(0),
        p50: sizes.get(sizes.len() / 2).copied().unwrap_or(0),
        mean: sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64,
    };
    let server_rss_mib = server_pid.as_deref().and_then(server_process::rss_mib);
    for bot in &mut run.bots {
        bot.disconnect();
    }

    let messages: BTreeMap<String, KindStats> = counters
        .by_kind
        .iter()
        .map(|(k, &(count, bytes))| {
            (
                (*k).to_owned(),
                KindStats {
                    count,
                    per_sec: count as f64 / wall,
                    bytes,
                    bytes_per_sec: bytes as f64 / wall,
                },
            )
        })
        .collect();
    let server_side = match (stats_start, stats_end) {
        (Some(a), Some(b)) => {
            let span = match (a.at, b.at) {
                (Some(x), Some(y)) if y > x => y.duration_since(x).as_secs_f64(),
                _ => wall,
            };
            let rate = |x: u64, y: u64| y.saturating_sub(x) as f64 / span;
            Some(ServerSide {
                distance_checks_per_sec: rate(a.distance_checks, b.distance_checks),
                position_updates_per_sec: rate(a.position_updates, b.position_updates),
                peers_changed_per_sec: rate(a.peers_changed_sent, b.peers_changed_sent),
                snapshots_per_sec: rate(a.snapshots_sent, b.snapshots_sent),
                introductions_per_sec: rate(a.introductions, b.introductions),
                departures_per_sec: rate(a.departures, b.departures),
                datagrams_in_per_sec: rate(a.datagrams_in, b.datagrams_in),
                bytes_in_per_sec: rate(a.bytes_in, b.bytes_in),
                datagrams_out_per_sec: rate(a.datagrams_out, b.datagrams_out),
                bytes_out_per_sec: rate(a.bytes_out, b.bytes_out),
            })
        }
        _ => None,
    };
    let report = Report {
        scenario: format!("{:?}", args.scenario).to_lowercase(),
        notify: match args.notify {
            NotifyMode::Changes => "changes".to_owned(),
            NotifyMode::EveryUpdate => "every-update".to_owned(),
        },
        clients_requested: n,
        clients_connected,
        connect_failures,
        connect_secs,
        duration_secs: wall,
        position_updates_per_sec: counters.positions_sent as f64 / wall,
        messages_per_sec: messages.values().map(|k| k.per_sec).sum::<f64>() + 0.0,
        bytes_per_sec: messages.values().map(|k| k.bytes_per_sec).sum::<f64>() + 0.0,
        messages,
        introductions_per_sec: counters.entered as f64 / 2.0 / wall,
        departures_per_sec: counters.left as f64 / 2.0 / wall,
        refreshes: counters.refreshes_sent,
        latency: LatencyStats::from_samples(std::mem::take(&mut run.latency.samples_ms)),
        server_cpu_percent: percent(cpu_start.zip(cpu_end), wall),
        server_cpu_us_per_client_sec: cpu_start
            .zip(cpu_end)
            .map(|(a, b)| (b - a) * 1e6 / (clients_connected.max(1) as f64 * wall)),
        server_rss_mib,
        loadgen_cpu_percent: percent(own_start.zip(own_end), wall),
        server: server_side,
        peers_per_client,
        mismatches,
        mismatch_examples,
        machine: server_process::machine(),
    };
    drop(spawned);
    Ok(report)
}
