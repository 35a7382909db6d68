//! Authorization requests that passed validation and wait for the participant: login,
//! patient choice and consent refer to them by an unguessable id, so the pages never carry
//! (and cannot tamper with) the client's parameters.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::server::clock;

/// How long a participant has to finish the pages.
pub const PENDING_LIFETIME: i64 = 30 * 60;
/// Beyond this many pending requests the oldest are dropped.
const CAPACITY: usize = 100_000;

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

/// The table of pending requests.
#[derive(Default)]
pub struct Pending {
    map: Mutex<HashMap<String, PendingAuthorization>>,
}

impl Pending {
    /// Keep a request; expired ones are swept when the table is large.
    pub fn insert(&self, request: PendingAuthorization) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CAPACITY {
            let cutoff = clock::now() - PENDING_LIFETIME;
            map.retain(|_, r| r.created > cutoff);
            if map.len() >= CAPACITY {
                if let Some(oldest) = map.values().min_by_key(|r| r.created).map(|r| r.id.clone()) {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(request.id.clone(), request);
    }

    /// A live request by id.
    pub fn get(&self, id: &str) -> Option<PendingAuthorization> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id)
            .filter(|r| r.created + PENDING_LIFETIME > clock::now())
            .cloned()
    }

    /// Replace a request with an updated copy.
    pub fn update(&self, request: PendingAuthorization) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = map.get_mut(&request.id) {
            *slot = request;
        }
    }

    /// Forget requests older than [`PENDING_LIFETIME`] at Unix time `now`; how many.
    pub fn sweep(&self, now: i64) -> usize {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let before = map.len();
        map.retain(|_, r| r.created + PENDING_LIFETIME > now);
        before - map.len()
    }

    /// How many requests are waiting.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remove and return a request (it is answered exactly once).
    pub fn take(&self, id: &str) -> Option<PendingAuthorization> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(id)
            .filter(|r| r.created + PENDING_LIFETIME > clock::now())
    }
}
