//! `cargo xtask ci`: the same steps as `.ci/run` — formatting, lints as
//! errors, tidy, the test suite — and the cargo runner every task uses.

use std::path::PathBuf;
use std::process::Command;

/// Runs cargo with `arguments`, echoing the command; true when it succeeded.
pub fn cargo(arguments: &[&str]) -> bool {
    eprintln!("xtask: cargo {}", arguments.join(" "));
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(arguments)
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

/// The workspace this xtask belongs to (or the current directory's, when
/// run from a copy of the workspace).
pub fn workspace_root() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_default();
    let mut dir = here.as_path();
    loop {
        if dir.join("Cargo.toml").exists() && dir.join("xtask").is_dir() && dir.join("crates").is_dir() {
            return dir.to_owned();
        }
        match dir.parent() {
            Some(parent) => dir = parent,
            None => return here,
        }
    }
}

pub fn ci() -> bool {
    cargo(&["fmt", "--all", "--check"])
        && cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])
        && crate::tidy::run(&workspace_root())
        && cargo(&["test", "--workspace"])
}
