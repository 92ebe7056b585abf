//! The operator commands: run, check, status, dead-letters, state.

use crate::config::{Config, PipelineConfig};
use crate::progress::TerminalProgress;
use crate::registry::{self, ConnectorContext};
use crate::server::{Metrics, ServerState, WebhookSource};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tillflow_core::failpoint::Failpoint;
use tillflow_core::{PassReport, Pipeline, PipelineError, PipelineOptions, Progress, StateStore};
use tillflow_state_sqlite::SqliteStore;
use tokio::sync::{Notify, watch};

/// Why a command failed, with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn config(message: impl std::fmt::Display) -> Self {
        Self { code: 2, message: message.to_string() }
    }
    pub fn pipeline(message: impl std::fmt::Display) -> Self {
        Self { code: 1, message: message.to_string() }
    }
}

type Outcome = Result<(), Failure>;

fn load(path: &Path) -> Result<Config, Failure> {
    Config::load(path).map_err(Failure::config)
}

/// Opens the configured state store. A relative SQLite path is relative to the
/// config file, so a config and its state travel together.
async fn open_state(config: &Config) -> Result<Arc<dyn StateStore>, Failure> {
    let url = &config.state.url;
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        let path = Path::new(path);
        let path = if path.is_relative() {
            config.file.parent().map(|dir| dir.join(path)).unwrap_or_else(|| path.to_owned())
        } else {
            path.to_owned()
        };
        let store = SqliteStore::open(&path).await.map_err(Failure::config)?;
        return Ok(Arc::new(store));
    }
    Err(Failure::config(format!(
        "{}: state.url: Postgres state (several runners) is not available in this build yet; use sqlite://",
        config.file.display()
    )))
}

fn selected<'a>(config: &'a Config, only: Option<&str>) -> Result<Vec<&'a PipelineConfig>, Failure> {
    match only {
        Some(name) => config.pipeline(name).map(|p| vec![p]).ok_or_else(|| {
            let names: Vec<&str> = config.pipelines.iter().map(|p| p.name.as_str()).collect();
            Failure::config(format!(
                "no pipeline named `{name}` in {} (defined: {})",
                config.file.display(),
                names.join(", ")
            ))
        }),
        None if config.pipelines.is_empty() => {
            Err(Failure::config(format!("{}: no [[pipelines]] defined", config.file.display())))
        }
        None => Ok(config.pipelines.iter().collect()),
    }
}

fn failpoint() -> Result<Arc<Failpoint>, Failure> {
    match std::env::var("TILLFLOW_FAILPOINT") {
        Ok(spec) => {
            Failpoint::parse(&spec).map(Arc::new).map_err(|e| Failure::config(format!("TILLFLOW_FAILPOINT: {e}")))
        }
        Err(_) => Ok(Arc::new(Failpoint::disarmed())),
    }
}

struct Built {
    pipeline: Pipeline,
    poll_interval: Duration,
    source_name: String,
}

fn build_pipeline(
    config: &Config,
    spec: &PipelineConfig,
    state: &Arc<dyn StateStore>,
    options: PipelineOptions,
) -> Result<Built, Failure> {
    let source_table = &config.sources[&spec.source];
    let sink_table = &config.sinks[&spec.sink];
    let context = |name: &str| ConnectorContext { name: name.to_owned(), state: state.clone() };
    let source = registry::build_source(config, source_table, &context(&spec.source)).map_err(Failure::config)?;
    let sink = registry::build_sink(config, sink_table, &context(&spec.sink)).map_err(Failure::config)?;
    Ok(Built {
        pipeline: Pipeline::new(
            &spec.name,
            &spec.source,
            source.source,
            sink,
            state.clone(),
            spec.rules.clone(),
            options,
        ),
        poll_interval: source.poll_interval,
        source_name: spec.source.clone(),
    })
}

/// Flips the returned watch to `true` on SIGINT or SIGTERM. A second signal
/// exits at once (nothing unacknowledged is committed either way).
fn shutdown_signal() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                return;
            }
        };
        for round in 0..2 {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            if round == 0 {
                tracing::info!("shutting down: finishing the batch in flight (signal again to abandon it)");
                let _ = sender.send(true);
            } else {
                tracing::warn!("abandoning in-flight work; it was not committed and will be re-sent");
                std::process::exit(130);
            }
        }
    });
    receiver
}

