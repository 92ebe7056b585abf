//! Project automation: `cargo xtask ci` runs exactly what CI runs.

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

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let ok = match task.as_str() {
        "ci" => ci(),
        _ => {
            eprintln!("usage: cargo xtask ci\n  ci    fmt --check, clippy -D warnings, and the whole test suite");
            false
        }
    };
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
