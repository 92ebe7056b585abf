//! `cargo xtask fuzz [--seconds N] [--target NAME]`: runs every cargo-fuzz
//! target in `fuzz/` for N seconds (default 60) on the stable toolchain
//! (`RUSTC_BOOTSTRAP=1`), installing cargo-fuzz first if it is missing.
//! It starts from the committed seeds in `fuzz/corpus/<target>/` and grows a
//! local working corpus in `fuzz/work/<target>/` (thousands of files, not
//! committed); a crash lands in `fuzz/artifacts/<target>/` — once fixed, copy
//! it into `fuzz/corpus/<target>/`, which `cargo test` replays, so it stays
//! fixed. Prints per target the executions, the working corpus and the crashes.

use crate::ci::cargo;
use std::path::Path;
use std::process::Command;

fn targets(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("fuzz/fuzz_targets"))
        .map(|entries| entries.filter_map(|entry| entry.ok()?.path().file_stem()?.to_str().map(String::from)).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn flag<'a>(flags: &'a [String], name: &str) -> Option<&'a str> {
    flags.iter().position(|f| f == name).and_then(|i| flags.get(i + 1)).map(String::as_str)
}

/// libFuzzer's last `#N ... DONE` / `Done N runs` line: how many inputs it ran.
fn executions(log: &str) -> Option<u64> {
    log.lines().rev().find_map(|line| {
        let runs = line.strip_prefix("Done ")?.split_whitespace().next()?;
        runs.parse().ok()
    })
}

pub fn fuzz(root: &Path, flags: &[String]) -> bool {
    let seconds: u64 = flag(flags, "--seconds").and_then(|s| s.parse().ok()).unwrap_or(60);
    let only = flag(flags, "--target");
    let installed = Command::new("cargo").args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if !installed && !cargo(&["install", "cargo-fuzz", "--locked"]) {
        eprintln!("xtask fuzz: cannot install cargo-fuzz from crates.io");
        return false;
    }
    let mut report = Vec::new();
    let mut all_clean = true;
    for target in targets(root).into_iter().filter(|t| only.is_none_or(|only| only == t)) {
        let seeds = root.join("fuzz/corpus").join(&target);
        let corpus = root.join("fuzz/work").join(&target);
        if let Err(error) = std::fs::create_dir_all(&corpus) {
            eprintln!("xtask fuzz: {}: {error}", corpus.display());
            return false;
        }
        let output = Command::new("cargo")
            .current_dir(root.join("fuzz"))
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", &target])
            .arg(&corpus)
            .arg(&seeds)
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                // An input that makes a parser allocate without bound is a crash.
                "-malloc_limit_mb=512",
                "-rss_limit_mb=2048",
                "-max_len=65536",
            ])
            .output();
        let Ok(output) = output else {
            eprintln!("xtask fuzz: cannot run cargo fuzz");
            return false;
        };
        let log = String::from_utf8_lossy(&output.stderr);
        let crashed = !output.status.success();
        all_clean &= !crashed;
        let inputs = std::fs::read_dir(&corpus).map(|entries| entries.count()).unwrap_or(0);
        let runs = executions(&log).map_or("?".into(), |n| n.to_string());
        report.push(format!("{target:<24} {runs:>12} {inputs:>8} {:>8}", if crashed { "CRASH" } else { "0" }));
        if crashed {
            eprintln!(
                "{target}: {}",
                log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
    println!("{:<24} {:>12} {:>8} {:>8}", "target", "executions", "corpus", "crashes");
    for line in report {
        println!("{line}");
    }
    all_clean
}
