//! What the server remembers: clients, approvals, authorization codes and tokens.
//!
//! One trait, so the in-memory backend (the default, ephemeral like the seed's demo) and
//! the durable SQL backends (SQLite and PostgreSQL, one code path) share every caller.
//!
//! Tokens and codes are kept only as their SHA-256 and looked up by it: the values
//! themselves exist only in the answer that hands them out. A plain hash is enough because
//! every value is random with 122 bits of entropy (a UUIDv4): nothing can be guessed from
//! its hash, and there is no dictionary of likely values to precompute.

pub mod failures;
mod location;
mod memory;
mod memory_portal;
pub mod pending;
mod portal;
mod sessions_table;
mod sql;

pub use failures::{FailureCount, FailureScope, Limit};
pub use location::{LocationError, StateLocation};
pub use memory::MemoryStore;
pub use pending::{PendingAuthorization, PendingBounds, SignInRule};
pub use portal::{Caps, FailureCounts, PendingState, SessionState, StoredSession};
pub use sql::SqlStore;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A registered OAuth client (RFC 7591).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Client {
    /// The client's id, a UUIDv4.
    pub client_id: String,
    /// SHA-256 of the client secret; `None` for a public client.
    pub secret_sha256: Option<[u8; 32]>,
    /// Human-readable name shown on the consent page.
    pub client_name: String,
    /// Exact redirect URIs the client may use.
    pub redirect_uris: Vec<String>,
    /// Space-separated scopes the client may ask for.
    pub scope: String,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub token_endpoint_auth_method: String,
    /// Grant types the client may use.
    pub grant_types: Vec<String>,
    /// Unix time of registration.
    pub issued_at: i64,
    /// Optional RFC 7591 metadata echoed back as given (client_uri, logo_uri, contacts, …).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Client {
    /// The app's launch URL for EHR launches (`initiate_login_uri`), if it registered one.
    pub fn launch_uri(&self) -> Option<&str> {
        self.extra
            .get("initiate_login_uri")
            .and_then(|v| v.as_str())
    }
}

/// A participant's standing permission for one client to read one patient.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Approval {
    /// Opaque id.
    pub id: String,
    /// The client that was approved.
    pub client_id: String,
    /// The user who approved.
    pub username: String,
    /// The patient whose data is shared.
    pub patient_id: String,
    /// Scopes granted, space-separated.
    pub scope: String,
    /// Unix time after which no token from this approval works.
    pub expires: i64,
    /// Unix time the approval was given.
    pub created: i64,
}

/// A pair of access and refresh token issued under an approval.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Token {
    /// SHA-256 of the bearer token.
    pub access_sha256: [u8; 32],
    /// SHA-256 of the refresh token, when offline or online access was granted.
    pub refresh_sha256: Option<[u8; 32]>,
    /// The approval this token lives under.
    pub approval_id: String,
    /// Scopes of this token (a subset of the approval's).
    pub scope: String,
    /// Unix time the access token was issued.
    pub issued_at: i64,
    /// Unix time after which the access token stops working.
    pub access_expires: i64,
    /// SHA-256 of the authorization code this token came from, if any (for replay
    /// revocation).
    pub from_code_sha256: Option<[u8; 32]>,
    /// SHA-256 of the browser session's id that approved with `online_access` (and not
    /// `offline_access`): the refresh token works only while that sign-in lasts.
    pub session_sha256: Option<[u8; 32]>,
    /// Unix time the participant signed in for the grant this token came from, when it was
    /// issued with an id_token (`openid`): a refreshed id_token repeats it as `auth_time`.
    pub auth_time: Option<i64>,
    /// The launch context the token response repeats at every refresh (`None` for a
    /// standalone launch that chose no encounter, and for tokens minted by the debug
    /// endpoint).
    pub context: Option<LaunchContext>,
}

