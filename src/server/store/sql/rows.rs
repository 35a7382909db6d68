//! Rows to records and back: column lists, JSON-encoded lists, hex-encoded hashes.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::super::{
    Approval, AuthCode, Client, Launch, LaunchContext, QueuedFault, SigningKey, StoreError,
    StoreResult, StoredLaunch, Token,
};
use super::backend;

/// Columns of `clients`, in the order `client` reads them.
pub const CLIENT_COLUMNS: &str = "client_id, secret_sha256, client_name, redirect_uris, scope, \
     token_endpoint_auth_method, grant_types, issued_at, extra";
/// Columns of `approvals`.
pub const APPROVAL_COLUMNS: &str = "id, client_id, username, patient_id, scope, expires, created";
/// Columns of `token_pairs`.
pub const TOKEN_COLUMNS: &str = "access_sha256, refresh_sha256, approval_id, scope, issued_at, \
     access_expires, from_code_sha256, session_sha256, auth_time, launch_context";
/// Columns of `auth_codes` that make an [`AuthCode`].
pub const CODE_COLUMNS: &str = "code_sha256, approval_id, redirect_uri, redirect_uri_given, \
     scope, code_challenge, expires, session_sha256, nonce, auth_time, launch_context";
/// Columns of `launches`.
pub const LAUNCH_COLUMNS: &str =
    "id_sha256, username, patient_id, client_id, context, expires, spent, fault";
/// Columns of `simulated_faults`.
pub const FAULT_COLUMNS: &str = "client_id, seq, fault, at, times, remaining, delay_ms, created";
/// Columns of `signing_keys`.
pub const SIGNING_KEY_COLUMNS: &str = "generation, kid, private_pem, public_jwk, created, retired";

/// A column that must hold a value of this type.
fn get<'r, T>(row: &'r AnyRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(backend)
}

/// A JSON column.
fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> StoreResult<T> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Backend(format!("column {column} holds unreadable JSON: {e}")))
}

/// A JSON column that may be NULL.
fn optional_json<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    column: &str,
) -> StoreResult<Option<T>> {
    let text: Option<String> = get(row, column)?;
    text.map(|text| {
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Backend(format!("column {column} holds unreadable JSON: {e}")))
    })
    .transpose()
}

/// A value as JSON text for a column.
pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Lists of strings and JSON maps always serialise.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

/// A column that may hold a SHA-256 in hex.
fn optional_hash(row: &AnyRow, column: &str) -> StoreResult<Option<[u8; 32]>> {
    let text: Option<String> = get(row, column)?;
    text.map(|hex| {
        from_hex(&hex)
            .ok_or_else(|| StoreError::Backend(format!("column {column} holds no SHA-256 in hex")))
    })
    .transpose()
}

/// A column that must hold a SHA-256 in hex.
fn hash(row: &AnyRow, column: &str) -> StoreResult<[u8; 32]> {
    optional_hash(row, column)?
        .ok_or_else(|| StoreError::Backend(format!("column {column} is empty")))
}

/// A client from a row of [`CLIENT_COLUMNS`].
pub fn client(row: &AnyRow) -> StoreResult<Client> {
    Ok(Client {
        client_id: get(row, "client_id")?,
        secret_sha256: optional_hash(row, "secret_sha256")?,
        client_name: get(row, "client_name")?,
        redirect_uris: json(row, "redirect_uris")?,
        scope: get(row, "scope")?,
        token_endpoint_auth_method: get(row, "token_endpoint_auth_method")?,
        grant_types: json(row, "grant_types")?,
        issued_at: get(row, "issued_at")?,
        extra: json(row, "extra")?,
    })
}

/// An approval from a row of [`APPROVAL_COLUMNS`].
pub fn approval(row: &AnyRow) -> StoreResult<Approval> {
    Ok(Approval {
        id: get(row, "id")?,
        client_id: get(row, "client_id")?,
        username: get(row, "username")?,
        patient_id: get(row, "patient_id")?,
        scope: get(row, "scope")?,
        expires: get(row, "expires")?,
        created: get(row, "created")?,
    })
}

/// A token pair from a row of [`TOKEN_COLUMNS`].
pub fn token(row: &AnyRow) -> StoreResult<Token> {
    Ok(Token {
        access_sha256: hash(row, "access_sha256")?,
        refresh_sha256: optional_hash(row, "refresh_sha256")?,
        approval_id: get(row, "approval_id")?,
        scope: get(row, "scope")?,
        issued_at: get(row, "issued_at")?,
        access_expires: get(row, "access_expires")?,
        from_code_sha256: optional_hash(row, "from_code_sha256")?,
        session_sha256: optional_hash(row, "session_sha256")?,
        auth_time: get(row, "auth_time")?,
        context: optional_json(row, "launch_context")?,
    })
}

/// A code from a row of [`CODE_COLUMNS`].
pub fn code(row: &AnyRow) -> StoreResult<AuthCode> {
    Ok(AuthCode {
        code_sha256: hash(row, "code_sha256")?,
        approval_id: get(row, "approval_id")?,
        redirect_uri: get(row, "redirect_uri")?,
        redirect_uri_given: get::<i64>(row, "redirect_uri_given")? != 0,
        scope: get(row, "scope")?,
        code_challenge: get(row, "code_challenge")?,
        expires: get(row, "expires")?,
        session_sha256: optional_hash(row, "session_sha256")?,
        nonce: get(row, "nonce")?,
        auth_time: get(row, "auth_time")?,
        context: optional_json(row, "launch_context")?,
    })
}

/// A launch from a row of [`LAUNCH_COLUMNS`].
pub fn launch(row: &AnyRow) -> StoreResult<StoredLaunch> {
    Ok(StoredLaunch {
        launch: Launch {
            id_sha256: hash(row, "id_sha256")?,
            username: get(row, "username")?,
            patient_id: get(row, "patient_id")?,
            client_id: get(row, "client_id")?,
            context: json::<LaunchContext>(row, "context")?,
            expires: get(row, "expires")?,
            fault: get(row, "fault")?,
        },
        spent: get::<i64>(row, "spent")? != 0,
    })
}

/// A queued fault from a row of [`FAULT_COLUMNS`].
pub fn fault(row: &AnyRow) -> StoreResult<QueuedFault> {
    Ok(QueuedFault {
        client_id: get(row, "client_id")?,
        seq: get(row, "seq")?,
        fault: get(row, "fault")?,
        at: get(row, "at")?,
        times: get(row, "times")?,
        remaining: get(row, "remaining")?,
        delay_ms: get(row, "delay_ms")?,
        created: get(row, "created")?,
    })
}

/// A signing key from a row of [`SIGNING_KEY_COLUMNS`].
pub fn signing_key(row: &AnyRow) -> StoreResult<SigningKey> {
    Ok(SigningKey {
        generation: get(row, "generation")?,
        kid: get(row, "kid")?,
        private_pem: get(row, "private_pem")?,
        public_jwk: get(row, "public_jwk")?,
        created: get(row, "created")?,
        retired: get(row, "retired")?,
    })
}

/// Lowercase hex of a hash.
pub fn to_hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex of a hash that may be absent.
pub fn to_hex_opt(bytes: Option<&[u8; 32]>) -> Option<String> {
    bytes.map(to_hex)
}

/// A SHA-256 (or other 32 bytes) from lowercase hex.
pub fn from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(from_hex(&to_hex(&bytes)), Some(bytes));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
    }
}
