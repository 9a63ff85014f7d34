//! A NAT lab: two players behind real Linux NATs connect through mingle, STUN and a real coturn.
//!
//! Builds, per case, network namespaces joined by veth pairs: a "public" segment
//! (203.0.113.0/24, a bridge) holding coturn and `mingle-server` (this binary in its server
//! role), and each player in a namespace of its own behind a router namespace doing
//! `iptables MASQUERADE` (endpoint-independent mapping) or `MASQUERADE --random-fully`
//! (a new port per destination: symmetric). Players' LANs are 198.51.100.0/24 and
//! 192.0.2.0/24. No namespace has a route anywhere else, nothing is created in the root
//! namespace, and every namespace and process is removed when a case ends, fails or panics.
//!
//! Cases: (a) both on the public segment; (b) both behind endpoint-independent NAT; (c) one
//! symmetric, one endpoint-independent; (d) both symmetric; (e) both symmetric without TURN,
//! which must fail cleanly. Each row: connected, the selected candidate pair types on both
//! sides, ms from introduction to the data channel open, bytes through coturn's relay ports.
//!
//! ```text
//! sudo cargo run --release --features webrtc --example nat_lab -- --json nat_lab.json
//! ```
//!
//! Needs root, `ip`, `iptables` and `turnserver` (Debian package `coturn`); without them it
//! says so and exits 1.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use mingle::client::{
    LinkData, LinkFailed, LinkOpened, MingleClientConfig, MingleClientPlugin, MingleLocal,
    MingleServer, MingleWebRtcPlugin, PeerEntered, WebRtcConfig, WebRtcLinks,
};
use mingle::protocol::{PeerId, Realm};
use mingle::server::{MingleServerConfig, MingleServerPlugin, ServerStats, TurnSecret};

const SERVER: &str = "203.0.113.1:5000";
const TURN: &str = "203.0.113.1:3478";
const RELAY_PORTS: (u16, u16) = (49160, 49200);
const SECRET_ENV: &str = "MINGLE_LAB_TURN_SECRET";
/// A player gives up this long after the introduction (the link's attempt timeout).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The lab, or one of its roles (`--server`, `--player`) in a child process. Public because
/// `tests/nat_lab.rs` runs this same file as its `main`.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--server") => serve(&args[2..]),
        Some("--player") => play(&args[2..]),
        _ => run(&args[1..]),
    }
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

// ---------------------------------------------------------------- server role (in "pub")

fn serve(args: &[String]) -> ExitCode {
    let turn = arg(args, "--turn") == Some("yes");
    let mut ice_servers = vec![format!("stun:{TURN}")];
    if turn {
        ice_servers.push(format!("turn:{TURN}?transport=udp"));
    }
    let config = MingleServerConfig {
        bind: SERVER.parse().expect("a socket address"),
        ice_servers,
        turn_credential_ttl_secs: 600,
        tick_hz: 50.0,
        loop_hz: 200.0,
        ..MingleServerConfig::default()
    };
    let secret = std::env::var(SECRET_ENV)
        .ok()
        .and_then(|s| TurnSecret::new(&s));
    let mut plugin = MingleServerPlugin::new(config);
    if let Some(secret) = secret {
        plugin = plugin.with_turn_secret(secret);
    }
    let mut app = App::new();
    app.add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(5))))
        .add_plugins(plugin)
        .add_systems(Update, print_stats);
    app.run();
    ExitCode::SUCCESS
}

fn print_stats(stats: Res<ServerStats>, mut last: Local<Option<Instant>>) {
    if last.is_some_and(|t| t.elapsed() < Duration::from_millis(200)) {
        return;
    }
    *last = Some(Instant::now());
    println!(
        "stats {} {} {} {}",
        stats.reports_connected,
        stats.reports_failed,
        stats.reports_timed_out,
        stats.turn_credentials_issued
    );
    let _ = std::io::stdout().flush();
}

// ---------------------------------------------------------------- player role

#[derive(Debug, Default, Resource)]
struct Seen {
    introduced: Option<Instant>,
    opened: Option<Instant>,
    failed: Option<String>,
    heard: bool,
}

