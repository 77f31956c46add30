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
    /// the lowest scheduling priority there is (Linux: `SCHED_IDLE`, and nice 19 should
    /// that be refused); shutdown waits for it as for any task. Threads it starts (a SQLite
    /// connection's worker) inherit that priority. For background work that must never
    /// hold up a request: a request thread that wakes preempts an idle-policy thread at
    /// once, where a nice-19 one first finishes its time slice; and on the request
    /// threads, every lock shared with such a thread would be one it may hold while it waits
    /// for the core. Falls back to `spawn` when no thread or runtime can be had.
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

/// The nice value of background threads where the idle policy is refused: the lowest
/// priority, as for SQLite's workers.
#[cfg(target_os = "linux")]
const BACKGROUND_NICE: i32 = 19;

/// `SCHED_IDLE` for the calling thread, then nice 19 (setting the policy resets the nice
/// value; it matters only if the policy was refused). Linux applies both to the calling
/// thread alone.
fn lower_this_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadSchedulePolicy,
        };
        if let Err(e) = set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        ) {
            tracing::debug!(error = ?e, "SCHED_IDLE refused; the background thread runs at nice 19");
        }
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
        tasks.spawn_low_priority_thread("test-idle", async move {
            // A thread it starts inherits the policy too (as a SQLite connection's worker).
            let child = std::thread::spawn(thread_priority::unix::thread_schedule_policy)
                .join()
                .ok()
                .and_then(Result::ok);
            let _ = tx.send((
                thread_priority::unix::thread_schedule_policy().ok(),
                child,
                rustix::process::getpriority_process(None).ok(),
            ));
        });
        let idle = thread_priority::unix::ThreadSchedulePolicy::Normal(
            thread_priority::unix::NormalThreadSchedulePolicy::Idle,
        );
        let (policy, child, nice) = rx.await.unwrap();
        assert_eq!(policy, Some(idle));
        assert_eq!(child, Some(idle));
        assert_eq!(nice, Some(BACKGROUND_NICE));
        tasks.drain().await;
    }
}
