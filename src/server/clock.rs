//! Wall-clock time as Unix seconds, and its HTTP-date spelling.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A source of Unix time: the system's, or one a test moves by hand.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that stands at `start` until `advance` moves it; clones share the time.
    pub fn manual(start: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(start))),
        }
    }

    /// Seconds since the Unix epoch, by this clock.
    pub fn now(&self) -> i64 {
        match &self.manual {
            Some(time) => time.load(Ordering::SeqCst),
            None => now(),
        }
    }

    /// Move a manual clock forward (a system clock ignores this).
    pub fn advance(&self, seconds: i64) {
        if let Some(time) = &self.manual {
            time.fetch_add(seconds, Ordering::SeqCst);
        }
    }
}

/// `Thu, 05 Jul 2018 17:41:24 GMT` for a Unix time (clamped to the epoch and year 9999).
pub fn http_date(unix: i64) -> String {
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z, the last HTTP date there is
    let secs = unix.clamp(0, MAX) as u64;
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// `2018-07-05T17:41:24Z` for a Unix time, as FHIR `instant` wants it.
pub fn fhir_instant(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_matches_the_seed_spelling() {
        assert_eq!(http_date(1_530_812_484), "Thu, 05 Jul 2018 17:41:24 GMT");
        assert_eq!(http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = Clock::manual(1_000);
        let twin = clock.clone();
        assert_eq!(clock.now(), 1_000);
        twin.advance(60);
        assert_eq!(clock.now(), 1_060);
        let system = Clock::system();
        system.advance(1_000_000);
        assert!((system.now() - now()).abs() < 5);
    }

    #[test]
    fn fhir_instant_is_rfc3339_utc() {
        assert_eq!(fhir_instant(1_530_812_484), "2018-07-05T17:41:24Z");
    }
}
