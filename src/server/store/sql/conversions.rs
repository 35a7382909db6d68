//! Data conversions SQL cannot do portably, run once right after the migrations: rows of
//! tables written by an older version are rewritten in Rust. Each conversion has a row in
//! `conversions`; the process that flips its `done` from 0 to 1 does the work in the same
//! transaction, so a crash leaves it to be done at the next start, and of several servers
//! starting on one PostgreSQL database exactly one does it (the others wait on the row).

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use super::super::StoreResult;
use super::backend;
use super::rows::to_hex;

/// Hex of the SHA-256 of a stored plain value.
fn hashed(plain: &str) -> String {
    to_hex(&Sha256::digest(plain.as_bytes()).into())
}

/// Bring every row up to the current format; how many rows were rewritten.
pub async fn run(pool: &AnyPool) -> StoreResult<usize> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let claimed: Option<String> = sqlx::query_scalar(
        "UPDATE conversions SET done = 1 WHERE name = 'hash tokens and codes' AND done = 0 \
         RETURNING name",
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?;
    let mut rewritten = 0;
    if claimed.is_some() {
        let (tokens, codes) = hash_tokens_and_codes(&mut tx).await?;
        if tokens + codes > 0 {
            tracing::info!(
                "state store: {tokens} token pairs and {codes} codes now kept as SHA-256 only"
            );
        }
        rewritten = tokens + codes;
    }
    tx.commit().await.map_err(backend)?;
    Ok(rewritten)
}

fn text(row: &AnyRow, column: &str) -> StoreResult<String> {
    row.try_get(column).map_err(backend)
}

fn optional_text(row: &AnyRow, column: &str) -> StoreResult<Option<String>> {
    row.try_get(column).map_err(backend)
}

fn number(row: &AnyRow, column: &str) -> StoreResult<i64> {
    row.try_get(column).map_err(backend)
}

/// Copy `tokens` and `codes` (values in the clear, from migrations 1 and 2) into
/// `token_pairs` and `auth_codes` (their SHA-256), then drop the old tables.
async fn hash_tokens_and_codes(conn: &mut AnyConnection) -> StoreResult<(usize, usize)> {
    let tokens = sqlx::query(
        "SELECT access_token, refresh_token, approval_id, scope, issued_at, access_expires, \
         from_code FROM tokens",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    for row in &tokens {
        sqlx::query(
            "INSERT INTO token_pairs (access_sha256, refresh_sha256, approval_id, scope, \
             issued_at, access_expires, from_code_sha256, session_sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(hashed(&text(row, "access_token")?))
        .bind(optional_text(row, "refresh_token")?.as_deref().map(hashed))
        .bind(text(row, "approval_id")?)
        .bind(text(row, "scope")?)
        .bind(number(row, "issued_at")?)
        .bind(number(row, "access_expires")?)
        .bind(optional_text(row, "from_code")?.as_deref().map(hashed))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    let codes = sqlx::query(
        "SELECT code, approval_id, redirect_uri, redirect_uri_given, scope, code_challenge, \
         expires, used, replayed FROM codes",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    for row in &codes {
        sqlx::query(
            "INSERT INTO auth_codes (code_sha256, approval_id, redirect_uri, \
             redirect_uri_given, scope, code_challenge, expires, used, replayed, session_sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
        )
        .bind(hashed(&text(row, "code")?))
        .bind(text(row, "approval_id")?)
        .bind(text(row, "redirect_uri")?)
        .bind(number(row, "redirect_uri_given")?)
        .bind(text(row, "scope")?)
        .bind(optional_text(row, "code_challenge")?)
        .bind(number(row, "expires")?)
        .bind(number(row, "used")?)
        .bind(number(row, "replayed")?)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    for sql in ["DROP TABLE tokens", "DROP TABLE codes"] {
        sqlx::query(sql)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok((tokens.len(), codes.len()))
}
