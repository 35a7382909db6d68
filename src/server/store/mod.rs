//! What the server remembers: clients, approvals, authorization codes and tokens.
//!
//! One trait, so the in-memory backend (the default, ephemeral like the seed's demo) and
//! the durable SQL backends (SQLite and PostgreSQL, one code path) share every caller.

mod location;
mod memory;
mod sql;

pub use location::{LocationError, StateLocation};
pub use memory::MemoryStore;
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
    /// The bearer token.
    pub access_token: String,
    /// The refresh token, when offline or online access was granted.
    pub refresh_token: Option<String>,
    /// The approval this token lives under.
    pub approval_id: String,
    /// Scopes of this token (a subset of the approval's).
    pub scope: String,
    /// Unix time the access token was issued.
    pub issued_at: i64,
    /// Unix time after which the access token stops working.
    pub access_expires: i64,
    /// The authorization code this token came from, if any (for replay revocation).
    pub from_code: Option<String>,
}

/// An authorization code waiting to be exchanged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuthCode {
    /// The code itself.
    pub code: String,
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
#[derive(Debug, Clone, PartialEq)]
pub enum Redeemed {
    /// First use: here is the code.
    Fresh(AuthCode),
    /// The code had been redeemed before: a replay.
    Replayed(AuthCode),
    /// No such code.
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

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired approvals (with every token and code under them).
    pub approvals: u64,
    /// Token pairs no longer usable: access expired and no refresh token, or approval gone.
    pub tokens: u64,
    /// Codes remembered long enough past their expiry, or whose approval is gone.
    pub codes: u64,
}

impl Swept {
    /// Whether anything was removed.
    pub fn is_empty(&self) -> bool {
        *self == Swept::default()
    }
}

/// Open (and for SQL, create or migrate) the store a `--state` value names.
pub async fn open(location: &StateLocation) -> StoreResult<Arc<dyn Store>> {
    Ok(match location {
        StateLocation::Memory => Arc::new(MemoryStore::new()),
        durable => Arc::new(SqlStore::open(durable).await?),
    })
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// The server's memory. Every method is atomic on its own.
#[async_trait]
pub trait Store: Send + Sync {
    /// Save a newly registered client.
    async fn insert_client(&self, client: Client) -> StoreResult<()>;
    /// Look a client up by id.
    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>>;
    /// How many clients are registered.
    async fn client_count(&self) -> StoreResult<usize>;

    /// Save an approval, replacing the one with the same id if there is one.
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
    /// Find a token pair by its access token.
    async fn token_by_access(&self, access_token: &str) -> StoreResult<Option<Token>>;
    /// Find a token pair by its refresh token.
    async fn token_by_refresh(&self, refresh_token: &str) -> StoreResult<Option<Token>>;
    /// Replace the pair holding `old_refresh` with `new`, atomically; false if it was gone
    /// or `new` comes from a code that has been replayed.
    async fn rotate_token(&self, old_refresh: &str, new: Token) -> StoreResult<bool>;
    /// Delete the pair holding this access or refresh token; true if one was deleted.
    async fn revoke_token(&self, token: &str) -> StoreResult<bool>;
    /// Mark a code replayed and delete every token issued from it, atomically with
    /// respect to `insert_token` and `rotate_token` for that code.
    async fn revoke_tokens_from_code(&self, code: &str) -> StoreResult<()>;
    /// How many token pairs are live.
    async fn token_count(&self) -> StoreResult<usize>;

    /// Save an authorization code.
    async fn insert_code(&self, code: AuthCode) -> StoreResult<()>;
    /// Mark a code used and say whether this was its first use.
    async fn redeem_code(&self, code: &str) -> StoreResult<Redeemed>;

    /// Forget what can no longer be used at Unix time `now`: expired approvals, token
    /// pairs whose access token expired without a refresh token or whose approval is gone,
    /// and codes `code_memory` seconds past expiry (see [`code_replay_memory`]) or whose
    /// approval is gone.
    async fn sweep(&self, now: i64, code_memory: i64) -> StoreResult<Swept>;
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
