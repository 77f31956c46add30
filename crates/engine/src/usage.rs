//! Usage events: queued without making the client wait, written in batches by one writer, and
//! flushed completely at shutdown.

use crate::tasks::Tasks;
use crate::{internal, Engine};
use domain::{AccountId, ApiError, ErrorCode, UsageEvent};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
pub use store::{LedgerMismatch, UsageGroup, UsageTotal};
use store::{Store, UsagePage};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// Events buffered between requests and the writer. When full, a request's event waits in a
/// tracked task rather than being dropped, so this bounds memory in the common case only.
const QUEUE_CAPACITY: usize = 65_536;
/// How long the writer lets a batch fill after its first event: a few large transactions
/// cost the database (and the gateway's core) far less than many small ones.
const LINGER: Duration = Duration::from_millis(100);
/// How often a filling batch looks at the queue. The writer runs on a thread of its own:
/// waiting on the queue would have every request's event wake that thread (a system call
/// and a context switch each); looking every few milliseconds costs twenty wake-ups a batch.
const FILL_TICK: Duration = Duration::from_millis(5);
/// Retry delays for a failed batch write: the events stay in memory and are retried.
const RETRY_START: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// While shutting down, a failing database is retried this long before events are given up.
const SHUTDOWN_RETRY_BUDGET: Duration = Duration::from_secs(30);

/// How far the writer may fall behind before new requests wait for it (`UsageSink::room`).
#[derive(Debug, Clone, Copy)]
pub struct Backlog {
    /// Events recorded and not yet stored at which new requests start to wait.
    pub limit: usize,
    /// How long a request waits for the writer before it is refused.
    pub wait: Duration,
}

impl Default for Backlog {
    fn default() -> Self {
        Self {
            limit: 16_384,
            wait: Duration::from_secs(10),
        }
    }
}

/// The sending side, cheap to clone into every request.
#[derive(Clone)]
pub struct UsageSink {
    tx: mpsc::Sender<UsageEvent>,
    backlog: Backlog,
    /// Woken each time the writer stores (or gives up) a batch.
    written: Arc<Notify>,
    /// Events waiting in overflow tasks for queue space.
    overflow: Arc<AtomicUsize>,
    /// Events recorded and not yet stored: queued, waiting for space, or in the batch the
    /// writer holds while it fills and writes it.
    unwritten: Arc<AtomicUsize>,
    closing: CancellationToken,
    tasks: Tasks,
}

impl UsageSink {
    /// Starts the writer on a thread of its own (see `Tasks::spawn_low_priority_thread`):
    /// its database calls then never share a lock with the request threads.
    pub fn start(
        store: Arc<dyn Store>,
        tasks: &Tasks,
        batch_size: usize,
        backlog: Backlog,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let sink = Self {
            tx,
            backlog,
            written: Arc::new(Notify::new()),
            overflow: Arc::new(AtomicUsize::new(0)),
            unwritten: Arc::new(AtomicUsize::new(0)),
            closing: CancellationToken::new(),
            tasks: tasks.clone(),
        };
        let writer = Writer {
            store,
            rx,
            batch_size: batch_size.max(1),
            overflow: sink.overflow.clone(),
            unwritten: sink.unwritten.clone(),
            written: sink.written.clone(),
            closing: sink.closing.clone(),
        };
        tasks.spawn_low_priority_thread("usage-writer", writer.run());
        sink
    }

    /// Queues an event; never blocks and never fails the request.
    pub fn record(&self, event: UsageEvent) {
        self.unwritten.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                self.overflow.fetch_add(1, Ordering::AcqRel);
                let tx = self.tx.clone();
                let overflow = self.overflow.clone();
                let unwritten = self.unwritten.clone();
                self.tasks.spawn(async move {
                    if let Err(lost) = tx.send(event).await {
                        unwritten.fetch_sub(1, Ordering::AcqRel);
                        tracing::error!(usage_id = %lost.0.id, "usage writer stopped; event lost");
                    }
                    overflow.fetch_sub(1, Ordering::AcqRel);
                });
            }
            Err(mpsc::error::TrySendError::Closed(event)) => {
                self.unwritten.fetch_sub(1, Ordering::AcqRel);
                tracing::error!(usage_id = %event.id, "usage writer stopped; event lost");
            }
        }
    }

    /// Returns at once while the writer keeps up; otherwise waits until it is back under the
    /// backlog limit. A request that cannot be recorded should not run: waiting here bounds
    /// the events only memory holds, and on a saturated core it is what gives the writer
    /// (whose SQLite thread runs at the lowest priority) its turn. Refused with 503 when the
    /// writer has not caught up within the backlog's wait (the database is failing).
    pub async fn room(&self) -> Result<(), ApiError> {
        let behind = || self.unwritten.load(Ordering::Acquire) >= self.backlog.limit;
        if !behind() {
            return Ok(());
        }
        let caught_up = async {
            loop {
                let written = self.written.notified();
                tokio::pin!(written);
                written.as_mut().enable();
                if !behind() {
                    return;
                }
                written.await;
            }
        };
        tokio::time::timeout(self.backlog.wait, caught_up)
            .await
            .map_err(|_| {
                let mut e = ApiError::new(
                    ErrorCode::ServiceUnavailable,
                    "the gateway cannot record usage right now; try again shortly",
                );
                e.retry_after = Some(self.backlog.wait.as_secs().max(1));
                e
            })
    }

    /// Events recorded and not yet stored, including the batch the writer is filling or
    /// writing (so 0 means everything is in the database).
    pub fn queued(&self) -> usize {
        self.unwritten.load(Ordering::Acquire)
    }

    /// Asks the writer to flush everything queued and stop.
    pub fn close(&self) {
        self.closing.cancel();
    }
}

