//! The SQL adapter: one implementation of every port, the same SQL text on SQLite and Postgres
//! (portable types only: TEXT and 64-bit integers; money in nano-dollars, time in epoch ms,
//! flags as 0/1), plus an embedded, ordered migration runner.

mod accounts;
mod changes;
mod keys;
mod ledger;
mod plans;
mod sessions;
mod usage;

use crate::ports::{Result, Store, StoreError};
use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};
use std::path::PathBuf;
use std::time::Duration;

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite { path: PathBuf },
    Postgres { url: String },
}

impl Backend {
    /// `sqlite://path` (or `sqlite:path`) and `postgres://…`/`postgresql://…`.
    pub fn from_url(url: &str) -> std::result::Result<Self, String> {
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or(rest);
            if path.is_empty() {
                return Err(
                    "a sqlite URL needs a file path, e.g. sqlite://data/switchyard.db".into(),
                );
            }
            Ok(Backend::Sqlite {
                path: PathBuf::from(path),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres {
                url: url.to_owned(),
            })
        } else {
            Err("must start with sqlite:// or postgres://".into())
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// Migrations in order: version, name, SQLite text, Postgres text. Applied once each, in a
/// transaction, recorded in `switchyard_migrations`; never edited once released.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "core",
        include_str!("../../migrations/sqlite/0001_core.sql"),
        include_str!("../../migrations/postgres/0001_core.sql"),
    ),
    (
        2,
        "money",
        include_str!("../../migrations/sqlite/0002_money.sql"),
        include_str!("../../migrations/postgres/0002_money.sql"),
    ),
    (
        3,
        "changes",
        include_str!("../../migrations/sqlite/0003_changes.sql"),
        include_str!("../../migrations/postgres/0003_changes.sql"),
    ),
    (
        4,
        "attempts",
        include_str!("../../migrations/sqlite/0004_attempts.sql"),
        include_str!("../../migrations/postgres/0004_attempts.sql"),
    ),
    (
        5,
        "usage_debits",
        include_str!("../../migrations/sqlite/0005_usage_debits.sql"),
        include_str!("../../migrations/postgres/0005_usage_debits.sql"),
    ),
    (
        6,
        "key_spend",
        include_str!("../../migrations/sqlite/0006_key_spend.sql"),
        include_str!("../../migrations/postgres/0006_key_spend.sql"),
    ),
    (
        7,
        "usage_index_order",
        include_str!("../../migrations/sqlite/0007_usage_index_order.sql"),
        include_str!("../../migrations/postgres/0007_usage_index_order.sql"),
    ),
];

/// Postgres advisory lock id held while migrating, so nodes starting together take turns.
const MIGRATION_LOCK_ID: i64 = 0x5359_4d49_4752;

/// SQLite connections: one writer at a time is SQLite's rule; a few readers run beside it in WAL.
const SQLITE_POOL_SIZE: u32 = 4;
/// Postgres connections per node.
const POSTGRES_POOL_SIZE: u32 = 16;

pub struct SqlStore {
    pool: AnyPool,
    /// Where the usage writer's batches go: a one-connection pool of its own (on SQLite its
    /// page cache stays warm; on Postgres its connection lives on the writer's runtime).
    writer: AnyPool,
    backend: Backend,
    /// API key lookups by hash: each one is an auth-cache miss.
    key_lookups: std::sync::atomic::AtomicU64,
}

/// Opens (creating a SQLite file and its folder if needed) and migrates the database.
pub async fn connect(backend: Backend) -> Result<SqlStore> {
    sqlx::any::install_default_drivers();
    let (pool, writer) = match &backend {
        Backend::Sqlite { path } => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
            }
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let pool = sqlite_pool(SQLITE_POOL_SIZE, true).connect(&url).await?;
            // The usage writer keeps a connection of its own: SQLite drops a connection's
            // page cache whenever another one has written, so a writer that took whichever
            // pooled connection was free re-read its B-tree pages from disk on every batch.
            // Its foreign keys are not checked: every event names an account and a key that
            // authenticated the request (neither is ever deleted, only disabled), so the
            // checks cost three index lookups per event to prove nothing, and an immediate
            // foreign key makes SQLite journal every page each multi-row insert touches.
            // It is opened on first use, by the usage writer's thread, so that the SQLite
            // worker thread it starts inherits that thread's idle scheduling policy.
            let writer = sqlite_pool(1, false).connect_lazy(&url)?;
            (pool, writer)
        }
        Backend::Postgres { url } => {
            let pool = AnyPoolOptions::new()
                .max_connections(POSTGRES_POOL_SIZE)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            // The usage writer runs on a thread (and runtime) of its own, and a connection
            // belongs to the runtime it was opened on: its connections are its own too,
            // opened on first use.
            let writer = AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy(url)?;
            (pool, writer)
        }
    };
    let store = SqlStore {
        pool,
        writer,
        backend,
        key_lookups: Default::default(),
    };
    store.migrate().await?;
    Ok(store)
}

