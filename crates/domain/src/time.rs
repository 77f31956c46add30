//! Instants as milliseconds since the Unix epoch: the one representation stored in every
//! backend, rendered as RFC 3339 only at the edge.

use serde::{Deserialize, Serialize};
use std::time::Duration;
#[cfg(not(target_os = "linux"))]
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMillis(pub i64);

/// The wall clock, as time since the Unix epoch, read from the kernel's coarse clock where
/// there is one (Linux: `CLOCK_REALTIME_COARSE`, a few nanoseconds from the vDSO against a
/// few dozen for the precise clock, and as fine as the scheduler tick, 1–4 ms). A request
/// reads the wall clock several times (its event's time and id, limit windows, expiry) and
/// none of them needs better than milliseconds; durations are measured with `Instant`.
pub fn wall_clock() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        match (u64::try_from(t.tv_sec), u32::try_from(t.tv_nsec)) {
            (Ok(secs), Ok(nanos)) => Duration::new(secs, nanos),
            _ => Duration::ZERO,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// A monotonic clock for coarse intervals (idle connections, seconds-long timeouts): the
/// time since an unspecified start, read from `CLOCK_MONOTONIC_COARSE` on Linux (as cheap as
/// `wall_clock`, as fine as the scheduler tick); elsewhere from `Instant`.
pub fn monotonic_coarse() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
        match (u64::try_from(t.tv_sec), u32::try_from(t.tv_nsec)) {
            (Ok(secs), Ok(nanos)) => Duration::new(secs, nanos),
            _ => Duration::ZERO,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}

impl UnixMillis {
    pub fn now() -> Self {
        Self(i64::try_from(wall_clock().as_millis()).unwrap_or(i64::MAX))
    }

    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// RFC 3339 with millisecond precision, e.g. `2026-05-15T06:23:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match ::time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => {
                let fmt = ::time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                );
                t.format(&fmt).unwrap_or_default()
            }
            Err(_) => String::new(),
        }
    }

    /// Parses RFC 3339 (any offset) into milliseconds.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let t = ::time::OffsetDateTime::parse(s, &::time::format_description::well_known::Rfc3339)
            .ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Self)
    }

    /// The first instant of this instant's calendar month, in UTC: where monthly spend resets.
    /// Plain integer arithmetic (the day of the month from the proleptic Gregorian calendar's
    /// 400-year cycle): a request asks for it several times.
    pub fn month_start(self) -> UnixMillis {
        const DAY_MS: i64 = 86_400_000;
        let days = self.0.div_euclid(DAY_MS);
        // Days since 0000-03-01, so that leap days fall at the end of each year.
        let z = days + 719_468;
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153;
        let day_of_month = day_of_year - (153 * month_from_march + 2) / 5;
        UnixMillis((days - day_of_month).saturating_mul(DAY_MS))
    }

    /// Whole seconds since the epoch, as OpenAI's `created` fields use.
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_wall_clock_keeps_to_the_precise_one() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let coarse = wall_clock();
        let after = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        // Behind by at most a scheduler tick (4 ms at 250 Hz), never ahead.
        assert!(coarse <= after, "{coarse:?} after {after:?}");
        assert!(before.saturating_sub(coarse) < Duration::from_millis(20));
    }

    #[test]
    fn rfc3339_round_trips_at_millisecond_precision() {
        let t = UnixMillis(1_747_290_180_123);
        let s = t.to_rfc3339();
        assert_eq!(s, "2025-05-15T06:23:00.123Z");
        assert_eq!(UnixMillis::parse_rfc3339(&s), Some(t));
        assert_eq!(
            UnixMillis::parse_rfc3339("2025-05-15T08:23:00.123+02:00"),
            Some(t)
        );
        assert_eq!(UnixMillis::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn month_start_agrees_with_the_calendar_everywhere() {
        let by_calendar = |t: UnixMillis| {
            let at = ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0) * 1_000_000)
                .unwrap();
            let first = at.date().replace_day(1).unwrap().midnight().assume_utc();
            UnixMillis(i64::try_from(first.unix_timestamp_nanos() / 1_000_000).unwrap())
        };
        // Every day from 1900 to 2200 (leap years, centuries, 2000), at its first and last
        // millisecond and at noon, and instants before 1970.
        let day = 86_400_000i64;
        let mut t = -2_208_988_800_000i64;
        while t < 7_258_118_400_000 {
            for at in [t, t + day / 2, t + day - 1] {
                assert_eq!(
                    UnixMillis(at).month_start(),
                    by_calendar(UnixMillis(at)),
                    "{at}"
                );
            }
            t += day;
        }
    }

    #[test]
    fn month_start_is_midnight_utc_on_the_first() {
        let t = UnixMillis::parse_rfc3339("2026-11-23T02:28:57.5Z").unwrap();
        assert_eq!(t.month_start().to_rfc3339(), "2026-11-01T00:00:00.000Z");
        let first = UnixMillis::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
        assert_eq!(first.month_start(), first);
    }
}
