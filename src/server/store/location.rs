//! Where the server keeps its state: in memory, in an SQLite file, or in PostgreSQL.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The `--state` argument, parsed.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum StateLocation {
    /// Nothing survives the process (the default, like the seed's demo).
    #[default]
    Memory,
    /// An SQLite database file, created when missing.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user:password@host:port/database`).
    Postgres(String),
}

/// Why a `--state` value was refused.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The value was empty.
    #[error("--state needs a file name or a postgres:// URL")]
    Empty,
    /// A postgres:// value that is not a URL.
    #[error("{0:?} is not a valid postgres:// URL")]
    BadUrl(String),
    /// A URL of a kind of database this server cannot keep its state in.
    #[error("{0}:// is not supported: --state takes an SQLite file name (or sqlite://FILE) or a postgres:// URL")]
    UnsupportedScheme(String),
}

impl FromStr for StateLocation {
    type Err = LocationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(LocationError::Empty);
        }
        if text == ":memory:" {
            return Ok(StateLocation::Memory);
        }
        let scheme = url_scheme(text).map(str::to_ascii_lowercase);
        if matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
            let parsed = url::Url::parse(text).map_err(|_| LocationError::BadUrl(redact(text)))?;
            if parsed.host_str().is_none() {
                return Err(LocationError::BadUrl(redact(text)));
            }
            return Ok(StateLocation::Postgres(text.to_string()));
        }
        let path = match scheme.as_deref() {
            None => text,
            Some("sqlite") => &text["sqlite://".len()..],
            Some(other) => return Err(LocationError::UnsupportedScheme(other.to_string())),
        };
        Ok(StateLocation::Sqlite(PathBuf::from(path)))
    }
}

impl StateLocation {
    /// Whether the state outlives the process.
    pub fn is_durable(&self) -> bool {
        !matches!(self, StateLocation::Memory)
    }
}

/// Shown in logs, errors and `server status`: a PostgreSQL password never appears.
impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::Memory => f.write_str("memory"),
            StateLocation::Sqlite(path) => write!(f, "SQLite file {}", path.display()),
            StateLocation::Postgres(url) => write!(f, "PostgreSQL {}", redact(url)),
        }
    }
}

impl fmt::Debug for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateLocation({self})")
    }
}

/// The scheme of a `scheme://…` value (`mysql`, `file`, `redis`), which is not a file name.
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut bytes = scheme.bytes();
    let starts_with_letter = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    (starts_with_letter && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)))
        .then_some(scheme)
}

/// A database URL without its password or query (which may carry one).
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "(an unreadable URL)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds() {
        assert_eq!(
            ":memory:".parse::<StateLocation>().unwrap(),
            StateLocation::Memory
        );
        assert_eq!(
            "state.db".parse::<StateLocation>().unwrap(),
            StateLocation::Sqlite("state.db".into())
        );
        assert_eq!(
            "sqlite:///tmp/x.db".parse::<StateLocation>().unwrap(),
            StateLocation::Sqlite("/tmp/x.db".into())
        );
        assert!(matches!(
            "postgresql://u:p@localhost:5432/db"
                .parse::<StateLocation>()
                .unwrap(),
            StateLocation::Postgres(_)
        ));
        assert!("".parse::<StateLocation>().is_err());
        assert!("postgres://".parse::<StateLocation>().is_err());
        for other in [
            "mysql://x",
            "MySQL://u:p@h/db",
            "file:///tmp/x.db",
            "redis://h",
        ] {
            let why = other.parse::<StateLocation>().unwrap_err().to_string();
            assert!(why.contains("is not supported"), "{other}: {why}");
            assert!(!why.contains("u:p"), "{why}");
        }
        assert_eq!(
            "SQLite:///tmp/x.db".parse::<StateLocation>().unwrap(),
            StateLocation::Sqlite("/tmp/x.db".into())
        );
        assert!(matches!(
            "PostgreSQL://u@h/db".parse::<StateLocation>().unwrap(),
            StateLocation::Postgres(_)
        ));
    }

    #[test]
    fn display_hides_the_password() {
        let location: StateLocation = "postgres://smart:hunter2@db:5432/smart?password=hunter2"
            .parse()
            .unwrap();
        let shown = format!("{location} {location:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("smart:***@db:5432/smart"), "{shown}");
    }
}
