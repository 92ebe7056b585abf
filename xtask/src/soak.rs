//! `cargo xtask soak [--cycles N] [--seed S] [--fraction F]`: builds the
//! release binaries, then SIGKILLs a continuous run N times (default 100)
//! through faults while sales ring, and compares every sink with a calm run.

pub fn soak(flags: &[String]) -> bool {
    crate::bench::run_against_release_tillflow("tillflow-soak", flags)
}