fn record_metrics(metrics: &Metrics, pipeline: &str, report: &PassReport) {
    for (kind, count) in &report.delivered {
        metrics.add(
            "tillflow_events_delivered_total",
            format!("pipeline=\"{pipeline}\",event=\"{}\"", kind.as_str()),
            *count,
        );
    }
    for (reason, count) in &report.skipped {
        metrics.add("tillflow_events_skipped_total", format!("pipeline=\"{pipeline}\",reason=\"{reason}\""), *count);
    }
    metrics.add("tillflow_dead_letters_total", format!("pipeline=\"{pipeline}\""), report.dead_lettered);
    metrics.add("tillflow_records_read_total", format!("pipeline=\"{pipeline}\""), report.records_read);
}

fn summary_line(name: &str, report: &PassReport) -> String {
    let delivered: Vec<String> = report.delivered.iter().map(|(kind, n)| format!("{} {n}", kind.as_str())).collect();
    let skipped: Vec<String> = report.skipped.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
    format!(
        "{name}: {} records read; delivered: {}; skipped: {}; dead letters: {}; unchanged: {}; {:.1}s",
        report.records_read,
        if delivered.is_empty() { "none".into() } else { delivered.join(", ") },
        if skipped.is_empty() { "none".into() } else { skipped.join(", ") },
        report.dead_lettered,
        report.unchanged,
        report.elapsed.as_secs_f64()
    )
}

fn pass_failure(name: &str, error: &PipelineError) -> Failure {
    match error {
        PipelineError::Config(message) => Failure::config(format!("pipeline {name}: {message}")),
        other => Failure::pipeline(format!("pipeline {name}: {other}")),
    }
}

/// The result of one pipeline's pass.
pub type PassResult = (String, Result<PassReport, PipelineError>);

struct Prepared {
    config: Config,
    state: Arc<dyn StateStore>,
    built: Vec<Built>,
    shutdown: watch::Receiver<bool>,
    progress: Option<Arc<TerminalProgress>>,
}

async fn prepare(path: &Path, only: Option<&str>, show_progress: bool) -> Result<Prepared, Failure> {
    let config = load(path)?;
    let specs = selected(&config, only)?;
    let state = open_state(&config).await?;
    let shutdown = shutdown_signal();
    let failpoint = failpoint()?;
    let progress: Option<Arc<TerminalProgress>> =
        (show_progress && std::io::stderr().is_terminal()).then(|| Arc::new(TerminalProgress::default()));
    let mut built = Vec::new();
    for spec in &specs {
        let mut options =
            PipelineOptions { failpoint: failpoint.clone(), shutdown: shutdown.clone(), ..PipelineOptions::default() };
        if let Some(progress) = &progress {
            options.progress = progress.clone() as Arc<dyn Progress>;
        }
        built.push(build_pipeline(&config, spec, &state, options)?);
    }
    Ok(Prepared { config, state, built, shutdown, progress })
}

