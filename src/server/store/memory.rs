//! The in-memory store: ephemeral, like the seed's demo server.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Approval, AuthCode, Client, GrantKey, Launch, QueuedFault, Redeemed, Retention, SigningKey,
    Store, StoreResult, StoredCode, StoredLaunch, Swept, Token, UNTIL_CLEARED,
};

/// A SHA-256, the key of tokens and codes.
type Hash = [u8; 32];

/// A code and what has happened to it.
struct CodeEntry {
    code: AuthCode,
    /// Exchanged once already.
    used: bool,
    /// Exchanged again: tokens from it are revoked and no more may be issued.
    replayed: bool,
}

#[derive(Default)]
struct Tables {
    clients: HashMap<String, Client>,
    /// Clients that got an approval at some time (the sweep keeps them).
    approved_clients: HashSet<String>,
    /// Ids of clients in registration order, oldest first, for dropping the oldest idle
    /// one; entries of clients since approved or swept are skipped when reached.
    registered: VecDeque<String>,
    /// How many clients in `clients` are not in `approved_clients`.
    idle: usize,
    approvals: HashMap<String, Approval>,
    /// The newest approval saved for each grant (entries whose approval is gone are dropped
    /// when it goes).
    grants: HashMap<GrantKey, String>,
    /// Token pairs by access token hash.
    tokens: HashMap<Hash, Token>,
    /// Refresh token hash -> access token hash.
    refresh_index: HashMap<Hash, Hash>,
    codes: HashMap<Hash, CodeEntry>,
    /// Signing keys by generation.
    signing_keys: std::collections::BTreeMap<i64, SigningKey>,
    /// Launches by the SHA-256 of their id.
    launches: HashMap<Hash, StoredLaunch>,
    /// Assertion jtis by (client_id, jti): until when each is remembered.
    jtis: HashMap<(String, String), i64>,
    /// Simulated faults by client, in the order they answer (only clients with some).
    faults: HashMap<String, Vec<QueuedFault>>,
    /// The last fault `seq` given out (one sequence for all clients).
    fault_seq: i64,
}

impl Tables {
    fn remove_token(&mut self, access: &Hash) -> Option<Token> {
        let token = self.tokens.remove(access)?;
        if let Some(refresh) = &token.refresh_sha256 {
            self.refresh_index.remove(refresh);
        }
        Some(token)
    }

    /// Whether the token comes from a code that was replayed (so it must not be saved).
    fn comes_from_replayed_code(&self, token: &Token) -> bool {
        token
            .from_code_sha256
            .as_ref()
            .and_then(|code| self.codes.get(code))
            .is_some_and(|entry| entry.replayed)
    }

    fn remove_tokens_where(&mut self, doomed: impl Fn(&Token, &Self) -> bool) -> u64 {
        let keys: Vec<Hash> = self
            .tokens
            .values()
            .filter(|t| doomed(t, self))
            .map(|t| t.access_sha256)
            .collect();
        for access in &keys {
            self.remove_token(access);
        }
        keys.len() as u64
    }

    fn put_token(&mut self, token: Token) {
        if let Some(refresh) = token.refresh_sha256 {
            self.refresh_index.insert(refresh, token.access_sha256);
        }
        self.tokens.insert(token.access_sha256, token);
    }
}

