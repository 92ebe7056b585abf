//! `cargo xtask bench`: builds the release binaries, then runs the benchmark
//! program, which prints the table (or one JSON object with --json). Timings
//! live here, never in tests.

use crate::ci::cargo;
use std::process::Command;

pub fn bench(flags: &[String]) -> bool {
    run_against_release_tillflow("tillflow-bench", flags)
}

/// Builds the release `tillflow` and the e2e program `program`, then runs
/// `program <tillflow> flags…` (the bench and the soak drive the real binary).
pub fn run_against_release_tillflow(program: &str, flags: &[String]) -> bool {
    if !cargo(&[
        "build",
        "--release",
        "-p",
        "tillflow-runner",
        "--bin",
        "tillflow",
        "-p",
        "tillflow-e2e",
        "--bin",
        program,
    ]) {
        return false;
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    Command::new(format!("{target}/release/{program}"))
        .arg(format!("{target}/release/tillflow"))
        .args(flags)
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}
