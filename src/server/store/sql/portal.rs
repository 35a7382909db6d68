//! The portal's state in SQL: browser sessions and their notices, the anonymous CSRF key,
//! waiting authorize requests and failed sign-in counts. Spending a request and counting a
//! failure are single statements (`DELETE … RETURNING`, an upsert), atomic across replicas;
//! the bounds on how many rows are kept are counted first and may be overshot by a few rows
//! while replicas race (the next insert or the sweep trims them).

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::super::failures::{FailureCount, FailureRow, FailureScope, Limit};
use super::super::pending::{PendingAuthorization, PendingBounds, PENDING_LIFETIME};
use super::super::portal::{Caps, FailureCounts, PendingState, SessionState, StoredSession};
use super::super::{StoreError, StoreResult};
use super::rows::{from_hex, to_hex, to_json};
use super::{backend, SqlStore};

/// The `server_secrets` row of the anonymous CSRF key.
const ANONYMOUS_KEY: &str = "anonymous_csrf_key";

fn column<'r, T>(row: &'r AnyRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name).map_err(backend)
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// The rows an eviction of the oldest rows deleted. Two replicas evicting the same oldest
/// rows at once can deadlock on PostgreSQL, which then aborts one of them: the other did
/// the eviction, so the aborted one counts as nothing deleted (a bound overshot by a row
/// is trimmed by the next insert or the sweep), never as a failed request.
fn evicted(result: Result<sqlx::any::AnyQueryResult, sqlx::Error>) -> StoreResult<u64> {
    match result {
        Ok(done) => Ok(done.rows_affected()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(DEADLOCK_DETECTED) => Ok(0),
        Err(e) => Err(backend(e)),
    }
}

/// PostgreSQL's SQLSTATE for a transaction aborted to break a deadlock.
const DEADLOCK_DETECTED: &str = "40P01";

fn id_hash(id: &str) -> String {
    to_hex(&Sha256::digest(id.as_bytes()).into())
}

impl SqlStore {
    async fn scalar(&self, sql: &str, bind: Option<&str>) -> StoreResult<i64> {
        let mut query = sqlx::query_scalar(sql);
        if let Some(value) = bind {
            query = query.bind(value.to_string());
        }
        query.fetch_one(&self.writer).await.map_err(backend)
    }

    /// A stored request back from its row (its id is not stored: the caller knows it).
    fn pending_row(row: &AnyRow, id: &str) -> StoreResult<PendingAuthorization> {
        let text: String = column(row, "request")?;
        let mut request: PendingAuthorization = serde_json::from_str(&text).map_err(|e| {
            StoreError::Backend(format!("a pending request holds unreadable JSON: {e}"))
        })?;
        request.id = id.to_string();
        request.client_id = column(row, "client_id")?;
        request.created = column(row, "created")?;
        Ok(request)
    }

    /// Delete the `n` oldest pending requests of a client.
    async fn drop_oldest_pending(&self, client_id: &str, n: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM pending_authorizations WHERE id_sha256 IN (SELECT id_sha256 \
             FROM pending_authorizations WHERE client_id = $1 ORDER BY created, id_sha256 LIMIT $2)",
        )
        .bind(client_id)
        .bind(n)
        .execute(&self.writer)
        .await;
        evicted(done)
    }
}

