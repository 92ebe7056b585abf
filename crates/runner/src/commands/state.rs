//! `tillflow state reset`: forgets a pipeline's checkpoints, ledger and first
//! start, so the next run re-syncs everything (dead letters are kept).

use super::{load, selected};
use crate::exit::{CommandResult, Failure};
use crate::state_store;
use std::path::Path;

pub async fn state_reset(path: &Path, pipeline: &str) -> CommandResult {
    let (config, _) = load(path)?;
    selected(&config, Some(pipeline))?;
    let Some(state) = state_store::open_existing(&config).await? else {
        println!("{pipeline}: nothing to forget");
        return Ok(());
    };
    state.reset(pipeline).await.map_err(Failure::pipeline)?;
    println!("{pipeline}: checkpoints and ledger forgotten; the next run re-syncs everything (dead letters kept)");
    Ok(())
}
