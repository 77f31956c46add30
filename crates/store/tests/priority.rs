//! SQLite's worker threads yield the core to request threads (see `lower_worker_priority`).
//! A test binary of its own: stores opened by other tests at the same time would show
//! worker threads not yet lowered.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use store::Store;
use testkit::db::{Kind, TestDb};

#[tokio::test]
async fn sqlite_worker_threads_run_at_a_lower_priority() {
    let db = TestDb::of(Kind::Sqlite).await.expect("sqlite");
    let store = store::connect(db.backend.clone()).await.expect("connect");
    store.ping().await.unwrap();
    let mut seen = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("sqlx-sqlite") {
            continue;
        }
        // Field 19 of /proc/<tid>/stat is the nice value (after the parenthesised name).
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let Some(after_name) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let nice: i32 = after_name
            .split_whitespace()
            .nth(16)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(nice, 19, "{} runs at nice {nice}", comm.trim());
        seen += 1;
    }
    assert!(
        seen >= 2,
        "the pool and the usage writer each have a worker thread"
    );
    drop(store);
}