/// An authorization code waiting to be exchanged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuthCode {
    /// SHA-256 of the code.
    pub code_sha256: [u8; 32],
    /// The approval behind it.
    pub approval_id: String,
    /// The redirect URI the code was sent to.
    pub redirect_uri: String,
    /// Whether the authorize request named it (then the token request must repeat it).
    pub redirect_uri_given: bool,
    /// Scopes granted for this code.
    pub scope: String,
    /// PKCE S256 challenge, when one was sent.
    pub code_challenge: Option<String>,
    /// Unix time after which the code cannot be exchanged.
    pub expires: i64,
    /// SHA-256 of the approving browser session's id when the grant lasts only as long
    /// as that sign-in (see [`Token::session_sha256`]); the tokens inherit it.
    pub session_sha256: Option<[u8; 32]>,
    /// The authorize request's OpenID Connect `nonce`, echoed in the id_token.
    pub nonce: Option<String>,
    /// Unix time the approving participant signed in (the id_token's `auth_time`).
    pub auth_time: Option<i64>,
    /// The context the grant was given in (EHR launch, or a standalone encounter choice).
    pub context: Option<LaunchContext>,
}

/// What an EHR launch (or a standalone launch's encounter choice) adds to the token
/// response besides the patient (SMART App Launch 2.2, "Launch context arrives with your
/// access_token").
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LaunchContext {
    /// True for an EHR launch, false for a standalone one.
    pub ehr: bool,
    /// The Encounter id in context, if any.
    pub encounter: Option<String>,
    /// More resources in context, as relative references (`Observation/…`).
    pub fhir_context: Vec<String>,
    /// The EHR's `intent` (free text).
    pub intent: Option<String>,
    /// Whether the app should show its own patient banner.
    pub need_patient_banner: bool,
}

/// A launch an EHR minted, waiting for the app's authorize request (`launch=`).
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// SHA-256 of the launch id (the id itself only goes to the EHR page or debug caller).
    pub id_sha256: [u8; 32],
    /// The user the EHR session belongs to; only they may use it.
    pub username: String,
    /// The patient in context.
    pub patient_id: String,
    /// The app it was made for, when one was chosen; then only that client may use it.
    pub client_id: Option<String>,
    /// What the token response will carry.
    pub context: LaunchContext,
    /// Unix time after which it cannot be used.
    pub expires: i64,
    /// A simulated fault for the client that uses it (queued when its authorize request
    /// spends the launch).
    pub fault: Option<String>,
}

/// A launch as the store holds it, and whether an authorize request spent it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLaunch {
    /// The launch.
    pub launch: Launch,
    /// Used by an authorize request already.
    pub spent: bool,
}

/// A simulated fault queued for one client (see `server::simulate`): the store keeps them
/// so that replicas sharing a database agree on what is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedFault {
    /// The client whose requests it answers.
    pub client_id: String,
    /// Its place in the client's queue (assigned by the store; lower answers first).
    pub seq: i64,
    /// The fault's name.
    pub fault: String,
    /// The site it answers at (`authorize`, `token` or `fhir`); `None` for anywhere.
    pub at: Option<String>,
    /// How many answers were asked for; 0 = until cleared.
    pub times: i64,
    /// Answers left; [`UNTIL_CLEARED`] when it never runs out.
    pub remaining: i64,
    /// The delay of a `slow` fault, in milliseconds.
    pub delay_ms: Option<i64>,
    /// Unix time it was queued.
    pub created: i64,
}

/// `QueuedFault::remaining` of a fault that answers until it is cleared.
pub const UNTIL_CLEARED: i64 = -1;

/// One of the RSA keys id_tokens are signed with. The newest generation signs; older ones
/// stay published in the JWKS until what they signed has expired.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningKey {
    /// 1 for the first key, one more for each rotation: replicas agree on the newest.
    pub generation: i64,
    /// The key id in JWS headers and the JWKS (its RFC 7638 thumbprint).
    pub kid: String,
    /// The private key, PKCS#1 PEM.
    pub private_pem: String,
    /// The public key as a JWK, JSON text.
    pub public_jwk: String,
    /// Unix time it was made.
    pub created: i64,
    /// Unix time a newer key replaced it, if one has.
    pub retired: Option<i64>,
}

