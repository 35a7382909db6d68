//! Authorization requests that passed validation and wait for the participant, as the
//! store keeps them, and the in-memory backend's table of them (bounded per client and in
//! all).

use std::collections::{BTreeSet, HashMap};
use std::mem::size_of;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::server::bounded::{Bounded, Bounds, Weigh};
use crate::server::clock;

use super::LaunchContext;

/// What an authorize request demands of the participant's sign-in (OpenID Connect's
/// `prompt` and `max_age`; made by `oauth::prompt`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInRule {
    /// `prompt=none`: no page may be shown.
    pub no_pages: bool,
    /// `prompt=login`: only a sign-in at or after this Unix time will do.
    pub signed_in_since: Option<i64>,
    /// `max_age`: only a sign-in at most this many seconds old will do.
    pub max_age: Option<i64>,
}

/// The bounds a pending request is kept within: per client and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingBounds {
    /// One client's requests at most (past it, that client's oldest go).
    pub per_client: Bounds,
    /// All requests at most (past it, the oldest of the client holding the most go).
    pub global: Bounds,
}

impl Default for PendingBounds {
    fn default() -> Self {
        PendingBounds {
            per_client: PER_CLIENT_BOUNDS,
            global: PENDING_BOUNDS,
        }
    }
}

/// How long a participant has to finish the pages.
pub const PENDING_LIFETIME: i64 = 30 * 60;
/// The most requests that wait at once, and the most bytes they hold: beyond either the
/// heaviest client's oldest are dropped. Typical requests (840 bytes each, the index by id
/// included) fill the bytes at 39,945; requests with every parameter at its limit and an
/// EHR launch's context at its limits (11,628 bytes, see [`super::limits`] and
/// `launch::mint`) at 2,885.
pub const PENDING_BOUNDS: Bounds = Bounds {
    entries: 50_000,
    bytes: 32 * 1024 * 1024,
};

/// A validated authorize request. A durable store keeps it as JSON under the SHA-256 of its
/// id (the id itself is not written).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// Its id in /oauth/consent?request=….
    #[serde(skip)]
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
    /// OpenID Connect nonce, echoed in the id_token.
    pub nonce: Option<String>,
    /// What `prompt` and `max_age` demand of the sign-in.
    pub sign_in: SignInRule,
    /// The user it was bound to when first seen logged in.
    pub username: Option<String>,
    /// The patient chosen (or the EHR launch's).
    pub patient_id: Option<String>,
    /// The EHR launch's context, or a standalone launch's encounter choice once made.
    pub context: Option<LaunchContext>,
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
            + self.nonce.heap_bytes()
            + self.username.heap_bytes()
            + self.patient_id.heap_bytes()
            + self.context.as_ref().map_or(0, |c| {
                size_of::<LaunchContext>()
                    + c.encounter.heap_bytes()
                    + c.intent.heap_bytes()
                    + c.fhir_context
                        .iter()
                        .map(|r| r.len() + size_of::<String>())
                        .sum::<usize>()
            })
    }
}

/// The most requests one client may have waiting, and the most bytes they may hold:
/// beyond either that client's oldest are dropped, so a flood of authorize requests
/// through one client cancels only that client's own. 4 MiB is 360 requests at every limit.
pub const PER_CLIENT_BOUNDS: Bounds = Bounds {
    entries: 1_000,
    bytes: 4 * 1024 * 1024,
};

/// Per-client tables of waiting requests, within per-client and global bounds.
struct Tables {
    /// Each client's requests, oldest first (each unbounded itself: the bounds are kept here).
    clients: HashMap<String, Bounded<PendingAuthorization>>,
    /// (bytes held, client id) of every client with requests waiting: the heaviest is last.
    by_weight: BTreeSet<(usize, String)>,
    /// Request id -> client id.
    owner: HashMap<String, String>,
    entries: usize,
    bytes: usize,
}

