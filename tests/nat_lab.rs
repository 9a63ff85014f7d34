//! The NAT lab (`examples/nat_lab.rs`) as a test: real network namespaces, iptables NATs, a
//! real coturn and mingle-server, two players per case, all through the real path.
//!
//! Asserts: (a) both public connect host to host; (b) both behind endpoint-independent NAT
//! connect server-reflexive to server-reflexive (hole punching, no relay); (c) symmetric +
//! endpoint-independent and (d) both symmetric connect through a TURN relay; (e) both
//! symmetric without TURN fails cleanly: both sides report `TimedOut`/`Failed` within the
//! attempt timeout and the server counts both reports. The milliseconds from introduction to
//! an open link are printed, not asserted (no timed assertions).
//!
//! Needs root, `ip`, `iptables` and `turnserver` (`.ci/run` installs `iptables` and
//! `coturn`). Not root: it says so and passes without running; root without the tools: it
//! fails. `harness = false`: this binary is also the lab's server and player processes.

#[path = "../examples/nat_lab.rs"]
#[allow(dead_code)]
mod lab;

use std::process::ExitCode;

/// One case's line of the lab's JSON, with the fields the assertions need.
struct Row {
    line: String,
}

impl Row {
    fn field(&self, side: Option<&str>, key: &str) -> String {
        let scope = match side {
            Some(s) => {
                let start = self
                    .line
                    .find(&format!("\"{s}\":{{"))
                    .unwrap_or_else(|| panic!("no {s} in {}", self.line));
                let end = self.line[start..]
                    .find('}')
                    .map_or(self.line.len(), |e| start + e);
                &self.line[start..end]
            }
            None => self.line.as_str(),
        };
        let pat = format!("\"{key}\":");
        let at = scope
            .find(&pat)
            .unwrap_or_else(|| panic!("no {key} in {scope}"))
            + pat.len();
        let rest = &scope[at..];
        let value = rest
            .split([',', '}'])
            .next()
            .unwrap_or_default()
            .trim_matches('"');
        value.to_owned()
    }

    /// `(local, remote)` candidate types of side `h1` or `h2`.
    fn pair(&self, side: &str) -> (String, String) {
        (
            self.field(Some(side), "local"),
            self.field(Some(side), "remote"),
        )
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if matches!(
        args.get(1).map(String::as_str),
        Some("--server" | "--player")
    ) {
        return lab::main();
    }
    if !is_root() {
        println!(
            "nat_lab: SKIPPED, not root (the NAT lab needs network namespaces and iptables; \
             run as root, as .ci/run does)"
        );
        return ExitCode::SUCCESS;
    }
    let json = std::env::temp_dir().join(format!("mingle_nat_lab_{}.json", std::process::id()));
    let code = lab::run(&["--json".to_owned(), json.display().to_string()]);
    let text = std::fs::read_to_string(&json).unwrap_or_default();
    let _ = std::fs::remove_file(&json);
    let rows: Vec<Row> = text
        .lines()
        .filter(|l| l.contains("\"case\""))
        .map(|l| Row { line: l.to_owned() })
        .collect();
    let row = |case: &str| {
        rows.iter()
            .find(|r| r.field(None, "case") == case)
            .unwrap_or_else(|| panic!("case ({case}) missing from the lab's output: {text}"))
    };
    let connected = |r: &Row| {
        r.field(None, "connected") == "true"
            && r.field(Some("h1"), "outcome") == "Connected"
            && r.field(Some("h2"), "outcome") == "Connected"
    };

    let a = row("a");
    assert!(connected(a), "(a) both public must connect: {}", a.line);
    for side in ["h1", "h2"] {
        assert_eq!(
            a.pair(side),
            ("host".into(), "host".into()),
            "(a) {side}: {}",
            a.line
        );
    }

    let b = row("b");
    assert!(connected(b), "(b) EIM + EIM must connect: {}", b.line);
    for side in ["h1", "h2"] {
        assert_eq!(
            b.pair(side),
            ("srflx".into(), "srflx".into()),
            "(b) {side}: {}",
            b.line
        );
    }

    for case in ["c", "d"] {
        let r = row(case);
        assert!(
            connected(r),
            "({case}) must connect through TURN: {}",
            r.line
        );
        let relayed = ["h1", "h2"].iter().any(|s| {
            let (l, rem) = r.pair(s);
            l == "relay" || rem == "relay"
        });
        assert!(relayed, "({case}) must go through the relay: {}", r.line);
        assert_ne!(
            r.field(None, "relay_bytes"),
            "0",
            "({case}) coturn relayed nothing"
        );
    }

    let e = row("e");
    assert_eq!(
        e.field(None, "connected"),
        "false",
        "(e) cannot connect: {}",
        e.line
    );
    for side in ["h1", "h2"] {
        let outcome = e.field(Some(side), "outcome");
        assert!(
            outcome == "TimedOut" || outcome == "Failed",
            "(e) {side} must end as TimedOut or Failed, not {outcome}: {}",
            e.line
        );
    }
    let reports = e.field(None, "server_reports");
    let counted: u32 = ["failed", "timed_out"]
        .iter()
        .filter_map(|k| {
            let words: Vec<&str> = reports.split_whitespace().collect();
            let i = words.iter().position(|w| w == k)?;
            words.get(i + 1)?.parse::<u32>().ok()
        })
        .sum();
    assert_eq!(
        counted, 2,
        "(e) the server must count both failures: {reports}"
    );

    for r in &rows {
        println!(
            "nat_lab ({}): connected {}, ms intro -> open h1 {} / h2 {}, relay bytes {}",
            r.field(None, "case"),
            r.field(None, "connected"),
            r.field(Some("h1"), "ms"),
            r.field(Some("h2"), "ms"),
            r.field(None, "relay_bytes")
        );
    }
    assert_eq!(code, ExitCode::SUCCESS, "the lab itself reported a failure");
    println!("nat_lab: ok");
    ExitCode::SUCCESS
}
