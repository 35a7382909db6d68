//! The store's operations in SQL, written once for SQLite and PostgreSQL (`$n` parameters,
//! `RETURNING`, 0/1 flags): clients, approvals and the sweep here, token pairs and codes in
//! `credentials`.

use async_trait::async_trait;

use super::super::{
    Approval, AuthCode, Client, GrantKey, Launch, QueuedFault, Redeemed, Retention, SigningKey,
    Store, StoreResult, StoredCode, StoredLaunch, Swept, Token,
};
use super::rows::{
    self, APPROVAL_COLUMNS, CLIENT_COLUMNS, FAULT_COLUMNS, LAUNCH_COLUMNS, SIGNING_KEY_COLUMNS,
};
use super::{backend, SqlStore};

impl SqlStore {
    async fn count(&self, table: &str) -> StoreResult<usize> {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn insert_client(&self, client: Client) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO clients ({CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&client.client_id)
        .bind(client.secret_sha256.as_ref().map(rows::to_hex))
        .bind(&client.client_name)
        .bind(rows::to_json(&client.redirect_uris))
        .bind(&client.scope)
        .bind(&client.token_endpoint_auth_method)
        .bind(rows::to_json(&client.grant_types))
        .bind(client.issued_at)
        .bind(rows::to_json(&client.extra))
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        let row = sqlx::query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.as_ref().map(rows::client).transpose()
    }

    async fn client_count(&self) -> StoreResult<usize> {
        self.count("clients").await
    }

    async fn evict_idle_clients(&self, keep: usize, spare: &str) -> StoreResult<u64> {
        let keep = i64::try_from(keep.max(1)).unwrap_or(i64::MAX);
        // Counted on the index of never-approved clients; most registrations stop here.
        let idle: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients WHERE approved = 0")
            .fetch_one(&self.writer)
            .await
            .map_err(backend)?;
        if idle <= keep {
            return Ok(0);
        }
        // Oldest first on the same index; two registrations racing here may each drop the
        // same row, leaving one over the cap until the next registration.
        let done = sqlx::query(
            "DELETE FROM clients WHERE client_id IN (SELECT client_id FROM clients \
             WHERE approved = 0 AND client_id <> $1 ORDER BY issued_at, client_id LIMIT $2)",
        )
        .bind(spare)
        .bind(idle - keep)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn insert_approval(&self, approval: Approval) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        // The client has been used: the sweep of idle registrations keeps it from now on.
        sqlx::query("UPDATE clients SET approved = 1 WHERE client_id = $1 AND approved = 0")
            .bind(&approval.client_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(&format!(
            "INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, \
             username = excluded.username, patient_id = excluded.patient_id, \
             scope = excluded.scope, expires = excluded.expires, created = excluded.created"
        ))
        .bind(&approval.id)
        .bind(&approval.client_id)
        .bind(&approval.username)
        .bind(&approval.patient_id)
        .bind(&approval.scope)
        .bind(approval.expires)
        .bind(approval.created)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn approval(&self, id: &str) -> StoreResult<Option<Approval>> {
        let row = sqlx::query(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.as_ref().map(rows::approval).transpose()
    }

    async fn renewable_approval(
        &self,
        grant: &GrantKey,
        now: i64,
    ) -> StoreResult<Option<Approval>> {
        let found = sqlx::query(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE username = $1 AND client_id = $2 \
             AND patient_id = $3 AND scope = $4 AND expires > $5 ORDER BY created DESC, id LIMIT 1"
        ))
        .bind(&grant.username)
        .bind(&grant.client_id)
        .bind(&grant.patient_id)
        .bind(&grant.scope)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        found.as_ref().map(rows::approval).transpose()
    }

    async fn approvals_for_user(&self, username: &str) -> StoreResult<Vec<Approval>> {
        let found = sqlx::query(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE username = $1 ORDER BY created DESC, id"
        ))
        .bind(username)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        found.iter().map(rows::approval).collect()
    }

    async fn delete_approval(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        // Codes before tokens, the order every transaction here takes its locks in (a
        // replay's revocation, issuing and rotating too), so no two can deadlock.
        for sql in [
            "DELETE FROM approvals WHERE id = $1",
            "DELETE FROM auth_codes WHERE approval_id = $1",
            "DELETE FROM token_pairs WHERE approval_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn insert_token(&self, token: Token) -> StoreResult<bool> {
        self.put_token(token).await
    }

    async fn token_by_access(&self, access_sha256: &[u8; 32]) -> StoreResult<Option<Token>> {
        self.find_by_access(access_sha256).await
    }

    async fn token_by_refresh(&self, refresh_sha256: &[u8; 32]) -> StoreResult<Option<Token>> {
        self.find_by_refresh(refresh_sha256).await
    }

    async fn rotate_token(&self, old_refresh_sha256: &[u8; 32], new: Token) -> StoreResult<bool> {
        self.rotate(old_refresh_sha256, new).await
    }

    async fn revoke_token(&self, token_sha256: &[u8; 32]) -> StoreResult<bool> {
        self.revoke(token_sha256).await
    }

    async fn revoke_tokens_from_code(&self, code_sha256: &[u8; 32]) -> StoreResult<()> {
        self.revoke_from_code(code_sha256).await
    }

    async fn token_count(&self) -> StoreResult<usize> {
        self.count("token_pairs").await
    }

    async fn insert_code(&self, code: AuthCode) -> StoreResult<()> {
        self.put_code(code).await
    }

    async fn code(&self, code_sha256: &[u8; 32]) -> StoreResult<Option<StoredCode>> {
        self.find_code(code_sha256).await
    }

    async fn redeem_code(&self, code_sha256: &[u8; 32], token: Token) -> StoreResult<Redeemed> {
        self.redeem(code_sha256, token).await
    }

    async fn use_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires: i64,
        now: i64,
    ) -> StoreResult<bool> {
        // One statement: a new jti is inserted, an expired one taken over, a live one left
        // alone (no row changed: a replay). Racing uses change the row once.
        let done = sqlx::query(
            "INSERT INTO assertion_jtis (client_id, jti, expires) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO UPDATE SET expires = excluded.expires \
             WHERE assertion_jtis.expires <= $4",
        )
        .bind(client_id)
        .bind(jti)
        .bind(expires)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_launch(&self, launch: Launch) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO launches ({LAUNCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 0, $7)"
        ))
        .bind(rows::to_hex(&launch.id_sha256))
        .bind(&launch.username)
        .bind(&launch.patient_id)
        .bind(&launch.client_id)
        .bind(rows::to_json(&launch.context))
        .bind(launch.expires)
        .bind(&launch.fault)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn launch(&self, id_sha256: &[u8; 32]) -> StoreResult<Option<StoredLaunch>> {
        let row = sqlx::query(&format!(
            "SELECT {LAUNCH_COLUMNS} FROM launches WHERE id_sha256 = $1"
        ))
        .bind(rows::to_hex(id_sha256))
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.as_ref().map(rows::launch).transpose()
    }

    async fn spend_launch(&self, id_sha256: &[u8; 32]) -> StoreResult<bool> {
        // One conditional update: of concurrent spenders exactly one changes the row.
        let done = sqlx::query("UPDATE launches SET spent = 1 WHERE id_sha256 = $1 AND spent = 0")
            .bind(rows::to_hex(id_sha256))
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_fault(&self, fault: QueuedFault, max: usize) -> StoreResult<Option<i64>> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        // The next seq and the count come from the client's rows in the same statement;
        // two replicas racing for one seq collide on the primary key, and the loser tries
        // again with the next.
        for _ in 0..8 {
            let seq: Option<i64> = sqlx::query_scalar(
                "INSERT INTO simulated_faults (client_id, seq, fault, at, times, remaining, delay_ms, created) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7 \
                 FROM simulated_faults WHERE client_id = $8 HAVING COUNT(*) < $9 \
                 ON CONFLICT DO NOTHING RETURNING seq",
            )
            .bind(&fault.client_id)
            .bind(&fault.fault)
            .bind(&fault.at)
            .bind(fault.times)
            .bind(fault.remaining)
            .bind(fault.delay_ms)
            .bind(fault.created)
            .bind(&fault.client_id)
            .bind(max)
            .fetch_optional(&self.writer)
            .await
            .map_err(backend)?;
            if seq.is_some() {
                return Ok(seq);
            }
            if self.faults(&fault.client_id).await?.len() as i64 >= max {
                return Ok(None);
            }
        }
        Err(crate::server::store::StoreError::Backend(
            "could not queue the fault: other requests kept queueing faults for this client at the same time".into(),
        ))
    }

    async fn faults(&self, client_id: &str) -> StoreResult<Vec<QueuedFault>> {
        let found = sqlx::query(&format!(
            "SELECT {FAULT_COLUMNS} FROM simulated_faults WHERE client_id = $1 AND remaining <> 0 ORDER BY seq"
        ))
        .bind(client_id)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        found.iter().map(rows::fault).collect()
    }

    async fn take_fault(&self, client_id: &str, seq: i64) -> StoreResult<Option<i64>> {
        // One conditional update: of racing requests, only as many as there are answers
        // left get one.
        let left: Option<i64> = sqlx::query_scalar(
            "UPDATE simulated_faults SET remaining = CASE WHEN remaining > 0 THEN remaining - 1 ELSE remaining END \
             WHERE client_id = $1 AND seq = $2 AND remaining <> 0 RETURNING remaining",
        )
        .bind(client_id)
        .bind(seq)
        .fetch_optional(&self.writer)
        .await
        .map_err(backend)?;
        if left == Some(0) {
            sqlx::query(
                "DELETE FROM simulated_faults WHERE client_id = $1 AND seq = $2 AND remaining = 0",
            )
            .bind(client_id)
            .bind(seq)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        }
        Ok(left)
    }

    async fn clear_faults(&self, client_id: &str) -> StoreResult<u64> {
        let done =
            sqlx::query("DELETE FROM simulated_faults WHERE client_id = $1 AND remaining <> 0")
                .bind(client_id)
                .execute(&self.writer)
                .await
                .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let found = sqlx::query(&format!(
            "SELECT {SIGNING_KEY_COLUMNS} FROM signing_keys ORDER BY generation"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        found.iter().map(rows::signing_key).collect()
    }

    async fn add_signing_key(&self, key: SigningKey) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        // The primary key decides between replicas rotating at once: one insert wins.
        let added = sqlx::query(&format!(
            "INSERT INTO signing_keys ({SIGNING_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL)              ON CONFLICT DO NOTHING"
        ))
        .bind(key.generation)
        .bind(&key.kid)
        .bind(&key.private_pem)
        .bind(&key.public_jwk)
        .bind(key.created)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected()
            == 1;
        if added {
            sqlx::query(
                "UPDATE signing_keys SET retired = $1 WHERE generation < $2 AND retired IS NULL",
            )
            .bind(key.created)
            .bind(key.generation)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(added)
    }

    async fn sweep(&self, now: i64, retention: Retention) -> StoreResult<Swept> {
        let run = |sql: &'static str, cutoff: i64| async move {
            sqlx::query(sql)
                .bind(cutoff)
                .execute(&self.writer)
                .await
                .map(|done| done.rows_affected())
                .map_err(backend)
        };
        let approvals = run("DELETE FROM approvals WHERE expires <= $1", now).await?;
        let tokens = run(
            "DELETE FROM token_pairs WHERE (access_expires <= $1 AND refresh_sha256 IS NULL) \
             OR NOT EXISTS (SELECT 1 FROM approvals WHERE approvals.id = token_pairs.approval_id)",
            now,
        )
        .await?;
        let codes = run(
            "DELETE FROM auth_codes WHERE expires <= $1 \
             OR NOT EXISTS (SELECT 1 FROM approvals WHERE approvals.id = auth_codes.approval_id)",
            now.saturating_sub(retention.code_memory),
        )
        .await?;
        let clients = match retention.client_idle {
            Some(idle) => {
                run(
                    "DELETE FROM clients WHERE approved = 0 AND issued_at <= $1",
                    now.saturating_sub(idle),
                )
                .await?
            }
            None => 0,
        };
        let signing_keys = run(
            "DELETE FROM signing_keys WHERE retired IS NOT NULL AND retired <= $1",
            now.saturating_sub(retention.signing_key_memory),
        )
        .await?;
        let launches = run(
            "DELETE FROM launches WHERE expires <= $1",
            now.saturating_sub(retention.launch_memory),
        )
        .await?;
        let jtis = run("DELETE FROM assertion_jtis WHERE expires <= $1", now).await?;
        let faults = sqlx::query(
            "DELETE FROM simulated_faults WHERE remaining = 0 \
             OR NOT EXISTS (SELECT 1 FROM clients WHERE clients.client_id = simulated_faults.client_id)",
        )
        .execute(&self.writer)
        .await
        .map_err(backend)?
        .rows_affected();
        let sessions = run(
            "DELETE FROM browser_sessions WHERE created <= $1",
            now.saturating_sub(retention.session_lifetime.max(1)),
        )
        .await?;
        sqlx::query(
            "DELETE FROM session_notices WHERE NOT EXISTS (SELECT 1 FROM browser_sessions \
             WHERE browser_sessions.id_sha256 = session_notices.id_sha256)",
        )
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        let pending = run(
            "DELETE FROM pending_authorizations WHERE created <= $1",
            now.saturating_sub(crate::server::store::pending::PENDING_LIFETIME),
        )
        .await?;
        let failures = sqlx::query(
            "DELETE FROM sign_in_failures WHERE paused_until <= $1 AND window_start <= $2",
        )
        .bind(now)
        .bind(now.saturating_sub(retention.failure_window))
        .execute(&self.writer)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(Swept {
            approvals,
            tokens,
            codes,
            clients,
            signing_keys,
            launches,
            jtis,
            faults,
            sessions,
            pending,
            failures,
        })
    }
}
