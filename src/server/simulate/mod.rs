//! Simulated failures: a client's requests answered as a server with a problem would answer
//! them (an expired token, a refused code, a 503, a delay), set per client through the debug
//! endpoint or an EHR launch, so app developers can test their error handling.
//!
//! Faults are queued per client in the store (replicas sharing a database agree on what is
//! left) and checked only once the client is known for sure: at the token endpoint after
//! client authentication, at the FHIR API once the bearer token is found, at authorize once
//! the client and redirect URI are trusted. So no one else's request ever meets a fault, and
//! no one else can use one up. The first queued fault that applies answers the request.

mod answers;
mod apply;
mod debug;
mod fault;

pub use answers::{authorize_answer, fhir_answer, token_answer, AuthorizeAnswer};
pub use apply::{annotate, take, Taken, HEADER};
pub use debug::{clear, list, set};
pub use fault::{Fault, Need, Request, Site, FAULT_NAMES};

use crate::server::clock;
use crate::server::state::AppState;
use crate::server::store::{Client, QueuedFault, StoreResult, UNTIL_CLEARED};

/// The most faults one client may have queued.
pub const MAX_QUEUED: usize = 100;
/// The largest `times`.
pub const MAX_TIMES: i64 = 1000;
/// The delay of `slow` when none is given, in milliseconds.
pub const DEFAULT_DELAY_MS: i64 = 2000;
/// The longest delay of `slow`, in milliseconds.
pub const MAX_DELAY_MS: i64 = 60_000;
/// The `Retry-After` of `token_unavailable` and `fhir_throttled`, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 2;

/// The fault a name names, or a message listing the known ones.
pub fn parse_fault(name: &str) -> Result<Fault, String> {
    Fault::parse(name).ok_or_else(|| {
        format!(
            "there is no fault {name:?}; the faults are {}",
            FAULT_NAMES.join(", ")
        )
    })
}

/// Whether the fault can ever answer one of this client's requests; why not, if not.
pub fn can_apply(fault: Fault, client: &Client) -> Result<(), String> {
    match fault.needs() {
        Some(Need::Grant(grant)) if !client.grant_types.iter().any(|g| g == grant) => Err(format!(
            "{fault} answers {} requests, and client {} did not register the {grant} grant (its grants: {}), so it would never apply",
            match grant {
                "refresh_token" => "refresh",
                _ if fault.fixed_site() == Some(Site::Authorize) => "authorize",
                _ => "code exchange",
            },
            client.client_id,
            client.grant_types.join(", ")
        )),
        Some(Need::Assertion) if client.token_endpoint_auth_method != "private_key_jwt" => Err(format!(
            "{fault} answers requests authenticated with a client assertion, and client {} authenticates with {}, so it would never apply; register a client with --auth private_key_jwt (or --backend)",
            client.client_id, client.token_endpoint_auth_method
        )),
        _ => Ok(()),
    }
}

/// A fault to queue for a client: `times` answers (0 = until cleared); `at` and `delay_ms`
/// count for `slow` only.
pub fn queued(
    fault: Fault,
    client_id: &str,
    times: i64,
    at: Option<Site>,
    delay_ms: Option<i64>,
) -> QueuedFault {
    QueuedFault {
        client_id: client_id.to_string(),
        seq: 0,
        fault: fault.name().to_string(),
        at: fault.fixed_site().or(at).map(|s| s.name().to_string()),
        times,
        remaining: if times == 0 { UNTIL_CLEARED } else { times },
        delay_ms: (fault == Fault::Slow).then(|| delay_ms.unwrap_or(DEFAULT_DELAY_MS)),
        created: clock::now(),
    }
}

/// Queue one answer of a fault for a client (an EHR launch's fault); a full queue keeps
/// what it has.
pub async fn queue_once(state: &AppState, fault: Fault, client_id: &str) -> StoreResult<()> {
    let fault = queued(fault, client_id, 1, None, None);
    state.store.add_fault(fault, MAX_QUEUED).await.map(|_| ())
}
