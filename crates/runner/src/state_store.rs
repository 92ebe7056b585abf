//! Opening the configured state store. A relative SQLite path is relative to
//! the config file, so a config and its state travel together. Commands that
//! only read (status, report, dead letters) never create one. Commands that
//! write as a run does (run, state reset) hold the file's writer lock, so a
//! second one on the same file is refused (exit 2) instead of interleaving.

use crate::config::Config;
use crate::exit::Failure;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tillflow_core::StateStore;
use tillflow_state_sqlite::SqliteStore;

/// The SQLite file `config` names.
fn sqlite_path(config: &Config) -> Result<PathBuf, Failure> {
    let url = &config.state.url;
    let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return Err(Failure::config(format!(
            "{}: state.url: Postgres state (several runners) is not available in this build yet; use sqlite://",
            config.file.display()
        )));
    };
    let path = Path::new(path);
    Ok(if path.is_relative() {
        config.file.parent().map(|dir| dir.join(path)).unwrap_or_else(|| path.to_owned())
    } else {
        path.to_owned()
    })
}

/// Whether the opener is the file's one writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A run (or a reset): holds the writer lock while the store lives.
    Writer,
    /// Reads, or writes a single row a run could write too (a rotated token).
    Shared,
}

async fn open_path(path: &Path, access: Access) -> Result<SqliteStore, Failure> {
    match access {
        Access::Writer => SqliteStore::open_exclusive(path).await,
        Access::Shared => SqliteStore::open(path).await,
    }
    .map_err(Failure::config)
}

/// Opens the state store, creating it when it does not exist yet.
pub async fn open(config: &Config, access: Access) -> Result<Arc<dyn StateStore>, Failure> {
    let path = sqlite_path(config)?;
    Ok(Arc::new(open_path(&path, access).await?))
}

/// The SQLite store itself, if it exists (`state check` needs more than the
/// trait); `Ok(None)` (and a note on stderr) when nothing has run yet.
pub async fn open_sqlite_existing(config: &Config, access: Access) -> Result<Option<SqliteStore>, Failure> {
    let path = sqlite_path(config)?;
    if !path.exists() {
        eprintln!("tillflow: no state at {} yet: no pipeline has run", path.display());
        return Ok(None);
    }
    Ok(Some(open_path(&path, access).await?))
}

/// Opens the state store if it exists; `Ok(None)` (and a note on stderr)
/// when nothing has run yet.
pub async fn open_existing(config: &Config, access: Access) -> Result<Option<Arc<dyn StateStore>>, Failure> {
    Ok(open_sqlite_existing(config, access).await?.map(|store| Arc::new(store) as Arc<dyn StateStore>))
}
