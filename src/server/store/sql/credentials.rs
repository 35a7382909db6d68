//! Token pairs and codes in SQL (`token_pairs`, `auth_codes`), each named by the hex of
//! its SHA-256. Every step that must happen once is a single conditional statement or a
//! short transaction that locks the code's row first, then the token rows: the one order
//! every transaction here takes its locks in, so no two can deadlock.

use sqlx::{AnyConnection, Row};

use super::super::{AuthCode, Redeemed, StoreResult, StoredCode, Token};
use super::rows::{self, to_hex, to_hex_opt, CODE_COLUMNS, TOKEN_COLUMNS};
use super::{backend, SqlStore};

/// Lock a code's row (so replay revocation and issuing from that code take turns) and say
/// whether it was replayed. A code already swept has nothing left to guard.
async fn code_replayed(conn: &mut AnyConnection, code: &[u8; 32]) -> StoreResult<bool> {
    let flag: Option<i64> = sqlx::query_scalar(
        "UPDATE auth_codes SET replayed = replayed WHERE code_sha256 = $1 RETURNING replayed",
    )
    .bind(to_hex(code))
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    Ok(flag == Some(1))
}

async fn insert_token_row(conn: &mut AnyConnection, token: &Token) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO token_pairs ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(to_hex(&token.access_sha256))
    .bind(to_hex_opt(token.refresh_sha256.as_ref()))
    .bind(&token.approval_id)
    .bind(&token.scope)
    .bind(token.issued_at)
    .bind(token.access_expires)
    .bind(to_hex_opt(token.from_code_sha256.as_ref()))
    .bind(to_hex_opt(token.session_sha256.as_ref()))
    .bind(token.auth_time)
    .bind(token.context.as_ref().map(rows::to_json))
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

impl SqlStore {
    async fn token_where(&self, column: &str, hash: &[u8; 32]) -> StoreResult<Option<Token>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM token_pairs WHERE {column} = $1"
        ))
        .bind(to_hex(hash))
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.as_ref().map(rows::token).transpose()
    }

    pub(super) async fn put_token(&self, token: Token) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        if let Some(code) = &token.from_code_sha256 {
            if code_replayed(&mut tx, code).await? {
                tx.rollback().await.map_err(backend)?;
                return Ok(false);
            }
        }
        insert_token_row(&mut tx, &token).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    pub(super) async fn find_by_access(&self, hash: &[u8; 32]) -> StoreResult<Option<Token>> {
        self.token_where("access_sha256", hash).await
    }

    pub(super) async fn find_by_refresh(&self, hash: &[u8; 32]) -> StoreResult<Option<Token>> {
        self.token_where("refresh_sha256", hash).await
    }

    pub(super) async fn rotate(&self, old_refresh: &[u8; 32], new: Token) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        if let Some(code) = &new.from_code_sha256 {
            if code_replayed(&mut tx, code).await? {
                tx.rollback().await.map_err(backend)?;
                return Ok(false);
            }
        }
        // Of two concurrent rotations, the second waits for the first's row lock and then
        // finds the row gone: exactly one of them wins.
        let gone: Option<String> = sqlx::query_scalar(
            "DELETE FROM token_pairs WHERE refresh_sha256 = $1 RETURNING access_sha256",
        )
        .bind(to_hex(old_refresh))
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

    pub(super) async fn revoke(&self, hash: &[u8; 32]) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM token_pairs WHERE access_sha256 = $1 OR refresh_sha256 = $1")
                .bind(to_hex(hash))
                .execute(&self.writer)
                .await
                .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn revoke_from_code(&self, code: &[u8; 32]) -> StoreResult<()> {
        let code = to_hex(code);
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query("UPDATE auth_codes SET replayed = 1 WHERE code_sha256 = $1")
            .bind(&code)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // A fresh statement after the code's row lock: it sees every token committed by an
        // exchange or rotation that held the lock before us.
        sqlx::query("DELETE FROM token_pairs WHERE from_code_sha256 = $1")
            .bind(&code)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    pub(super) async fn put_code(&self, code: AuthCode) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO auth_codes ({CODE_COLUMNS}, used, replayed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, 0)"
        ))
        .bind(to_hex(&code.code_sha256))
        .bind(&code.approval_id)
        .bind(&code.redirect_uri)
        .bind(i64::from(code.redirect_uri_given))
        .bind(&code.scope)
        .bind(&code.code_challenge)
        .bind(code.expires)
        .bind(to_hex_opt(code.session_sha256.as_ref()))
        .bind(&code.nonce)
        .bind(code.auth_time)
        .bind(code.context.as_ref().map(rows::to_json))
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    pub(super) async fn find_code(&self, code: &[u8; 32]) -> StoreResult<Option<StoredCode>> {
        let row = sqlx::query(&format!(
            "SELECT {CODE_COLUMNS}, used FROM auth_codes WHERE code_sha256 = $1"
        ))
        .bind(to_hex(code))
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(|row| {
            let used: i64 = row.try_get("used").map_err(backend)?;
            Ok(StoredCode {
                code: rows::code(&row)?,
                used: used != 0,
            })
        })
        .transpose()
    }

    pub(super) async fn redeem(&self, code: &[u8; 32], token: Token) -> StoreResult<Redeemed> {
        let code = to_hex(code);
        let mut tx = self.writer.begin().await.map_err(backend)?;
        // One conditional statement: of two concurrent redemptions only one sees used = 0,
        // and it keeps the row locked until its token is saved beside it (a replay's
        // revocation waits for that lock, so it sees the token).
        let fresh: Option<String> = sqlx::query_scalar(
            "UPDATE auth_codes SET used = 1 WHERE code_sha256 = $1 AND used = 0 \
             AND replayed = 0 RETURNING code_sha256",
        )
        .bind(&code)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        if fresh.is_some() {
            insert_token_row(&mut tx, &token).await?;
            tx.commit().await.map_err(backend)?;
            return Ok(Redeemed::Fresh);
        }
        let known: Option<String> =
            sqlx::query_scalar("SELECT code_sha256 FROM auth_codes WHERE code_sha256 = $1")
                .bind(&code)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        tx.rollback().await.map_err(backend)?;
        Ok(match known {
            Some(_) => Redeemed::Replayed,
            None => Redeemed::Unknown,
        })
    }
}
