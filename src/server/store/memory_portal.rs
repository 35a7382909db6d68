//! The in-memory backend's sessions, waiting authorize requests and failure counts: each in
//! its own lock, so that sign-in traffic never waits on token traffic.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use ring::rand::{SecureRandom, SystemRandom};

use super::failures::{FailureCount, FailureScope, FailureTable, Limit};
use super::memory::MemoryStore;
use super::pending::{live, PendingAuthorization, PendingBounds, PendingTable, PENDING_LIFETIME};
use super::portal::{FailureCounts, PendingState, SessionState, StoredSession};
use super::sessions_table::{Caps, Table};
use super::{Retention, StoreResult};

/// What the portal keeps in one process.
pub struct PortalTables {
    sessions: Mutex<Table>,
    pending: PendingTable,
    failures: Mutex<HashMap<FailureScope, FailureTable>>,
    /// Made when the process starts: anonymous forms are good in this process only, which
    /// is all there is of an in-memory state.
    anonymous_key: [u8; 32],
}

impl Default for PortalTables {
    fn default() -> Self {
        let mut anonymous_key = [0u8; 32];
        if SystemRandom::new().fill(&mut anonymous_key).is_err() {
            for chunk in anonymous_key.chunks_mut(16) {
                chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            }
        }
        PortalTables {
            sessions: Mutex::new(Table::new(Caps::default())),
            pending: PendingTable::default(),
            failures: Mutex::new(HashMap::new()),
            anonymous_key,
        }
    }
}

/// A lock whose holder cannot leave the maps half-written (each operation is a sequence of
/// infallible map calls), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl PortalTables {
    /// Forget expired sessions, requests and failure counts; how many of each.
    pub fn sweep(&self, now: i64, retention: &Retention) -> (u64, u64, u64) {
        let sessions = lock(&self.sessions).sweep(now, retention.session_lifetime.max(1));
        let pending = self.pending.sweep(now);
        let failures: usize = lock(&self.failures)
            .values_mut()
            .map(|table| table.sweep(retention.failure_window, now))
            .sum();
        (sessions as u64, pending as u64, failures as u64)
    }
}

#[async_trait]
impl SessionState for MemoryStore {
    async fn insert_session(
        &self,
        session: StoredSession,
        caps: Caps,
        lifetime: i64,
    ) -> StoreResult<()> {
        let mut table = lock(&self.portal.sessions);
        table.set_caps(caps);
        table.insert(
            session.id_sha256,
            &session.username,
            session.csrf,
            session.created,
            lifetime.max(1),
        );
        Ok(())
    }

    async fn session(&self, id_sha256: &[u8; 32]) -> StoreResult<Option<StoredSession>> {
        Ok(lock(&self.portal.sessions)
            .get(id_sha256)
            .map(|entry| StoredSession {
                id_sha256: *id_sha256,
                username: entry.username.clone(),
                csrf: entry.csrf.clone(),
                created: entry.created,
            }))
    }

    async fn end_session(&self, id_sha256: &[u8; 32]) -> StoreResult<bool> {
        Ok(lock(&self.portal.sessions).remove(id_sha256))
    }

    async fn set_notice(&self, id_sha256: &[u8; 32], notice: &str) -> StoreResult<()> {
        if let Some(entry) = lock(&self.portal.sessions).get_mut(id_sha256) {
            entry.notice = Some(notice.to_string());
        }
        Ok(())
    }

    async fn take_notice(&self, id_sha256: &[u8; 32]) -> StoreResult<Option<String>> {
        Ok(lock(&self.portal.sessions)
            .get_mut(id_sha256)
            .and_then(|entry| entry.notice.take()))
    }

    async fn session_count(&self, username: Option<&str>) -> StoreResult<usize> {
        let table = lock(&self.portal.sessions);
        Ok(match username {
            Some(name) => table.len_for(name),
            None => table.len(),
        })
    }

    async fn anonymous_key(&self, _candidate: &[u8; 32]) -> StoreResult<Vec<u8>> {
        Ok(self.portal.anonymous_key.to_vec())
    }
}

#[async_trait]
impl PendingState for MemoryStore {
    async fn insert_pending(
        &self,
        request: PendingAuthorization,
        bounds: PendingBounds,
    ) -> StoreResult<()> {
        self.portal.pending.insert_within(request, bounds);
        Ok(())
    }

    async fn pending(&self, id: &str, now: i64) -> StoreResult<Option<PendingAuthorization>> {
        Ok(self.portal.pending.get(id).filter(|r| live(r, now)))
    }

    async fn update_pending(&self, request: PendingAuthorization) -> StoreResult<bool> {
        Ok(self.portal.pending.update(request))
    }

    async fn take_pending(&self, id: &str, now: i64) -> StoreResult<Option<PendingAuthorization>> {
        Ok(self
            .portal
            .pending
            .take(id)
            .filter(|r| r.created + PENDING_LIFETIME > now))
    }

    async fn pending_size(&self) -> StoreResult<(usize, usize)> {
        Ok((self.portal.pending.len(), self.portal.pending.bytes_held()))
    }
}

#[async_trait]
impl FailureCounts for MemoryStore {
    async fn failure_count(
        &self,
        scope: FailureScope,
        key: &str,
        limit: &Limit,
        now: i64,
    ) -> StoreResult<FailureCount> {
        Ok(lock(&self.portal.failures)
            .get(&scope)
            .and_then(|table| table.get(key))
            .map(|row| row.standing(limit, now))
            .unwrap_or_default())
    }

    async fn add_failure(
        &self,
        scope: FailureScope,
        key: &str,
        limit: &Limit,
        now: i64,
        capacity: usize,
    ) -> StoreResult<FailureCount> {
        let mut tables = lock(&self.portal.failures);
        let row = tables
            .entry(scope)
            .or_default()
            .fail(key, limit, now, capacity);
        Ok(row.standing(limit, now))
    }

    async fn clear_failures(&self, scope: FailureScope, key: &str, now: i64) -> StoreResult<()> {
        if let Some(table) = lock(&self.portal.failures).get_mut(&scope) {
            table.clear(key, now);
        }
        Ok(())
    }

    async fn failure_keys(&self, scope: FailureScope) -> StoreResult<usize> {
        Ok(lock(&self.portal.failures)
            .get(&scope)
            .map_or(0, FailureTable::len))
    }
}
