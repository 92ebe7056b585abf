//! `tillflow dead-letters list|replay|discard`: what a sink rejected or a
//! source could not read, sent again after a fix (through the same page path
//! as a pass, and like a pass only as the state's one writer: under the
//! SQLite file's lock, or holding the pipelines' leases on Postgres), or
//! dropped.

use super::{load, open_accounts, pass_failure, pipeline, selected};
use crate::exit::{CommandResult, Failure};
use crate::state_store::{self, Access};
use std::path::Path;
use tillflow_core::PipelineOptions;

pub async fn dead_letters_list(path: &Path, only: Option<&str>, json: bool) -> CommandResult {
    let (config, _) = load(path)?;
    let specs = selected(&config, only)?;
    let state = state_store::open_existing(&config, Access::Shared).await?;
    let mut rows = Vec::new();
    for spec in specs {
        let Some(state) = &state else { break };
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

pub async fn dead_letters_replay(path: &Path, only: Option<&str>) -> CommandResult {
    let (config, validated) = load(path)?;
    let specs = selected(&config, only)?;
    let names: Vec<String> = specs.iter().map(|spec| spec.name.clone()).collect();
    let Some(state) = state_store::open_holding(&config, &names).await? else {
        println!("no dead letters");
        return Ok(());
    };
    let accounts = open_accounts(&config, validated, &specs, &state)?;
    let mut worst = None;
    for spec in specs {
        let mut pipeline = pipeline(spec, &accounts, &state, PipelineOptions::default());
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
    state.close().await;
    worst.map_or(Ok(()), Err)
}

pub async fn dead_letters_discard(path: &Path, pipeline: &str, ids: &[i64], all: bool) -> CommandResult {
    let (config, _) = load(path)?;
    selected(&config, Some(pipeline))?;
    if ids.is_empty() && !all {
        return Err(Failure::config("say which dead letters to discard: --id N (repeatable) or --all"));
    }
    let Some(state) = state_store::open_existing(&config, Access::Shared).await? else {
        println!("{pipeline}: 0 dead letters discarded");
        return Ok(());
    };
    let removed =
        state.discard_dead_letters(pipeline, if all { None } else { Some(ids) }).await.map_err(Failure::pipeline)?;
    println!("{pipeline}: {removed} dead letters discarded");
    Ok(())
}
