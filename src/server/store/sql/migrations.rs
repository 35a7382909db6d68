//! The schema's migrations, compiled into the binary and applied by sqlx's migrator (which
//! records them in `_sqlx_migrations` and, on PostgreSQL, takes an advisory lock so that
//! servers starting together migrate once).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};
use sqlx::AnyPool;

/// Version, description and SQL of every migration, oldest first. A released migration is
/// never edited (its checksum is recorded); changes come as new files.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (
        2,
        "approvals by grant",
        include_str!("../migrations/0002_approvals_by_grant.sql"),
    ),
    (
        3,
        "hashed credentials",
        include_str!("../migrations/0003_hashed_credentials.sql"),
    ),
    (
        4,
        "openid connect",
        include_str!("../migrations/0004_openid_connect.sql"),
    ),
    (
        5,
        "launch context",
        include_str!("../migrations/0005_launch_context.sql"),
    ),
    (
        6,
        "assertion jtis",
        include_str!("../migrations/0006_assertion_jtis.sql"),
    ),
    (
        7,
        "simulated faults",
        include_str!("../migrations/0007_simulated_faults.sql"),
    ),
    (
        8,
        "portal state",
        include_str!("../migrations/0008_portal_state.sql"),
    ),
];

/// The migrations above as a source for sqlx's `Migrator`.
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Bring the database's schema up to date.
pub async fn run(pool: &AnyPool) -> Result<(), MigrateError> {
    Migrator::new(Embedded).await?.run(pool).await
}
