//! Unix times in words, for token claims: "expires in 59 min", "issued 1 min ago".

use time::macros::format_description;
use time::OffsetDateTime;

/// How far `t` is from `now`, in the largest unit that keeps it readable (rounded down):
/// "in 59 min", "3 s ago", "in 2 h 5 min", "40 days ago", "just now".
pub fn relative(t: i64, now: i64) -> String {
    let gap = t.saturating_sub(now);
    let amount = span(gap.unsigned_abs());
    match gap {
        0 => "just now".to_string(),
        g if g > 0 => format!("in {amount}"),
        _ => format!("{amount} ago"),
    }
}

fn span(seconds: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    match seconds {
        s if s < MINUTE => format!("{s} s"),
        s if s < 2 * HOUR => format!("{} min", s / MINUTE),
        s if s < 2 * DAY => match (s % HOUR) / MINUTE {
            0 => format!("{} h", s / HOUR),
            m => format!("{} h {m} min", s / HOUR),
        },
        s => format!("{} days", s / DAY),
    }
}

/// A claim's time in words, phrased for the claim: `exp` "expires in 59 min" (or "expired
/// 2 min ago"), `iat` "issued 1 min ago", `auth_time` "signed in 3 min ago", `nbf`
/// "valid from …"; `None` for a claim that is not a time.
pub fn claim_words(claim: &str, t: i64, now: i64) -> Option<String> {
    let when = relative(t, now);
    Some(match claim {
        "exp" if t > now => format!("expires {when}"),
        "exp" => format!("expired {when}"),
        "iat" => format!("issued {when}"),
        "auth_time" => format!("signed in {when}"),
        "nbf" if t > now => format!("valid {when}"),
        "nbf" => format!("valid since {when}"),
        _ => return None,
    })
}

/// `2024-05-30 16:26:40 UTC`, or the number itself when it is out of range.
pub fn utc(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_words() {
        let now = 1_700_000_000;
        assert_eq!(relative(now + 3599, now), "in 59 min");
        assert_eq!(relative(now - 60, now), "1 min ago");
        assert_eq!(relative(now - 5, now), "5 s ago");
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(now + 3 * 3600 + 120, now), "in 3 h 2 min");
        assert_eq!(relative(now + 3 * 3600, now), "in 3 h");
        assert_eq!(relative(now - 40 * 86_400, now), "40 days ago");
        assert!(relative(i64::MIN, i64::MAX).ends_with("days ago"));
    }

    #[test]
    fn claims_are_phrased_for_what_they_mean() {
        let now = 1_700_000_000;
        assert_eq!(
            claim_words("exp", now + 3599, now).unwrap(),
            "expires in 59 min"
        );
        assert_eq!(
            claim_words("exp", now - 120, now).unwrap(),
            "expired 2 min ago"
        );
        assert_eq!(
            claim_words("iat", now - 60, now).unwrap(),
            "issued 1 min ago"
        );
        assert_eq!(
            claim_words("auth_time", now - 180, now).unwrap(),
            "signed in 3 min ago"
        );
        assert_eq!(claim_words("sub", now, now), None);
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(i64::MAX), i64::MAX.to_string());
    }
}