/// One pass of every selected pipeline, concurrently; results by name.
pub async fn pass_once(path: &Path, only: Option<&str>, show_progress: bool) -> Result<Vec<PassResult>, Failure> {
    let prepared = prepare(path, only, show_progress).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for Built { mut pipeline, .. } in prepared.built {
        tasks.spawn(async move {
            let result = pipeline.run_pass().await;
            (pipeline.name().to_owned(), result)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.map_err(|e| Failure::pipeline(format!("a pipeline task failed: {e}")))?);
    }
    if let Some(progress) = &prepared.progress {
        progress.finish();
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(results)
}

/// The exit outcome of a set of passes: the worst failure, if any.
pub fn outcome_of(results: &[PassResult]) -> Outcome {
    let mut worst: Option<Failure> = None;
    for (name, result) in results {
        if let Err(error) = result {
            let failure = pass_failure(name, error);
            if worst.as_ref().is_none_or(|w| failure.code > w.code) {
                worst = Some(failure);
            }
        }
    }
    worst.map_or(Ok(()), Err)
}

pub async fn run(path: &Path, once: bool, only: Option<&str>, show_progress: bool) -> Outcome {
    if once {
        let results = pass_once(path, only, show_progress).await?;
        for (name, result) in &results {
            match result {
                Ok(report) => println!("{}", summary_line(name, report)),
                Err(error) => println!("{name}: FAILED: {error}"),
            }
        }
        return outcome_of(&results);
    }
    let prepared = prepare(path, only, show_progress).await?;
    let metrics = Arc::new(Metrics::default());
    run_forever(&prepared.config, prepared.built, prepared.state, metrics, prepared.shutdown).await
}

async fn run_forever(
    config: &Config,
    built: Vec<Built>,
    state: Arc<dyn StateStore>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Outcome {
    // One verifier per webhook source, and a wake-up per pipeline reading it.
    let mut notifies: HashMap<String, Vec<Arc<Notify>>> = HashMap::new();
    let mut pipelines = Vec::new();
    for built in built {
        let notify = Arc::new(Notify::new());
        notifies.entry(built.source_name.clone()).or_default().push(notify.clone());
        pipelines.push((built, notify));
    }
    let mut sources = HashMap::new();
    for (name, notify) in notifies {
        let table = &config.sources[&name];
        let context = ConnectorContext { name: name.clone(), state: state.clone() };
        let verifier = registry::build_source(config, table, &context).map_err(Failure::config)?;
        sources.insert(name, WebhookSource { verifier: Mutex::new(verifier.source), notify });
    }
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| Failure::config(format!("server.listen {}: {e}", config.server.listen)))?;
    tracing::info!(listen = %config.server.listen, "serving /webhooks/<source>, /healthz and /metrics");
    let router = crate::server::router(ServerState { sources: Arc::new(sources), state, metrics: metrics.clone() });
    let mut server_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });

    let mut tasks = tokio::task::JoinSet::new();
    for (Built { mut pipeline, poll_interval, .. }, notify) in pipelines {
        let metrics = metrics.clone();
        let mut shutdown = shutdown.clone();
        tasks.spawn(async move {
            let name = pipeline.name().to_owned();
            let mut full_pass_due = true;
            loop {
                let result =
                    if full_pass_due { pipeline.run_pass().await } else { pipeline.process_inbox_only().await };
                match result {
                    Ok(report) => {
                        record_metrics(&metrics, &name, &report);
                        if report.records_read > 0 || full_pass_due {
                            tracing::info!("{}", summary_line(&name, &report));
                        }
                    }
                    Err(PipelineError::Interrupted) => return Ok(()),
                    Err(PipelineError::Config(message)) => {
                        tracing::error!(pipeline = %name, "stopped: {message}");
                        return Err(Failure::config(format!("pipeline {name}: {message}")));
                    }
                    Err(error) => tracing::warn!(pipeline = %name, %error, "pass failed; retrying at the next poll"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll_interval) => full_pass_due = true,
                    _ = notify.notified() => full_pass_due = false,
                    _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
                }
            }
        });
    }
    let mut outcome = Ok(());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(failure)) => outcome = Err(failure),
            Err(error) => outcome = Err(Failure::pipeline(format!("a pipeline task failed: {error}"))),
        }
    }
    // Every pipeline stopped (shut down or misconfigured): stop serving too,
    // rather than accept webhooks nobody will process.
    server.abort();
    outcome
}

