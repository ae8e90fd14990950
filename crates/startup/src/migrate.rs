//! `tessera migrate`: where the database's schema stands, and bringing it up to date without
//! serving. `tessera serve` migrates by itself too; this is for deploy pipelines that want the
//! migration as its own step (and a check that fails while one is pending).

use crate::application::{StartupError, open_store};
use crate::settings::DatabaseUrl;

pub use tessera_store_sqlite::SchemaStatus;

/// Reads the schema version without changing anything (a missing SQLite file is not created).
pub async fn schema_status(location: &DatabaseUrl) -> Result<SchemaStatus, StartupError> {
    match location {
        DatabaseUrl::Postgres(url) => tessera_store_postgres::PgStore::schema_status(url.expose())
            .await
            .map_err(|e| StartupError::Postgres { url: location.to_string(), message: e.to_string() }),
        DatabaseUrl::Sqlite(path) => tessera_store_sqlite::SqliteStore::schema_status(path)
            .map_err(|e| StartupError::Sqlite { path: path.display().to_string(), message: e.to_string() }),
    }
}

/// Applies the pending migrations (as `tessera serve` would on start) and answers where the
/// schema stood before and stands now. A database a newer Tessera migrated is refused, unchanged.
pub async fn migrate(location: &DatabaseUrl) -> Result<(SchemaStatus, SchemaStatus), StartupError> {
    let before = schema_status(location).await?;
    let store = open_store(location).await?;
    drop(store);
    let after = schema_status(location).await?;
    Ok((before, after))
}