fn watch(
    mut seen: ResMut<Seen>,
    mut entered: MessageReader<PeerEntered>,
    mut opened: MessageReader<LinkOpened>,
    mut failed: MessageReader<LinkFailed>,
    mut data: MessageReader<LinkData>,
) {
    if entered.read().count() > 0 && seen.introduced.is_none() {
        seen.introduced = Some(Instant::now());
    }
    if opened.read().count() > 0 && seen.opened.is_none() {
        seen.opened = Some(Instant::now());
    }
    for f in failed.read() {
        seen.failed = Some(format!("{:?}", f.outcome));
    }
    if data.read().count() > 0 {
        seen.heard = true;
    }
}

fn play(args: &[String]) -> ExitCode {
    let id: u64 = arg(args, "--id")
        .and_then(|s| s.parse().ok())
        .expect("--id N");
    let bind: SocketAddr = arg(args, "--bind")
        .and_then(|s| s.parse().ok())
        .expect("--bind IP:0");
    let peer = PeerId(3 - id);
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(
            MingleClientPlugin::new(MingleClientConfig {
                position_hz: 60.0,
                ..default()
            })
            .connect_to(MingleServer::Unsecure {
                server: SERVER.parse().expect("a socket address"),
                id: PeerId(id),
                realm: Realm(0),
            }),
        )
        .add_plugins(MingleWebRtcPlugin {
            config: WebRtcConfig {
                bind,
                interfaces: false,
                attempt_timeout: ATTEMPT_TIMEOUT,
                stagger: Duration::ZERO,
                ..default()
            },
        })
        .init_resource::<Seen>()
        .add_systems(Update, watch);
    if let Ok(filter) = std::env::var("NAT_LAB_LOG") {
        app.add_plugins(bevy::log::LogPlugin {
            filter,
            ..default()
        });
    }
    // Far apart while gathering; both walk to the meeting point after a second.
    app.world_mut().spawn((
        MingleLocal::default(),
        Transform::from_xyz(1000.0 * id as f32, 0.0, 0.0),
    ));
    let start = Instant::now();
    let mut walked = false;
    let mut sent = false;
    let deadline = start + Duration::from_secs(20);
    while Instant::now() < deadline {
        app.update();
        if !walked && start.elapsed() > Duration::from_millis(1500) {
            let world = app.world_mut();
            let mut q = world.query_filtered::<&mut Transform, With<MingleLocal>>();
            q.single_mut(world).expect("one player").translation.x = id as f32;
            walked = true;
        }
        let seen = app.world().resource::<Seen>();
        if seen.failed.is_some() {
            break;
        }
        if seen.opened.is_some() && !sent {
            sent = app
                .world_mut()
                .resource_mut::<WebRtcLinks>()
                .send(peer, b"hello through the NAT");
        }
        let seen = app.world().resource::<Seen>();
        if seen.heard {
            // Linger so the peer hears us too and both reports reach the server.
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until {
                app.update();
                std::thread::sleep(Duration::from_millis(2));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let seen = app.world().resource::<Seen>();
    let links = app.world().resource::<WebRtcLinks>();
    let pair = links.selected_pair(peer);
    let ms = match (seen.introduced, seen.opened) {
        (Some(i), Some(o)) => o.duration_since(i).as_millis().to_string(),
        _ => "null".into(),
    };
    let outcome = match (&seen.failed, seen.opened) {
        (Some(f), _) => f.clone(),
        (None, Some(_)) if seen.heard => "Connected".into(),
        (None, Some(_)) => "OpenButSilent".into(),
        (None, None) => "NoResult".into(),
    };
    let kinds: Vec<String> = links
        .local_candidates()
        .iter()
        .map(|c| c.kind().to_string())
        .collect();
    println!(
        "{{\"id\":{id},\"outcome\":\"{outcome}\",\"ms\":{ms},\"local\":\"{}\",\"remote\":\"{}\",\"relay_sent\":{},\"candidates\":\"{}\"}}",
        pair.map_or("-", |p| p.local_kind),
        pair.map_or("-", |p| p.remote_kind),
        links.relay_counts().sent,
        kinds.join(",")
    );
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------- the lab

/// Runs a command, failing with its stderr.
fn sh(cmd: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|e| format!("{}: {e}", cmd.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// How a player reaches the public segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nat {
    /// On the public segment itself.
    None,
    /// `MASQUERADE`: endpoint-independent mapping.
    Eim,
    /// `MASQUERADE --random-fully`: a new mapping per destination.
    Symmetric,
}

struct Case {
    name: &'static str,
    nats: [Nat; 2],
    turn: bool,
    must_connect: bool,
}

/// One case's namespaces and processes; removed on drop (also when unwinding from a panic).
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
}

impl Lab {
    fn ns(&mut self, name: &str) -> Result<String, String> {
        let ns = format!("{}-{name}", self.prefix);
        sh(&["ip", "netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        self.exec(&ns, &["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn exec(&self, ns: &str, cmd: &[&str]) -> Result<String, String> {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(cmd);
        sh(&full)
    }

    /// A veth pair `a`@`ns_a` — `b`@`ns_b`, created directly inside the two namespaces.
    fn veth(&self, ns_a: &str, a: &str, ns_b: &str, b: &str) -> Result<(), String> {
        sh(&[
            "ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b,
        ])?;
        self.exec(ns_a, &["ip", "link", "set", a, "up"])?;
        self.exec(ns_b, &["ip", "link", "set", b, "up"])?;
        Ok(())
    }

    fn spawn(&mut self, ns: &str, args: &[&str], env: &[(&str, &str)]) -> Result<usize, String> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(match std::env::var_os("NAT_LAB_LOG") {
                Some(_) => {
                    std::fs::File::create(format!("/tmp/nat_lab_{ns}_{}.log", self.children.len()))
                        .map_or(Stdio::null(), Stdio::from)
                }
                None => Stdio::null(),
            })
            .spawn()
            .map_err(|e| format!("{}: {e}", args.join(" ")))?;
        self.children.push(child);
        Ok(self.children.len() - 1)
    }
}

#[derive(Debug, Default)]
struct Row {
    case: &'static str,
    connected: bool,
    outcome: [String; 2],
    pair: [(String, String); 2],
    ms: [Option<u64>; 2],
    relay_bytes: u64,
    reports: String,
}

fn parse_player(line: &str) -> (String, Option<u64>, String, String) {
    let field = |k: &str| -> String {
        let key = format!("\"{k}\":");
        line.split(&key)
            .nth(1)
            .map(|r| {
                r.trim_start_matches('"')
                    .split(['"', ',', '}'])
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .unwrap_or_default()
    };
    (
        field("outcome"),
        field("ms").parse().ok(),
        field("local"),
        field("remote"),
    )
}

fn run_case(case: &Case, exe: &str, index: usize) -> Result<Row, String> {
    let mut lab = Lab {
        prefix: format!("ml{}{}", std::process::id(), index),
        namespaces: Vec::new(),
        children: Vec::new(),
    };
    let public = lab.ns("pub")?;
    lab.exec(&public, &["ip", "link", "add", "br0", "type", "bridge"])?;
    lab.exec(&public, &["ip", "link", "set", "br0", "up"])?;
    lab.exec(
        &public,
        &["ip", "addr", "add", "203.0.113.1/24", "dev", "br0"],
    )?;
    let lans = [("198.51.100", 11u8), ("192.0.2", 12u8)];
    let mut binds = Vec::new();
    for (i, nat) in case.nats.iter().enumerate() {
        let host = lab.ns(&format!("h{}", i + 1))?;
        let port = format!("p{}", i + 1);
        match nat {
            Nat::None => {
                lab.veth(&public, &port, &host, "eth0")?;
                lab.exec(&public, &["ip", "link", "set", &port, "master", "br0"])?;
                let ip = format!("203.0.113.{}", 21 + i);
                lab.exec(
                    &host,
                    &["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
                )?;
                binds.push(format!("{ip}:0"));
            }
            Nat::Eim | Nat::Symmetric => {
                let router = lab.ns(&format!("r{}", i + 1))?;
                let (lan, wan_last) = lans[i];
                lab.veth(&public, &port, &router, "wan")?;
                lab.exec(&public, &["ip", "link", "set", &port, "master", "br0"])?;
                let wan = format!("203.0.113.{wan_last}/24");
                lab.exec(&router, &["ip", "addr", "add", &wan, "dev", "wan"])?;
                lab.veth(&router, "lan", &host, "eth0")?;
                lab.exec(
                    &router,
                    &["ip", "addr", "add", &format!("{lan}.1/24"), "dev", "lan"],
                )?;
                lab.exec(&router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
                let mut rule = vec![
                    "iptables",
                    "-t",
                    "nat",
                    "-A",
                    "POSTROUTING",
                    "-o",
                    "wan",
                    "-j",
                    "MASQUERADE",
                ];
                if *nat == Nat::Symmetric {
                    rule.push("--random-fully");
                }
                lab.exec(&router, &rule)?;
                // As a home router does: unsolicited datagrams to the WAN are dropped. Dropped
                // before conntrack confirms them, they leave no entry behind that would make
                // the later outgoing mapping take another port (hole punching would fail).
                lab.exec(
                    &router,
                    &[
                        "iptables",
                        "-A",
                        "INPUT",
                        "-i",
                        "wan",
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "NEW",
                        "-j",
                        "DROP",
                    ],
                )?;
                let ip = format!("{lan}.2");
                lab.exec(
                    &host,
                    &["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
                )?;
                let gw = format!("{lan}.1");
                lab.exec(&host, &["ip", "route", "add", "default", "via", &gw])?;
                binds.push(format!("{ip}:0"));
            }
        }
    }
    // Count what enters and leaves coturn's relay ports.
    let range = format!("{}:{}", RELAY_PORTS.0, RELAY_PORTS.1);
    lab.exec(
        &public,
        &["iptables", "-A", "INPUT", "-p", "udp", "--dport", &range],
    )?;
    lab.exec(
        &public,
        &["iptables", "-A", "OUTPUT", "-p", "udp", "--sport", &range],
    )?;

    let secret = format!("lab-{}-{}", std::process::id(), index);
    let min = RELAY_PORTS.0.to_string();
    let max = RELAY_PORTS.1.to_string();
    let auth = format!("--static-auth-secret={secret}");
    lab.spawn(
        &public,
        &[
            "turnserver",
            "-n",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "-L",
            "203.0.113.1",
            "--listening-port",
            "3478",
            "--min-port",
            &min,
            "--max-port",
            &max,
            "--use-auth-secret",
            &auth,
            "--realm=mingle.test",
            // The players' LANs are private networks: no relaying into them, as the README's
            // deployment snippet does for 10/8, 172.16/12 and 192.168/16.
            "--denied-peer-ip=198.51.100.0-198.51.100.255",
            "--denied-peer-ip=192.0.2.0-192.0.2.255",
            "--log-file=stdout",
        ],
        &[],
    )?;
    let turn = if case.turn { "yes" } else { "no" };
    let server = lab.spawn(
        &public,
        &[exe, "--server", "--turn", turn],
        &[(SECRET_ENV, &secret)],
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let mut players = Vec::new();
    for (i, (host, bind)) in ["h1", "h2"].iter().zip(&binds).enumerate() {
        let ns = format!("{}-{host}", lab.prefix);
        let id = (i + 1).to_string();
        players.push(lab.spawn(&ns, &[exe, "--player", "--id", &id, "--bind", bind], &[])?);
    }
    let mut row = Row {
        case: case.name,
        ..Row::default()
    };
    for (i, &p) in players.iter().enumerate() {
        let child = &mut lab.children[p];
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let _ = child.wait();
        if std::env::var_os("NAT_LAB_VERBOSE").is_some() {
            eprintln!("({}) h{}: {}", case.name, i + 1, line.trim());
        }
        let (outcome, ms, local, remote) = parse_player(&line);
        row.outcome[i] = outcome;
        row.ms[i] = ms;
        row.pair[i] = (local, remote);
    }
    // Each side's local type as its peer saw it (the peer knows which candidate it sent to).
    row.pair = [
        (row.pair[1].1.clone(), row.pair[0].1.clone()),
        (row.pair[0].1.clone(), row.pair[1].1.clone()),
    ];
    row.connected = row.outcome.iter().all(|o| o == "Connected");
    std::thread::sleep(Duration::from_millis(300));
    let stats_child = &mut lab.children[server];
    let _ = stats_child.kill();
    let _ = stats_child.wait();
    if let Some(out) = stats_child.stdout.take() {
        let last = BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.starts_with("stats "))
            .last()
            .unwrap_or_default();
        let n: Vec<&str> = last.split_whitespace().skip(1).collect();
        if n.len() == 4 {
            row.reports = format!(
                "connected {} failed {} timed_out {} turn_credentials {}",
                n[0], n[1], n[2], n[3]
            );
        }
    }
    for chain in ["INPUT", "OUTPUT"] {
        let listing = lab.exec(&public, &["iptables", "-nvxL", chain])?;
        for l in listing.lines().filter(|l| l.contains("udp")) {
            row.relay_bytes += l
                .split_whitespace()
                .nth(1)
                .and_then(|b| b.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(row)
}

fn preflight() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        return Err("the NAT lab needs root (network namespaces and iptables)".into());
    }
    for tool in [
        ["ip", "-V"],
        ["iptables", "--version"],
        ["turnserver", "--version"],
    ] {
        if sh(&tool).is_err() {
            return Err(format!(
                "the NAT lab needs `{}` (apt-get install iproute2 iptables coturn)",
                tool[0]
            ));
        }
    }
    Ok(())
}

/// Runs every case (or `--case X`), prints the table, writes `--json FILE`; fails if a case
/// did not turn out as expected.
pub fn run(args: &[String]) -> ExitCode {
    if let Err(e) = preflight() {
        eprintln!("nat_lab: cannot run: {e}");
        return ExitCode::FAILURE;
    }
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let only = arg(args, "--case");
    let cases = [
        Case {
            name: "a",
            nats: [Nat::None, Nat::None],
            turn: true,
            must_connect: true,
        },
        Case {
            name: "b",
            nats: [Nat::Eim, Nat::Eim],
            turn: true,
            must_connect: true,
        },
        Case {
            name: "c",
            nats: [Nat::Symmetric, Nat::Eim],
            turn: true,
            must_connect: true,
        },
        Case {
            name: "d",
            nats: [Nat::Symmetric, Nat::Symmetric],
            turn: true,
            must_connect: true,
        },
        Case {
            name: "e",
            nats: [Nat::Symmetric, Nat::Symmetric],
            turn: false,
            must_connect: false,
        },
    ];
    let mut rows = Vec::new();
    let mut ok = true;
    println!(
        "case | NATs (h1, h2)        | TURN | connected | h1 local/remote | h2 local/remote | ms h1 / h2 | relay bytes | outcomes"
    );
    for (i, case) in cases.iter().enumerate() {
        if only.is_some_and(|o| o != case.name) {
            continue;
        }
        let row = match run_case(case, &exe, i) {
            Ok(row) => row,
            Err(e) => {
                eprintln!("nat_lab: case {} could not be set up: {e}", case.name);
                ok = false;
                continue;
            }
        };
        let ms = |m: Option<u64>| m.map_or("-".to_owned(), |m| m.to_string());
        println!(
            "({}) | {:<20} | {:<4} | {:<9} | {:>6} / {:<6} | {:>6} / {:<6} | {:>5} / {:<5} | {:>11} | {} / {} ({})",
            row.case,
            format!("{:?}, {:?}", case.nats[0], case.nats[1]),
            if case.turn { "yes" } else { "no" },
            row.connected,
            row.pair[0].0,
            row.pair[0].1,
            row.pair[1].0,
            row.pair[1].1,
            ms(row.ms[0]),
            ms(row.ms[1]),
            row.relay_bytes,
            row.outcome[0],
            row.outcome[1],
            row.reports
        );
        let expected = if case.must_connect {
            row.connected
                && (case.name != "d" || row.pair.iter().any(|p| p.0 == "relay" || p.1 == "relay"))
        } else {
            row.outcome.iter().all(|o| o == "TimedOut" || o == "Failed")
        };
        if !expected {
            ok = false;
            eprintln!("nat_lab: case {} did not turn out as expected", case.name);
        }
        rows.push(row);
    }
    if let Some(path) = arg(args, "--json") {
        let items: Vec<String> = rows
            .iter()
            .map(|r| {
                let ms = |m: Option<u64>| m.map_or("null".to_owned(), |m| m.to_string());
                format!(
                    "{{\"case\":\"{}\",\"connected\":{},\"h1\":{{\"local\":\"{}\",\"remote\":\"{}\",\"ms\":{},\"outcome\":\"{}\"}},\"h2\":{{\"local\":\"{}\",\"remote\":\"{}\",\"ms\":{},\"outcome\":\"{}\"}},\"relay_bytes\":{},\"server_reports\":\"{}\"}}",
                    r.case, r.connected, r.pair[0].0, r.pair[0].1, ms(r.ms[0]), r.outcome[0],
                    r.pair[1].0, r.pair[1].1, ms(r.ms[1]), r.outcome[1], r.relay_bytes, r.reports
                )
            })
            .collect();
        if let Err(e) = std::fs::write(path, format!("[\n{}\n]\n", items.join(",\n"))) {
            eprintln!("nat_lab: cannot write {path}: {e}");
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