pub async fn check(path: &Path) -> Outcome {
    let config = load(path)?;
    let state = open_state(&config).await?;
    // Build every connector first: a config error anywhere is reported before
    // anything is contacted.
    let mut sources = Vec::new();
    for (name, table) in &config.sources {
        let context = ConnectorContext { name: name.clone(), state: state.clone() };
        sources.push((name, table, registry::build_source(&config, table, &context).map_err(Failure::config)?));
    }
    let mut sinks = Vec::new();
    for (name, table) in &config.sinks {
        let context = ConnectorContext { name: name.clone(), state: state.clone() };
        sinks.push((name, table, registry::build_sink(&config, table, &context).map_err(Failure::config)?));
    }
    println!("{}: configuration is valid", config.file.display());
    let mut failed = 0;
    let mut report =
        |kind: &str, name: &str, type_name: &str, result: Result<(), tillflow_core::ConnectorError>| match result {
            Ok(()) => println!("  ok    {kind} {name} ({type_name})"),
            Err(error) => {
                failed += 1;
                println!("  FAIL  {kind} {name} ({type_name}): {}", config.scrub(&error.message));
            }
        };
    for (name, table, mut built) in sources {
        report("source", name, &table.type_name, built.source.check().await);
    }
    for (name, table, mut sink) in sinks {
        report("sink", name, &table.type_name, sink.check().await);
    }
    if failed > 0 {
        return Err(Failure::config(format!("{failed} connector(s) could not be reached with their credentials")));
    }
    Ok(())
}

