//! A small, fast load run over real UDP against the real server binary: every bot's peer set
//! must match the oracle, and only-changes must send far less than the original's way.

use clap::Parser;
use mingle::loadgen::{LoadgenArgs, LoadgenError, run};

fn args(extra: &[&str]) -> LoadgenArgs {
    let mut argv = vec![
        "mingle-loadgen",
        "seed",
        "--spawn-server",
        "--clients",
        "30",
        "--secs",
        "3",
        "--server-bin",
        env!("CARGO_BIN_EXE_mingle-server"),
    ];
    argv.extend_from_slice(extra);
    LoadgenArgs::try_parse_from(argv).expect("valid arguments")
}

#[test]
fn seed_scenario_has_no_mismatches_and_sends_only_changes() {
    let changes = run(&args(&[])).expect("run completes");
    assert_eq!(changes.clients_connected, 30, "every bot connected");
    assert_eq!(changes.mismatches, 0, "{:?}", changes.mismatch_examples);
    assert!(
        changes.position_updates_per_sec > 10.0,
        "bots reported positions"
    );
    assert!(
        changes.latency.samples > 0,
        "introductions happened and were timed"
    );
    assert!(changes.messages.contains_key("PeersChanged"));
    assert!(
        !changes.messages.contains_key("PeerSnapshot"),
        "no full lists in changes mode"
    );

    let every = run(&args(&["--notify", "every-update"])).expect("run completes");
    assert_eq!(every.mismatches, 0, "{:?}", every.mismatch_examples);
    assert!(
        every.messages_per_sec > 3.0 * changes.messages_per_sec,
        "the original's way sends far more: {:.1}/s vs {:.1}/s",
        every.messages_per_sec,
        changes.messages_per_sec
    );
}

#[test]
fn a_non_loopback_target_is_refused() {
    // TEST-NET-1 (RFC 5737): nothing answers there, should the guard ever let a run through.
    let args =
        LoadgenArgs::try_parse_from(["mingle-loadgen", "seed", "--server", "192.0.2.1:5000"])
            .expect("parses");
    match run(&args) {
        Err(LoadgenError::Target(why)) => assert!(
            why.contains("192.0.2.1:5000") && why.contains("not a loopback address"),
            "the refusal names the target and the reason: {why}"
        ),
        Err(other) => panic!("refused for the wrong reason: {other}"),
        Ok(report) => panic!(
            "a run against a non-loopback target went ahead ({} bots connected)",
            report.clients_connected
        ),
    }
}

/// The voice rules under load (#17): parties of 4 scattered, random blocks and shouters set
/// mid-run by the bots, every peer set held to the rules.
#[test]
fn party_scenario_keeps_every_voice_rule() {
    let argv = [
        "mingle-loadgen",
        "party",
        "--spawn-server",
        "--clients",
        "60",
        "--secs",
        "4",
        "--server-bin",
        env!("CARGO_BIN_EXE_mingle-server"),
    ];
    let report =
        run(&LoadgenArgs::try_parse_from(argv).expect("valid arguments")).expect("run completes");
    assert_eq!(report.clients_connected, 60, "every bot connected");
    assert_eq!(report.mismatches, 0, "{:?}", report.mismatch_examples);
    assert!(report.latency.samples > 0, "introductions were timed");
}
