//! The short kill soak `cargo test` runs (`cargo xtask soak` runs 100
//! cycles): five SIGKILLs at random moments of a continuous run through
//! faults while sales ring, then every sink compared with a calm world.

use tillflow_e2e::soak::soak;
use tillflow_runner::demo::DemoSize;

const TILLFLOW: &str = env!("CARGO_BIN_EXE_tillflow-under-test");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_kills_lose_nothing_and_record_nothing_twice() {
    let report = soak(std::path::Path::new(TILLFLOW), 5, DemoSize { fraction: 0.05 }, 7).await;
    eprintln!("{report}");
    assert_eq!(report.kills, 5, "{report}");
    assert!(report.sales_rung > 0, "{report}");
    assert!(report.webhooks_stored > 0, "signed webhooks flowed too: {report}");
    assert!(report.events_expected > 100, "{report}");
    assert_eq!((report.missing, report.recorded_twice), (0, 0), "{report}");
    assert!(report.differences.is_empty(), "{report}");
}
