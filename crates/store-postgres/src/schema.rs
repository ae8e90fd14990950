//! The shared schema (`tessera_store_sql::schema`) applied to PostgreSQL, its number recorded
//! in `tessera_schema_version`, under an advisory lock so nodes starting together never race.

use tessera_store::StoreResult;
use tessera_store_sql::Dialect;
use tessera_store_sql::schema::{migrations, postgres_version_from_old_numbering};

use crate::map_err;

/// Brings the database up to the newest schema in one transaction.
pub async fn migrate(c: &mut deadpool_postgres::Object) -> StoreResult<()> {
    let tx = c.transaction().await.map_err(map_err)?;
    // One node migrates at a time; the others wait here, then find nothing to do.
    tx.execute("SELECT pg_advisory_xact_lock(7272727272)", &[]).await.map_err(map_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tessera_schema_version (version BIGINT NOT NULL); \
         ALTER TABLE tessera_schema_version ADD COLUMN IF NOT EXISTS numbering BIGINT NOT NULL DEFAULT 1",
    )
    .await
    .map_err(map_err)?;
    let current = tx
        .query_opt("SELECT version, numbering FROM tessera_schema_version", &[])
        .await
        .map_err(map_err)?
        .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)));
    // Numbering 1 is PostgreSQL's own count from before the schema was shared.
    let current = match current {
        None => 0,
        Some((v, 1)) => postgres_version_from_old_numbering(v),
        Some((v, _)) => v,
    };
    let known = migrations(Dialect::Postgres).len();
    if current as usize > known {
        // A newer Tessera migrated this database; nothing is changed (the transaction rolls back).
        return Err(tessera_store::StoreError::Internal(tessera_store_sql::schema::newer_schema(
            current as usize,
            known,
        )));
    }
    for sql in migrations(Dialect::Postgres).iter().skip(current as usize) {
        tx.batch_execute(sql).await.map_err(map_err)?;
    }
    tx.execute("DELETE FROM tessera_schema_version", &[]).await.map_err(map_err)?;
    let version = migrations(Dialect::Postgres).len().max(current as usize) as i64;
    tx.execute("INSERT INTO tessera_schema_version (version, numbering) VALUES ($1, 2)", &[&version])
        .await
        .map_err(map_err)?;
    tx.commit().await.map_err(map_err)
}

/// Where the database's schema stands, read without changing anything.
pub async fn status(c: &tokio_postgres::Client) -> StoreResult<tessera_store_sql::schema::SchemaStatus> {
    let known = migrations(Dialect::Postgres).len();
    let exists: bool =
        c.query_one("SELECT to_regclass('tessera_schema_version') IS NOT NULL", &[]).await.map_err(map_err)?.get(0);
    if !exists {
        return Ok(tessera_store_sql::schema::SchemaStatus { current: 0, known });
    }
    let has_numbering: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
             WHERE table_name = 'tessera_schema_version' AND column_name = 'numbering' \
             AND table_schema = current_schema())",
            &[],
        )
        .await
        .map_err(map_err)?
        .get(0);
    let sql = if has_numbering {
        "SELECT version, numbering FROM tessera_schema_version"
    } else {
        "SELECT version, 1::BIGINT FROM tessera_schema_version"
    };
    let current = match c.query_opt(sql, &[]).await.map_err(map_err)?.map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
    {
        None => 0,
        Some((v, 1)) => postgres_version_from_old_numbering(v),
        Some((v, _)) => v,
    };
    Ok(tessera_store_sql::schema::SchemaStatus { current: current.max(0) as usize, known })
}
