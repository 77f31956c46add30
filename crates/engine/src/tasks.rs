//! The one place background work is started, so graceful shutdown can wait for all of it.

use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Tasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `fut` in the background; shutdown waits for it.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(fut);
    }

    /// Runs `fut` on a thread of its own (named `name`), in a single-threaded runtime, at
    /// the lowest scheduling priority there is (Linux); shutdown waits for it as for any
    /// task. For work that talks to threads of the lowest priority itself (sqlx's SQLite
    /// workers): on the request threads, every lock shared with such a thread is one it may
    /// hold while the scheduler leaves it waiting for a core, and the request thread then
    /// waits with it. Falls back to `spawn` when no thread or runtime can be had.
    pub fn spawn_low_priority_thread<F>(&self, name: &str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::warn!(error = %e, thread = name, "no runtime for a background thread; running it on the request threads");
                self.spawn(fut);
                return;
            }
        };
        // The future comes back out of the slot if the thread cannot be started.
        let slot = Arc::new(Mutex::new(Some(fut)));
        let theirs = slot.clone();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let started = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                lower_this_thread_priority();
                let fut = theirs.lock().ok().and_then(|mut f| f.take());
                if let Some(fut) = fut {
                    runtime.block_on(fut);
                }
                let _ = done_tx.send(());
            });
        match started {
            Ok(_) => self.spawn(async move {
                let _ = done_rx.await;
            }),
            Err(e) => {
                tracing::warn!(error = %e, thread = name, "no background thread; running it on the request threads");
                if let Some(fut) = slot.lock().ok().and_then(|mut f| f.take()) {
                    self.spawn(fut);
                }
            }
        }
    }

    /// Fires when shutdown begins; long-running loops watch it.
    pub fn shutdown_signal(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Signals shutdown and waits for every task to finish.
    pub async fn drain(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// The nice value of background threads: the lowest priority, as for SQLite's workers.
#[cfg(target_os = "linux")]
const BACKGROUND_NICE: i32 = 19;

/// Linux applies `setpriority` with no pid to the calling thread alone.
fn lower_this_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::process::setpriority_process(None, BACKGROUND_NICE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn drain_waits_for_a_background_thread() {
        let tasks = Tasks::new();
        let done = Arc::new(AtomicBool::new(false));
        let (flag, stop) = (done.clone(), tasks.shutdown_signal());
        tasks.spawn_low_priority_thread("test-bg", async move {
            stop.cancelled().await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            flag.store(true, Ordering::Release);
        });
        tasks.drain().await;
        assert!(done.load(Ordering::Acquire));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn background_thread_runs_at_the_lowest_priority() {
        let tasks = Tasks::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tasks.spawn_low_priority_thread("test-nice", async move {
            let _ = tx.send(rustix::process::getpriority_process(None).ok());
        });
        assert_eq!(rx.await.ok().flatten(), Some(BACKGROUND_NICE));
        tasks.drain().await;
    }
}
