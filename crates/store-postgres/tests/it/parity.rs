//! Schema parity: SQLite and PostgreSQL, each migrated from empty by its store, report the same
//! tables, columns, named indexes and triggers, at the same migration number.

use std::collections::BTreeSet;

use tokio_postgres::NoTls;

type Schema = (BTreeSet<(String, String)>, BTreeSet<String>, i64, BTreeSet<String>);

fn sqlite_schema() -> Schema {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parity.db");
    tessera_store_sqlite::SqliteStore::open(&path).unwrap().shutdown();
    let c = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut columns = BTreeSet::new();
    for t in &tables {
        let names: Vec<String> = c
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        columns.extend(names.into_iter().map(|n| (t.clone(), n)));
    }
    let indexes = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let version = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    let triggers = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    (columns, indexes, version, triggers)
}

async fn postgres_schema(url: &str) -> Schema {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let columns = c
        .query(
            "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> 'tessera_schema_version'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // Constraints' own indexes (`_pkey`, `_key`) are named by each database its own way.
    let indexes = c
        .query(
            "SELECT indexname::TEXT FROM pg_indexes WHERE schemaname = 'public' \
             AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let version = c.query_one("SELECT version FROM tessera_schema_version", &[]).await.unwrap().get(0);
    // Foreign keys are kept by triggers of PostgreSQL's own (`tgisinternal`).
    let triggers = c
        .query("SELECT tgname::TEXT FROM pg_trigger WHERE NOT tgisinternal", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (columns, indexes, version, triggers)
}

#[tokio::test]
async fn both_backends_migrate_to_the_same_schema() {
    let Some(db) = crate::fresh().await else { return };
    let pg = postgres_schema(&crate::with_database(&db.admin_url, &db.name)).await;
    let lite = sqlite_schema();
    assert_eq!(pg.0, lite.0, "tables and columns");
    assert_eq!(pg.1, lite.1, "named indexes");
    assert_eq!(pg.2, lite.2, "migration number");
    assert_eq!(pg.3, lite.3, "triggers");
    assert!(lite.0.contains(&("sessions".to_owned(), "token_digest".to_owned())));
    assert!(lite.1.contains("audit_events_by_time"));
    assert!(lite.3.contains("users_total_insert"));
}

/// A database migrated before the numbering was shared (five PostgreSQL migrations, no
/// `numbering` column) is recognised as up to date: nothing runs twice.
#[tokio::test]
async fn a_database_numbered_the_old_way_is_not_migrated_twice() {
    let Some(db) = crate::fresh().await else { return };
    let url = crate::with_database(&db.admin_url, &db.name);
    let (c, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    c.batch_execute(
        // What migrations after the old numbering's last (new 7) added is undone first, so the
        // database is what an old one was.
        "DROP TABLE gateway_refs; DROP INDEX gateway_objects_scope_key_unique; ALTER TABLE gateway_objects DROP COLUMN scope_key; \
         DROP TABLE role_user_assignments; DROP TABLE role_group_assignments; \
         ALTER TABLE sessions DROP COLUMN session_policy; \
         DROP TABLE oidc_issuers; DROP INDEX sessions_by_org_issuer; ALTER TABLE sessions DROP COLUMN oidc_issuer_id; \
         DROP TRIGGER users_total_insert ON users; DROP TRIGGER users_total_delete ON users; \
         DROP FUNCTION tessera_list_total(); DROP TABLE list_totals; DROP INDEX users_by_org; \
         ALTER TABLE tessera_schema_version DROP COLUMN numbering; UPDATE tessera_schema_version SET version = 5",
    )
    .await
    .unwrap();
    tessera_store_postgres::PgStore::connect(&url).await.expect("reopens without re-running a migration");
    let row = c.query_one("SELECT version, numbering FROM tessera_schema_version", &[]).await.unwrap();
    // Old 5 is new 7; the migrations after it (8 on) then run once each.
    let newest = tessera_store_sql::schema::migrations(tessera_store_sql::Dialect::Postgres).len() as i64;
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (newest, 2));
}
