//! Progress bars for long passes on a terminal (nothing when logs go to a file
//! or are JSON).

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tillflow_core::Progress;

pub struct TerminalProgress {
    bars: MultiProgress,
    by_pipeline: Mutex<HashMap<String, (ProgressBar, u64)>>,
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self { bars: MultiProgress::new(), by_pipeline: Mutex::new(HashMap::new()) }
    }
}

impl TerminalProgress {
    pub fn finish(&self) {
        for (bar, _) in self.by_pipeline.lock().expect("progress lock").values() {
            bar.finish_and_clear();
        }
    }
}

impl Progress for TerminalProgress {
    fn page(&self, pipeline: &str, stream: &str, records: usize, delivered: u64) {
        let mut bars = self.by_pipeline.lock().expect("progress lock");
        let (bar, read) = bars.entry(pipeline.to_owned()).or_insert_with(|| {
            let bar = self.bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} [{elapsed}]").expect("template"),
            );
            bar.set_prefix(pipeline.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            (bar, 0)
        });
        *read += records as u64;
        bar.set_message(format!("{stream}: {read} records read, {delivered} events delivered"));
    }
}
