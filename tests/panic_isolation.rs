//! A panic caught by the transport's isolation costs no more than a disconnect: the process's
//! panic hook (the one that prints and, under `RUST_BACKTRACE=1`, captures a backtrace) does not
//! run for it, while every other panic still reaches that hook.
//!
//! One test in its own binary: panic hooks and the environment are process-wide.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mingle::server::netcode_guard::{CaughtPanic, isolate};

#[test]
fn isolated_panics_skip_the_backtrace_hook_even_with_rust_backtrace_set() {
    // SAFETY: the only test of this binary; no other thread reads the environment yet.
    unsafe { std::env::set_var("RUST_BACKTRACE", "1") };
    let hook_runs = Arc::new(AtomicUsize::new(0));
    let seen = hook_runs.clone();
    // Stands for the default hook: it is what would capture the backtrace.
    std::panic::set_hook(Box::new(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    }));

    for _ in 0..100 {
        assert_eq!(
            isolate(|| -> () { panic!("crafted packet") }),
            Err(CaughtPanic)
        );
    }
    assert_eq!(
        hook_runs.load(Ordering::SeqCst),
        0,
        "a caught panic must not reach the backtrace-capturing hook"
    );

    // A panic elsewhere is reported as before.
    let other = std::thread::spawn(|| panic!("a real bug")).join();
    assert!(other.is_err());
    assert_eq!(
        hook_runs.load(Ordering::SeqCst),
        1,
        "panics outside the isolation still reach the previous hook"
    );
}
