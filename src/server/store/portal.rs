//! What the portal pages keep between requests, in the store so that every replica sharing
//! it sees the same: signed-in browser sessions (with their CSRF tokens and one-time
//! notices), the key anonymous CSRF tokens are made with, authorize requests waiting for
//! the participant, and failed sign-in counts. Three traits, each one job; [`super::Store`]
//! requires all of them.

use async_trait::async_trait;

use super::failures::{FailureCount, FailureScope, Limit};
use super::pending::{PendingAuthorization, PendingBounds};
pub use super::sessions_table::Caps;
use super::StoreResult;

/// A signed-in browser session as the store keeps it (the cookie id only as its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// SHA-256 of the cookie id.
    pub id_sha256: [u8; 32],
    /// Who signed in.
    pub username: String,
    /// The token every form of the session carries.
    pub csrf: String,
    /// Unix time of the sign-in.
    pub created: i64,
}

/// Signed-in browser sessions and the anonymous CSRF key.
#[async_trait]
pub trait SessionState: Send + Sync {
    /// Keep a new session, first making room within `caps` (sessions started `lifetime`
    /// seconds before its `created` are expired and go first; then the oldest of anyone
    /// while the store holds `caps.total`; then this user's oldest while they hold
    /// `caps.per_user`).
    async fn insert_session(
        &self,
        session: StoredSession,
        caps: Caps,
        lifetime: i64,
    ) -> StoreResult<()>;
    /// The session with this id hash, live or not (the caller applies the lifetime).
    async fn session(&self, id_sha256: &[u8; 32]) -> StoreResult<Option<StoredSession>>;
    /// End a session; whether there was one (its notice may stay until the sweep).
    async fn end_session(&self, id_sha256: &[u8; 32]) -> StoreResult<bool>;
    /// Keep a one-time message for the session's next page, replacing any before.
    async fn set_notice(&self, id_sha256: &[u8; 32], notice: &str) -> StoreResult<()>;
    /// Take the session's one-time message: of racing takers one gets it.
    async fn take_notice(&self, id_sha256: &[u8; 32]) -> StoreResult<Option<String>>;
    /// How many sessions are kept, of one user or of everyone.
    async fn session_count(&self, username: Option<&str>) -> StoreResult<usize>;
    /// The key anonymous CSRF tokens are made with: `candidate` if none was kept yet (then
    /// it is kept), else the one kept first, so every replica makes the same tokens.
    async fn anonymous_key(&self, candidate: &[u8; 32]) -> StoreResult<Vec<u8>>;
}

/// Authorize requests waiting for the participant.
#[async_trait]
pub trait PendingState: Send + Sync {
    /// Keep a request under its id, first making room within `bounds` (see
    /// `PendingBounds`); a request that cannot fit is not kept.
    async fn insert_pending(
        &self,
        request: PendingAuthorization,
        bounds: PendingBounds,
    ) -> StoreResult<()>;
    /// A request by id, if it is live at `now`.
    async fn pending(&self, id: &str, now: i64) -> StoreResult<Option<PendingAuthorization>>;
    /// Replace a request (found by its id; its client stays); false if it is gone.
    async fn update_pending(&self, request: PendingAuthorization) -> StoreResult<bool>;
    /// Remove and return a request live at `now`: of racing takers exactly one gets it.
    async fn take_pending(&self, id: &str, now: i64) -> StoreResult<Option<PendingAuthorization>>;
    /// How many requests are kept, and about how many bytes they hold.
    async fn pending_size(&self) -> StoreResult<(usize, usize)>;
}

/// Failed sign-in counts and pauses.
#[async_trait]
pub trait FailureCounts: Send + Sync {
    /// Where `key` stands at `now` under `limit`.
    async fn failure_count(
        &self,
        scope: FailureScope,
        key: &str,
        limit: &Limit,
        now: i64,
    ) -> StoreResult<FailureCount>;
    /// Count one failure of `key` at `now`, atomically (racing failures, from any replica,
    /// are all counted), and say where it stands after; at most `capacity` keys of the
    /// scope are kept (stale ones go first, then the longest quiet).
    async fn add_failure(
        &self,
        scope: FailureScope,
        key: &str,
        limit: &Limit,
        now: i64,
        capacity: usize,
    ) -> StoreResult<FailureCount>;
    /// Forget `key`'s failures, unless it is paused at `now`.
    async fn clear_failures(&self, scope: FailureScope, key: &str, now: i64) -> StoreResult<()>;
    /// How many keys of the scope are remembered.
    async fn failure_keys(&self, scope: FailureScope) -> StoreResult<usize>;
}