#[async_trait]
impl SessionState for SqlStore {
    async fn insert_session(
        &self,
        session: StoredSession,
        caps: Caps,
        // Expired sessions are the oldest, so dropping the oldest drops them first.
        _lifetime: i64,
    ) -> StoreResult<()> {
        let per_user = i64::try_from(caps.per_user.max(1)).unwrap_or(i64::MAX);
        let total = i64::try_from(caps.total.max(1)).unwrap_or(i64::MAX);
        let theirs: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM browser_sessions WHERE username = $1")
                .bind(&session.username)
                .fetch_one(&self.writer)
                .await
                .map_err(backend)?;
        // Expired sessions are the oldest: dropping the oldest drops them first.
        if theirs >= per_user {
            let done = sqlx::query(
                "DELETE FROM browser_sessions WHERE id_sha256 IN (SELECT id_sha256 \
                 FROM browser_sessions WHERE username = $1 ORDER BY created, id_sha256 LIMIT $2)",
            )
            .bind(&session.username)
            .bind(theirs - per_user + 1)
            .execute(&self.writer)
            .await;
            evicted(done)?;
        }
        let all = self
            .scalar("SELECT COUNT(*) FROM browser_sessions", None)
            .await?;
        if all >= total {
            let done = sqlx::query(
                "DELETE FROM browser_sessions WHERE id_sha256 IN (SELECT id_sha256 \
                 FROM browser_sessions ORDER BY created, id_sha256 LIMIT $1)",
            )
            .bind(all - total + 1)
            .execute(&self.writer)
            .await;
            evicted(done)?;
        }
        sqlx::query(
            "INSERT INTO browser_sessions (id_sha256, username, csrf, created) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (id_sha256) DO UPDATE SET \
             username = excluded.username, csrf = excluded.csrf, created = excluded.created",
        )
        .bind(to_hex(&session.id_sha256))
        .bind(&session.username)
        .bind(&session.csrf)
        .bind(session.created)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn session(&self, id_sha256: &[u8; 32]) -> StoreResult<Option<StoredSession>> {
        let row = sqlx::query(
            "SELECT username, csrf, created FROM browser_sessions WHERE id_sha256 = $1",
        )
        .bind(to_hex(id_sha256))
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(|row| {
            Ok(StoredSession {
                id_sha256: *id_sha256,
                username: column(&row, "username")?,
                csrf: column(&row, "csrf")?,
                created: column(&row, "created")?,
            })
        })
        .transpose()
    }

    async fn end_session(&self, id_sha256: &[u8; 32]) -> StoreResult<bool> {
        // Its notice, if any, goes with the next sweep (nothing can take it meanwhile: the
        // id is never handed out again).
        let done = sqlx::query("DELETE FROM browser_sessions WHERE id_sha256 = $1")
            .bind(to_hex(id_sha256))
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_notice(&self, id_sha256: &[u8; 32], notice: &str) -> StoreResult<()> {
        let hex = to_hex(id_sha256);
        sqlx::query(
            "INSERT INTO session_notices (id_sha256, notice) SELECT $1, $2 \
             WHERE EXISTS (SELECT 1 FROM browser_sessions WHERE id_sha256 = $3) \
             ON CONFLICT (id_sha256) DO UPDATE SET notice = excluded.notice",
        )
        .bind(&hex)
        .bind(notice)
        .bind(&hex)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn take_notice(&self, id_sha256: &[u8; 32]) -> StoreResult<Option<String>> {
        sqlx::query_scalar("DELETE FROM session_notices WHERE id_sha256 = $1 RETURNING notice")
            .bind(to_hex(id_sha256))
            .fetch_optional(&self.writer)
            .await
            .map_err(backend)
    }

    async fn session_count(&self, username: Option<&str>) -> StoreResult<usize> {
        Ok(count(match username {
            Some(name) => {
                self.scalar(
                    "SELECT COUNT(*) FROM browser_sessions WHERE username = $1",
                    Some(name),
                )
                .await?
            }
            None => {
                self.scalar("SELECT COUNT(*) FROM browser_sessions", None)
                    .await?
            }
        }))
    }

    async fn anonymous_key(&self, candidate: &[u8; 32]) -> StoreResult<Vec<u8>> {
        // The first replica's key wins; the others read it back.
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(ANONYMOUS_KEY)
        .bind(to_hex(candidate))
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        let hex: String = sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(ANONYMOUS_KEY)
            .fetch_one(&self.writer)
            .await
            .map_err(backend)?;
        from_hex(&hex).map(|key| key.to_vec()).ok_or_else(|| {
            StoreError::Backend("the anonymous CSRF key is not 32 bytes of hex".into())
        })
    }
}

#[async_trait]
impl PendingState for SqlStore {
    async fn insert_pending(
        &self,
        request: PendingAuthorization,
        bounds: PendingBounds,
    ) -> StoreResult<()> {
        let text = to_json(&request);
        let PendingBounds { per_client, global } = bounds;
        if text.len() > per_client.bytes.min(global.bytes)
            || per_client.entries == 0
            || global.entries == 0
        {
            return Ok(());
        }
        let per_client = i64::try_from(per_client.entries).unwrap_or(i64::MAX);
        let global = i64::try_from(global.entries).unwrap_or(i64::MAX);
        let hex = id_hash(&request.id);
        let theirs = self
            .scalar(
                "SELECT COUNT(*) FROM pending_authorizations WHERE client_id = $1",
                Some(&request.client_id),
            )
            .await?;
        if theirs >= per_client {
            self.drop_oldest_pending(&request.client_id, theirs - per_client + 1)
                .await?;
        }
        let mut all = self
            .scalar("SELECT COUNT(*) FROM pending_authorizations", None)
            .await?;
        if all >= global {
            let cutoff = request.created.saturating_sub(PENDING_LIFETIME);
            let done = sqlx::query("DELETE FROM pending_authorizations WHERE created <= $1")
                .bind(cutoff)
                .execute(&self.writer)
                .await
                .map_err(backend)?;
            all -= i64::try_from(done.rows_affected()).unwrap_or(0);
        }
        // Past the global bound, the client with the most requests loses its oldest.
        for _ in 0..4 {
            if all < global {
                break;
            }
            let heaviest: Option<String> = sqlx::query_scalar(
                "SELECT client_id FROM pending_authorizations GROUP BY client_id \
                 ORDER BY COUNT(*) DESC, client_id LIMIT 1",
            )
            .fetch_optional(&self.writer)
            .await
            .map_err(backend)?;
            let Some(heaviest) = heaviest else { break };
            let dropped = self
                .drop_oldest_pending(&heaviest, all - global + 1)
                .await?;
            if dropped == 0 {
                break;
            }
            all -= i64::try_from(dropped).unwrap_or(0);
        }
        sqlx::query(
            "INSERT INTO pending_authorizations (id_sha256, client_id, created, request) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (id_sha256) DO UPDATE SET \
             client_id = excluded.client_id, created = excluded.created, request = excluded.request",
        )
        .bind(&hex)
        .bind(&request.client_id)
        .bind(request.created)
        .bind(&text)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn pending(&self, id: &str, now: i64) -> StoreResult<Option<PendingAuthorization>> {
        let row = sqlx::query(
            "SELECT client_id, created, request FROM pending_authorizations \
             WHERE id_sha256 = $1 AND created > $2",
        )
        .bind(id_hash(id))
        .bind(now.saturating_sub(PENDING_LIFETIME))
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(|row| SqlStore::pending_row(&row, id)).transpose()
    }

    async fn update_pending(&self, request: PendingAuthorization) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE pending_authorizations SET request = $1 WHERE id_sha256 = $2")
                .bind(to_json(&request))
                .bind(id_hash(&request.id))
                .execute(&self.writer)
                .await
                .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn take_pending(&self, id: &str, now: i64) -> StoreResult<Option<PendingAuthorization>> {
        // One statement: of racing takers, one deletes the row and gets it.
        let row = sqlx::query(
            "DELETE FROM pending_authorizations WHERE id_sha256 = $1 \
             RETURNING client_id, created, request",
        )
        .bind(id_hash(id))
        .fetch_optional(&self.writer)
        .await
        .map_err(backend)?;
        let request = row.map(|row| SqlStore::pending_row(&row, id)).transpose()?;
        Ok(request.filter(|r| r.created + PENDING_LIFETIME > now))
    }

    async fn pending_size(&self) -> StoreResult<(usize, usize)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(request)), 0) AS bytes \
             FROM pending_authorizations",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        Ok((count(column(&row, "n")?), count(column(&row, "bytes")?)))
    }
}

fn failure_row(row: &AnyRow) -> StoreResult<FailureRow> {
    Ok(FailureRow {
        failures: u32::try_from(column::<i64>(row, "failures")?).unwrap_or(u32::MAX),
        window_start: column(row, "window_start")?,
        paused_until: column(row, "paused_until")?,
        last_seen: column(row, "last_seen")?,
    })
}

#[async_trait]
impl FailureCounts for SqlStore {
    async fn failure_count(
        &self,
        scope: FailureScope,
        key: &str,
        limit: &Limit,
        now: i64,
    ) -> StoreResult<FailureCount> {
        let row = sqlx::query(
            "SELECT failures, window_start, paused_until, last_seen FROM sign_in_failures \
             WHERE scope = $1 AND key = $2",
        )
        .bind(scope.as_str())
        .bind(key)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        Ok(match row {
            Some(row) => failure_row(&row)?.standing(limit, now),
            None => FailureCount::default(),
        })
    }