pub async fn status(path: &Path, json: bool, only: Option<&str>) -> Outcome {
    let config = load(path)?;
    let specs = selected(&config, only)?;
    let state = open_state(&config).await?;
    let now = jiff::Timestamp::now();
    let mut documents = Vec::new();
    for spec in specs {
        let status = state.status(&spec.name).await.map_err(Failure::pipeline)?;
        let pending = state.inbox_pending(&spec.name, &spec.source, 10_000).await.map_err(Failure::pipeline)?.len();
        let streams: Vec<serde_json::Value> = status
            .streams
            .iter()
            .map(|s| {
                serde_json::json!({
                    "stream": s.stream,
                    "checkpoint": s.checkpoint.0,
                    "updated_at": s.updated_at.to_string(),
                    "lag_seconds": now.duration_since(s.updated_at).as_secs(),
                })
            })
            .collect();
        let mut delivered = serde_json::Map::new();
        let mut skipped = serde_json::Map::new();
        let mut dead_lettered_events = 0u64;
        for (kind, outcome, reason, count) in &status.counts {
            match outcome.as_str() {
                "delivered" => {
                    delivered.insert(kind.clone(), (*count).into());
                }
                "skipped" => {
                    let slot = skipped.entry(reason.clone()).or_insert(0u64.into());
                    *slot = (slot.as_u64().unwrap_or(0) + count).into();
                }
                _ => dead_lettered_events += count,
            }
        }
        documents.push(serde_json::json!({
            "pipeline": spec.name,
            "source": spec.source,
            "sink": spec.sink,
            "started_at": status.started_at.map(|t| t.to_string()),
            "last_delivery_at": status.last_delivery_at.map(|t| t.to_string()),
            "streams": streams,
            "delivered": delivered,
            "skipped": skipped,
            "dead_lettered_events": dead_lettered_events,
            "dead_letters": status.dead_letters,
            "webhooks_pending": pending,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::Value::Array(documents)).expect("json"));
        return Ok(());
    }
    for document in documents {
        let field = |key: &str| document[key].as_str().unwrap_or("never").to_owned();
        println!("pipeline {} ({} → {})", field("pipeline"), field("source"), field("sink"));
        println!("  first started   {}", field("started_at"));
        println!("  last delivery   {}", field("last_delivery_at"));
        for stream in document["streams"].as_array().into_iter().flatten() {
            println!(
                "  stream {:<10} checkpoint {}  (committed {}s ago)",
                stream["stream"].as_str().unwrap_or(""),
                stream["checkpoint"],
                stream["lag_seconds"]
            );
        }
        let counts = |key: &str| -> String {
            let map = document[key].as_object().cloned().unwrap_or_default();
            if map.is_empty() {
                "none".into()
            } else {
                map.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
            }
        };
        println!("  delivered       {}", counts("delivered"));
        println!("  skipped         {}", counts("skipped"));
        println!("  dead letters    {}", document["dead_letters"]);
        println!("  webhooks queued {}", document["webhooks_pending"]);
    }
    Ok(())
}

pub async fn dead_letters_list(path: &Path, only: Option<&str>, json: bool) -> Outcome {
    let config = load(path)?;
    let specs = selected(&config, only)?;
    let state = open_state(&config).await?;
    let mut rows = Vec::new();
    for spec in specs {
        for letter in state.dead_letters(Some(&spec.name), u32::MAX).await.map_err(Failure::pipeline)? {
            rows.push(serde_json::json!({
                "id": letter.id,
                "pipeline": letter.pipeline,
                "stage": letter.stage.as_str(),
                "key": letter.key.map(|k| k.to_string()),
                "reason": letter.reason,
                "created_at": letter.created_at.to_string(),
            }));
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
    } else if rows.is_empty() {
        println!("no dead letters");
    } else {
        for row in &rows {
            println!(
                "#{} {} [{}] {} — {}",
                row["id"],
                row["pipeline"].as_str().unwrap_or(""),
                row["stage"].as_str().unwrap_or(""),
                row["key"].as_str().unwrap_or("(record)"),
                row["reason"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

pub async fn dead_letters_replay(path: &Path, only: Option<&str>) -> Outcome {
    let config = load(path)?;
    let specs = selected(&config, only)?;
    let state = open_state(&config).await?;
    let mut worst = None;
    for spec in specs {
        let Built { mut pipeline, .. } = build_pipeline(&config, spec, &state, PipelineOptions::default())?;
        let before = state.dead_letters(Some(&spec.name), u32::MAX).await.map_err(Failure::pipeline)?.len();
        match pipeline.replay_dead_letters().await {
            Ok(report) => {
                let after = state.dead_letters(Some(&spec.name), u32::MAX).await.map_err(Failure::pipeline)?.len();
                println!(
                    "{}: {before} dead letters replayed, {} delivered, {after} remain",
                    spec.name,
                    report.delivered_total()
                );
            }
            Err(error) => {
                println!("{}: replay FAILED: {error}", spec.name);
                worst = Some(pass_failure(&spec.name, &error));
            }
        }
    }
    worst.map_or(Ok(()), Err)
}

pub async fn dead_letters_discard(path: &Path, pipeline: &str, ids: &[i64], all: bool) -> Outcome {
    let config = load(path)?;
    selected(&config, Some(pipeline))?;
    if ids.is_empty() && !all {
        return Err(Failure::config("say which dead letters to discard: --id N (repeatable) or --all"));
    }
    let state = open_state(&config).await?;
    let removed =
        state.discard_dead_letters(pipeline, if all { None } else { Some(ids) }).await.map_err(Failure::pipeline)?;
    println!("{pipeline}: {removed} dead letters discarded");
    Ok(())
}

pub async fn state_reset(path: &Path, pipeline: &str) -> Outcome {
    let config = load(path)?;
    selected(&config, Some(pipeline))?;
    let state = open_state(&config).await?;
    state.reset(pipeline).await.map_err(Failure::pipeline)?;
    println!("{pipeline}: checkpoints and ledger forgotten; the next run re-syncs everything (dead letters kept)");
    Ok(())
}

pub async fn report(path: &Path, pipeline: &str, zone_name: &str, days: u32) -> Outcome {
    let config = load(path)?;
    selected(&config, Some(pipeline))?;
    let zone = crate::report::zone(zone_name)?;
    let state = open_state(&config).await?;
    let today = jiff::Timestamp::now().to_zoned(zone.clone()).date();
    let first = today.checked_sub(jiff::Span::new().days(i64::from(days.max(1)) - 1)).unwrap_or(today);
    let since = crate::report::start_of(&zone, first);
    let read = state.orders_read_times(pipeline, since).await.map_err(Failure::pipeline)?;
    let delivered = state
        .event_times(pipeline, tillflow_core::EventKind::Placed, "delivered", since)
        .await
        .map_err(Failure::pipeline)?;
    let skipped = state
        .event_times(pipeline, tillflow_core::EventKind::Placed, "skipped", since)
        .await
        .map_err(Failure::pipeline)?;
    let rows = crate::report::day_rows(&zone, today, days, &read, &delivered, &skipped);
    crate::report::print(pipeline, zone_name, &rows);
    Ok(())
}
