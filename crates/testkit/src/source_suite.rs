//! The conformance suite every Source must pass: pagination across many pages
//! loses nothing, and a source rebuilt from a committed checkpoint resumes
//! without losing a record.

use std::collections::BTreeSet;
use tillflow_core::source::{Checkpoint, Source};

/// Reads `stream` to its end; returns record ids and the page count.
pub async fn read_to_end(
    source: &mut dyn Source,
    stream: &str,
    mut checkpoint: Option<Checkpoint>,
    max_pages: usize,
) -> (Vec<String>, usize, Option<Checkpoint>) {
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = source.read(stream, checkpoint.as_ref()).await.expect("page");
        pages += 1;
        ids.extend(page.items.iter().filter_map(|item| item.as_ref().ok()).map(|r| r.identity().id.clone()));
        checkpoint = Some(page.checkpoint);
        if page.last || pages >= max_pages {
            return (ids, pages, checkpoint);
        }
    }
}

/// Every record of `stream` is read, over more than one page.
pub async fn pagination_reads_every_record(source: &mut dyn Source, stream: &str, expected_ids: &[String]) {
    let (ids, pages, _) = read_to_end(source, stream, None, 10_000).await;
    assert!(pages > 1, "the fixture must span several pages (got {pages})");
    let read: BTreeSet<&String> = ids.iter().collect();
    let expected: BTreeSet<&String> = expected_ids.iter().collect();
    assert_eq!(read, expected, "records read across pages");
}

/// Stopping after `stop_after` pages and resuming from the checkpoint with a
/// fresh source loses nothing.
pub async fn resume_from_checkpoint_loses_nothing(
    make_source: &dyn Fn() -> Box<dyn Source>,
    stream: &str,
    expected_ids: &[String],
    stop_after: usize,
) {
    let mut first = make_source();
    let (mut ids, pages, checkpoint) = read_to_end(first.as_mut(), stream, None, stop_after).await;
    assert_eq!(pages, stop_after, "the first run stops early");
    drop(first);
    // The checkpoint survives as JSON, like it does in the state store.
    let stored = serde_json::to_string(&checkpoint).unwrap();
    let restored: Option<Checkpoint> = serde_json::from_str(&stored).unwrap();
    let mut second = make_source();
    let (rest, _, _) = read_to_end(second.as_mut(), stream, restored, 10_000).await;
    ids.extend(rest);
    let read: BTreeSet<&String> = ids.iter().collect();
    let expected: BTreeSet<&String> = expected_ids.iter().collect();
    assert_eq!(read, expected, "records read across the restart");
}
