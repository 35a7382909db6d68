//! Simulated faults as the session knows them: their names (its own list, kept beside the
//! server's by a test), the `Smartnb-Simulated` header a faulted answer carries, and the
//! `--delay` durations of `simulate slow`.

use std::fmt;

/// One fault a smartnb server can simulate for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Its name, as the debug endpoint takes it.
    pub name: &'static str,
    /// Which requests it answers.
    pub at: &'static str,
    /// What the client gets instead of the real answer.
    pub answer: &'static str,
}

const fn fault(name: &'static str, at: &'static str, answer: &'static str) -> Fault {
    Fault { name, at, answer }
}

/// Every fault, in the order `help simulate` lists them.
pub const FAULTS: &[Fault] = &[
    fault(
        "authorize_invalid_client",
        "authorize",
        "a 400 error page: no app with that client_id (no redirect)",
    ),
    fault(
        "authorize_invalid_redirect_uri",
        "authorize",
        "a 400 error page: the redirect_uri is not registered (no redirect)",
    ),
    fault(
        "authorize_invalid_scope",
        "authorize",
        "a redirect with error=invalid_scope (and state)",
    ),
    fault(
        "authorize_access_denied",
        "authorize",
        "a redirect with error=access_denied, as if the participant pressed Deny",
    ),
    fault(
        "authorize_server_error",
        "authorize",
        "a redirect with error=server_error",
    ),
    fault(
        "token_invalid_client",
        "token",
        "401 invalid_client, WWW-Authenticate: Basic",
    ),
    fault(
        "token_invalid_grant",
        "token (code exchange)",
        "400 invalid_grant: the code is refused (not spent)",
    ),
    fault(
        "token_expired_refresh",
        "token (refresh)",
        "400 invalid_grant: the refresh token expired (it is kept)",
    ),
    fault("token_invalid_scope", "token", "400 invalid_scope"),
    fault(
        "token_replayed_jti",
        "token (client assertion)",
        "401 invalid_client: the assertion's jti was seen before",
    ),
    fault(
        "token_unavailable",
        "token",
        "503 temporarily_unavailable, Retry-After: 2",
    ),
    fault(
        "fhir_expired_token",
        "FHIR",
        "401 OperationOutcome, WWW-Authenticate: Bearer error=\"invalid_token\" (expired)",
    ),
    fault("fhir_invalid_token", "FHIR", "401 as for an unknown token"),
    fault(
        "fhir_insufficient_scope",
        "FHIR",
        "403 OperationOutcome, WWW-Authenticate: Bearer error=\"insufficient_scope\"",
    ),
    fault("fhir_server_error", "FHIR", "500 OperationOutcome"),
    fault(
        "fhir_throttled",
        "FHIR",
        "429 OperationOutcome, Retry-After: 2",
    ),
    fault(
        "slow",
        "any (--at authorize|token|fhir)",
        "the real answer, after --delay (default 2s)",
    ),
];

/// The faults' names, in the order of [`FAULTS`].
pub fn names() -> impl Iterator<Item = &'static str> {
    FAULTS.iter().map(|f| f.name)
}

/// A fault by name.
pub fn find(name: &str) -> Option<&'static Fault> {
    FAULTS.iter().find(|f| f.name == name)
}

/// The places `slow --at` names.
pub const PLACES: &[&str] = &["authorize", "token", "fhir"];

/// How many more requests a fault will answer after this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remaining {
    /// This many more (0: that was the last).
    More(u64),
    /// Every request until the faults are cleared.
    UntilCleared,
}

/// What a `Smartnb-Simulated` header said about one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulated {
    /// The fault that answered.
    pub fault: String,
    /// What is left of it, when the header said.
    pub remaining: Option<Remaining>,
}

impl Simulated {
    /// Read `<fault>; remaining=<N>|until-cleared` (anything unreadable after the name is
    /// left out, so the person still learns which fault answered).
    pub fn parse(header: &str) -> Simulated {
        let mut parts = header.split(';');
        let fault = parts.next().unwrap_or_default().trim().to_string();
        let remaining = parts.find_map(|part| {
            let (key, value) = part.split_once('=')?;
            if !key.trim().eq_ignore_ascii_case("remaining") {
                return None;
            }
            match value.trim().trim_matches('"') {
                "until-cleared" => Some(Remaining::UntilCleared),
                n => n.parse().ok().map(Remaining::More),
            }
        });
        Simulated { fault, remaining }
    }

