//! Prometheus metrics over real HTTP: the counters move by exactly what the clients did.
//! One test in this binary: the metrics recorder is process-wide.

mod common;

use std::net::{SocketAddr, TcpListener};

use bevy::math::Vec3;
use common::{Harness, scrape};
use mingle::protocol::{ConnectionOutcome, PeerId};
use mingle::server::{COUNTERS, HISTOGRAMS, install_prometheus};

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// The value of one sample line, e.g. `mingle_departures_total{cause="range"}`.
fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// Before any client: every counter series reads 0, every histogram exists, and README's
/// metrics table names exactly these (and the gauges).
fn every_series_is_exported_from_the_start(body: &str) {
    for counter in COUNTERS {
        let series = counter.series();
        let sample = body
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str())?.strip_prefix(' '));
        assert_eq!(
            sample,
            Some("0"),
            "{series} is exported at 0 from the start:\n{body}"
        );
    }
    for (name, _) in HISTOGRAMS {
        assert!(
            body.contains(&format!("{name}_count")) || body.contains(&format!("{name}{{")),
            "{name} is exported from the start:\n{body}"
        );
    }
    let readme = include_str!("../README.md");
    let table = &readme[readme.find("## Metrics").unwrap()..];
    let mut documented: Vec<&str> = table
        .lines()
        .take_while(|l| !l.starts_with("```"))
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| l.split('|').nth(1).unwrap().split('`').skip(1).step_by(2))
        .map(|name| name.split('{').next().unwrap())
        .collect();
    documented.sort_unstable();
    documented.dedup();
    let gauges = [
        "mingle_connected_clients",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ];
    let mut exported: Vec<&str> = COUNTERS
        .iter()
        .map(|c| c.name)
        .chain(HISTOGRAMS.iter().map(|(n, _)| *n))
        .chain(gauges)
        .collect();
    exported.sort_unstable();
    exported.dedup();
    assert_eq!(
        documented, exported,
        "README's metrics table lists what is exported"
    );
}

#[test]
fn counters_move_by_exactly_what_clients_did() {
    let addr = free_port();
    install_prometheus(addr).expect("the exporter starts");
    let mut h = Harness::new();
    h.server.update();
    every_series_is_exported_from_the_start(&scrape(addr));
    let a = h.connect(1, Vec3::ZERO);
    let b = h.connect(2, Vec3::new(5.0, 0.0, 0.0));
    h.connect(3, Vec3::new(200.0, 0.0, 0.0));
    h.steps(3);
    h.client_mut(a).request_refresh();
    h.client_mut(a).send_signal(PeerId(2), b"offer");
    h.client_mut(a).send_signal(PeerId(3), b"offer"); // a stranger
    h.client_mut(a).send_signal(PeerId(77), b"offer"); // nobody
    h.client_mut(a)
        .report(PeerId(2), ConnectionOutcome::Connected);
    h.client_mut(b).report(PeerId(1), ConnectionOutcome::Failed);
    h.steps(3);
    h.move_to(b, Vec3::new(30.0, 0.0, 0.0)); // beyond leave_range
    h.move_to(b, Vec3::new(1.0, 0.0, 0.0)); // back in
    h.disconnect(b);
    h.steps(25); // past the once-a-second gauge refresh in real time is not needed: counters
    let body = scrape(addr);

    assert_eq!(value(&body, "mingle_introductions_total"), 2.0, "{body}");
    assert_eq!(
        value(&body, "mingle_departures_total{cause=\"range\"}"),
        1.0
    );
    assert_eq!(
        value(&body, "mingle_departures_total{cause=\"disconnect\"}"),
        1.0
    );
    assert_eq!(value(&body, "mingle_refresh_requests_total"), 1.0);
    assert_eq!(value(&body, "mingle_signals_relayed_total"), 1.0);
    assert_eq!(
        value(
            &body,
            "mingle_signals_rejected_total{reason=\"not_introduced\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &body,
            "mingle_signals_rejected_total{reason=\"unknown_peer\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &body,
            "mingle_connection_reports_total{outcome=\"connected\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&body, "mingle_connection_reports_total{outcome=\"failed\"}"),
        1.0
    );
    assert_eq!(
        value(&body, "mingle_connection_setup_seconds_count"),
        1.0,
        "one connected report timed"
    );
    assert_eq!(
        value(&body, "mingle_pair_lifetime_seconds_count"),
        2.0,
        "two pairs ended"
    );
    assert!(value(&body, "mingle_proximity_tick_seconds_count") > 10.0);
    assert!(value(&body, "mingle_frame_seconds_count") > 10.0);
    assert!(value(&body, "mingle_datagrams_received_total") > 0.0);
    assert!(value(&body, "mingle_bytes_sent_total") > 0.0);
    assert!(value(&body, "mingle_position_updates_total") >= 5.0);
    assert_eq!(
        value(&body, "mingle_connected_clients{realm=\"1\"}"),
        2.0,
        "1 and 3 remain"
    );
    assert!(value(&body, "process_resident_memory_bytes") > 1.0e6);
    assert!(body.contains("process_cpu_seconds_total"));
}
