//! One writer per state file: `tillflow run` holds an exclusive lock on
//! `<state>.lock` for as long as it runs, so a second run on the same file is
//! refused instead of interleaving its commits (which sent every event twice),
//! and a newer tillflow takes it to migrate an older file, so that no run of
//! the older version is left writing the file as its version did.
//! The lock is the kernel's (`flock`), so it goes with the process however the
//! process ends; the file itself is left in place, since removing a lock file
//! races with the next process taking it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use tillflow_core::StateError;

/// Held while a process writes a state file; released on drop.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl WriterLock {
    /// Takes the lock of the state file at `state`, or says which process has it.
    pub fn acquire(state: &Path) -> Result<Self, StateError> {
        Self::take(state)?.map_err(|holder| {
            StateError::new(format!(
                "another tillflow process{holder} is already running on the state file {}; two runs on one \
                 SQLite file would send every event twice. Stop it first, or give this run its own [state] url",
                state.display()
            ))
        })
    }

    /// Takes the lock for migrating the state file at `state` from schema
    /// version `from`: a process running on the file writes it as its own
    /// version does (an older one, or it would have migrated the file), and
    /// would go on writing the old way into the new schema.
    pub(crate) fn acquire_to_migrate(state: &Path, from: u32, to: u32) -> Result<Self, StateError> {
        Self::take(state)?.map_err(|holder| {
            StateError::new(format!(
                "{} has state schema version {from} and this tillflow writes version {to}, but another tillflow \
                 process{holder} is running on it and would go on writing it as its own version does. Nothing was \
                 changed: stop that process, then run this again (upgrading means stopping every runner first)",
                state.display()
            ))
        })
    }

    /// The lock, or who holds it (` (pid N)`, empty when it is not written).
    fn take(state: &Path) -> Result<Result<Self, String>, StateError> {
        let path = lock_path(state);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StateError::new(format!("cannot open the lock file {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Ok(Err(if holder.is_empty() { String::new() } else { format!(" (pid {holder})") }));
            }
            Err(TryLockError::Error(e)) => {
                return Err(StateError::new(format!("cannot lock {}: {e}", path.display())));
            }
        }
        // Who holds it, for the message the next process prints.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        Ok(Ok(Self { _file: file }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_and_told_who_holds_the_file_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.db");
        let first = WriterLock::acquire(&state).unwrap();
        let error = WriterLock::acquire(&state).unwrap_err().to_string();
        assert!(error.contains("already running on the state file"), "{error}");
        assert!(error.contains(&format!("(pid {})", std::process::id())), "{error}");
        drop(first);
        WriterLock::acquire(&state).unwrap();
    }
}
