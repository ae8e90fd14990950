//! The shared schema (`tessera_store_sql::schema`) applied to SQLite, each migration in its
//! own transaction, its number recorded in `PRAGMA user_version`.

use rusqlite::Connection;
use tessera_store_sql::Dialect;
use tessera_store_sql::schema::migrations;

/// Brings the database up to the newest schema.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    let known = migrations(Dialect::Sqlite).len();
    if current > known {
        // A newer Tessera migrated this file: its tables mean what this one cannot know.
        let message = tessera_store_sql::schema::newer_schema(current, known);
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(message),
        ));
    }
    for (i, sql) in migrations(Dialect::Sqlite).iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Where the file's schema stands, read without changing anything (a missing file is at 0
/// and is not created).
pub fn status(path: &std::path::Path) -> rusqlite::Result<tessera_store_sql::schema::SchemaStatus> {
    let known = migrations(Dialect::Sqlite).len();
    if !path.exists() {
        return Ok(tessera_store_sql::schema::SchemaStatus { current: 0, known });
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let current = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?.max(0) as usize;
    Ok(tessera_store_sql::schema::SchemaStatus { current, known })
}
