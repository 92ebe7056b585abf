//! `cargo xtask bench`: builds the release binaries, then runs the benchmark
//! program, which prints the table (or one JSON object with --json). Timings
//! live here, never in tests.

use crate::ci::cargo;
use std::process::Command;

pub fn bench(flags: &[String]) -> bool {
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
        "tillflow-bench",
    ]) {
        return false;
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let tillflow = format!("{target}/release/tillflow");
    Command::new(format!("{target}/release/tillflow-bench"))
        .arg(&tillflow)
        .args(flags)
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}
