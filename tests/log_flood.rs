//! A flood of garbage datagrams from a connected client's address cannot flood the log: the
//! `mingle-server` binary counts them by cause (Prometheus) and writes at most one summary line
//! per interval, never a line per datagram (renetcode's own per-datagram error line is off).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::raw::{RawClient, until};
use common::scrape;
use mingle::protocol::{PROTOCOL_ID, Realm};

fn free_port(udp: bool) -> u16 {
    match udp {
        true => UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        false => std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    }
}

/// Sum of every sample of `name` (all label values).
fn total(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Garbage of three kinds: a broken prefix, a payload packet with a wrong MAC (renetcode
/// logged an ERROR line for each), and a connection request whose token does not decrypt.
fn garbage(k: u32) -> Vec<u8> {
    match k % 3 {
        0 => [&[0x95u8][..], &[0u8; 17]].concat(),
        1 => {
            let mut d = vec![0x15u8];
            d.extend_from_slice(&k.to_le_bytes()[..1]);
            d.extend(std::iter::repeat_n(0xA5, 40));
            d
        }
        _ => {
            let mut d = vec![0u8];
            d.extend_from_slice(b"NETCODE 1.02\0");
            d.extend_from_slice(&PROTOCOL_ID.to_le_bytes());
            d.extend_from_slice(&u64::MAX.to_le_bytes());
            d.extend(std::iter::repeat_n(0x5A, 24 + 1024));
            d
        }
    }
}

#[test]
fn a_hundred_thousand_garbage_datagrams_write_a_bounded_number_of_log_lines() {
    let port = free_port(true);
    let metrics: SocketAddr = ([127, 0, 0, 1], free_port(false)).into();
    let server_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mingle-server"))
        .args(["--bind", &server_addr.to_string()])
        .args(["--metrics-addr", &metrics.to_string()])
        // Backtraces on, as many deployments run: must change nothing.
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    scrape(metrics); // up and serving

    let mut m = RawClient::new(server_addr, 42, Realm(1));
    assert!(
        until(Duration::from_secs(10), || {
            m.pump();
            m.is_connected()
        }),
        "the flooding client connects first (its address becomes known)"
    );
    const SENT: u32 = 100_000;
    for k in 0..SENT {
        m.send_datagram(&garbage(k));
        if k % 500 == 499 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    let body = scrape(metrics);
    assert!(child.try_wait().unwrap().is_none(), "the server survived");
    // SIGTERM: a clean exit flushes the log.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let out = child.wait_with_output().unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let lines = log.lines().count();

    let rejected = total(&body, "mingle_rejected_datagrams_total");
    assert!(
        rejected >= f64::from(SENT) / 4.0,
        "the metrics count the garbage by cause ({rejected} of {SENT}):\n{body}"
    );
    assert!(
        lines <= 30,
        "{SENT} garbage datagrams wrote {lines} log lines:\n{}",
        log.lines().take(40).collect::<Vec<_>>().join("\n")
    );
    assert!(!log.contains("panicked"), "no panic: {log}");
}
