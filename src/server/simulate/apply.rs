//! Using up a client's queued fault on a request, and marking the answer it gave.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request as HttpRequest;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::fault::{Fault, Request, Site};
use super::RETRY_AFTER_SECONDS;
use crate::server::state::AppState;
use crate::server::store::{StoreResult, UNTIL_CLEARED};

/// The response header that says a fault answered: `<fault>; remaining=<N>|until-cleared`.
pub const HEADER: HeaderName = HeaderName::from_static("smartnb-simulated");

/// A fault that answered a request, and how many more answers it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The fault.
    pub fault: Fault,
    /// Answers left after this one; [`UNTIL_CLEARED`] when it never runs out.
    pub remaining: i64,
    /// For `slow`: how long the answer was held back.
    pub delay: Option<Duration>,
}

impl Taken {
    /// The value of [`HEADER`].
    pub fn header_value(&self) -> String {
        match self.remaining {
            UNTIL_CLEARED => format!("{}; remaining=until-cleared", self.fault),
            n => format!("{}; remaining={n}", self.fault),
        }
    }
}

tokio::task_local! {
    /// Where the request being answered records the fault that answered it.
    static ANSWERED: Arc<Mutex<Option<Taken>>>;
}

/// Use up the first of the client's queued faults that applies to this request: it is
/// logged and recorded for [`annotate`], and a `slow` one waits out its delay here (without
/// holding anything else up). `None` when no fault applies, which is the usual case: one
/// store read.
pub async fn take(
    state: &AppState,
    client_id: &str,
    request: Request<'_>,
) -> StoreResult<Option<Taken>> {
    // A racing request may use the last answer between the read and the take: then the
    // next applicable fault, if any, is tried.
    for _ in 0..4 {
        let queue = state.store.faults(client_id).await?;
        let found = queue.iter().find_map(|queued| {
            let fault = Fault::parse(&queued.fault)?;
            let at = queued.at.as_deref().and_then(Site::parse);
            fault.applies(&request, at).then_some((fault, queued))
        });
        let Some((fault, queued)) = found else {
            return Ok(None);
        };
        let Some(remaining) = state.store.take_fault(client_id, queued.seq).await? else {
            continue;
        };
        let delay = (fault == Fault::Slow)
            .then(|| Duration::from_millis(queued.delay_ms.unwrap_or(0).max(0) as u64));
        let taken = Taken {
            fault,
            remaining,
            delay,
        };
        let left = match remaining {
            UNTIL_CLEARED => "until cleared".to_string(),
            n => n.to_string(),
        };
        tracing::info!(
            client_id,
            fault = fault.name(),
            remaining = %left,
            "simulated fault answers this {} request",
            request.site().name()
        );
        // Outside a request (a unit test calling in directly) there is no slot: fine.
        let _ = ANSWERED.try_with(|slot| {
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(taken);
            }
        });
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        return Ok(Some(taken));
    }
    Ok(None)
}

/// Middleware: the answer to a request a fault answered carries [`HEADER`], and
/// `Retry-After` when the fault is one a client should wait out.
pub async fn annotate(request: HttpRequest, next: Next) -> Response {
    let slot = Arc::new(Mutex::new(None));
    let mut response = ANSWERED.scope(slot.clone(), next.run(request)).await;
    let taken = slot.lock().ok().and_then(|mut s| s.take());
    if let Some(taken) = taken {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&taken.header_value()) {
            headers.insert(HEADER, value);
        }
        if matches!(taken.fault, Fault::TokenUnavailable | Fault::FhirThrottled) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
    }
    response
}
