//! `cargo xtask soak [--cycles N] [--seed S] [--fraction F]`: builds the
//! release binaries, then SIGKILLs a continuous run N times (default 100)
//! through faults while sales ring, and compares every sink with a calm run.

use crate::ci::cargo;
use std::process::Command;

pub fn soak(flags: &[String]) -> bool {
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
        "tillflow-soak",
    ]) {
        return false;
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    Command::new(format!("{target}/release/tillflow-soak"))
        .arg(format!("{target}/release/tillflow"))
        .args(flags)
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}
