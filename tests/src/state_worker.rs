//! The CPU time of a process's SQLite worker threads, read from `/proc`:
//! sqlx runs each SQLite connection's statements, commits and fsyncs on a
//! thread of its own, so that thread's time is the state store's share of
//! what the process spent.

use std::collections::HashMap;
use std::path::Path;

/// What sqlx names a SQLite connection's thread (`sqlx-sqlite-worker-N`),
/// as the kernel keeps it: cut to 15 bytes.
const WORKER_THREAD: &str = "sqlx-sqlite-wor";

/// Nanoseconds on a CPU, so far, of each SQLite worker thread of the
/// process whose `/proc` directory is `process` (`/proc/self`, `/proc/PID`),
/// by thread id.
pub fn worker_cpu_ns(process: &Path) -> Vec<(u32, u64)> {
    let Ok(tasks) = std::fs::read_dir(process.join("task")) else { return Vec::new() };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|name| name.starts_with(WORKER_THREAD))
        })
        .filter_map(|task| {
            let id = task.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            Some((id, stat.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// The SQLite worker time of a process watched while it runs: each thread's
/// latest reading is kept, so a worker that ended (its connection closed)
/// still counts, and what the process spent after the last look is all
/// that is missed.
#[derive(Default)]
pub struct WorkerWatch {
    latest: HashMap<u32, u64>,
}

impl WorkerWatch {
    pub fn look(&mut self, process: &Path) {
        for (thread, ns) in worker_cpu_ns(process) {
            let latest = self.latest.entry(thread).or_default();
            *latest = (*latest).max(ns);
        }
    }

    pub fn total_ns(&self) -> u64 {
        self.latest.values().sum()
    }
}
