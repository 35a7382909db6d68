//! The store's operations in SQL, written once for SQLite and PostgreSQL (`$n` parameters,
//! `RETURNING`, 0/1 flags).

use async_trait::async_trait;
use sqlx::AnyConnection;

use super::super::{
    Approval, AuthCode, Client, GrantKey, Redeemed, Store, StoreResult, Swept, Token,
};
use super::rows::{self, APPROVAL_COLUMNS, CLIENT_COLUMNS, CODE_COLUMNS, TOKEN_COLUMNS};
use super::{backend, SqlStore};

/// Lock a code's row (so replay revocation and issuing from that code take turns) and say
/// whether it was replayed. A code already swept has nothing left to guard.
async fn code_replayed(conn: &mut AnyConnection, code: &str) -> StoreResult<bool> {
    let flag: Option<i64> = sqlx::query_scalar(
        "UPDATE codes SET replayed = replayed WHERE code = $1 RETURNING replayed",
    )
    .bind(code)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    Ok(flag == Some(1))
}

async fn insert_token_row(conn: &mut AnyConnection, token: &Token) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&token.access_token)
    .bind(&token.refresh_token)
    .bind(&token.approval_id)
    .bind(&token.scope)
    .bind(token.issued_at)
    .bind(token.access_expires)
    .bind(&token.from_code)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

impl SqlStore {
    async fn count(&self, table: &str) -> StoreResult<usize> {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    async fn token_where(&self, column: &str, value: &str) -> StoreResult<Option<Token>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE {column} = $1"
        ))
        .bind(value)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.as_ref().map(rows::token).transpose()
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

    async fn insert_approval(&self, approval: Approval) -> StoreResult<()> {
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
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
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
            "DELETE FROM codes WHERE approval_id = $1",
            "DELETE FROM tokens WHERE approval_id = $1",
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
        let mut tx = self.writer.begin().await.map_err(backend)?;
        if let Some(code) = &token.from_code {
            if code_replayed(&mut tx, code).await? {
                tx.rollback().await.map_err(backend)?;
                return Ok(false);
            }
        }
        insert_token_row(&mut tx, &token).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn token_by_access(&self, access_token: &str) -> StoreResult<Option<Token>> {
        self.token_where("access_token", access_token).await
    }

    async fn token_by_refresh(&self, refresh_token: &str) -> StoreResult<Option<Token>> {
        self.token_where("refresh_token", refresh_token).await
    }

    async fn rotate_token(&self, old_refresh: &str, new: Token) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        if let Some(code) = &new.from_code {
            if code_replayed(&mut tx, code).await? {
                tx.rollback().await.map_err(backend)?;
                return Ok(false);
            }
        }
        // Of two concurrent rotations, the second waits for the first's row lock and then
        // finds the row gone: exactly one of them wins.
        let gone: Option<String> = sqlx::query_scalar(
            "DELETE FROM tokens WHERE refresh_token = $1 RETURNING access_token",
        )
        .bind(old_refresh)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        if gone.is_none() {
            tx.rollback().await.map_err(backend)?;
            return Ok(false);
        }
        insert_token_row(&mut tx, &new).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn revoke_token(&self, token: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM tokens WHERE access_token = $1 OR refresh_token = $1")
            .bind(token)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_tokens_from_code(&self, code: &str) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query("UPDATE codes SET replayed = 1 WHERE code = $1")
            .bind(code)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // A fresh statement after the code's row lock: it sees every token committed by an
        // exchange or rotation that held the lock before us.
        sqlx::query("DELETE FROM tokens WHERE from_code = $1")
            .bind(code)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn token_count(&self) -> StoreResult<usize> {
        self.count("tokens").await
    }

    async fn insert_code(&self, code: AuthCode) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO codes ({CODE_COLUMNS}, used, replayed) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0)"
        ))
        .bind(&code.code)
        .bind(&code.approval_id)
        .bind(&code.redirect_uri)
        .bind(i64::from(code.redirect_uri_given))
        .bind(&code.scope)
        .bind(&code.code_challenge)
        .bind(code.expires)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn redeem_code(&self, code: &str) -> StoreResult<Redeemed> {
        // One conditional statement: of two concurrent redemptions only one sees used = 0.
        let fresh = sqlx::query(&format!(
            "UPDATE codes SET used = 1 WHERE code = $1 AND used = 0 RETURNING {CODE_COLUMNS}"
        ))
        .bind(code)
        .fetch_optional(&self.writer)
        .await
        .map_err(backend)?;
        if let Some(row) = fresh {
            return Ok(Redeemed::Fresh(rows::code(&row)?));
        }
        let used = sqlx::query(&format!("SELECT {CODE_COLUMNS} FROM codes WHERE code = $1"))
            .bind(code)
            .fetch_optional(&self.writer)
            .await
            .map_err(backend)?;
        Ok(match used {
            Some(row) => Redeemed::Replayed(rows::code(&row)?),
            None => Redeemed::Unknown,
        })
    }

    async fn sweep(&self, now: i64, code_memory: i64) -> StoreResult<Swept> {
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
            "DELETE FROM tokens WHERE (access_expires <= $1 AND refresh_token IS NULL) \
             OR NOT EXISTS (SELECT 1 FROM approvals WHERE approvals.id = tokens.approval_id)",
            now,
        )
        .await?;
        let codes = run(
            "DELETE FROM codes WHERE expires <= $1 \
             OR NOT EXISTS (SELECT 1 FROM approvals WHERE approvals.id = codes.approval_id)",
            now.saturating_sub(code_memory),
        )
        .await?;
        Ok(Swept {
            approvals,
            tokens,
            codes,
        })
    }
}
