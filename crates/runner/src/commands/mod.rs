//! The operator commands, one module each, and what they share: loading and
//! validating the config, selecting pipelines, building them on the
//! accounts, and the one-pass runner the demo uses too.

mod check;
mod dead_letters;
mod dry_run;
mod forget;
mod prune;
mod report;
mod round_summary;
mod rounds;
mod run;
mod state;
mod status;

pub use check::check;
pub use dead_letters::{dead_letters_discard, dead_letters_list, dead_letters_replay};
pub use dry_run::dry_run;
pub use forget::forget;
pub use report::report;
pub use run::{pass_once, run, run_observed};
pub use state::{state_check, state_reset};
pub use status::status;

use crate::accounts::{self, Accounts, Validated};
use crate::config::{Config, PipelineConfig};
use crate::exit::Failure;
use std::path::Path;
use std::sync::Arc;
use tillflow_core::failpoint::Failpoint;
use tillflow_core::{PassReport, Pipeline, PipelineError, PipelineOptions, StateStore};

/// The result of one pipeline's pass.
pub type PassResult = (String, Result<PassReport, PipelineError>);

/// Reads the config and validates every connector in it; nothing is opened,
/// contacted or written before the whole file is known to be good.
fn load(path: &Path) -> Result<(Config, Validated), Failure> {
    let config = Config::load(path).map_err(Failure::config)?;
    let validated = accounts::validate(&config)?;
    Ok((config, validated))
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

/// Opens the accounts the selected pipelines name: one per connector, shared.
fn open_accounts(
    config: &Config,
    validated: Validated,
    specs: &[&PipelineConfig],
    state: &Arc<dyn StateStore>,
) -> Result<Accounts, Failure> {
    validated.open(config, state, |kind, name| {
        specs.iter().any(|spec| if kind == "sources" { spec.source == name } else { spec.sink == name })
    })
}

/// A pipeline of `spec` on the shared accounts: its own reader and writer.
fn pipeline(
    spec: &PipelineConfig,
    accounts: &Accounts,
    state: &Arc<dyn StateStore>,
    options: PipelineOptions,
) -> Pipeline {
    Pipeline::new(
        &spec.name,
        &spec.source,
        accounts.sources[&spec.source].reader(),
        accounts.sinks[&spec.sink].writer(),
        state.clone(),
        spec.rules.clone(),
        options,
    )
}

fn failpoint() -> Result<Arc<Failpoint>, Failure> {
    match std::env::var("TILLFLOW_FAILPOINT") {
        Ok(spec) => {
            Failpoint::parse(&spec).map(Arc::new).map_err(|e| Failure::config(format!("TILLFLOW_FAILPOINT: {e}")))
        }
        Err(_) => Ok(Arc::new(Failpoint::disarmed())),
    }
}

fn pass_failure(name: &str, error: &PipelineError) -> Failure {
    match error {
        PipelineError::Config(message) => Failure::config(format!("pipeline {name}: {message}")),
        other => Failure::pipeline(format!("pipeline {name}: {other}")),
    }
}

/// The exit outcome of a set of passes: the worst failure, if any.
pub fn outcome_of(results: &[PassResult]) -> Result<(), Failure> {
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
