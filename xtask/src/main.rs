//! Project automation: `cargo xtask ci` runs exactly what CI runs; `tidy`
//! checks the rules the compiler does not; `bench` measures the performance
//! figures; `fuzz` runs the fuzz targets; `soak` kills a continuous run at random moments and compares the
//! sinks with a calm run; `new-connector` stamps a platform crate.

mod bench;
mod ci;
mod fuzz;
mod new_connector;
mod soak;
mod tidy;

use std::process::ExitCode;

const USAGE: &str =
    "usage: cargo xtask ci | tidy | bench [--quick] [--json] | soak [--cycles N] | fuzz [--seconds N] | new-connector --source NAME | --sink NAME
  ci             fmt --check, clippy -D warnings, tidy, and the whole test suite
  tidy           module docs, crate boundaries, no import cycles between modules
  bench          the performance figures against the sandboxes
  fuzz           every cargo-fuzz target for N seconds (default 60); keeps the corpus
  soak           N SIGKILLs (default 100) of a continuous run through faults; nothing lost or twice
  new-connector  a new platform crate with the whole anatomy, registered";

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let task = arguments.first().cloned().unwrap_or_default();
    let root = ci::workspace_root();
    let ok = match task.as_str() {
        "ci" => ci::ci(),
        "tidy" => tidy::run(&root),
        "bench" => bench::bench(&arguments[1..]),
        "soak" => soak::soak(&arguments[1..]),
        "fuzz" => fuzz::fuzz(&root, &arguments[1..]),
        "new-connector" => new_connector::run(&root, &arguments[1..]),
        _ => {
            eprintln!("{USAGE}");
            false
        }
    };
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