/// Options for a pool of up to `max` SQLite connections, each set up the same way.
fn sqlite_pool(max: u32, foreign_keys: bool) -> AnyPoolOptions {
    let fk = if foreign_keys {
        "PRAGMA foreign_keys = ON;"
    } else {
        "PRAGMA foreign_keys = OFF;"
    };
    AnyPoolOptions::new()
        .max_connections(max)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // `page_size` only takes effect on a new database (before WAL mode and the
                // first table): 16 KiB pages write the usage log in a quarter of the WAL
                // frames (system calls) that 4 KiB pages take.
                // `temp_store = MEMORY` keeps statement journals (and temp tables) off disk.
                conn.execute(
                    "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
                     PRAGMA temp_store = MEMORY;",
                )
                .await?;
                conn.execute(fk).await?;
                lower_worker_priority();
                Ok(())
            })
        })
}

/// The nice value SQLite's worker threads run at: the lowest priority there is.
#[cfg(target_os = "linux")]
const SQLITE_WORKER_NICE: i32 = 19;

/// Lowers the scheduling priority of sqlx's SQLite worker threads (each connection runs on
/// one). They share the cores with the request threads, and the usage writer's batch, a few
/// milliseconds of work, otherwise made requests that arrived meanwhile wait for it: at
/// 2,000 req/s on one core the benchmark's p99 went from ~1.5 ms at nice 0 to ~1.0 ms at
/// nice 5 and ~0.8 ms at nice 19, against ~0.67 ms with no writer at all. On a saturated
/// core the writer then gets little CPU of its own, until its backlog makes new requests
/// wait (`engine::usage::UsageSink::room`) and the core is its. Linux applies `setpriority`
/// on a thread id to that thread alone; other systems are left as they are.
fn lower_worker_priority() {
    #[cfg(target_os = "linux")]
    {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return;
        };
        for task in tasks.flatten() {
            let is_sqlite = std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with("sqlx-sqlite"));
            let tid = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<i32>().ok());
            if let (true, Some(pid)) = (is_sqlite, tid.and_then(rustix::process::Pid::from_raw)) {
                if rustix::process::getpriority_process(Some(pid))
                    .is_ok_and(|n| n < SQLITE_WORKER_NICE)
                {
                    let _ = rustix::process::setpriority_process(Some(pid), SQLITE_WORKER_NICE);
                }
            }
        }
    }
}

