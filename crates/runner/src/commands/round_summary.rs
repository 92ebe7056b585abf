//! The log of a pipeline's webhook rounds. Under a steady stream a round
//! runs many times a second, and a line each (a hundred and more a second
//! at 1,000 webhooks/s) buried everything else in the log; so rounds are
//! summed and told once the stream has been quiet for `QUIET`, or
//! `SUMMARY_EVERY` after the first round not yet told: a lone webhook is
//! told a second after its round, a steady stream every ten seconds.

use super::summary_line;
use std::time::Duration;
use tillflow_core::PassReport;
use tokio::time::Instant;

/// How often a steady stream of webhook rounds is told.
pub(super) const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// How long after its last round a stream counts as paused.
pub(super) const QUIET: Duration = Duration::from_secs(1);

/// Webhook rounds not yet told.
#[derive(Default)]
pub(super) struct RoundSummary {
    report: PassReport,
    rounds: u64,
    /// When the first round not yet told started.
    since: Option<Instant>,
    last_round: Option<Instant>,
}

impl RoundSummary {
    /// Adds a round that read records; the line, when rounds have gone on
    /// for `SUMMARY_EVERY` without a pause (back to back, a pipeline may
    /// never wait long enough to be told the time has come).
    pub(super) fn add(&mut self, pipeline: &str, round: &PassReport) -> Option<String> {
        self.report.merge(round);
        self.report.elapsed += round.elapsed;
        self.rounds += 1;
        let now = Instant::now();
        let since = *self.since.get_or_insert(now - round.elapsed);
        self.last_round = Some(now);
        if now >= since + SUMMARY_EVERY { self.told(pipeline) } else { None }
    }

    /// When the rounds not yet told are to be told, if there are any.
    pub(super) fn tell_at(&self) -> Option<Instant> {
        Some((self.last_round? + QUIET).min(self.since? + SUMMARY_EVERY))
    }

    /// The line of the rounds not yet told, if any: the stream paused, or a
    /// full pass (which has a line of its own) or shutdown comes.
    pub(super) fn told(&mut self, pipeline: &str) -> Option<String> {
        let since = self.since.take()?;
        self.last_round = None;
        let report = std::mem::take(&mut self.report);
        let rounds = std::mem::take(&mut self.rounds);
        Some(format!(
            "{} ({rounds} webhook round{} over {:.1}s)",
            summary_line(pipeline, &report),
            if rounds == 1 { "" } else { "s" },
            since.elapsed().as_secs_f64()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tillflow_core::EventKind;

    fn round(records: u64) -> PassReport {
        let mut report =
            PassReport { records_read: records, elapsed: Duration::from_millis(5), ..PassReport::default() };
        report.delivered.insert(EventKind::Placed, records);
        report
    }

    /// A round every 10 ms for 25 s: told at 10 s and 20 s with every round
    /// summed, and the rest once the stream pauses.
    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_is_told_every_ten_seconds() {
        let mut summary = RoundSummary::default();
        let mut lines = Vec::new();
        for _ in 0..2500 {
            tokio::time::advance(Duration::from_millis(10)).await;
            lines.extend(summary.add("shop", &round(2)));
        }
        assert_eq!(lines.len(), 2, "{lines:?}");
        // The first round began 5 ms before its end, 10 ms in.
        assert!(lines[0].starts_with("shop: 2002 records read; delivered: placed 2002;"), "{}", lines[0]);
        assert!(lines[0].ends_with("(1001 webhook rounds over 10.0s)"), "{}", lines[0]);
        let quiet = summary.tell_at().expect("rounds are left to tell");
        assert_eq!(quiet - Instant::now(), QUIET);
        tokio::time::advance(QUIET).await;
        lines.extend(summary.told("shop"));
        let read: u64 =
            lines.iter().map(|line| line["shop: ".len()..].split(' ').next().unwrap().parse::<u64>().unwrap()).sum();
        assert_eq!(read, 5000, "every round told once: {lines:?}");
        assert_eq!((summary.tell_at(), summary.told("shop")), (None, None), "nothing is told twice");
    }

    /// A lone webhook's round is told a second after it.
    #[tokio::test(start_paused = true)]
    async fn a_lone_round_is_told_once_the_stream_is_quiet() {
        let mut summary = RoundSummary::default();
        assert_eq!(summary.tell_at(), None);
        assert_eq!(summary.add("shop", &round(1)), None);
        assert_eq!(summary.tell_at(), Some(Instant::now() + QUIET));
        let line = summary.told("shop").expect("told");
        assert!(line.ends_with("(1 webhook round over 0.0s)"), "{line}");
    }
}
