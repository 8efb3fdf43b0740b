//! Local wall-clock time for schedules, derived from the monotonic `Instant`s the core runs on.

use std::time::Instant;

use chrono::{Duration, NaiveDateTime};

/// A monotonic instant paired with the UTC time it corresponds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    /// The monotonic instant.
    pub instant: Instant,
    /// UTC at that instant.
    pub utc: NaiveDateTime,
}

impl WallClock {
    /// The clock as it reads now.
    pub fn now() -> WallClock {
        WallClock {
            instant: Instant::now(),
            utc: chrono::Utc::now().naive_utc(),
        }
    }

    /// UTC at `now`, to the millisecond.
    pub fn utc_at(&self, now: Instant) -> chrono::DateTime<chrono::Utc> {
        let exact = self.local(now, 0).and_utc();
        chrono::DateTime::from_timestamp_millis(exact.timestamp_millis()).unwrap_or(exact)
    }

    /// Local time at `now` for a place `utc_offset_s` seconds east of UTC.
    pub fn local(&self, now: Instant, utc_offset_s: i32) -> NaiveDateTime {
        let elapsed = match now.checked_duration_since(self.instant) {
            Some(ahead) => Duration::from_std(ahead).unwrap_or_default(),
            None => -Duration::from_std(self.instant - now).unwrap_or_default(),
        };
        self.utc + elapsed + Duration::seconds(i64::from(utc_offset_s))
    }
}
