//! Authorization requests that passed validation and wait for the participant: login,
//! patient choice and consent refer to them by an unguessable id, so the pages never carry
//! (and cannot tamper with) the client's parameters. They are kept in the store, so any
//! replica sharing it can carry on a request another one started.

use std::sync::Arc;

use crate::server::clock;
pub use crate::server::store::pending::{
    PendingAuthorization, PENDING_BOUNDS, PENDING_LIFETIME, PER_CLIENT_BOUNDS,
};
use crate::server::store::{PendingBounds, Store, StoreResult};

/// The waiting requests, within [`PER_CLIENT_BOUNDS`] per client and [`PENDING_BOUNDS`] in
/// all (or others, for tests).
pub struct Pending {
    store: Arc<dyn Store>,
    bounds: PendingBounds,
}

impl Pending {
    /// The requests kept in `store`, within the default bounds.
    pub fn new(store: Arc<dyn Store>) -> Pending {
        Pending::with_bounds(store, PendingBounds::default())
    }

    /// The requests kept in `store`, within these bounds.
    pub fn with_bounds(store: Arc<dyn Store>, bounds: PendingBounds) -> Pending {
        Pending { store, bounds }
    }

    /// Keep a request (see `PendingState::insert_pending` for what makes room).
    pub async fn insert(&self, request: PendingAuthorization) -> StoreResult<()> {
        self.store.insert_pending(request, self.bounds).await
    }

    /// A live request by id; `None` too when the store cannot be read (logged), so the page
    /// says the request is gone rather than going on with nothing.
    pub async fn get(&self, id: &str) -> Option<PendingAuthorization> {
        self.store
            .pending(id, clock::now())
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("reading a pending authorize request failed: {e}");
                None
            })
    }

    /// Replace a request with an updated copy (its client stays the one it was kept
    /// under); false if it is gone or the store failed (logged).
    pub async fn update(&self, request: PendingAuthorization) -> bool {
        self.store
            .update_pending(request)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("updating a pending authorize request failed: {e}");
                false
            })
    }

    /// Remove and return a request: it is answered exactly once, whichever replica the
    /// answers reach. `None` when it is gone (or the store failed, logged).
    pub async fn take(&self, id: &str) -> Option<PendingAuthorization> {
        self.store
            .take_pending(id, clock::now())
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("taking a pending authorize request failed: {e}");
                None
            })
    }

    /// How many requests are waiting.
    pub async fn len(&self) -> StoreResult<usize> {
        Ok(self.store.pending_size().await?.0)
    }

    /// Whether no request is waiting.
    pub async fn is_empty(&self) -> StoreResult<bool> {
        Ok(self.len().await? == 0)
    }

    /// Bytes the waiting requests hold (in memory: strings, structs, table slots and the
    /// index by id, see [`crate::server::bounded`]; in SQL: their JSON).
    pub async fn bytes_held(&self) -> StoreResult<usize> {
        Ok(self.store.pending_size().await?.1)
    }
}
