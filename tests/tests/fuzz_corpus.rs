//! Every input saved under `fuzz/corpus/<target>/` (seeds from the platforms'
//! documented payloads, and whatever `cargo xtask fuzz` found that reached new
//! code or crashed) replayed through its target: none may panic, so a crash
//! once found and fixed stays fixed.

use std::path::Path;
use tillflow_e2e::fuzz::{TARGETS, run};

#[test]
fn every_saved_fuzz_input_is_handled_without_a_panic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut replayed = 0;
    for (target, _) in TARGETS {
        let directory = corpus.join(target);
        let entries = std::fs::read_dir(&directory).unwrap_or_else(|e| panic!("{}: {e}", directory.display()));
        let mut inputs = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(target, &data));
            assert!(outcome.is_ok(), "{target} panics on {}", path.display());
            inputs += 1;
        }
        assert!(inputs > 0, "{target} has no saved input in {}", directory.display());
        replayed += inputs;
    }
    eprintln!("{replayed} saved inputs replayed over {} targets", TARGETS.len());
}