    /// What is left, in words: `2 more`, `last one`, `until cleared`.
    pub fn left(&self) -> Option<String> {
        self.remaining.map(|r| match r {
            Remaining::More(0) => "last one".to_string(),
            Remaining::More(n) => format!("{n} more"),
            Remaining::UntilCleared => "until cleared".to_string(),
        })
    }
}

impl fmt::Display for Simulated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "simulated: {}", self.fault)?;
        if let Some(left) = self.left() {
            write!(f, " ({left})")?;
        }
        Ok(())
    }
}

/// Milliseconds in a delay written `2s`, `500ms`, `1.5s`, `1m` or `2` (seconds); `None`
/// when it is not one, or not a whole number of milliseconds.
pub fn parse_delay(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" | "min" => 60_000,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut ms = whole.checked_mul(scale)?;
    // The fraction's digits, each worth a tenth of the one before.
    let mut worth = scale;
    for digit in fraction.chars() {
        let d = u64::from(digit.to_digit(10)?);
        if !worth.is_multiple_of(10) {
            // Finer than a millisecond: only zeros may follow.
            if d != 0 {
                return None;
            }
            continue;
        }
        worth /= 10;
        ms = ms.checked_add(d * worth)?;
    }
    Some(ms)
}

/// A delay in milliseconds as `2s`, `1.5s` or `500ms`.
pub fn delay_words(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let text = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{}s", text.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_read_as_the_annotation_says_them() {
        let line = |h: &str| Simulated::parse(h).to_string();
        assert_eq!(
            line("fhir_expired_token; remaining=2"),
            "simulated: fhir_expired_token (2 more)"
        );
        assert_eq!(
            line("token_unavailable; remaining=0"),
            "simulated: token_unavailable (last one)"
        );
        assert_eq!(
            line("slow;remaining=until-cleared"),
            "simulated: slow (until cleared)"
        );
        assert_eq!(line("slow; remaining=soon"), "simulated: slow");
        assert_eq!(line("fhir_throttled"), "simulated: fhir_throttled");
        assert_eq!(
            Simulated::parse(" a ; x=1; Remaining=\"3\"").remaining,
            Some(Remaining::More(3))
        );
    }

    #[test]
    fn delays_in_seconds_and_milliseconds() {
        assert_eq!(parse_delay("2s"), Some(2000));
        assert_eq!(parse_delay("500ms"), Some(500));
        assert_eq!(parse_delay("1.5s"), Some(1500));
        assert_eq!(parse_delay(".25s"), Some(250));
        assert_eq!(parse_delay("3"), Some(3000));
        assert_eq!(parse_delay("1m"), Some(60_000));
        assert_eq!(parse_delay("1.0010s"), Some(1001));
        assert_eq!(parse_delay("1.0005s"), None);
        assert_eq!(parse_delay("1.5ms"), None);
        assert_eq!(parse_delay("2 s"), Some(2000));
        for bad in ["", "s", ".", "1.2.3s", "-1s", "2h", "fast", "1e3ms"] {
            assert_eq!(parse_delay(bad), None, "{bad:?}");
        }
        assert_eq!(parse_delay("99999999999999999999s"), None);
    }

    #[test]
    fn delays_in_words() {
        assert_eq!(delay_words(2000), "2s");
        assert_eq!(delay_words(1500), "1.5s");
        assert_eq!(delay_words(1001), "1.001s");
        assert_eq!(delay_words(500), "500ms");
    }

    #[test]
    fn every_fault_is_named_once_and_slow_is_last() {
        let mut names: Vec<&str> = names().collect();
        assert_eq!(names.len(), 17);
        assert_eq!(names.last(), Some(&"slow"));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 17);
        assert!(find("fhir_throttled").is_some() && find("clear").is_none());
    }
}
