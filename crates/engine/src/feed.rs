//! The change feed: what one process changes, every other running process applies within a
//! poll interval — the `switchyard admin` CLI beside a running server today, nodes sharing
//! Postgres later. One query per interval, never one per request.

use crate::Engine;
use domain::{Change, ChangeKind, UnixMillis};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Each poll re-reads this far back, so a change committed late (or stamped by a clock a
/// little behind) is still seen; ids already applied are skipped.
const OVERLAP: Duration = Duration::from_secs(30);
/// Changes older than this are deleted (every server has long since applied them).
const RETENTION_SECS: i64 = 24 * 3600;
/// Polls between prunes.
const PRUNE_EVERY: u32 = 600;

/// Changes applied recently, by id, with their time (pruned past the overlap).
#[derive(Default)]
pub struct Feed {
    seen: Mutex<HashMap<String, i64>>,
}

impl Engine {
    /// Records a change for the other processes; a failure is logged, not fatal: the change
    /// itself is already stored, and other processes see it at their next restart.
    pub(crate) async fn publish(&self, kind: ChangeKind) {
        let change = Change {
            id: domain::UsageId::generate().0,
            origin: self.node_id.clone(),
            kind,
            created_at: UnixMillis::now(),
        };
        if let Err(e) = self.store.record_change(&change).await {
            tracing::error!(error = %e, "recording a change for other processes failed");
        }
    }

    /// Starts polling the feed every `interval` until shutdown.
    pub(crate) fn start_feed(self: &Arc<Self>, interval: Duration) {
        let engine = Arc::downgrade(self);
        let stop = self.tasks.shutdown_signal();
        let mut since = UnixMillis::now();
        self.tasks.spawn(async move {
            let mut polls: u32 = 0;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                let started = UnixMillis::now();
                let window = since.plus_secs(-(OVERLAP.as_secs() as i64));
                match engine.store.changes_since(window).await {
                    Ok(changes) => {
                        for c in changes {
                            engine.apply_change(c).await;
                        }
                        since = started;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the change feed failed; retrying")
                    }
                }
                engine.forget_seen_before(window);
                polls = polls.wrapping_add(1);
                if polls.is_multiple_of(PRUNE_EVERY) {
                    if let Err(e) = engine
                        .store
                        .prune_changes(started.plus_secs(-RETENTION_SECS))
                        .await
                    {
                        tracing::warn!(error = %e, "pruning the change feed failed");
                    }
                }
            }
        });
    }

    fn forget_seen_before(&self, t: UnixMillis) {
        if let Ok(mut seen) = self.feed.seen.lock() {
            seen.retain(|_, at| *at >= t.0);
        }
    }

    /// Applies one change made elsewhere (once).
    pub(crate) async fn apply_change(&self, c: Change) {
        if c.origin == self.node_id {
            return;
        }
        {
            let Ok(mut seen) = self.feed.seen.lock() else {
                return;
            };
            if seen.insert(c.id.clone(), c.created_at.0).is_some() {
                return;
            }
        }
        tracing::debug!(change = %c.id, "applying a change from another process");
        match c.kind {
            ChangeKind::Key(hash) => self.keys.invalidate_key(&hash),
            ChangeKind::Account(account) => self.keys.invalidate_account(&account),
            ChangeKind::Plans => match crate::plans::PlanBook::load(self.store.as_ref()).await {
                Ok(book) => self.plans.replace(book),
                Err(e) => tracing::error!(error = %e, "reloading plans failed"),
            },
            ChangeKind::Credit {
                account,
                amount,
                version,
            } => {
                self.wallets.apply_foreign(&account, amount, version).await;
            }
        }
    }
}
