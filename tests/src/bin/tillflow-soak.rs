//! `cargo xtask soak [--cycles N] [--seed S] [--fraction F]`: the kill soak
//! at length against the release binary; prints what it did and found, and
//! fails when anything is missing or recorded twice.

use std::path::PathBuf;
use tillflow_runner::demo::DemoSize;

fn flag<T: std::str::FromStr>(arguments: &[String], name: &str, default: T) -> T {
    match arguments.iter().position(|a| a == name).and_then(|i| arguments.get(i + 1)) {
        Some(value) => value.parse().unwrap_or_else(|_| panic!("{name}: `{value}` is not a number")),
        None => default,
    }
}

fn main() -> std::process::ExitCode {
    let arguments: Vec<String> = std::env::args().collect();
    let tillflow = PathBuf::from(arguments.get(1).expect("usage: tillflow-soak <tillflow binary> [--cycles N]"));
    let cycles = flag(&arguments, "--cycles", 100u32);
    let seed = flag(&arguments, "--seed", 1u64);
    let fraction = flag(&arguments, "--fraction", 0.1f64);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let started = std::time::Instant::now();
    let report = runtime.block_on(tillflow_e2e::soak::soak(&tillflow, cycles, DemoSize { fraction }, seed));
    println!("{report}");
    println!("took               {:.0}s (seed {seed}, demo fraction {fraction})", started.elapsed().as_secs_f64());
    if report.missing == 0 && report.recorded_twice == 0 && report.differences.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