/// What the owner index holds for one request.
fn index_weight(request: &PendingAuthorization) -> usize {
    size_of::<(String, String)>() + request.id.len() + request.client_id.len()
}

impl Tables {
    /// Run `change` on one client's table, keeping the counts, the weight order and the
    /// owner index in step; an emptied table is dropped.
    fn on_client<T>(
        &mut self,
        client_id: &str,
        change: impl FnOnce(&mut Bounded<PendingAuthorization>) -> T,
    ) -> T {
        let unbounded = Bounds {
            entries: usize::MAX,
            bytes: usize::MAX,
        };
        let table = self
            .clients
            .entry(client_id.to_string())
            .or_insert_with(|| Bounded::new(unbounded));
        let (len, bytes) = (table.len(), table.bytes_held());
        let out = change(table);
        let (new_len, mut new_bytes) = (table.len(), table.bytes_held());
        self.by_weight.remove(&(bytes, client_id.to_string()));
        if table.is_empty() {
            // Its stale queue entries go with it.
            self.clients.remove(client_id);
            new_bytes = 0;
        } else {
            self.by_weight.insert((new_bytes, client_id.to_string()));
        }
        self.entries = self.entries + new_len - len;
        self.bytes = self.bytes + new_bytes - bytes;
        out
    }

    /// Drop the oldest request of `client_id`; whether there was one.
    fn drop_oldest_of(&mut self, client_id: &str) -> bool {
        match self.on_client(client_id, Bounded::pop_oldest_entry) {
            Some((id, request)) => {
                self.owner.remove(&id);
                self.bytes -= index_weight(&request);
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, id: &str) -> Option<PendingAuthorization> {
        let client_id = self.owner.remove(id)?;
        let request = self.on_client(&client_id, |t| t.remove(id))?;
        self.bytes -= index_weight(&request);
        Some(request)
    }
}

/// The in-memory table of pending requests, within [`PER_CLIENT_BOUNDS`] per client and
/// [`PENDING_BOUNDS`] in all (or others, for tests).
pub struct PendingTable {
    per_client: Bounds,
    global: Bounds,
    tables: Mutex<Tables>,
}

impl Default for PendingTable {
    fn default() -> Self {
        PendingTable::with_bounds(PENDING_BOUNDS)
    }
}

/// Whether a request created at `request.created` can still be answered at `now`.
pub fn live(request: &PendingAuthorization, now: i64) -> bool {
    request.created + PENDING_LIFETIME > now
}

impl PendingTable {
    /// An empty table within these global bounds and [`PER_CLIENT_BOUNDS`].
    pub fn with_bounds(bounds: Bounds) -> PendingTable {
        PendingTable::with_client_bounds(PER_CLIENT_BOUNDS, bounds)
    }

    /// An empty table within these per-client and global bounds.
    pub fn with_client_bounds(per_client: Bounds, global: Bounds) -> PendingTable {
        PendingTable {
            per_client,
            global,
            tables: Mutex::new(Tables {
                clients: HashMap::new(),
                by_weight: BTreeSet::new(),
                owner: HashMap::new(),
                entries: 0,
                bytes: 0,
            }),
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What one request holds here (its entry in its client's table and in the index).
    pub fn weight(request: &PendingAuthorization) -> usize {
        Bounded::weight(&request.id, request) + index_weight(request)
    }

    /// Keep a request. While its client is at the per-client bounds, that client's oldest
    /// go first; while the whole table is at its bounds, the oldest of the client holding
    /// the most bytes go (expired ones are the oldest). A request heavier than either byte
    /// budget is not kept.
    pub fn insert(&self, request: PendingAuthorization) {
        self.insert_within(
            request,
            PendingBounds {
                per_client: self.per_client,
                global: self.global,
            },
        );
    }

    /// [`PendingTable::insert`] within these bounds instead of the table's own.
    pub fn insert_within(&self, request: PendingAuthorization, bounds: PendingBounds) {
        let PendingBounds { per_client, global } = bounds;
        let weight = PendingTable::weight(&request);
        if weight > per_client.bytes.min(global.bytes)
            || per_client.entries == 0
            || global.entries == 0
        {
            return;
        }
        let mut tables = self.tables();
        tables.remove(&request.id);
        let client_id = request.client_id.clone();
        loop {
            let (len, bytes) = tables
                .clients
                .get(&client_id)
                .map_or((0, 0), |t| (t.len(), t.bytes_held()));
            let full = len >= per_client.entries || bytes + weight > per_client.bytes;
            if !full || !tables.drop_oldest_of(&client_id) {
                break;
            }
        }
        while tables.entries >= global.entries || tables.bytes + weight > global.bytes {
            let Some((_, heaviest)) = tables.by_weight.last().cloned() else {
                break;
            };
            if !tables.drop_oldest_of(&heaviest) {
                break;
            }
        }
        tables.owner.insert(request.id.clone(), client_id.clone());
        tables.bytes += index_weight(&request);
        tables.on_client(&client_id, |t| t.insert(request.id.clone(), request));
    }

    /// A live request by id.
    pub fn get(&self, id: &str) -> Option<PendingAuthorization> {
        let now = clock::now();
        let tables = self.tables();
        let client_id = tables.owner.get(id)?;
        tables
            .clients
            .get(client_id)?
            .get(id)
            .filter(|r| live(r, now))
            .cloned()
    }

    /// Replace a request with an updated copy (it keeps its place in the eviction order;
    /// its client id is the one it was kept under).
    pub fn update(&self, mut request: PendingAuthorization) -> bool {
        let mut tables = self.tables();
        let Some(client_id) = tables.owner.get(&request.id).cloned() else {
            return false;
        };
        request.client_id.clone_from(&client_id);
        let id = request.id.clone();
        tables.on_client(&client_id, |t| t.update(&id, |slot| *slot = request))
    }

    /// Forget requests older than [`PENDING_LIFETIME`] at Unix time `now`; how many.
    pub fn sweep(&self, now: i64) -> usize {
        let mut tables = self.tables();
        let expired: Vec<String> = tables
            .owner
            .keys()
            .filter(|id| {
                let client = tables.owner.get(*id).and_then(|c| tables.clients.get(c));
                client
                    .and_then(|t| t.get(id))
                    .is_some_and(|r| !live(r, now))
            })
            .cloned()
            .collect();
        for id in &expired {
            tables.remove(id);
        }
        expired.len()
    }

    /// How many requests are waiting.
    pub fn len(&self) -> usize {
        self.tables().entries
    }

    /// Whether no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the waiting requests hold (strings, structs, table slots and the index by id;
    /// see [`crate::server::bounded`]).
    pub fn bytes_held(&self) -> usize {
        self.tables().bytes
    }

    /// Remove and return a request (it is answered exactly once).
    pub fn take(&self, id: &str) -> Option<PendingAuthorization> {
        let now = clock::now();
        self.tables().remove(id).filter(|r| live(r, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::launch::mint::{MAX_FHIR_CONTEXT, MAX_INTENT};
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
            nonce: Some("n".repeat(authorize_limit("nonce").unwrap())),
            sign_in: Default::default(),
            username: Some("daniel-adams".into()),
            patient_id: Some("smart-1288992".into()),
            // An EHR launch's context with every field at its limit (`launch::mint`).
            context: Some(LaunchContext {
                ehr: true,
                encounter: Some("e".repeat(64)),
                fhir_context: vec!["r".repeat(MAX_INTENT); MAX_FHIR_CONTEXT],
                intent: Some("i".repeat(MAX_INTENT)),
                need_patient_banner: false,
            }),
            created: clock::now(),
        }
    }

    fn small(n: usize) -> PendingAuthorization {
        PendingAuthorization {
            redirect_uri: "http://localhost:9001/authorized".into(),
            scope: "launch/patient patient/*.read offline_access".into(),
            state: "my-obscure-state".into(),
            nonce: None,
            context: None,
            sign_in: Default::default(),
            ..largest(n)
        }
    }

    #[test]
    fn the_documented_weights_hold() {
        // PENDING_BOUNDS's documentation, the README and benches/README.md quote these.
        assert_eq!(PendingTable::weight(&small(0)), 840);
        assert_eq!(PendingTable::weight(&largest(0)), 11_628);
    }

    #[test]
    fn the_table_holds_no_more_bytes_than_its_budget() {
        let pending = PendingTable::default();
        let one = PendingTable::weight(&largest(0));
        let fits = PENDING_BOUNDS.bytes / one;
        for n in 0..fits + 500 {
            pending.insert(largest(n));
            assert!(pending.bytes_held() <= PENDING_BOUNDS.bytes);
        }
        assert_eq!(pending.len(), fits);
        assert_eq!(pending.bytes_held(), fits * one);
        // Each request is its own client's: the newest is always kept.
        assert!(pending.get(&largest(fits + 499).id).is_some());
        println!(
            "a pending request with every parameter at its limit holds {one} bytes; \
             the table holds {fits} of them ({} bytes)",
            pending.bytes_held()
        );
    }

    #[test]
    fn the_table_holds_no_more_entries_than_its_count() {
        let pending = PendingTable::default();
        let one = PendingTable::weight(&small(0));
        let fits = PENDING_BOUNDS.entries.min(PENDING_BOUNDS.bytes / one);
        for n in 0..PENDING_BOUNDS.entries + 100 {
            pending.insert(small(n));
        }
        assert_eq!(pending.len(), fits);
        assert!(pending.bytes_held() <= fits * one);
        assert!(pending
            .get(&small(PENDING_BOUNDS.entries + 99).id)
            .is_some());
        println!("a typical pending request holds {one} bytes");
    }

    #[test]
    fn answered_and_expired_requests_give_their_bytes_back() {
        let pending = PendingTable::default();
        for n in 0..10 {
            pending.insert(largest(n));
        }
        for n in 0..5 {
            assert!(pending.take(&largest(n).id).is_some());
        }
        let mut updated = pending.get(&largest(5).id).unwrap();
        updated.patient_id = Some("smart-1032702".into());
        pending.update(updated.clone());
        assert_eq!(pending.get(&updated.id), Some(updated));
        assert_eq!(pending.len(), 5);
        assert_eq!(pending.sweep(clock::now() + PENDING_LIFETIME), 5);
        assert_eq!((pending.len(), pending.bytes_held()), (0, 0));
    }

    #[test]
    fn a_flood_through_one_client_drops_only_its_own_requests() {
        let pending = PendingTable::with_client_bounds(
            Bounds {
                entries: 10,
                bytes: usize::MAX,
            },
            Bounds {
                entries: 25,
                bytes: usize::MAX,
            },
        );
        let with_client = |n: usize, client: &str| PendingAuthorization {
            client_id: client.into(),
            ..small(n)
        };
        let victim = with_client(0, "client-b");
        pending.insert(victim.clone());
        for n in 1..=5_000 {
            pending.insert(with_client(n, "client-a"));
        }
        assert_eq!(pending.len(), 11);
        assert_eq!(pending.get(&victim.id), Some(victim.clone()));
        assert!(pending.get(&small(4_991).id).is_some() && pending.get(&small(4_990).id).is_none());
        // Past the global bound (many flooding clients), the heaviest client loses first.
        for n in 0..30 {
            pending.insert(with_client(10_000 + n, &format!("client-{}", n % 3)));
        }
        assert_eq!(pending.len(), 25);
        assert_eq!(pending.take(&victim.id), Some(victim));
        assert!(
            pending.bytes_held() <= 24 * PendingTable::weight(&with_client(0, "client-a")) + 1000
        );
    }
}
