//! Limit math. GCRA (the generic cell rate algorithm) gives smooth per-minute limits: a full
//! minute's allowance may be used at once, after which requests are admitted one interval
//! apart — never a fixed window's double burst at a window edge.

/// One GCRA limiter's state: the theoretical arrival time, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gcra {
    tat_ms: i64,
}

/// What a limiter says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// The limit per minute.
    pub limit: u32,
    /// Units that could still be admitted right now (after this one, if allowed).
    pub remaining: u32,
    /// Seconds until the allowance is whole again.
    pub reset_secs: u64,
    /// When refused: whole seconds to wait before `cost` units fit.
    pub retry_after_secs: u64,
}

const MINUTE_MS: i64 = 60_000;

impl Gcra {
    /// Tries to admit `cost` units at `now_ms` under `per_minute`. A refused request changes
    /// nothing. A `cost` larger than the whole allowance is admitted when the bucket is full,
    /// so one large request can never be refused forever.
    pub fn check(&mut self, now_ms: i64, per_minute: u32, cost: u32) -> RateDecision {
        let limit = per_minute.max(1);
        let interval = MINUTE_MS as f64 / f64::from(limit);
        let tolerance = MINUTE_MS as f64 - interval;
        let tat = self.tat_ms.max(now_ms) as f64;
        let increment = interval * f64::from(cost.min(limit).max(1));
        let new_tat = tat + increment;
        let allow_at = new_tat - MINUTE_MS as f64;
        let allowed = allow_at <= now_ms as f64;
        if allowed {
            self.tat_ms = new_tat.ceil() as i64;
        }
        let tat_after = if allowed { new_tat } else { tat };
        let used = (tat_after - now_ms as f64).max(0.0);
        let remaining = ((tolerance + interval - used) / interval).floor().max(0.0) as u32;
        let reset_secs = (used / 1000.0).ceil() as u64;
        let retry_after_secs = if allowed {
            0
        } else {
            ((allow_at - now_ms as f64) / 1000.0).ceil().max(1.0) as u64
        };
        RateDecision {
            allowed,
            limit,
            remaining: remaining.min(limit),
            reset_secs,
            retry_after_secs,
        }
    }

    /// The state at `now_ms` without admitting anything (for responses that consume nothing).
    pub fn peek(&self, now_ms: i64, per_minute: u32) -> RateDecision {
        let mut copy = *self;
        let mut d = copy.check(now_ms, per_minute, 1);
        if d.allowed {
            d.remaining = d.remaining.saturating_add(1).min(d.limit);
        }
        d.allowed = true;
        d.retry_after_secs = 0;
        d
    }

    /// Whole seconds until one more unit would be admitted.
    pub fn wait_secs(&self, now_ms: i64, per_minute: u32) -> u64 {
        let mut copy = *self;
        let d = copy.check(now_ms, per_minute, 1);
        if d.allowed {
            0
        } else {
            d.retry_after_secs
        }
    }

    /// Counts `cost` units already spent (e.g. tokens known only after the answer), even past
    /// the limit; later requests wait until the debt is paid off.
    pub fn charge(&mut self, now_ms: i64, per_minute: u32, cost: u64) {
        let interval = MINUTE_MS as f64 / f64::from(per_minute.max(1));
        let tat = self.tat_ms.max(now_ms) as f64;
        self.tat_ms = (tat + interval * cost as f64).ceil() as i64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_per_minute_admits_twenty_then_one_every_three_seconds() {
        let mut g = Gcra::default();
        let t0 = 1_000_000;
        for i in 0..20 {
            let d = g.check(t0, 20, 1);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 19 - i);
        }
        let refused = g.check(t0, 20, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 3);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_secs, 60);
        assert!(
            !g.check(t0 + 2_999, 20, 1).allowed,
            "not before Retry-After"
        );
        let later = g.check(t0 + 3_000, 20, 1);
        assert!(later.allowed);
        assert!(
            !g.check(t0 + 3_000, 20, 1).allowed,
            "one per interval after the burst"
        );
    }

    #[test]
    fn no_double_burst_at_a_window_edge() {
        // A fixed window admits 60 just before its boundary and 60 more just after.
        let mut g = Gcra::default();
        let before_edge = 59_900;
        let after_edge = 60_100;
        let first = (0..60)
            .filter(|_| g.check(before_edge, 60, 1).allowed)
            .count();
        let second = (0..60)
            .filter(|_| g.check(after_edge, 60, 1).allowed)
            .count();
        assert_eq!(first, 60);
        assert_eq!(second, 0, "the allowance refills smoothly, one per second");
        assert_eq!(
            (0..60)
                .filter(|_| g.check(before_edge + 1_000, 60, 1).allowed)
                .count(),
            1
        );
    }

    #[test]
    fn charged_tokens_delay_later_requests() {
        let mut g = Gcra::default();
        let t0 = 0;
        assert!(g.check(t0, 1000, 1).allowed);
        g.charge(t0, 1000, 5000);
        let d = g.check(t0 + 1000, 1000, 1);
        assert!(!d.allowed);
        assert!(d.retry_after_secs >= 240, "{}", d.retry_after_secs);
    }
}
