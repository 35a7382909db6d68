//! A database written by the version before tokens and codes were hashed (migrations 1 and
//! 2, values in the clear) opens with everything it held: each token, code and flag is
//! found by the SHA-256 of its value, the values themselves are gone, and clients that had
//! an approval are kept by the sweep of idle registrations.

use std::path::Path;

use super::KEEP;
use smartnb::server::oauth::sha256;
use smartnb::server::store::{self, Retention, StateLocation, StoredCode, CODE_REPLAY_MEMORY};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

/// The migrations the old version shipped, applied by sqlx's migrator as that version did
/// (same files, so the same checksums the new version finds recorded).
async fn old_schema(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("the database opens");
    let dir = tempfile::tempdir().unwrap();
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server/store/migrations");
    for name in ["0001_initial.sql", "0002_approvals_by_grant.sql"] {
        std::fs::copy(migrations.join(name), dir.path().join(name)).unwrap();
    }
    Migrator::new(dir.path())
        .await
        .expect("the old migrations")
        .run(&pool)
        .await
        .expect("the old schema");
    pool
}

async fn exec(pool: &AnyPool, sql: &str) {
    sqlx::query(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Rows as the old version wrote them.
async fn old_rows(pool: &AnyPool, now: i64) {
    let long_ago = now - 30 * 24 * 3600;
    for client in ["old-used-client", "old-idle-client"] {
        exec(
            pool,
            &format!(
                "INSERT INTO clients (client_id, secret_sha256, client_name, redirect_uris, \
                 scope, token_endpoint_auth_method, grant_types, issued_at, extra) \
                 VALUES ('{client}', NULL, 'old', '[\"http://x/cb\"]', 'patient/*.read', \
                 'none', '[\"authorization_code\",\"refresh_token\"]', {long_ago}, '{{}}')"
            ),
        )
        .await;
    }
    let later = now + 3600;
    exec(
        pool,
        &format!(
            "INSERT INTO approvals (id, client_id, username, patient_id, scope, expires, \
             created) VALUES ('old-approval', 'old-used-client', 'daniel-adams', \
             'smart-1288992', 'patient/*.read offline_access', {later}, 1)"
        ),
    )
    .await;
    exec(
        pool,
        &format!(
            "INSERT INTO tokens (access_token, refresh_token, approval_id, scope, issued_at, \
             access_expires, from_code) VALUES ('old-access-1', 'old-refresh-1', \
             'old-approval', 'patient/*.read offline_access', 7, {later}, 'old-code-used'), \
             ('old-access-2', NULL, 'old-approval', 'patient/*.read', 8, {later}, NULL)"
        ),
    )
    .await;
    let soon = now + 60;
    exec(
        pool,
        &format!(
            "INSERT INTO codes (code, approval_id, redirect_uri, redirect_uri_given, scope, \
             code_challenge, expires, used, replayed) VALUES \
             ('old-code-used', 'old-approval', 'http://x/cb', 1, 'patient/*.read', NULL, \
              {soon}, 1, 0), \
             ('old-code-fresh', 'old-approval', 'http://x/cb', 0, 'patient/*.read', \
              'challenge', {soon}, 0, 0), \
             ('old-code-replayed', 'old-approval', 'http://x/cb', 1, 'patient/*.read', NULL, \
              {soon}, 1, 1)"
        ),
    )
    .await;
}

/// The database URL sqlx connects to for a location.
fn url_of(location: &StateLocation) -> String {
    match location {
        StateLocation::Sqlite(path) => format!("sqlite://{}?mode=rwc", path.display()),
        StateLocation::Postgres(url) => url.clone(),
        StateLocation::Memory => unreachable!("memory has no schema to upgrade"),
    }
}

/// Write the old rows, open the store (on PostgreSQL twice at once, as two servers
/// starting together would), and check that nothing was lost and no value is left in the
/// clear.
pub async fn upgrade_keeps_what_the_old_schema_stored(location: StateLocation) {
    let now = super::now();
    let pool = old_schema(&url_of(&location)).await;
    old_rows(&pool, now).await;
    pool.close().await;

    let (a, b) = match location {
        StateLocation::Postgres(_) => tokio::join!(store::open(&location), store::open(&location)),
        _ => {
            let first = store::open(&location).await;
            (first, store::open(&location).await)
        }
    };
    let (store, other) = (
        a.expect("it opens and converts"),
        b.expect("so does a second"),
    );

    let pair = store
        .token_by_access(&sha256("old-access-1"))
        .await
        .unwrap()
        .expect("the old token pair, by the hash of its access token");
    assert_eq!(pair.refresh_sha256, Some(sha256("old-refresh-1")));
    assert_eq!(pair.from_code_sha256, Some(sha256("old-code-used")));
    assert_eq!(
        pair.session_sha256, None,
        "old grants are not bound to a sign-in"
    );
    assert_eq!(
        (pair.issued_at, pair.approval_id.as_str()),
        (7, "old-approval")
    );
    let by_refresh = other
        .token_by_refresh(&sha256("old-refresh-1"))
        .await
        .unwrap();
    assert_eq!(by_refresh, Some(pair));
    let plain = store
        .token_by_access(&sha256("old-access-2"))
        .await
        .unwrap();
    assert_eq!(plain.map(|t| t.refresh_sha256), Some(None));
    assert_eq!(store.token_count().await.unwrap(), 2);

    let fresh = store.code(&sha256("old-code-fresh")).await.unwrap();
    let Some(StoredCode { code, used: false }) = fresh else {
        panic!("the unused old code: {fresh:?}");
    };
    assert_eq!(code.code_challenge.as_deref(), Some("challenge"));
    assert!(!code.redirect_uri_given);
    let used = store.code(&sha256("old-code-used")).await.unwrap();
    assert!(used.is_some_and(|c| c.used), "the spent code stays spent");
    let late = super::token(
        "old-approval",
        now + 3600,
        true,
        Some(&sha256("old-code-replayed")),
    );
    assert!(
        !store.insert_token(late).await.unwrap(),
        "a replayed code stays replayed"
    );
    // Revoking by the old refresh token's hash works like any other.
    assert!(store.revoke_token(&sha256("old-refresh-1")).await.unwrap());

    // The client that had an approval is kept by the idle sweep; the other goes.
    let idle = Retention {
        code_memory: CODE_REPLAY_MEMORY,
        client_idle: Some(7 * 24 * 3600),
        ..KEEP
    };
    let swept = store.sweep(now, idle).await.unwrap();
    assert_eq!(swept.clients, 1, "{swept:?}");
    assert!(store.client("old-used-client").await.unwrap().is_some());
    assert!(store.client("old-idle-client").await.unwrap().is_none());

    // The old tables are gone; on SQLite, so are their bytes.
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url_of(&location))
        .await
        .unwrap();
    for table in ["tokens", "codes"] {
        let left = sqlx::query(&format!("SELECT 1 FROM {table}"))
            .fetch_optional(&pool)
            .await;
        assert!(left.is_err(), "the old table {table} is still there");
    }
    pool.close().await;
    if let StateLocation::Sqlite(path) = &location {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal"] {
            if let Ok(more) = std::fs::read(format!("{}{suffix}", path.display())) {
                bytes.extend(more);
            }
        }
        for value in [
            "old-access-1",
            "old-refresh-1",
            "old-code-fresh",
            "old-code-used",
        ] {
            let found = bytes.windows(value.len()).any(|w| w == value.as_bytes());
            assert!(!found, "{value} is still in the file");
        }
    }
    // Opened once more: nothing is converted twice.
    let again = store::open(&location).await.expect("it opens again");
    assert!(again
        .token_by_access(&sha256("old-access-2"))
        .await
        .unwrap()
        .is_some());
}