impl SqlStore {
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Inserts `rows` (each `columns`' values, in order) as multi-row `VALUES` statements.
    /// On SQLite the placeholders are bare `?`s: the driver asks each parameter's name, and
    /// SQLite answers that for numbered ones by walking a list of all of them, which made
    /// binding quadratic in a statement's size (with `$N`, 200 parameters was the best
    /// compromise; with `?`, `switchyard-bench writer` went from ~38k to ~66k events/s at
    /// 2,000 parameters, and 8,000 gained little more but let the queue grow threefold).
    /// A single JSON parameter unpacked by `json_each` cost more CPU in SQLite's JSON
    /// functions. Postgres pays a round trip per statement instead, so its statements take up
    /// to 20,000 parameters.
    ///
    /// On SQLite the statements are `INSERT OR ROLLBACK`: a failure ends the caller's whole
    /// transaction, which the caller must then roll back (a no-op there) before reusing the
    /// connection, as `insert_usage` does.
    ///
    /// `suffix` follows the `VALUES` list (an `ON CONFLICT` clause, or nothing).
    pub(super) async fn insert_rows(
        &self,
        conn: &mut AnyConnection,
        table: &'static str,
        columns: &'static str,
        suffix: &'static str,
        rows: &[Vec<Cell<'_>>],
    ) -> std::result::Result<(), sqlx::Error> {
        let Some(width) = rows.first().map(Vec::len) else {
            return Ok(());
        };
        let params = match self.backend {
            Backend::Sqlite { .. } => 2_000,
            Backend::Postgres { .. } => 20_000,
        };
        let sqlite = matches!(self.backend, Backend::Sqlite { .. });
        let mut rest = rows;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(chunk_rows(rest.len(), (params / width).max(1)));
            rest = tail;
            let sql = multi_insert_sql(table, columns, suffix, width, chunk.len(), sqlite);
            let mut q = sqlx::query(&sql);
            for cell in chunk.iter().flatten() {
                q = match cell {
                    Cell::Text(t) => q.bind(*t),
                    Cell::Int(i) => q.bind(*i),
                };
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// How many times a key was looked up by hash (auth-cache misses).
    pub fn key_lookups(&self) -> u64 {
        self.key_lookups.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn migrate(&self) -> Result<()> {
        let postgres = matches!(self.backend, Backend::Postgres { .. });
        let mut conn = self.pool.acquire().await?;
        if postgres {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK_ID)
                .execute(&mut *conn)
                .await?;
        }
        let result = apply_migrations(&mut conn, postgres).await;
        if postgres {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK_ID)
                .execute(&mut *conn)
                .await?;
        }
        result.map_err(|e| StoreError::Backend(format!("migrating: {e}")))
    }
}

/// Applies, in order, each migration not yet recorded.
async fn apply_migrations(
    conn: &mut AnyConnection,
    postgres: bool,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS switchyard_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let rows = sqlx::query("SELECT version FROM switchyard_migrations")
        .fetch_all(&mut *conn)
        .await?;
    let mut applied = Vec::with_capacity(rows.len());
    for r in &rows {
        applied.push(r.try_get::<i64, _>(0)?);
    }
    for (version, name, sqlite_sql, pg_sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let sql = if postgres { *pg_sql } else { *sqlite_sql };
        let mut tx = conn.begin().await?;
        // Statements run one by one: migration files hold no `;` inside literals.
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO switchyard_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(*version)
        .bind(*name)
        .bind(domain::UnixMillis::now().0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// Maps a unique-constraint violation to `Conflict(rule)`, anything else to `Backend`.
fn conflict_or(e: sqlx::Error, rule: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(rule),
        _ => StoreError::from(e),
    }
}

fn get_opt_u32(row: &AnyRow, col: &str) -> Result<Option<u32>> {
    Ok(row
        .try_get::<Option<i64>, _>(col)?
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX)))
}

fn get_u64(row: &AnyRow, col: &str) -> Result<u64> {
    Ok(u64::try_from(row.try_get::<i64, _>(col)?).unwrap_or(0))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Compile-time check: `connect` stays `Send`, so the server can start on any runtime thread
/// (sqlx executors in generic positions easily lose it).
#[allow(dead_code)]
fn connect_is_send() {
    fn is_send<T: Send>(_: &T) {}
    let future = connect(Backend::Sqlite {
        path: PathBuf::new(),
    });
    is_send(&future);
}

/// One value of a row for `SqlStore::insert_rows`.
pub(super) enum Cell<'a> {
    Text(Option<&'a str>),
    Int(i64),
}

/// How many of `remaining` rows the next multi-row insert takes: the most rows a statement
/// may hold, or else the largest power of four that fits. Statements are prepared once per
/// connection and cached by their text, so a batch is cut into a handful of sizes that recur
/// rather than one new statement (parsed and planned again) per batch length.
fn chunk_rows(remaining: usize, max_rows: usize) -> usize {
    if remaining >= max_rows {
        return max_rows;
    }
    let mut size = 1;
    while size * 4 <= remaining {
        size *= 4;
    }
    size
}

/// `INSERT INTO table (columns) VALUES ($1, …), (…), … suffix` for `rows` rows, in SQLite's
/// dialect when `sqlite`:
/// - bare `?` placeholders: its numbered and named parameters are kept in a list that every
///   bind searches, which made binding quadratic in a statement's size; bare `?`s are not in
///   that list;
/// - `INSERT OR ROLLBACK`: a failing row ends the whole transaction rather than just its
///   statement, so SQLite need not copy every page a statement changes into a statement
///   journal.
///
/// Built once per shape and kept: batches mostly have the same few shapes, and the same text
/// lets the driver reuse its prepared statement.
pub(super) fn multi_insert_sql(
    table: &'static str,
    columns: &'static str,
    suffix: &'static str,
    column_count: usize,
    rows: usize,
    sqlite: bool,
) -> std::sync::Arc<str> {
    use std::collections::HashMap;
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex, OnceLock};
    type Cache = Mutex<HashMap<(&'static str, usize, bool), Arc<str>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(sql) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(table, rows, sqlite))
    {
        return sql.clone();
    }
    let verb = if sqlite {
        "INSERT OR ROLLBACK"
    } else {
        "INSERT"
    };
    let mut sql = format!("{verb} INTO {table} ({columns}) VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..column_count {
            if c > 0 {
                sql.push_str(", ");
            }
            if sqlite {
                sql.push('?');
            } else {
                let _ = write!(sql, "${}", r * column_count + c + 1);
            }
        }
        sql.push(')');
    }
    if !suffix.is_empty() {
        sql.push(' ');
        sql.push_str(suffix);
    }
    let sql: Arc<str> = Arc::from(sql);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((table, rows, sqlite), sql.clone());
    sql
}

#[cfg(test)]
mod tests {
    use super::chunk_rows;

    #[test]
    fn batches_are_cut_into_few_recurring_statement_sizes() {
        let mut sizes = std::collections::BTreeSet::new();
        for n in 0..=1_000 {
            let (mut left, mut statements) = (n, 0);
            while left > 0 {
                let take = chunk_rows(left, 100);
                assert!((1..=left).contains(&take));
                sizes.insert(take);
                left -= take;
                statements += 1;
            }
            // A full statement per 100 rows, then at most three of each smaller size.
            assert!(
                statements <= n / 100 + 9,
                "{n} rows took {statements} statements"
            );
        }
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), [1, 4, 16, 64, 100]);
    }
}
