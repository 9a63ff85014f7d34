//! The `mingle-server` binary: bad configuration exits with a message naming the field,
//! and a good one serves real clients.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use clap::CommandFactory;
use common::raw::{RawClient, until};
use mingle::cli::{ServerArgs, shipped_defaults};
use mingle::protocol::Realm;

fn server() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mingle-server"))
}

fn fails_naming(args: &[&str], needle: &str) {
    let out = server().args(args).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "{args:?} exits 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "{args:?}: stderr {err:?} names {needle:?}"
    );
    assert!(!err.contains("panicked"), "{args:?} must not panic: {err}");
}

#[test]
fn invalid_values_exit_with_the_field_named() {
    fails_naming(&["--range", "-1"], "range");
    fails_naming(&["--range", "30"], "leave_range");
    fails_naming(&["--max-clients", "16385"], "max_clients");
}

#[test]
fn an_unparsable_file_exits_with_its_name() {
    let dir = std::env::temp_dir().join(format!("mingle-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(b"range = [1, 2\n")
        .unwrap();
    fails_naming(&["--config", path.to_str().unwrap()], "broken.toml");
    fails_naming(
        &["--config", "/nonexistent/mingle.toml"],
        "/nonexistent/mingle.toml",
    );
}

#[test]
fn help_lists_every_flag_and_each_settings_default() {
    let out = server().arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let command = ServerArgs::command();
    let flags: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .map(|long| format!("--{long}"))
        .collect();
    assert!(
        flags.len() >= 20,
        "the flags, read from the parser: {flags:?}"
    );
    for flag in &flags {
        assert!(help.contains(flag.as_str()), "--help lists {flag}");
    }
    for (key, shown) in shipped_defaults() {
        if key == "spaces" {
            continue; // per-space rules live in the file only
        }
        let flag = format!("--{} ", key.replace('_', "-"));
        let at = help
            .find(&flag)
            .unwrap_or_else(|| panic!("--help lists {flag}"));
        let entry = &help[at..];
        let line = &entry[..entry.find("\n  -").unwrap_or(entry.len())];
        assert!(
            line.contains(&format!("[default: {shown}]")),
            "--help shows {key}'s default {shown}: {line:?}"
        );
    }
}

#[test]
fn the_binary_starts_serves_a_client_and_logs_its_address() {
    let mut child = server()
        .args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let (lines, log) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    // Ready once the start line is logged (right after binding); bounded, never slept on.
    let start = log
        .recv_timeout(Duration::from_secs(30))
        .into_iter()
        .chain(std::iter::from_fn(|| {
            log.recv_timeout(Duration::from_secs(30)).ok()
        }))
        .find(|l| l.contains("listening on udp://127.0.0.1:"));
    let Some(start) = start else {
        let _ = child.kill();
        panic!("no start line within 30 s; exited: {:?}", child.try_wait());
    };
    assert!(
        start.contains("range 20"),
        "settings in the start line: {start:?}"
    );
    let addr: SocketAddr = start
        .split("udp://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("an address in {start:?}"));
    let mut client = RawClient::new(addr, 7, Realm(1));
    let served = until(Duration::from_secs(10), || {
        client.pump();
        client.is_connected()
    });
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(served, "a real client connects to the started server");
    assert!(running, "server keeps running");
}
