//! `tillflow run --once --dry-run [--show N]`: reads the sources and derives
//! the events exactly as a pass would — the ledger's dedupe, person totals
//! and the sinks' own encoding included — on a throwaway copy of the state,
//! sends nothing and commits nothing, then prints per pipeline what would be
//! sent by event name, skipped by reason and dead-lettered, and with
//! `--show N` the first N request bodies as the sinks would send them,
//! secrets taken out. Only a rotated refresh token reaches the real state
//! (see `store`).

mod sink;
mod store;

use super::{PassResult, load, open_accounts, outcome_of, selected};
use crate::config::Config;
use crate::exit::{CommandResult, Failure};
use crate::registry;
use crate::state_store;
use sink::{PreviewSink, Shown};
use std::path::Path;
use std::sync::{Arc, Mutex};
use store::DryRunStore;
use tillflow_core::{PassReport, Pipeline, PipelineOptions, StateStore};
use tillflow_state_sqlite::SqliteStore;

/// How much of one request body is printed.
const BODY_SHOWN: usize = 20_000;

pub async fn dry_run(path: &Path, only: Option<&str>, show: usize) -> CommandResult {
    let (config, validated) = load(path)?;
    let specs = selected(&config, only)?;
    let workspace =
        tempfile::tempdir().map_err(|e| Failure::pipeline(format!("dry run: a temporary directory: {e}")))?;
    let copy_path = workspace.path().join("state.db");
    let (real_path, real) = state_store::open_sqlite_to_copy(&config).await?;
    if let Some(real) = &real {
        real.snapshot_to(&copy_path).await.map_err(Failure::pipeline)?;
    }
    let copy: Arc<SqliteStore> = Arc::new(SqliteStore::open(&copy_path).await.map_err(Failure::pipeline)?);
    let store: Arc<dyn StateStore> = Arc::new(DryRunStore::new(copy.clone(), real, real_path));
    let accounts = open_accounts(&config, validated, &specs, &store)?;
    let shown = Arc::new(Mutex::new(Shown { limit: show, requests: Vec::new() }));
    let mut tasks = tokio::task::JoinSet::new();
    for spec in &specs {
        let writer = accounts.sinks[&spec.sink].writer();
        let mut pipeline = Pipeline::new(
            &spec.name,
            &spec.source,
            accounts.sources[&spec.source].reader(),
            Box::new(PreviewSink::new(&spec.name, writer, shown.clone())),
            store.clone(),
            spec.rules.clone(),
            PipelineOptions::default(),
        );
        tasks.spawn(async move { (pipeline.name().to_owned(), pipeline.run_pass().await) });
    }
    let mut results: Vec<PassResult> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.map_err(|e| Failure::pipeline(format!("a pipeline task failed: {e}")))?);
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    copy.close().await;
    println!("dry run of {}: nothing was sent, and the state was not changed", config.file.display());
    for (name, result) in &results {
        let spec = config.pipeline(name).expect("a selected pipeline");
        println!("\n{name} ({} → {})", spec.source, spec.sink);
        match result {
            Ok(report) => print_report(&config, &spec.sink, report),
            Err(error) => println!("  FAILED: {}", config.scrub(&error.to_string())),
        }
    }
    let shown = shown.lock().expect("shown requests");
    for (index, (pipeline, request)) in shown.requests.iter().enumerate() {
        println!(
            "\nrequest {} of {} — {pipeline}, route {}, {} event(s):",
            index + 1,
            shown.requests.len(),
            request.route,
            request.items
        );
        println!("{}", printable(&request.body, &config));
    }
    outcome_of(&results)
}

fn print_report(config: &Config, sink: &str, report: &PassReport) {
    let sink_type = config.sinks.get(sink).map_or("", |table| table.type_name.as_str());
    let name = |kind: tillflow_core::EventKind| registry::sink_event_name(sink_type, kind);
    let list = |items: Vec<String>| if items.is_empty() { "none".to_owned() } else { items.join(", ") };
    println!("  records read        {}", report.records_read);
    println!(
        "  would send          {}",
        list(report.delivered.iter().map(|(kind, n)| format!("{} {n}", name(*kind))).collect())
    );
    println!(
        "  would skip          {}",
        list(report.skipped.iter().map(|(reason, n)| format!("{reason} {n}")).collect())
    );
    println!("  would dead-letter   {}", report.dead_lettered);
    println!("  sent before, same   {}", report.unchanged);
}

/// A body as JSON, indented, credentials replaced, cut at [`BODY_SHOWN`] bytes.
fn printable(body: &[u8], config: &Config) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => serde_json::to_string_pretty(&json).expect("json"),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let mut text = config.without_credentials(&text);
    if text.len() > BODY_SHOWN {
        let mut cut = BODY_SHOWN;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let more = text.len() - cut;
        text.truncate(cut);
        text.push_str(&format!("\n… ({more} more bytes)"));
    }
    text
}
