//! mingle-loadgen: simulated clients against a mingle server on 127.0.0.1.

use std::process::ExitCode;

use clap::Parser;
use mingle::loadgen::{LoadgenArgs, run};

fn main() -> ExitCode {
    let args = LoadgenArgs::parse();
    let report = match run(&args) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("mingle-loadgen: {err}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).expect("a report always serialises");
        if let Err(err) = std::fs::write(path, json) {
            eprintln!("mingle-loadgen: cannot write {}: {err}", path.display());
            return ExitCode::from(1);
        }
    }
    if report.mismatches > 0 {
        eprintln!("mingle-loadgen: {} mismatches", report.mismatches);
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}
