//! `tillflow run`: one pass of every selected pipeline (`--once`), or the
//! continuous mode — polling each source every `poll_interval`, the webhook
//! server waking the pipelines of its source, a clean stop on a signal. On
//! Postgres state a run is one of several runners: it runs the pipelines it
//! holds the lease of (`leasing`).

use super::prune::{BackgroundPrune, prune_inbox};
use super::round_summary::RoundSummary;
use super::rounds::{Wake, Wakeups};
use super::{PassResult, failpoint, load, open_accounts, outcome_of, pipeline, selected, summary_line};
use crate::exit::{CommandResult, Failure};
use crate::leasing::Leasing;
use crate::progress::TerminalProgress;
use crate::server::{Metrics, ServerState, WebhookSource};
use crate::state_store;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tillflow_core::{PassReport, Pipeline, PipelineError, PipelineOptions, Progress};
use tokio::sync::{Notify, watch};

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

/// A pipeline ready to run, with its source's name and poll interval.
struct Ready {
    pipeline: Pipeline,
    source: String,
    poll_interval: Duration,
    /// Every configured pipeline reading the same source (selected or not):
    /// a webhook is deleted only once all of them have passed it.
    readers: Arc<Vec<String>>,
}

/// The configured pipelines of each source.
fn readers_by_source(config: &crate::config::Config) -> HashMap<String, Arc<Vec<String>>> {
    let mut readers: HashMap<String, Vec<String>> = HashMap::new();
    for pipeline in &config.pipelines {
        readers.entry(pipeline.source.clone()).or_default().push(pipeline.name.clone());
    }
    readers.into_iter().map(|(source, names)| (source, Arc::new(names))).collect()
}

/// Everything a run needs: the pipelines on their shared accounts, the
/// webhook sources, the shutdown watch.
struct Prepared {
    config: crate::config::Config,
    state: Arc<dyn tillflow_core::StateStore>,
    /// On Postgres: this runner's leases, which decide what it runs.
    leasing: Option<Arc<Leasing>>,
    ready: Vec<Ready>,
    webhooks: HashMap<String, Arc<dyn tillflow_kit::SourceAccount>>,
    shutdown: watch::Receiver<bool>,
    /// Progress bars on a terminal, finished at the end of a pass.
    progress: Option<Arc<TerminalProgress>>,
}

async fn prepare(path: &Path, only: Option<&str>, show_progress: bool, serving: bool) -> Result<Prepared, Failure> {
    let terminal = (show_progress && std::io::stderr().is_terminal()).then(|| Arc::new(TerminalProgress::default()));
    let observer = terminal.clone().map(|terminal| terminal as Arc<dyn Progress>);
    let mut prepared = prepare_observed(path, only, observer, serving).await?;
    prepared.progress = terminal;
    Ok(prepared)
}

/// A server other machines can reach guards its status page and `/metrics`
/// with the admin token: without one, nothing starts (and nothing is opened).
fn guarded_enough(config: &crate::config::Config) -> Result<(), Failure> {
    if config.server.listen.ip().is_loopback() || config.server.admin_token.is_some() {
        return Ok(());
    }
    Err(Failure::config(format!(
        "{}: server.listen {} is reachable from other machines: set [server] admin_token (16 characters or more) \
         to guard the status page and /metrics, or listen on 127.0.0.1",
        config.file.display(),
        config.server.listen
    )))
}

