//! SIGTERM and SIGINT stop the server cleanly: every client sees a server disconnect (not a
//! timeout) and the process exits 0.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::raw::{RawClient, until};
use mingle::protocol::Realm;

fn stop_with(signal: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mingle-server"))
        .args(["--bind", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    // bevy's log goes to stderr.
    let stdout = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(at) = line.find("udp://") {
                let addr = line[at + 6..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("start line")
        .parse()
        .expect("an address");
    let mut clients: Vec<RawClient> = (1..=3)
        .map(|id| RawClient::new(addr, id, Realm(0)))
        .collect();
    assert!(until(Duration::from_secs(10), || {
        clients.iter_mut().for_each(RawClient::pump);
        clients.iter().all(RawClient::is_connected)
    }));

    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let all_told = until(Duration::from_secs(10), || {
        clients.iter_mut().for_each(RawClient::pump);
        clients.iter().all(RawClient::is_disconnected)
    });
    assert!(
        all_told,
        "{signal}: every client disconnected well before netcode's 15 s timeout"
    );
    for c in &clients {
        assert_eq!(
            c.disconnect_reason(),
            Some(renetcode::DisconnectReason::DisconnectedByServer),
            "{signal}: a server disconnect, not a timeout"
        );
    }
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{signal}: exit status {exit:?}");
}

#[test]
fn sigterm_disconnects_everyone_and_exits_zero() {
    stop_with("-TERM");
}

#[test]
fn sigint_disconnects_everyone_and_exits_zero() {
    stop_with("-INT");
}
