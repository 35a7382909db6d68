//! A first look at a `--state` database before any pool is built. A pool retries a failing
//! connection until its acquire timeout and then says only that it timed out; one plain
//! connection fails at once with the real reason: a file that is not an SQLite database, a
//! PostgreSQL that refuses the connection, a wrong password.

use std::path::Path;
use std::time::Duration;

use sqlx::{AnyConnection, Connection, Executor};

/// How long the first connection may take before the database is called unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The directory an SQLite file is to be made in must exist, and the name must not be a
/// directory itself.
pub(super) fn sqlite_path(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("that is a directory; give a file name in it, e.g. smartnb.db".into());
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent.filter(|dir| !dir.is_dir()) {
        return Err(format!(
            "the directory {} does not exist; create it first or give a file in an existing one",
            dir.display()
        ));
    }
    Ok(())
}

/// Connect once to `url` and, for SQLite, read its schema, which is where a file that is
/// not a database is found out.
pub(super) async fn connect_once(url: &str, sqlite: bool) -> Result<(), String> {
    let attempt = async {
        let mut connection = AnyConnection::connect(url).await?;
        if sqlite {
            connection
                .execute("SELECT count(*) FROM sqlite_master")
                .await?;
        }
        connection.close().await
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(reason(&e, sqlite)),
        Err(_) => Err(format!(
            "no answer within {} s (is the host reachable, and the port right?)",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// What went wrong, in words a person can act on.
fn reason(error: &sqlx::Error, sqlite: bool) -> String {
    match error {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused: nothing listens there; is PostgreSQL running, on that host and port?"
                .into()
        }
        sqlx::Error::Io(io) => format!("cannot reach the database: {io}"),
        sqlx::Error::Database(db) if sqlite && db.code().as_deref() == Some("26") => {
            "the file is not an SQLite database; give a new file name (it is created) or a state file smartnb made"
                .into()
        }
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}
