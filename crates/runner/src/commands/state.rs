//! `tillflow state reset` forgets a pipeline's checkpoints, ledger and first
//! start, so the next run re-syncs everything (dead letters are kept);
//! `tillflow state check` runs SQLite's integrity check over the state file.

use super::{load, selected};
use crate::exit::{CommandResult, Failure};
use crate::state_store::{self, Access};
use std::path::Path;

pub async fn state_reset(path: &Path, pipeline: &str) -> CommandResult {
    let (config, _) = load(path)?;
    selected(&config, Some(pipeline))?;
    let Some(state) = state_store::open_holding(&config, &[pipeline.to_owned()]).await? else {
        println!("{pipeline}: nothing to forget");
        return Ok(());
    };
    state.reset(pipeline).await.map_err(Failure::pipeline)?;
    state.close().await;
    println!("{pipeline}: checkpoints and ledger forgotten; the next run re-syncs everything (dead letters kept)");
    Ok(())
}

pub async fn state_check(path: &Path) -> CommandResult {
    let (config, _) = load(path)?;
    let Some(store) = state_store::open_sqlite_existing(&config, Access::Shared).await? else {
        return Ok(());
    };
    let file = store.path().display().to_string();
    match store.integrity_check().await {
        Ok(problems) if problems.is_empty() => {
            println!("{file}: ok (SQLite integrity check passed)");
            Ok(())
        }
        Ok(problems) => {
            println!("{file}: DAMAGED ({} problem(s) found by SQLite's integrity check):", problems.len());
            for problem in &problems {
                println!("  {problem}");
            }
            Err(Failure::pipeline(format!(
                "{file} is damaged: restore it from a backup (running on it could lose or re-send events)"
            )))
        }
        Err(error) => Err(Failure::pipeline(format!("{file}: the integrity check could not run: {error}"))),
    }
}
