//! Named crash points for crash-and-resume tests.
//!
//! `TILLFLOW_FAILPOINT=after-batch-commit:2` (read by the runner) makes the
//! engine stop dead the second time it passes that point: it reports the hit on
//! stderr and then never continues, so the test can SIGKILL the process at an
//! exactly known moment without any timing guesswork.

use std::sync::atomic::{AtomicU32, Ordering};

/// Points the engine passes for every batch, in this order.
pub const FAILPOINTS: [&str; 3] = ["before-deliver", "after-ack", "after-batch-commit"];

#[derive(Debug, Default)]
pub struct Failpoint {
    armed: Option<(String, u32)>,
    hits: AtomicU32,
}

impl Failpoint {
    /// Parses `name[:nth]`; `nth` counts from 1.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (name, nth) = match spec.split_once(':') {
            Some((name, nth)) => {
                let nth = nth
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("failpoint count `{nth}` is not a positive number"))?;
                (name, nth)
            }
            None => (spec, 1),
        };
        if !FAILPOINTS.contains(&name) {
            return Err(format!("unknown failpoint `{name}`, expected one of {FAILPOINTS:?}"));
        }
        Ok(Self { armed: Some((name.to_owned(), nth)), hits: AtomicU32::new(0) })
    }

    pub fn disarmed() -> Self {
        Self::default()
    }

    /// Parks forever when `name` is armed and this is its nth pass.
    pub async fn pass(&self, name: &str) {
        let Some((armed, nth)) = &self.armed else { return };
        if armed != name {
            return;
        }
        if self.hits.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
            eprintln!("tillflow: failpoint {name} reached");
            std::future::pending::<()>().await;
        }
    }
}