struct Writer {
    store: Arc<dyn Store>,
    rx: mpsc::Receiver<UsageEvent>,
    batch_size: usize,
    overflow: Arc<AtomicUsize>,
    unwritten: Arc<AtomicUsize>,
    written: Arc<Notify>,
    closing: CancellationToken,
}

impl Writer {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.batch_size);
        loop {
            tokio::select! {
                n = self.rx.recv_many(&mut batch, self.batch_size) => {
                    if n == 0 {
                        return;
                    }
                    self.fill(&mut batch).await;
                    self.write(&mut batch).await;
                }
                () = self.closing.cancelled() => break,
            }
        }
        // Shutdown: take what is queued, including events still waiting for queue space.
        loop {
            while let Ok(event) = self.rx.try_recv() {
                batch.push(event);
                if batch.len() >= self.batch_size {
                    self.write(&mut batch).await;
                }
            }
            if self.overflow.load(Ordering::Acquire) == 0 && self.rx.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.write(&mut batch).await;
        self.rx.close();
    }

    /// Takes more events into `batch` until it is full, `LINGER` has passed or shutdown
    /// begins, looking at the queue every `FILL_TICK` rather than waiting on it.
    async fn fill(&mut self, batch: &mut Vec<UsageEvent>) {
        let until = tokio::time::Instant::now() + LINGER;
        while batch.len() < self.batch_size {
            if !self.rx.is_empty() {
                // Events are queued: this takes them without waiting.
                let room = self.batch_size - batch.len();
                self.rx.recv_many(batch, room).await;
                continue;
            }
            let now = tokio::time::Instant::now();
            if now >= until {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until((now + FILL_TICK).min(until)) => {}
                () = self.closing.cancelled() => return,
            }
        }
    }

    /// Writes and clears `batch`, retrying with backoff until it is stored.
    async fn write(&self, batch: &mut Vec<UsageEvent>) {
        if batch.is_empty() {
            return;
        }
        let mut delay = RETRY_START;
        let mut shutdown_started: Option<tokio::time::Instant> = None;
        loop {
            match self.store.insert_usage(batch).await {
                Ok(()) => break,
                Err(e) => {
                    if self.closing.is_cancelled() {
                        let started =
                            *shutdown_started.get_or_insert_with(tokio::time::Instant::now);
                        if started.elapsed() > SHUTDOWN_RETRY_BUDGET {
                            tracing::error!(error = %e, lost = batch.len(), "giving up writing usage events at shutdown");
                            break;
                        }
                    }
                    tracing::warn!(error = %e, events = batch.len(), retry_in = ?delay, "writing usage events failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        }
        self.unwritten.fetch_sub(batch.len(), Ordering::AcqRel);
        self.written.notify_waiters();
        batch.clear();
    }
}

impl Engine {
    /// The account's usage, newest first.
    pub async fn list_usage(
        &self,
        account: &AccountId,
        limit: u32,
        offset: u64,
    ) -> Result<UsagePage, ApiError> {
        self.store
            .list_usage(account, limit, offset)
            .await
            .map_err(|e| internal("listing usage", e))
    }

    /// Totals of the account's usage in `[from, to)`, grouped.
    pub async fn usage_totals(
        &self,
        account: &AccountId,
        group: UsageGroup,
        from: domain::UnixMillis,
        to: domain::UnixMillis,
    ) -> Result<Vec<UsageTotal>, ApiError> {
        self.store
            .usage_totals(account, group, from, to)
            .await
            .map_err(|e| internal("totalling usage", e))
    }

    pub fn usage_queued(&self) -> usize {
        self.usage.queued()
    }
}
