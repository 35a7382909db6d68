//! The durable store: SQLite or PostgreSQL through sqlx's `Any` driver, so every query is
//! written once. Atomic steps are single conditional statements (`UPDATE … RETURNING`,
//! `DELETE … RETURNING`) or short transactions serialised on the code's row, which holds
//! across several server processes sharing one PostgreSQL.

mod conversions;
mod credentials;
mod migrations;
mod ops;
mod portal;
mod probe;
mod rows;

use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Executor;

use super::{StateLocation, StoreError, StoreResult};

/// How long a request waits for a free connection before it gets a 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long SQLite waits for another process's write lock.
const SQLITE_BUSY_MS: u32 = 10_000;
/// Connections a server keeps to PostgreSQL.
const POSTGRES_CONNECTIONS: u32 = 16;
/// Concurrent SQLite readers (WAL lets them run beside the one writer).
const SQLITE_READERS: u32 = 4;

/// Clients, approvals, codes and tokens in SQL tables.
pub struct SqlStore {
    /// Connections for queries that only read.
    reader: AnyPool,
    /// Connections for writes: one for SQLite (its writes serialise anyway, and a single
    /// writer never waits on a lock held by itself), the same pool as `reader` for PostgreSQL.
    writer: AnyPool,
}

impl SqlStore {
    /// Connect, create the database file if needed, and bring the schema up to date.
    pub async fn open(location: &StateLocation) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let fail = |reason: String| StoreError::Open {
            location: location.to_string(),
            reason,
        };
        let store = match location {
            StateLocation::Sqlite(path) => {
                probe::sqlite_path(path).map_err(fail)?;
                create_private(path).map_err(fail)?;
                let url = sqlite_url(path).map_err(fail)?;
                probe::connect_once(&url, true).await.map_err(fail)?;
                let writer = sqlite_pool(&url, 1)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                // WAL lets readers run beside the writer; the mode is kept in the file.
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                    .fetch_one(&writer)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    tracing::warn!(
                        "{location} stays in journal mode {mode}: WAL is unavailable there"
                    );
                }
                let reader = sqlite_pool(&url, SQLITE_READERS)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                SqlStore { reader, writer }
            }
            StateLocation::Postgres(url) => {
                probe::connect_once(url, false).await.map_err(fail)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                SqlStore {
                    reader: pool.clone(),
                    writer: pool,
                }
            }
            StateLocation::Memory => {
                return Err(fail("the in-memory state is not an SQL database".into()))
            }
        };
        migrations::run(&store.writer)
            .await
            .map_err(|e| fail(format!("migrating the schema failed: {e}")))?;
        let rewritten = conversions::run(&store.writer)
            .await
            .map_err(|e| fail(format!("converting the stored rows failed: {e}")))?;
        if rewritten > 0 && matches!(location, StateLocation::Sqlite(_)) {
            // Dropped rows stay on free pages and in the log until overwritten: rebuild the
            // file and empty the log, so the values converted to hashes are gone from disk.
            for sql in ["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"] {
                sqlx::query(sql)
                    .execute(&store.writer)
                    .await
                    .map_err(|e| fail(format!("clearing the converted rows failed: {e}")))?;
            }
        }
        Ok(store)
    }

    /// Close every connection (pending writes are already committed).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// A pool on an SQLite file whose every connection commits durably: with WAL,
/// `synchronous = FULL` syncs the log at each commit, so an answered request survives
/// even a power cut, not only a killed process.
async fn sqlite_pool(url: &str, connections: u32) -> Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute(format!("PRAGMA busy_timeout = {SQLITE_BUSY_MS}").as_str())
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// Create a missing SQLite file readable and writable by its owner only (0600 whatever the
/// umask), before SQLite opens it: SQLite gives its `-wal` and `-shm` files the database
/// file's mode. An existing file keeps its mode, with a warning when others may read it.
fn create_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let mode = std::fs::metadata(path)
                    .map_err(|e| e.to_string())?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        "{} can be read by other users (mode {:o}); `chmod 600` it",
                        path.display(),
                        mode & 0o777
                    );
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// `sqlite://PATH?mode=rwc`, the path percent-encoded (sqlx decodes it again).
fn sqlite_url(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .ok_or_else(|| "the file name is not valid UTF-8".to_string())?;
    let mut url = String::from("sqlite://");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'.' | b'-' | b'_' | b'~') {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

/// A backend failure as the store reports it: the database's own message, never the
/// detail (which can quote the values in a row), and the whole error in the log.
fn backend(e: sqlx::Error) -> StoreError {
    tracing::warn!("state store: {e}");
    StoreError::Backend(match &e {
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::PoolTimedOut => "the database is busy (no connection came free)".into(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_commits_durably_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let location = StateLocation::Sqlite(dir.path().join("state.db"));
        let store = SqlStore::open(&location).await.unwrap();
        for pool in [&store.writer, &store.reader] {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            // 2 is FULL: the WAL is synced at every commit.
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(sync, 2);
        }
        store.close().await;
    }

    #[test]
    fn sqlite_urls_escape_what_sqlx_would_misread() {
        assert_eq!(
            sqlite_url(Path::new("/tmp/a b/state?#%.db")).unwrap(),
            "sqlite:///tmp/a%20b/state%3F%23%25.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url(Path::new("state.db")).unwrap(),
            "sqlite://state.db?mode=rwc"
        );
    }
}
