//! A server the load generator starts itself, and what /proc says about a process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The figures of one `mingle stats:` log line.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StatsLine {
    pub at: Option<Instant>,
    pub introductions: u64,
    pub departures: u64,
    pub position_updates: u64,
    pub peers_changed_sent: u64,
    pub snapshots_sent: u64,
    pub distance_checks: u64,
    pub datagrams_in: u64,
    pub bytes_in: u64,
    pub datagrams_out: u64,
    pub bytes_out: u64,
}

impl StatsLine {
    fn parse(line: &str) -> Option<StatsLine> {
        let rest = &line[line.find("mingle stats:")? + "mingle stats:".len()..];
        let mut s = StatsLine {
            at: Some(Instant::now()),
            ..StatsLine::default()
        };
        for pair in rest.split_whitespace() {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            match k {
                "introductions" => s.introductions = v,
                "departures" => s.departures = v,
                "position_updates" => s.position_updates = v,
                "peers_changed_sent" => s.peers_changed_sent = v,
                "snapshots_sent" => s.snapshots_sent = v,
                "distance_checks" => s.distance_checks = v,
                "datagrams_in" => s.datagrams_in = v,
                "bytes_in" => s.bytes_in = v,
                "datagrams_out" => s.datagrams_out = v,
                "bytes_out" => s.bytes_out = v,
                _ => {}
            }
        }
        Some(s)
    }
}

/// A `mingle-server` child process on 127.0.0.1, with its log lines followed.
pub(crate) struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    latest: Arc<Mutex<StatsLine>>,
}

impl ServerProcess {
    /// Starts `bin` on 127.0.0.1:0 with a 1 s stats interval plus `args`, and waits for its
    /// start line to learn the port.
    pub fn spawn(bin: &Path, args: &[String]) -> std::io::Result<ServerProcess> {
        let mut child = Command::new(bin)
            .args(["--bind", "127.0.0.1:0", "--stats-interval-secs", "1"])
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let latest = Arc::new(Mutex::new(StatsLine::default()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
        let streams: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped")),
            Box::new(child.stderr.take().expect("piped")),
        ];
        for stream in streams {
            let latest = Arc::clone(&latest);
            let addr_tx = addr_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(at) = line.find("listening on udp://") {
                        let rest = &line[at + "listening on udp://".len()..];
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        if let Ok(addr) = addr.parse() {
                            let _ = addr_tx.send(addr);
                        }
                    } else if let Some(stats) = StatsLine::parse(&line) {
                        *latest.lock().expect("stats lock") = stats;
                    } else if line.contains("ERROR") || line.contains("panicked") {
                        eprintln!("server: {line}");
                    }
                }
            });
        }
        match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => Ok(ServerProcess {
                child,
                addr,
                latest,
            }),
            Err(_) => {
                let _ = child.kill();
                Err(std::io::Error::other(
                    "the server printed no start line within 30 s",
                ))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The newest stats line.
    pub fn stats(&self) -> StatsLine {
        *self.latest.lock().expect("stats lock")
    }

    /// Waits (bounded) for a stats line newer than `after`.
    pub fn next_stats(&self, after: Instant) -> StatsLine {
        let deadline = Instant::now() + Duration::from_millis(2500);
        loop {
            let s = self.stats();
            if s.at.is_some_and(|at| at > after) || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) a process has used, from /proc.
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux the project runs on.
    Some(ticks as f64 / 100.0)
}

/// Resident memory of a process, MiB, from /proc.
pub(crate) fn rss_mib(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// "N × CPU model" of this machine.
pub(crate) fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cores} × {model}")
}