/// A code as the store holds it: what it was issued for, and whether it was spent.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCode {
    /// The code's record.
    pub code: AuthCode,
    /// Exchanged already: another exchange is a replay.
    pub used: bool,
}

/// What makes two approvals the same grant: app, participant, patient and scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrantKey {
    /// The app.
    pub client_id: String,
    /// Who approved.
    pub username: String,
    /// Whose records.
    pub patient_id: String,
    /// The scopes approved.
    pub scope: String,
}

impl GrantKey {
    /// The grant an approval is of.
    pub fn of(approval: &Approval) -> GrantKey {
        GrantKey {
            client_id: approval.client_id.clone(),
            username: approval.username.clone(),
            patient_id: approval.patient_id.clone(),
            scope: approval.scope.clone(),
        }
    }
}

/// What happened when a code was redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// First use: the code is spent and the token pair saved.
    Fresh,
    /// The code had been redeemed, or revoked as replayed, before (nothing saved).
    Replayed,
    /// No such code (nothing saved).
    Unknown,
}

/// Storage failures a backend can report.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not do what was asked.
    #[error("the server's store failed: {0}")]
    Backend(String),
    /// The database could not be opened or migrated.
    #[error("cannot open the {location}: {reason}")]
    Open {
        /// Where the state was to be (passwords hidden).
        location: String,
        /// Why it failed.
        reason: String,
    },
}

/// The longest a code is remembered after it expires, so that a late replay still revokes
/// the tokens issued from it (RFC 6749 §4.1.2) before the sweep forgets it.
pub const CODE_REPLAY_MEMORY: i64 = 600;

/// How long codes that live `code_lifetime` seconds are remembered after they expire: ten
/// lifetimes, at most [`CODE_REPLAY_MEMORY`] (the default 100-second codes get the full ten
/// minutes; a load test's 2-second codes are forgotten 20 s after, so memory stays flat).
pub fn code_replay_memory(code_lifetime: u64) -> i64 {
    i64::try_from(code_lifetime.saturating_mul(10))
        .unwrap_or(i64::MAX)
        .min(CODE_REPLAY_MEMORY)
}

/// How long a sweep keeps what could otherwise go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Seconds a code is remembered past its expiry (see [`code_replay_memory`]).
    pub code_memory: i64,
    /// Seconds a client that never got an approval is kept after it registered; `None`
    /// keeps it forever.
    pub client_idle: Option<i64>,
    /// Seconds a replaced signing key stays published after it was replaced (as long as
    /// anything it signed can still be valid).
    pub signing_key_memory: i64,
    /// Seconds a launch is remembered past its expiry (so a late use is told "expired" or
    /// "already used", not "unknown").
    pub launch_memory: i64,
    /// Seconds a browser session lasts after its sign-in.
    pub session_lifetime: i64,
    /// Seconds a failed sign-in counts (the longest of the name's and address's windows).
    pub failure_window: i64,
}

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired approvals (with every token and code under them).
    pub approvals: u64,
    /// Token pairs no longer usable: access expired and no refresh token, or approval gone.
    pub tokens: u64,
    /// Codes remembered long enough past their expiry, or whose approval is gone.
    pub codes: u64,
    /// Clients registered longer ago than the idle lifetime that never got an approval.
    pub clients: u64,
    /// Signing keys replaced longer ago than anything they signed can live.
    pub signing_keys: u64,
    /// Launches past their expiry and memory.
    pub launches: u64,
    /// Assertion `jti`s past their assertion's expiry.
    pub jtis: u64,
    /// Simulated faults used up, or of clients that are gone.
    pub faults: u64,
    /// Browser sessions past their lifetime.
    pub sessions: u64,
    /// Authorize requests nobody finished in time.
    pub pending: u64,
    /// Failed sign-in counts whose window and pause are over.
    pub failures: u64,
}

