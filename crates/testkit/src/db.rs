//! A fresh database per test: a temp SQLite file, or a new schema on the local Postgres
//! (`SWITCHYARD_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`).
//! With `CI=true` an unreachable Postgres fails the test instead of skipping it.

use std::sync::atomic::{AtomicU32, Ordering};
use store::Backend;

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A test database; the SQLite file lives as long as this value.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// Schema names start with this so the test script can sweep old ones.
pub const SCHEMA_PREFIX: &str = "sy_test_";

fn postgres_base_url() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("switchyard.db");
        let url = format!("sqlite://{}", path.display());
        TestDb {
            backend: Backend::Sqlite { path },
            url,
            _dir: Some(dir),
        }
    }

    /// A new, empty schema; `None` (skip) when Postgres is unreachable outside CI.
    pub async fn postgres() -> Option<TestDb> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let base = postgres_base_url();
        let schema = format!(
            "{SCHEMA_PREFIX}{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::now_v7().simple()
        );
        sqlx::any::install_default_drivers();
        let conn = connect(&base).await;
        let mut conn = match conn {
            Ok(c) => c,
            Err(e) if in_ci() => panic!("CI=true and Postgres at {base} is unreachable: {e}"),
            Err(e) => {
                eprintln!("skipping Postgres run: {base} unreachable: {e}");
                return None;
            }
        };
        sqlx::Executor::execute(&mut conn, format!("CREATE SCHEMA {schema}").as_str())
            .await
            .expect("create schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(TestDb {
            backend: Backend::Postgres { url: url.clone() },
            url,
            _dir: None,
        })
    }

    pub async fn of(kind: Kind) -> Option<TestDb> {
        match kind {
            Kind::Sqlite => Some(TestDb::sqlite()),
            Kind::Postgres => TestDb::postgres().await,
        }
    }
}

async fn connect(url: &str) -> Result<sqlx::AnyConnection, sqlx::Error> {
    use sqlx::Connection;
    let attempt = sqlx::AnyConnection::connect(url);
    tokio::time::timeout(std::time::Duration::from_secs(5), attempt)
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
}