/// Like `prepare`, with `observer` told of every page and delivered event.
async fn prepare_observed(
    path: &Path,
    only: Option<&str>,
    observer: Option<Arc<dyn Progress>>,
    serving: bool,
) -> Result<Prepared, Failure> {
    let (config, validated) = load(path)?;
    if serving {
        guarded_enough(&config)?;
    }
    let specs = selected(&config, only)?;
    let failpoint = failpoint()?;
    let (state, postgres) = state_store::open_for_run(&config, &state_store::runner_id()).await?;
    let leasing = postgres.map(|store| {
        let names = specs.iter().map(|spec| spec.name.clone()).collect();
        Leasing::new(store, config.state.lease_ttl, names)
    });
    let accounts = open_accounts(&config, validated, &specs, &state)?;
    let shutdown = shutdown_signal();
    let readers = readers_by_source(&config);
    let mut ready = Vec::new();
    for spec in &specs {
        let mut options =
            PipelineOptions { failpoint: failpoint.clone(), shutdown: shutdown.clone(), ..PipelineOptions::default() };
        if let Some(observer) = &observer {
            options.progress = observer.clone();
        }
        let account = &accounts.sources[&spec.source];
        ready.push(Ready {
            pipeline: pipeline(spec, &accounts, &state, options),
            source: spec.source.clone(),
            poll_interval: account.poll_interval(),
            readers: readers[&spec.source].clone(),
        });
    }
    let webhooks = accounts.sources.into_iter().collect();
    Ok(Prepared { config, state, leasing, ready, webhooks, shutdown, progress: None })
}