impl Swept {
    /// Whether anything was removed.
    pub fn is_empty(&self) -> bool {
        *self == Swept::default()
    }
}

/// The default of `--client-idle-lifetime`: a registration that never got an approval is
/// forgotten after seven days.
pub const CLIENT_IDLE_LIFETIME: u64 = 7 * 24 * 3600;

/// The default of `--max-idle-clients`: at most this many registered clients that never got
/// an approval are kept (about 175 MB at every field's limit, 340 MB if each also registered
/// a `jwks` at its 16 KiB limit); one more drops the oldest.
pub const MAX_IDLE_CLIENTS: usize = 10_000;

/// Open (and for SQL, create or migrate) the store a `--state` value names.
pub async fn open(location: &StateLocation) -> StoreResult<Arc<dyn Store>> {
    Ok(match location {
        StateLocation::Memory => Arc::new(MemoryStore::new()),
        durable => Arc::new(SqlStore::open(durable).await?),
    })
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// The server's memory. Every method is atomic on its own. Tokens and codes are named by
/// their SHA-256 (see the module's documentation). The portal's sessions, waiting authorize
/// requests and sign-in failure counts are in the supertraits (see `portal`).
#[async_trait]
pub trait Store: SessionState + PendingState + FailureCounts + Send + Sync {
    /// Save a newly registered client.
    async fn insert_client(&self, client: Client) -> StoreResult<()>;
    /// Look a client up by id.
    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>>;
    /// How many clients are registered.
    async fn client_count(&self) -> StoreResult<usize>;
    /// Drop the oldest clients that never got an approval (by registration time) until at
    /// most `keep` (at least 1) remain, never `spare` (the one just registered); returns how
    /// many were dropped.
    async fn evict_idle_clients(&self, keep: usize, spare: &str) -> StoreResult<u64>;

    /// Save an approval, replacing the one with the same id if there is one; its client
    /// counts as used from now on (the sweep keeps it).
    async fn insert_approval(&self, approval: Approval) -> StoreResult<()>;
    /// Look an approval up by id.
    async fn approval(&self, id: &str) -> StoreResult<Option<Approval>>;
    /// The newest approval of this client, user, patient and scope still live at Unix time
    /// `now`: the one a new consent to the same renews.
    async fn renewable_approval(&self, grant: &GrantKey, now: i64)
        -> StoreResult<Option<Approval>>;
    /// Every approval a user has given, newest first.
    async fn approvals_for_user(&self, username: &str) -> StoreResult<Vec<Approval>>;
    /// Delete an approval and every token and code under it.
    async fn delete_approval(&self, id: &str) -> StoreResult<()>;

    /// Save a token pair; false (and nothing saved) when it comes from a code that has
    /// been replayed meanwhile, so a replay revokes even a token still being issued.
    async fn insert_token(&self, token: Token) -> StoreResult<bool>;
    /// Find a token pair by its access token's SHA-256.
    async fn token_by_access(&self, access_sha256: &[u8; 32]) -> StoreResult<Option<Token>>;
    /// Find a token pair by its refresh token's SHA-256.
    async fn token_by_refresh(&self, refresh_sha256: &[u8; 32]) -> StoreResult<Option<Token>>;
    /// Replace the pair holding the refresh token `old_refresh_sha256` with `new`,
    /// atomically; false if it was gone or `new` comes from a code that has been replayed.
    async fn rotate_token(&self, old_refresh_sha256: &[u8; 32], new: Token) -> StoreResult<bool>;
    /// Delete the pair holding this access or refresh token (by SHA-256); true if one was
    /// deleted.
    async fn revoke_token(&self, token_sha256: &[u8; 32]) -> StoreResult<bool>;
    /// Mark a code replayed and delete every token issued from it, atomically with
    /// respect to `redeem_code`, `insert_token` and `rotate_token` for that code.
    async fn revoke_tokens_from_code(&self, code_sha256: &[u8; 32]) -> StoreResult<()>;
    /// How many token pairs are live.
    async fn token_count(&self) -> StoreResult<usize>;

    /// Save an authorization code.
    async fn insert_code(&self, code: AuthCode) -> StoreResult<()>;
    /// Look a code up without spending it, so the request can be checked first.
    async fn code(&self, code_sha256: &[u8; 32]) -> StoreResult<Option<StoredCode>>;
    /// Spend a code and save `token` (whose `from_code_sha256` names it) in one atomic
    /// step: of concurrent redemptions exactly one is `Fresh`, and a replay's revocation
    /// always sees the token of the one that won.
    async fn redeem_code(&self, code_sha256: &[u8; 32], token: Token) -> StoreResult<Redeemed>;

    /// Record that a client's assertion with this `jti` was used, valid until `expires`:
    /// true the first time, false when that client used the same `jti` before and it has
    /// not expired by `now` (a replay). Atomic: of racing uses exactly one is first.
    async fn use_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires: i64,
        now: i64,
    ) -> StoreResult<bool>;

    /// Save a launch.
    async fn insert_launch(&self, launch: Launch) -> StoreResult<()>;
    /// Look a launch up without spending it, so the request can be checked first.
    async fn launch(&self, id_sha256: &[u8; 32]) -> StoreResult<Option<StoredLaunch>>;
    /// Spend a launch; true for exactly one of concurrent callers (false if it was spent
    /// already or is unknown).
    async fn spend_launch(&self, id_sha256: &[u8; 32]) -> StoreResult<bool>;

    /// Queue a simulated fault at the end of its client's queue (its `seq` is assigned
    /// here); `None` (nothing queued) when the client has `max` faults queued already,
    /// else the `seq` it got.
    async fn add_fault(&self, fault: QueuedFault, max: usize) -> StoreResult<Option<i64>>;
    /// The client's faults that have answers left, in the order they answer.
    async fn faults(&self, client_id: &str) -> StoreResult<Vec<QueuedFault>>;
    /// Use one answer of the client's fault `seq`, atomically: its answers left afterwards
    /// ([`UNTIL_CLEARED`] for one that never runs out; one used up is forgotten), or `None`
    /// when it has none left or is gone (a racing request used the last one).
    async fn take_fault(&self, client_id: &str, seq: i64) -> StoreResult<Option<i64>>;
    /// Forget every fault queued for the client; how many there were.
    async fn clear_faults(&self, client_id: &str) -> StoreResult<u64>;

    /// Every signing key, oldest generation first.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// Save a new signing key and mark every older one retired at its `created` time, in
    /// one step; false (nothing saved) when a key of that generation exists already (another
    /// replica rotated first).
    async fn add_signing_key(&self, key: SigningKey) -> StoreResult<bool>;

    /// Forget what can no longer be used at Unix time `now`: expired approvals, token
    /// pairs whose access token expired without a refresh token or whose approval is gone,
    /// codes `retention.code_memory` seconds past expiry or whose approval is gone,
    /// clients that never got an approval registered `retention.client_idle` seconds ago,
    /// signing keys retired `retention.signing_key_memory` seconds ago, launches
    /// `retention.launch_memory` seconds past expiry, and simulated faults used up or of
    /// clients that are gone; and browser sessions `retention.session_lifetime` seconds
    /// old, authorize requests older than `pending::PENDING_LIFETIME`, and failure counts
    /// whose pause and window (`retention.failure_window`) are over.
    async fn sweep(&self, now: i64, retention: Retention) -> StoreResult<Swept>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_remembered_ten_lifetimes_at_most_ten_minutes() {
        assert_eq!(code_replay_memory(2), 20);
        assert_eq!(code_replay_memory(60), 600);
        assert_eq!(code_replay_memory(100), CODE_REPLAY_MEMORY);
        assert_eq!(code_replay_memory(u64::MAX), CODE_REPLAY_MEMORY);
        assert_eq!(code_replay_memory(0), 0);
    }
}