/// All state in one mutex-guarded set of maps; every operation is short and atomic.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    /// Sessions, waiting authorize requests and failure counts (see `memory_portal`).
    pub(super) portal: super::memory_portal::PortalTables,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the maps half-written (every
        // operation below is a sequence of infallible map calls), so poisoning is ignored.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert_client(&self, client: Client) -> StoreResult<()> {
        let mut tables = self.lock();
        let id = client.client_id.clone();
        if tables.clients.insert(id.clone(), client).is_none() {
            if !tables.approved_clients.contains(&id) {
                tables.idle += 1;
            }
            tables.registered.push_back(id);
        }
        Ok(())
    }

    async fn evict_idle_clients(&self, keep: usize, spare: &str) -> StoreResult<u64> {
        let mut tables = self.lock();
        let keep = keep.max(1);
        let mut dropped = 0;
        let mut spared = None;
        while tables.idle > keep {
            // `idle > keep >= 1` idle clients are all in `registered`, so one is reached.
            let Some(id) = tables.registered.pop_front() else {
                break;
            };
            if id == spare {
                spared = Some(id);
            } else if !tables.approved_clients.contains(&id) && tables.clients.remove(&id).is_some()
            {
                tables.idle -= 1;
                dropped += 1;
            }
        }
        if let Some(id) = spared {
            tables.registered.push_front(id);
        }
        Ok(dropped)
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        Ok(self.lock().clients.get(client_id).cloned())
    }

    async fn client_count(&self) -> StoreResult<usize> {
        Ok(self.lock().clients.len())
    }

    async fn insert_approval(&self, approval: Approval) -> StoreResult<()> {
        let mut tables = self.lock();
        if tables.approved_clients.insert(approval.client_id.clone())
            && tables.clients.contains_key(&approval.client_id)
        {
            tables.idle = tables.idle.saturating_sub(1);
        }
        tables
            .grants
            .insert(GrantKey::of(&approval), approval.id.clone());
        tables.approvals.insert(approval.id.clone(), approval);
        Ok(())
    }

    async fn renewable_approval(
        &self,
        grant: &GrantKey,
        now: i64,
    ) -> StoreResult<Option<Approval>> {
        let tables = self.lock();
        Ok(tables
            .grants
            .get(grant)
            .and_then(|id| tables.approvals.get(id))
            .filter(|a| a.expires > now)
            .cloned())
    }

    async fn approval(&self, id: &str) -> StoreResult<Option<Approval>> {
        Ok(self.lock().approvals.get(id).cloned())
    }

    async fn approvals_for_user(&self, username: &str) -> StoreResult<Vec<Approval>> {
        let mut list: Vec<Approval> = self
            .lock()
            .approvals
            .values()
            .filter(|a| a.username == username)
            .cloned()
            .collect();
        list.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(list)
    }

    async fn delete_approval(&self, id: &str) -> StoreResult<()> {
        let mut tables = self.lock();
        if let Some(gone) = tables.approvals.remove(id) {
            let key = GrantKey::of(&gone);
            if tables.grants.get(&key).is_some_and(|latest| latest == id) {
                tables.grants.remove(&key);
            }
        }
        tables.remove_tokens_where(|t, _| t.approval_id == id);
        tables.codes.retain(|_, entry| entry.code.approval_id != id);
        Ok(())
    }

    async fn insert_token(&self, token: Token) -> StoreResult<bool> {
        let mut tables = self.lock();
        if tables.comes_from_replayed_code(&token) {
            return Ok(false);
        }
        tables.put_token(token);
        Ok(true)
    }

    async fn token_by_access(&self, access_sha256: &Hash) -> StoreResult<Option<Token>> {
        Ok(self.lock().tokens.get(access_sha256).cloned())
    }

    async fn token_by_refresh(&self, refresh_sha256: &Hash) -> StoreResult<Option<Token>> {
        let tables = self.lock();
        Ok(tables
            .refresh_index
            .get(refresh_sha256)
            .and_then(|access| tables.tokens.get(access))
            .cloned())
    }

    async fn rotate_token(&self, old_refresh_sha256: &Hash, new: Token) -> StoreResult<bool> {
        let mut tables = self.lock();
        let Some(access) = tables.refresh_index.get(old_refresh_sha256).copied() else {
            return Ok(false);
        };
        if tables.comes_from_replayed_code(&new) {
            return Ok(false);
        }
        tables.remove_token(&access);
        tables.put_token(new);
        Ok(true)
    }

    async fn revoke_token(&self, token_sha256: &Hash) -> StoreResult<bool> {
        let mut tables = self.lock();
        let access = match tables.refresh_index.get(token_sha256) {
            Some(access) => *access,
            None => *token_sha256,
        };
        Ok(tables.remove_token(&access).is_some())
    }

    async fn revoke_tokens_from_code(&self, code_sha256: &Hash) -> StoreResult<()> {
        let mut tables = self.lock();
        if let Some(entry) = tables.codes.get_mut(code_sha256) {
            entry.replayed = true;
        }
        tables.remove_tokens_where(|t, _| t.from_code_sha256.as_ref() == Some(code_sha256));
        Ok(())
    }

    async fn token_count(&self) -> StoreResult<usize> {
        Ok(self.lock().tokens.len())
    }

    async fn insert_code(&self, code: AuthCode) -> StoreResult<()> {
        let entry = CodeEntry {
            code,
            used: false,
            replayed: false,
        };
        self.lock().codes.insert(entry.code.code_sha256, entry);
        Ok(())
    }

    async fn code(&self, code_sha256: &Hash) -> StoreResult<Option<StoredCode>> {
        Ok(self.lock().codes.get(code_sha256).map(|entry| StoredCode {
            code: entry.code.clone(),
            used: entry.used,
        }))
    }

    async fn redeem_code(&self, code_sha256: &Hash, token: Token) -> StoreResult<Redeemed> {
        let mut tables = self.lock();
        Ok(match tables.codes.get_mut(code_sha256) {
            None => Redeemed::Unknown,
            Some(entry) if entry.used || entry.replayed => Redeemed::Replayed,
            Some(entry) => {
                entry.used = true;
                tables.put_token(token);
                Redeemed::Fresh
            }
        })
    }

    async fn use_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tables = self.lock();
        let key = (client_id.to_string(), jti.to_string());
        match tables.jtis.get(&key) {
            Some(until) if *until > now => Ok(false),
            _ => {
                tables.jtis.insert(key, expires);
                Ok(true)
            }
        }
    }

    async fn insert_launch(&self, launch: Launch) -> StoreResult<()> {
        let stored = StoredLaunch {
            launch,
            spent: false,
        };
        self.lock().launches.insert(stored.launch.id_sha256, stored);
        Ok(())
    }

    async fn launch(&self, id_sha256: &Hash) -> StoreResult<Option<StoredLaunch>> {
        Ok(self.lock().launches.get(id_sha256).cloned())
    }

    async fn spend_launch(&self, id_sha256: &Hash) -> StoreResult<bool> {
        Ok(match self.lock().launches.get_mut(id_sha256) {
            Some(entry) if !entry.spent => {
                entry.spent = true;
                true
            }
            _ => false,
        })
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        Ok(self.lock().signing_keys.values().cloned().collect())
    }

    async fn add_signing_key(&self, key: SigningKey) -> StoreResult<bool> {
        let mut tables = self.lock();
        if tables.signing_keys.contains_key(&key.generation) {
            return Ok(false);
        }
        for older in tables.signing_keys.range_mut(..key.generation) {
            older.1.retired.get_or_insert(key.created);
        }
        tables.signing_keys.insert(key.generation, key);
        Ok(true)
    }

    async fn add_fault(&self, mut fault: QueuedFault, max: usize) -> StoreResult<Option<i64>> {
        let mut tables = self.lock();
        let queued = tables.faults.get(&fault.client_id).map_or(0, Vec::len);
        if queued >= max {
            return Ok(None);
        }
        tables.fault_seq += 1;
        fault.seq = tables.fault_seq;
        let seq = fault.seq;
        tables
            .faults
            .entry(fault.client_id.clone())
            .or_default()
            .push(fault);
        Ok(Some(seq))
    }

    async fn faults(&self, client_id: &str) -> StoreResult<Vec<QueuedFault>> {
        Ok(self
            .lock()
            .faults
            .get(client_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn take_fault(&self, client_id: &str, seq: i64) -> StoreResult<Option<i64>> {
        let mut tables = self.lock();
        let Some(queue) = tables.faults.get_mut(client_id) else {
            return Ok(None);
        };
        let Some(index) = queue.iter().position(|f| f.seq == seq) else {
            return Ok(None);
        };
        let left = match queue[index].remaining {
            UNTIL_CLEARED => UNTIL_CLEARED,
            n => n - 1,
        };
        if left == 0 {
            queue.remove(index);
            if queue.is_empty() {
                tables.faults.remove(client_id);
            }
        } else {
            queue[index].remaining = left;
        }
        Ok(Some(left))
    }

    async fn clear_faults(&self, client_id: &str) -> StoreResult<u64> {
        Ok(self
            .lock()
            .faults
            .remove(client_id)
            .map_or(0, |queue| queue.len() as u64))
    }

    async fn sweep(&self, now: i64, retention: Retention) -> StoreResult<Swept> {
        let mut tables = self.lock();
        let before = tables.signing_keys.len();
        tables.signing_keys.retain(|_, k| {
            k.retired
                .is_none_or(|at| at.saturating_add(retention.signing_key_memory) > now)
        });
        let signing_keys = (before - tables.signing_keys.len()) as u64;
        let before = tables.launches.len();
        tables
            .launches
            .retain(|_, l| l.launch.expires.saturating_add(retention.launch_memory) > now);
        let launches = (before - tables.launches.len()) as u64;
        let before = tables.jtis.len();
        tables.jtis.retain(|_, until| *until > now);
        let jtis = (before - tables.jtis.len()) as u64;
        let before = tables.approvals.len();
        tables.approvals.retain(|_, a| a.expires > now);
        let approvals = (before - tables.approvals.len()) as u64;
        let Tables {
            approvals: live,
            grants,
            codes,
            clients,
            approved_clients,
            registered,
            idle: idle_count,
            ..
        } = &mut *tables;
        grants.retain(|_, id| live.contains_key(id));
        let before = codes.len();
        codes.retain(|_, entry| {
            entry.code.expires.saturating_add(retention.code_memory) > now
                && live.contains_key(&entry.code.approval_id)
        });
        let codes = (before - codes.len()) as u64;
        let before = clients.len();
        if let Some(idle) = retention.client_idle {
            clients.retain(|id, c| {
                c.issued_at.saturating_add(idle) > now || approved_clients.contains(id)
            });
        }
        registered.retain(|id| clients.contains_key(id) && !approved_clients.contains(id));
        let clients = (before - clients.len()) as u64;
        *idle_count = idle_count.saturating_sub(clients as usize);
        let tokens = tables.remove_tokens_where(|t, tables| {
            (t.access_expires <= now && t.refresh_sha256.is_none())
                || !tables.approvals.contains_key(&t.approval_id)
        });
        // Used-up faults are removed as they are used; what is left to go is the faults of
        // clients the sweep (or eviction) dropped.
        let Tables {
            faults,
            clients: registered_clients,
            ..
        } = &mut *tables;
        let mut gone = 0;
        faults.retain(|client_id, queue| {
            let keep = registered_clients.contains_key(client_id);
            if !keep {
                gone += queue.len() as u64;
            }
            keep
        });
        drop(tables);
        let (sessions, pending, failures) = self.portal.sweep(now, &retention);
        Ok(Swept {
            approvals,
            tokens,
            codes,
            clients,
            signing_keys,
            launches,
            jtis,
            faults: gone,
            sessions,
            pending,
            failures,
        })
    }
}
