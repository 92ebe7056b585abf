//! Opening the configured state store. A relative SQLite path is relative to
//! the config file, so a config and its state travel together. Commands that
//! only read (status, report, dead letters) never create a SQLite file.
//! Commands that write as a run does (run, state reset) hold the file's
//! writer lock, so a second one on the same file is refused (exit 2) instead
//! of interleaving. On Postgres any number of runs share the state: each
//! run is a runner taking pipeline leases (`leasing`), its writes fenced by them.

use crate::config::Config;
use crate::exit::Failure;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tillflow_core::StateStore;
use tillflow_state_postgres::PgStore;
use tillflow_state_sqlite::SqliteStore;

/// Where the state lives.
enum Place {
    Sqlite(PathBuf),
    Postgres(String),
}

fn place(config: &Config) -> Place {
    let url = &config.state.url;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Place::Postgres(url.clone());
    }
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let path = Path::new(path);
    Place::Sqlite(if path.is_relative() {
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

async fn open_postgres(url: &str) -> Result<PgStore, Failure> {
    PgStore::open(url).await.map_err(Failure::config)
}

/// The Postgres store for a runner or a one-off command holding leases.
async fn open_postgres_leasing(url: &str, config: &Config) -> Result<PgStore, Failure> {
    PgStore::open_leasing(url, config.state.lease_ttl).await.map_err(Failure::config)
}

/// Opens the state store, creating it when it does not exist yet.
pub async fn open(config: &Config, access: Access) -> Result<Arc<dyn StateStore>, Failure> {
    Ok(match place(config) {
        Place::Sqlite(path) => Arc::new(open_path(&path, access).await?),
        Place::Postgres(url) => Arc::new(open_postgres(&url).await?),
    })
}

/// The state a run writes through, and on Postgres the same store as the
/// runner `runner`, whose leases decide which pipelines it may run.
pub async fn open_for_run(
    config: &Config,
    runner: &str,
) -> Result<(Arc<dyn StateStore>, Option<Arc<PgStore>>), Failure> {
    Ok(match place(config) {
        Place::Sqlite(path) => (Arc::new(open_path(&path, Access::Writer).await?), None),
        Place::Postgres(url) => {
            let store = Arc::new(open_postgres_leasing(&url, config).await?.for_runner(runner));
            (store.clone(), Some(store))
        }
    })
}

/// The SQLite store itself, if it exists (`state check` needs more than the
/// trait); `Ok(None)` (and a note on stderr) when nothing has run yet.
pub async fn open_sqlite_existing(config: &Config, access: Access) -> Result<Option<SqliteStore>, Failure> {
    let path = match place(config) {
        Place::Sqlite(path) => path,
        Place::Postgres(_) => {
            return Err(Failure::config(format!(
                "{}: state.url is Postgres; this command reads a SQLite state file (Postgres checks its own \
                 storage: see its amcheck module)",
                config.file.display()
            )));
        }
    };
    if !path.exists() {
        eprintln!("tillflow: no state at {} yet: no pipeline has run", path.display());
        return Ok(None);
    }
    Ok(Some(open_path(&path, access).await?))
}

/// Where the SQLite state a dry run copies lives, and the state opened if it
/// exists yet. A Postgres state is not copied (a dry run would need a
/// database of its own).
pub async fn open_sqlite_to_copy(config: &Config) -> Result<(PathBuf, Option<SqliteStore>), Failure> {
    match place(config) {
        Place::Sqlite(path) if path.exists() => {
            let store = open_path(&path, Access::Shared).await?;
            Ok((path, Some(store)))
        }
        Place::Sqlite(path) => Ok((path, None)),
        Place::Postgres(_) => Err(Failure::config(format!(
            "{}: --dry-run works on a SQLite state (it runs on a copy of it); a Postgres state is not copied",
            config.file.display()
        ))),
    }
}

/// The Postgres store, when the state is there (`status` shows its leases).
pub async fn open_postgres_existing(config: &Config) -> Result<Option<PgStore>, Failure> {
    match place(config) {
        Place::Postgres(url) => Ok(Some(open_postgres(&url).await?)),
        Place::Sqlite(_) => Ok(None),
    }
}

/// Opens the state store if it exists; `Ok(None)` (and a note on stderr)
/// when nothing has run yet.
pub async fn open_existing(config: &Config, access: Access) -> Result<Option<Arc<dyn StateStore>>, Failure> {
    match place(config) {
        Place::Postgres(url) => Ok(Some(Arc::new(open_postgres(&url).await?))),
        Place::Sqlite(_) => {
            Ok(open_sqlite_existing(config, access).await?.map(|store| Arc::new(store) as Arc<dyn StateStore>))
        }
    }
}

/// The state for a one-off command that writes for `pipelines` (a reset, a
/// replay), as a run would: on SQLite under the file's writer lock, on
/// Postgres holding those pipelines' leases (refused while a live runner
/// holds one, so the command never writes under a runner's feet); `Ok(None)`
/// when nothing has run yet. The leases go back when the store is closed.
pub async fn open_holding(config: &Config, pipelines: &[String]) -> Result<Option<Arc<dyn StateStore>>, Failure> {
    match place(config) {
        Place::Sqlite(_) => open_existing(config, Access::Writer).await,
        Place::Postgres(url) => {
            let store = open_postgres_leasing(&url, config).await?.for_runner(&runner_id());
            store.take_all(pipelines, config.state.lease_ttl).await.map_err(Failure::config)?;
            Ok(Some(Arc::new(store)))
        }
    }
}

/// This process's name among the runners: host, process id and start.
pub fn runner_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "runner".to_owned());
    format!("{host}-{}-{}", std::process::id(), jiff::Timestamp::now().as_millisecond() % 100_000)
}
