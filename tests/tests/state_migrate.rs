//! `tillflow state migrate`: a SQLite state with a history moved into an
//! empty Postgres database, after which a run on Postgres sends nothing (the
//! sinks see not one request more) and `status` reads the same counts; a
//! database that already holds state is refused untouched.

use std::path::Path;
use std::process::{Command, Output};
use tillflow_runner::demo::{DemoSize, DemoWorld};
use tillflow_testkit::postgres::fresh_database;

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");

fn tillflow(args: &[&str], config: Option<&Path>) -> Output {
    let mut command = Command::new(TILLFLOW);
    command.args(args).env("RUST_LOG", "warn");
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.output().unwrap()
}

fn ok(output: Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}\n{}", String::from_utf8_lossy(&output.stderr));
    text
}

/// `status --json` without what differs by nature between two stores: the
/// lease (none on SQLite) and commit times.
fn counts(config: &Path) -> Vec<serde_json::Value> {
    let status: serde_json::Value = serde_json::from_str(&ok(tillflow(&["status", "--json"], Some(config)))).unwrap();
    status
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_json::json!([d["pipeline"], d["delivered"], d["skipped"], d["dead_letters"], d["started_at"]]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_state_carries_on_and_sends_nothing_again() {
    let Some(postgres) = fresh_database("migrate").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let world = DemoWorld::start(DemoSize { fraction: 0.05 }).await.unwrap();
    let sqlite = dir.path().join("sqlite.toml");
    std::fs::write(&sqlite, world.config("sqlite://state.db")).unwrap();
    ok(tillflow(&["run", "--once"], Some(&sqlite)));
    assert!(world.received().total_events() > 100, "a history was delivered: {:?}", world.received());
    // Someone asked to be forgotten: their tombstone must move too, or the
    // runners would send them again.
    let forgot = ok(tillflow(&["forget", "--email", "customer5@example.com"], Some(&sqlite)));
    eprintln!("{forgot}");
    assert_eq!(
        forgot.matches("\n  forgotten ").count() + forgot.matches("\n  not known there ").count(),
        3,
        "{forgot}"
    );
    let before = world.received();
    let sqlite_counts = counts(&sqlite);

    let from = format!("sqlite://{}", dir.path().join("state.db").display());
    let moved = ok(tillflow(&["state", "migrate", "--from", &from, "--to", &postgres], None));
    assert!(moved.contains("ledger") && moved.contains("done"), "{moved}");
    assert!(
        moved.lines().any(|line| line.split_whitespace().collect::<Vec<_>>() == ["forgotten", "1", "rows"]),
        "{moved}"
    );
    assert!(!moved.contains("postgres@"), "the URL's user and password are not printed: {moved}");

    let pg = dir.path().join("pg.toml");
    std::fs::write(&pg, world.config(&postgres)).unwrap();
    assert_eq!(counts(&pg), sqlite_counts, "status reads the same history from Postgres");
    let run = ok(tillflow(&["run", "--once"], Some(&pg)));
    let passes: Vec<&str> = run.lines().filter(|line| line.contains("records read")).collect();
    assert_eq!(passes.len(), 12, "{run}");
    assert!(passes.iter().all(|line| line.contains("delivered: none")), "{run}");
    assert_eq!(world.received(), before, "the sinks saw nothing more (no repeat either)");

    // Into a database that holds state: refused, and nothing changes.
    let again = tillflow(&["state", "migrate", "--from", &from, "--to", &postgres], None);
    assert_eq!(again.status.code(), Some(2));
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(message.contains("already holds state"), "{message}");
    assert_eq!(counts(&pg), sqlite_counts);
}
