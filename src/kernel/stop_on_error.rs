//! Stop-on-error: which execute requests are aborted after a failed cell whose request
//! asked for it (JupyterLab's Run All and nbclient do).
//!
//! A request of the same client session is aborted when it was read before the error
//! reply was sent (it was queued), or when its header's `date` is earlier than that reply
//! and it arrives within a short window after it: a cell sent together with the failed one
//! that reached the kernel a moment late. A request the client made after the error reply
//! (`date` later) runs, so a client that sends its next cell as soon as it has the reply
//! and the idle (jupyter_client, the official kernel test suite, nbclient, `jupyter
//! console`) is never refused. The window bounds the harm of a client clock that runs
//! behind the kernel's. Other sessions' requests are never aborted.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jupyter_protocol::JupyterMessage;

use super::wire::Request;

/// How long after an error late requests made before it are still aborted, unless
/// `SMARTNB_STOP_ON_ERROR_WINDOW_MS` says.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);

/// The environment variable that sets the window, in milliseconds.
pub const WINDOW_VARIABLE: &str = "SMARTNB_STOP_ON_ERROR_WINDOW_MS";

/// The window from the environment, or the default (with a warning when unreadable).
pub fn window_from_env() -> Duration {
    let Ok(text) = std::env::var(WINDOW_VARIABLE) else {
        return DEFAULT_WINDOW;
    };
    match text.trim().parse::<u64>() {
        Ok(ms) => Duration::from_millis(ms),
        Err(_) => {
            tracing::warn!(
                "{WINDOW_VARIABLE}={text:?} is not a number of milliseconds; using {} ms",
                DEFAULT_WINDOW.as_millis()
            );
            DEFAULT_WINDOW
        }
    }
}

/// When an error reply was sent, on both clocks.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    /// The monotonic clock, compared with when requests were read.
    pub instant: Instant,
    /// Microseconds since the Unix epoch, compared with the dates clients put in headers.
    pub micros: i64,
}

impl Moment {
    /// Now.
    pub fn now() -> Self {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        Moment {
            instant: Instant::now(),
            micros,
        }
    }
}

/// One session's last error.
#[derive(Debug)]
struct Failure {
    session: String,
    replied: Moment,
}

/// The sessions whose cells failed, and when.
#[derive(Debug)]
pub struct StopOnError {
    window: Duration,
    failures: Vec<Failure>,
}

impl StopOnError {
    /// Late requests are aborted for `window` after an error.
    pub fn new(window: Duration) -> Self {
        StopOnError {
            window,
            failures: Vec::new(),
        }
    }

    /// A cell of `parent`'s session failed; its error reply was sent at `replied`.
    pub fn failed(&mut self, parent: &JupyterMessage, replied: Moment) {
        let session = &parent.header.session;
        self.failures.retain(|f| f.session != *session);
        self.failures.push(Failure {
            session: session.clone(),
            replied,
        });
    }

    /// Whether `request`, an execute_request, is aborted.
    pub fn aborts(&self, request: &Request) -> bool {
        let made = request.message.header.date.timestamp_micros();
        self.failures.iter().any(|f| {
            f.session == request.session()
                && (request.received <= f.replied.instant
                    || (made < f.replied.micros
                        && request.received < f.replied.instant + self.window))
        })
    }

    /// Nothing is queued: errors older than the window abort nothing any more.
    pub fn forget_before(&mut self, now: Instant) {
        self.failures
            .retain(|f| now < f.replied.instant + self.window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupyter_protocol::ExecuteRequest;
    use serde_json::json;

    /// An execute request of `session`, made `made` µs after the error reply (negative:
    /// before) and read at `received`.
    fn request(session: &str, made: i64, replied: Moment, received: Instant) -> Request {
        let mut message: JupyterMessage = ExecuteRequest::new("vars".into()).into();
        message.header.session = session.into();
        // The header's date type is chrono's, which this crate does not name: set it as
        // a client sends it, in RFC 3339.
        let date = time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(replied.micros + made) * 1000,
        )
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
        let mut header = serde_json::to_value(&message.header).unwrap();
        header["date"] = json!(date);
        message.header = serde_json::from_value(header).unwrap();
        Request {
            message,
            content: json!({}),
            problem: None,
            received,
        }
    }

    #[test]
    fn queued_and_late_requests_of_the_session_are_aborted() {
        let replied = Moment::now();
        let failed = request("s", -10, replied, replied.instant).message;
        let mut stop = StopOnError::new(Duration::from_secs(1));
        stop.failed(&failed, replied);
        let ms = Duration::from_millis;
        let soon = replied.instant + ms(5);
        // Queued before the reply, whatever its date.
        assert!(stop.aborts(&request("s", 1_000_000, replied, replied.instant)));
        // Made before the reply, arriving late but within the window.
        assert!(stop.aborts(&request("s", -1, replied, soon)));
        assert!(!stop.aborts(&request("s", -1, replied, replied.instant + ms(1000))));
        // Made after the reply: the client had seen it.
        assert!(!stop.aborts(&request("s", 1, replied, soon)));
        // Another session.
        assert!(!stop.aborts(&request("other", -1, replied, soon)));

        stop.forget_before(replied.instant + ms(999));
        assert!(stop.aborts(&request("s", -1, replied, soon)));
        stop.forget_before(replied.instant + ms(1000));
        assert!(!stop.aborts(&request("s", -1, replied, soon)));
    }

    #[test]
    fn a_later_error_replaces_the_sessions_earlier_one() {
        let first = Moment::now();
        let mut stop = StopOnError::new(Duration::from_secs(1));
        let failed = request("s", 0, first, first.instant).message;
        stop.failed(&failed, first);
        let second = Moment {
            instant: first.instant + Duration::from_secs(5),
            micros: first.micros + 5_000_000,
        };
        stop.failed(&failed, second);
        assert_eq!(stop.failures.len(), 1);
        assert!(stop.aborts(&request("s", -1, second, second.instant)));
    }
}
