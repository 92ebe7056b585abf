//! Project automation: `cargo xtask ci` runs exactly what CI runs;
//! `cargo xtask bench` measures the performance figures.

use std::process::{Command, ExitCode};

fn cargo(arguments: &[&str]) -> bool {
    eprintln!("xtask: cargo {}", arguments.join(" "));
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(arguments)
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

/// The same steps as `.ci/run`: formatting, lints as errors, the test suite.
fn ci() -> bool {
    cargo(&["fmt", "--all", "--check"])
        && cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])
        && cargo(&["test", "--workspace"])
}

/// Builds release binaries, then runs the benchmark program, which prints the
/// table (or one JSON object with --json). Timings live here, never in tests.
fn bench(flags: &[String]) -> bool {
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

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let task = arguments.first().cloned().unwrap_or_default();
    let ok = match task.as_str() {
        "ci" => ci(),
        "bench" => bench(&arguments[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask ci | bench [--quick] [--json]\n  ci     fmt --check, clippy -D warnings, and the whole test suite\n  bench  the performance figures against the sandboxes"
            );
            false
        }
    };
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
