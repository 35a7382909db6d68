//! Wall-clock time as Unix seconds, and its HTTP-date spelling.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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
    fn fhir_instant_is_rfc3339_utc() {
        assert_eq!(fhir_instant(1_530_812_484), "2018-07-05T17:41:24Z");
    }
}
