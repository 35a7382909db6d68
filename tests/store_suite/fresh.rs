//! A fresh, empty store of each backend, and a second handle on the same state (what a
//! restarted or a second server process would open).

use std::sync::Arc;

use smartnb::server::store::{self, Redeemed, StateLocation, Store};
use sqlx::{Connection, Executor};

/// The environment variable naming the PostgreSQL server the postgres suite uses.
pub const POSTGRES_ENV: &str = "SMARTNB_TEST_POSTGRES";

/// An empty store and where it lives.
pub struct Fresh {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// Its location (memory, a file in `_dir`, or a database of its own).
    pub location: StateLocation,
    _dir: Option<tempfile::TempDir>,
}

/// An in-memory store.
pub async fn memory() -> Fresh {
    Fresh {
        store: Arc::new(store::MemoryStore::new()),
        location: StateLocation::Memory,
        _dir: None,
    }
}

/// An SQLite store in a new temporary directory.
pub async fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let location = StateLocation::Sqlite(dir.path().join("state.db"));
    Fresh {
        store: store::open(&location).await.expect("SQLite opens"),
        location,
        _dir: Some(dir),
    }
}

/// The PostgreSQL server's URL; the postgres suite fails (never skips) without it.
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_ENV} is not set: the PostgreSQL suite needs a server \
             (.ci/postgres_check.sh starts a throwaway one and sets it)"
        )
    })
}

/// A new database of its own on the PostgreSQL server, so tests run in parallel.
pub async fn postgres_database() -> String {
    let server = postgres_url();
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_ENV}: {e}"));
    let name = format!("smartnb_{}", uuid::Uuid::new_v4().simple());
    // A plain string runs as a simple query, outside any transaction, as CREATE DATABASE wants.
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("CREATE DATABASE");
    let _ = admin.close().await;
    let mut url = url::Url::parse(&server).expect("a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A PostgreSQL store in a database of its own.
pub async fn postgres() -> Fresh {
    let location = StateLocation::Postgres(postgres_database().await);
    Fresh {
        store: store::open(&location).await.expect("PostgreSQL opens"),
        location,
        _dir: None,
    }
}

impl Fresh {
    /// Another handle on the same state: the same map for memory, a new connection pool
    /// (as a second process would have) for SQL.
    pub async fn second(&self) -> Arc<dyn Store> {
        match self.location {
            StateLocation::Memory => self.store.clone(),
            _ => store::open(&self.location)
                .await
                .expect("a second handle opens"),
        }
    }

    /// What was saved is there for a store opened afresh on the same location (and, for
    /// memory, is not: nothing outlives the process).
    pub async fn survives_reopening(&self) {
        let client = super::client();
        self.store.insert_client(client.clone()).await.unwrap();
        let approval = super::approval(&client.client_id, super::now() + 3600);
        self.store.insert_approval(approval.clone()).await.unwrap();
        let code = super::code(&approval.id, super::now() + 100);
        self.store.insert_code(code.clone()).await.unwrap();
        let hash = code.code_sha256;
        let token = super::token(&approval.id, super::now() + 3600, true, Some(&hash));
        assert!(self.store.insert_token(token.clone()).await.unwrap());

        let reopened = store::open(&self.location).await.expect("it opens again");
        let expect = self.location.is_durable();
        assert_eq!(
            reopened.client(&client.client_id).await.unwrap().is_some(),
            expect
        );
        assert_eq!(
            reopened.approval(&approval.id).await.unwrap().is_some(),
            expect
        );
        let found = reopened
            .token_by_access(&token.access_sha256)
            .await
            .unwrap();
        assert_eq!(found, expect.then(|| token.clone()));
        let refresh = token.refresh_sha256.unwrap();
        assert_eq!(
            reopened.token_by_refresh(&refresh).await.unwrap().is_some(),
            expect
        );
        let issued = super::token(&approval.id, super::now() + 3600, true, Some(&hash));
        let redeemed = reopened.redeem_code(&hash, issued.clone()).await.unwrap();
        if expect {
            assert_eq!(redeemed, Redeemed::Fresh);
            // ... and the reopened store's redemption is seen by the first handle.
            let again = super::token(&approval.id, super::now() + 3600, true, Some(&hash));
            assert_eq!(
                self.store.redeem_code(&hash, again).await.unwrap(),
                Redeemed::Replayed
            );
            let seen = self
                .store
                .token_by_access(&issued.access_sha256)
                .await
                .unwrap();
            assert_eq!(seen, Some(issued));
        } else {
            assert_eq!(redeemed, Redeemed::Unknown);
        }
    }
}
