//! `tessera migrate`: the schema brought up to date without serving, and `--check` for deploy
//! pipelines (0 current, 1 pending, 2 newer), on both backends; a server then starts on it.

use std::process::{Command, Output, Stdio};

use crate::{Node, PgDb};

fn migrate(database: &str, check: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(["migrate", "--database", database]);
    if check {
        cmd.arg("--check");
    }
    cmd.env_remove("TESSERA_CONFIG").env_remove("TESSERA_DATABASE").stdin(Stdio::null()).output().expect("tessera runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The number of migrations this build knows, as `--check` reports it on a fresh database.
fn known(o: &Output) -> String {
    let s = stdout(o);
    let of = s.split(" of ").nth(1).expect("`version N of M`");
    of.split(':').next().unwrap().to_owned()
}

fn walk(database: &str) {
    let fresh = migrate(database, true);
    assert_eq!(fresh.status.code(), Some(1), "pending migrations fail the check: {}", stdout(&fresh));
    let m = known(&fresh);
    assert!(stdout(&fresh).contains(&format!("schema version 0 of {m}: {m} migrations pending")), "{}", stdout(&fresh));

    let applied = migrate(database, false);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    assert!(
        stdout(&applied).contains(&format!("applied {m} migrations; schema version {m} of {m}")),
        "{}",
        stdout(&applied)
    );

    let again = migrate(database, false);
    assert!(stdout(&again).contains("applied 0 migrations"), "{}", stdout(&again));
    let checked = migrate(database, true);
    assert_eq!(checked.status.code(), Some(0), "{}", stdout(&checked));
    assert!(stdout(&checked).contains("up to date"), "{}", stdout(&checked));
}

#[tokio::test]
async fn migrate_brings_an_sqlite_file_up_to_date_and_check_says_where_it_stands() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let db = path.to_str().unwrap();
    walk(db);
    // A server starts on the migrated file, and a check never creates a missing one.
    drop(Node::start(db).await);
    let missing = dir.path().join("missing.db");
    assert_eq!(migrate(missing.to_str().unwrap(), true).status.code(), Some(1));
    assert!(!missing.exists(), "--check created the file");

    rusqlite::Connection::open(&path).unwrap().pragma_update(None, "user_version", 999).unwrap();
    for check in [true, false] {
        let newer = migrate(db, check);
        assert_eq!(newer.status.code(), Some(2), "a newer schema is refused");
        assert!(String::from_utf8_lossy(&newer.stderr).contains("version 999, newer than this Tessera knows"));
    }
    let version: i64 =
        rusqlite::Connection::open(&path).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 999, "nothing was changed");
}

#[tokio::test]
async fn migrate_brings_a_postgres_database_up_to_date() {
    let Some(db) = PgDb::create("migrate_brings_a_postgres_database_up_to_date").await else { return };
    walk(&db.url);
    drop(Node::start(&db.url).await);
    let (c, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c.batch_execute("UPDATE tessera_schema_version SET version = 999").await.unwrap();
    let newer = migrate(&db.url, true);
    assert_eq!(newer.status.code(), Some(2), "{}", String::from_utf8_lossy(&newer.stderr));
}
