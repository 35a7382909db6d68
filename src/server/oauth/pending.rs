//! Authorization requests that passed validation and wait for the participant: login,
//! patient choice and consent refer to them by an unguessable id, so the pages never carry
//! (and cannot tamper with) the client's parameters.

use std::sync::Mutex;

use crate::server::bounded::{Bounded, Bounds, Weigh};
use crate::server::clock;

/// How long a participant has to finish the pages.
pub const PENDING_LIFETIME: i64 = 30 * 60;
/// The most requests that wait at once, and the most bytes they hold: beyond either the
/// oldest are dropped. Typical requests (580 bytes each) fill the count first, at 28 MiB;
/// requests with every parameter at its limit (7,656 bytes, see [`super::limits`]) fill
/// the bytes first, at 4,382 requests.
pub const PENDING_BOUNDS: Bounds = Bounds {
    entries: 50_000,
    bytes: 32 * 1024 * 1024,
};

/// A validated authorize request.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAuthorization {
    /// Its id in /oauth/consent?request=….
    pub id: String,
    /// The client asking.
    pub client_id: String,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// Whether the request named the redirect URI itself.
    pub redirect_uri_given: bool,
    /// Scopes asked for (already checked against the client's).
    pub scope: String,
    /// The client's state, returned verbatim.
    pub state: String,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// The user it was bound to when first seen logged in.
    pub username: Option<String>,
    /// The patient chosen.
    pub patient_id: Option<String>,
    /// Unix time it was created.
    pub created: i64,
}

impl Weigh for PendingAuthorization {
    fn heap_bytes(&self) -> usize {
        self.id.heap_bytes()
            + self.client_id.heap_bytes()
            + self.redirect_uri.heap_bytes()
            + self.scope.heap_bytes()
            + self.state.heap_bytes()
            + self.code_challenge.heap_bytes()
            + self.username.heap_bytes()
            + self.patient_id.heap_bytes()
    }
}

/// The table of pending requests, within [`PENDING_BOUNDS`] (or others, for tests).
pub struct Pending {
    table: Mutex<Bounded<PendingAuthorization>>,
}

impl Default for Pending {
    fn default() -> Self {
        Pending::with_bounds(PENDING_BOUNDS)
    }
}

fn live(request: &PendingAuthorization, now: i64) -> bool {
    request.created + PENDING_LIFETIME > now
}

impl Pending {
    /// An empty table within these bounds.
    pub fn with_bounds(bounds: Bounds) -> Pending {
        Pending {
            table: Mutex::new(Bounded::new(bounds)),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Bounded<PendingAuthorization>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep a request; while the table is at its bounds the oldest go first (expired ones
    /// are the oldest), each in O(1).
    pub fn insert(&self, request: PendingAuthorization) {
        self.table().insert(request.id.clone(), request);
    }

    /// A live request by id.
    pub fn get(&self, id: &str) -> Option<PendingAuthorization> {
        let now = clock::now();
        self.table().get(id).filter(|r| live(r, now)).cloned()
    }

    /// Replace a request with an updated copy (it keeps its place in the eviction order).
    pub fn update(&self, request: PendingAuthorization) {
        let id = request.id.clone();
        self.table().update(&id, |slot| *slot = request);
    }

    /// Forget requests older than [`PENDING_LIFETIME`] at Unix time `now`; how many.
    pub fn sweep(&self, now: i64) -> usize {
        self.table().retain(|r| live(r, now))
    }

    /// How many requests are waiting.
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// Whether no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the waiting requests hold (strings, structs and table slots; see
    /// [`crate::server::bounded`]).
    pub fn bytes_held(&self) -> usize {
        self.table().bytes_held()
    }

    /// Remove and return a request (it is answered exactly once).
    pub fn take(&self, id: &str) -> Option<PendingAuthorization> {
        let now = clock::now();
        self.table().remove(id).filter(|r| live(r, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::bounded::Bounded;
    use crate::server::oauth::limits::{authorize_limit, MAX_URI};
    use crate::server::scopes::MAX_SCOPE_BYTES;

    /// A request with every kept parameter at its limit.
    fn largest(n: usize) -> PendingAuthorization {
        PendingAuthorization {
            id: format!("{n:032x}"),
            client_id: uuid::Uuid::new_v4().to_string(),
            redirect_uri: "r".repeat(MAX_URI),
            redirect_uri_given: true,
            scope: "s".repeat(MAX_SCOPE_BYTES),
            state: "t".repeat(authorize_limit("state").unwrap()),
            code_challenge: Some("c".repeat(43)),
            username: Some("daniel-adams".into()),
            patient_id: Some("smart-1288992".into()),
            created: clock::now(),
        }
    }

    fn small(n: usize) -> PendingAuthorization {
        PendingAuthorization {
            redirect_uri: "http://localhost:9001/authorized".into(),
            scope: "launch/patient patient/*.read offline_access".into(),
            state: "my-obscure-state".into(),
            ..largest(n)
        }
    }

    #[test]
    fn the_table_holds_no_more_bytes_than_its_budget() {
        let pending = Pending::default();
        let one = Bounded::weight(&largest(0).id, &largest(0));
        let fits = PENDING_BOUNDS.bytes / one;
        for n in 0..fits + 500 {
            pending.insert(largest(n));
            assert!(pending.bytes_held() <= PENDING_BOUNDS.bytes);
        }
        assert_eq!(pending.len(), fits);
        assert_eq!(pending.bytes_held(), fits * one);
        // The oldest went first; the newest are all there.
        assert!(pending.get(&largest(499).id).is_none());
        assert!(pending.get(&largest(500).id).is_some());
        assert!(pending.get(&largest(fits + 499).id).is_some());
        println!(
            "a pending request with every parameter at its limit holds {one} bytes; \
             the table holds {fits} of them ({} bytes)",
            pending.bytes_held()
        );
    }

    #[test]
    fn the_table_holds_no_more_entries_than_its_count() {
        let pending = Pending::default();
        let one = Bounded::weight(&small(0).id, &small(0));
        for n in 0..PENDING_BOUNDS.entries + 100 {
            pending.insert(small(n));
        }
        assert_eq!(pending.len(), PENDING_BOUNDS.entries);
        assert!(pending.bytes_held() <= PENDING_BOUNDS.entries * one);
        assert!(pending.get(&small(99).id).is_none());
        assert!(pending.get(&small(100).id).is_some());
        println!("a typical pending request holds {one} bytes");
    }

    #[test]
    fn answered_and_expired_requests_give_their_bytes_back() {
        let pending = Pending::default();
        for n in 0..10 {
            pending.insert(largest(n));
        }
        for n in 0..5 {
            assert!(pending.take(&largest(n).id).is_some());
        }
        let mut updated = largest(5);
        updated.patient_id = Some("smart-1032702".into());
        pending.update(updated.clone());
        assert_eq!(pending.get(&updated.id), Some(updated));
        assert_eq!(pending.len(), 5);
        assert_eq!(pending.sweep(clock::now() + PENDING_LIFETIME), 5);
        assert_eq!((pending.len(), pending.bytes_held()), (0, 0));
    }
}