    async fn add_failure(
        &self,
        scope: FailureScope,
        key: &str,
        limit: &Limit,
        now: i64,
        capacity: usize,
    ) -> StoreResult<FailureCount> {
        let first = FailureRow::default().after_failure(limit, now);
        // One upsert, the same rules as `FailureRow::after_failure`: the row is locked while
        // it changes, so racing failures from any replica are each counted.
        let row = sqlx::query(
            "INSERT INTO sign_in_failures (scope, key, failures, window_start, paused_until, last_seen) \
             VALUES ($1, $2, 1, $3, $4, $3) ON CONFLICT (scope, key) DO UPDATE SET \
             failures = CASE WHEN sign_in_failures.paused_until > $3 THEN sign_in_failures.failures \
               WHEN sign_in_failures.failures = 0 OR (sign_in_failures.paused_until <> 0 AND sign_in_failures.paused_until <= $3) \
                 OR sign_in_failures.window_start <= $3 - $5 THEN 1 \
               ELSE sign_in_failures.failures + 1 END, \
             window_start = CASE WHEN sign_in_failures.paused_until > $3 THEN sign_in_failures.window_start \
               WHEN sign_in_failures.failures = 0 OR (sign_in_failures.paused_until <> 0 AND sign_in_failures.paused_until <= $3) \
                 OR sign_in_failures.window_start <= $3 - $5 THEN $3 \
               ELSE sign_in_failures.window_start END, \
             paused_until = CASE WHEN sign_in_failures.paused_until > $3 THEN sign_in_failures.paused_until \
               WHEN sign_in_failures.failures = 0 OR (sign_in_failures.paused_until <> 0 AND sign_in_failures.paused_until <= $3) \
                 OR sign_in_failures.window_start <= $3 - $5 THEN $4 \
               WHEN sign_in_failures.failures + 1 >= $6 THEN $3 + $7 \
               ELSE 0 END, \
             last_seen = $3 \
             RETURNING failures, window_start, paused_until, last_seen",
        )
        .bind(scope.as_str())
        .bind(key)
        .bind(now)
        .bind(first.paused_until)
        .bind(limit.window)
        .bind(i64::from(limit.failures))
        .bind(limit.pause)
        .fetch_one(&self.writer)
        .await
        .map_err(backend)?;
        let standing = failure_row(&row)?.standing(limit, now);
        let capacity = i64::try_from(capacity.max(1)).unwrap_or(i64::MAX);
        let held = self
            .scalar(
                "SELECT COUNT(*) FROM sign_in_failures WHERE scope = $1",
                Some(scope.as_str()),
            )
            .await?;
        if held > capacity {
            // Stale rows first, then the longest quiet (never the one just counted).
            sqlx::query(
                "DELETE FROM sign_in_failures WHERE scope = $1 AND paused_until <= $2 \
                 AND (paused_until <> 0 OR window_start <= $3)",
            )
            .bind(scope.as_str())
            .bind(now)
            .bind(now.saturating_sub(limit.window))
            .execute(&self.writer)
            .await
            .map_err(backend)?;
            let left = self
                .scalar(
                    "SELECT COUNT(*) FROM sign_in_failures WHERE scope = $1",
                    Some(scope.as_str()),
                )
                .await?;
            if left > capacity {
                let done = sqlx::query(
                    "DELETE FROM sign_in_failures WHERE scope = $1 AND key IN (SELECT key \
                     FROM sign_in_failures WHERE scope = $2 AND key <> $3 \
                     ORDER BY last_seen, key LIMIT $4)",
                )
                .bind(scope.as_str())
                .bind(scope.as_str())
                .bind(key)
                .bind(left - capacity)
                .execute(&self.writer)
                .await;
                evicted(done)?;
            }
        }
        Ok(standing)
    }

    async fn clear_failures(&self, scope: FailureScope, key: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM sign_in_failures WHERE scope = $1 AND key = $2 AND paused_until <= $3",
        )
        .bind(scope.as_str())
        .bind(key)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn failure_keys(&self, scope: FailureScope) -> StoreResult<usize> {
        Ok(count(
            self.scalar(
                "SELECT COUNT(*) FROM sign_in_failures WHERE scope = $1",
                Some(scope.as_str()),
            )
            .await?,
        ))
    }
}
