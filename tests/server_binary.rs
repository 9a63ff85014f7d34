//! The `mingle-server` binary: bad configuration exits with a message naming the field,
//! and a good one serves real clients.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

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
fn help_lists_every_setting() {
    let out = server().arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--bind",
        "--range",
        "--leave-range",
        "--tick-hz",
        "--loop-hz",
        "--max-clients",
        "--idle-timeout-secs",
    ] {
        assert!(help.contains(flag), "--help lists {flag}");
    }
}

#[test]
fn the_binary_starts_and_logs_its_address() {
    let mut child = server()
        .args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    // The start line is logged right after binding; give it a moment, bounded.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "server keeps running");
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("listening on udp://127.0.0.1:"),
        "start line in {log:?}"
    );
    assert!(
        log.contains("range 20"),
        "settings in the start line: {log:?}"
    );
}