/// One pass of every selected pipeline, concurrently; results by name.
pub async fn pass_once(path: &Path, only: Option<&str>, show_progress: bool) -> Result<Vec<PassResult>, Failure> {
    let prepared = prepare(path, only, show_progress, false).await?;
    if let Some(leasing) = &prepared.leasing {
        leasing.join(false).await.map_err(Failure::pipeline)?;
        leasing.round().await.map_err(Failure::pipeline)?;
    }
    let passes = pass_slots();
    let mut tasks = tokio::task::JoinSet::new();
    for Ready { mut pipeline, source, readers, .. } in prepared.ready {
        if let Some(leasing) = &prepared.leasing
            && !leasing.holds(pipeline.name())
        {
            println!("{}: held by another runner; not run here", pipeline.name());
            continue;
        }
        let state = prepared.state.clone();
        let passes = passes.clone();
        tasks.spawn(async move {
            let _slot = passes.acquire_owned().await.expect("the pass slots are never closed");
            let result = pipeline.run_pass().await;
            if result.is_ok() {
                prune_inbox(state.as_ref(), &source, &readers).await;
            }
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
    prepared.state.close().await;
    results.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(results)
}

pub async fn run(path: &Path, once: bool, only: Option<&str>, show_progress: bool) -> CommandResult {
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
    let prepared = prepare(path, only, show_progress, true).await?;
    run_forever(prepared, Arc::new(Metrics::default())).await
}

/// The continuous run, `observer` told of every page and delivered event
/// (the live demo prints them).
pub async fn run_observed(path: &Path, observer: Arc<dyn Progress>) -> CommandResult {
    let prepared = prepare_observed(path, None, Some(observer), true).await?;
    run_forever(prepared, Arc::new(Metrics::default())).await
}

async fn run_forever(prepared: Prepared, metrics: Arc<Metrics>) -> CommandResult {
    let Prepared { config, state, leasing, ready, webhooks, shutdown, .. } = prepared;
    if let Some(leasing) = &leasing {
        tracing::info!(runner = leasing.runner(), "sharing the pipelines with the other runners on this state");
        tokio::spawn(leasing.clone().keep(shutdown.clone()));
    }
    // A wake-up per pipeline, listed under the source whose webhooks it reads.
    let mut notifies: HashMap<String, Vec<Arc<Notify>>> = HashMap::new();
    let mut pipelines = Vec::new();
    for ready in ready {
        let notify = Arc::new(Notify::new());
        notifies.entry(ready.source.clone()).or_default().push(notify.clone());
        pipelines.push((ready, notify));
    }
    // The server verifies with the same account the pipelines read through.
    let sources: HashMap<String, WebhookSource> = webhooks
        .into_iter()
        .map(|(name, account)| {
            let notify = notifies.remove(&name).unwrap_or_default();
            (name, WebhookSource { account, notify })
        })
        .collect();
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| Failure::config(format!("server.listen {}: {e}", config.server.listen)))?;
    tracing::info!(listen = %config.server.listen, "serving /webhooks/<source>, /healthz and /metrics");
    let router = crate::server::router(
        ServerState {
            sources: Arc::new(sources),
            state: state.clone(),
            metrics: metrics.clone(),
            config: Some(Arc::new(config.clone())),
        },
        &config.server.limits,
    );
    let cap = crate::listener::connection_cap(crate::listener::open_file_limit(), config.server.limits.max_connections);
    let header_timeout = config.server.limits.read_timeout;
    let server = tokio::spawn(crate::listener::serve(listener, router, cap, header_timeout, shutdown.clone()));

    let passes = pass_slots();
    let mut tasks = tokio::task::JoinSet::new();
    for (Ready { mut pipeline, poll_interval, source, readers }, notify) in pipelines {
        let passes = passes.clone();
        let metrics = metrics.clone();
        let state = state.clone();
        let shutdown = shutdown.clone();
        let leasing = leasing.clone();
        tasks.spawn(async move {
            let name = pipeline.name().to_owned();
            let mut full_pass_due = true;
            let rounds = leasing.as_ref().map(|leasing| leasing.subscribe());
            let mut wakeups = Wakeups::new(notify, rounds, shutdown);
            let mut webhook_rounds = RoundSummary::default();
            let mut prune = BackgroundPrune::default();
            loop {
                // On Postgres: run only while this runner holds the lease,
                // and keep the pipeline busy for the pass.
                let busy = match &leasing {
                    Some(leasing) if !leasing.holds(&name) => {
                        // Taken (again) later, it starts with a full pass.
                        full_pass_due = true;
                        if wakeups.next_lease_round().await {
                            continue;
                        }
                        return Ok(());
                    }
                    Some(leasing) => Some(leasing.busy(&name).await),
                    None => None,
                };
                if leasing.as_ref().is_some_and(|leasing| !leasing.holds(&name)) {
                    continue;
                }
                let result = if full_pass_due {
                    let _slot = passes.clone().acquire_owned().await.expect("the pass slots are never closed");
                    let result = pipeline.run_pass().await;
                    wakeups.full_pass_ended(poll_interval);
                    result
                } else {
                    pipeline.process_inbox_only().await
                };
                drop(busy);
                match result {
                    Ok(report) => {
                        record_metrics(&metrics, &name, &report);
                        if report.webhooks_left {
                            wakeups.go_again();
                        }
                        if wakeups.round_ended(full_pass_due) {
                            prune.start(state.clone(), source.clone(), readers.clone());
                        }
                        if full_pass_due {
                            tell(webhook_rounds.told(&name));
                            tracing::info!("{}", summary_line(&name, &report));
                        } else if report.records_read > 0 {
                            tell(webhook_rounds.add(&name, &report));
                        }
                    }
                    Err(PipelineError::Interrupted) => {
                        tell(webhook_rounds.told(&name));
                        return Ok(());
                    }
                    Err(PipelineError::Config(message)) => {
                        tracing::error!(pipeline = %name, "stopped: {message}");
                        return Err(Failure::config(format!("pipeline {name}: {message}")));
                    }
                    Err(error) => tracing::warn!(pipeline = %name, %error, "pass failed; retrying at the next poll"),
                }
                full_pass_due = loop {
                    match wakeups.next(webhook_rounds.tell_at()).await {
                        Wake::FullPass => break true,
                        Wake::Webhooks => break false,
                        Wake::Prune => {
                            prune.start(state.clone(), source.clone(), readers.clone());
                        }
                        Wake::Tell => tell(webhook_rounds.told(&name)),
                        Wake::Shutdown => {
                            tell(webhook_rounds.told(&name));
                            return Ok(());
                        }
                    }
                };
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
    state.close().await;
    outcome
}

fn tell(line: Option<String>) {
    if let Some(line) = line {
        tracing::info!("{line}");
    }
}

/// How many full passes run at once. Each holds a page or two read ahead
/// and a sink batch being built, so an agency's hundreds of stores in one
/// process would otherwise hold hundreds of those at once for no more
/// throughput than the cores give; the rest wait their turn. Webhooks (an
/// inbox-only pass) never wait for a slot.
fn pass_slots() -> Arc<tokio::sync::Semaphore> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Arc::new(tokio::sync::Semaphore::new((4 * cores).max(4)))
}
