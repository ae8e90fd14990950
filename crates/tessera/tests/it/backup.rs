//! `tessera backup --to FILE` while the server writes, and a restore from it: the copy is a
//! single consistent moment that a server starts on (SQLite: the file itself; PostgreSQL:
//! `pg_restore` of the `pg_dump` archive into an empty database). And `tessera serve` refuses a
//! database a newer Tessera has migrated, changing nothing.

use std::process::{Command, Output, Stdio};

use tessera_api_types as wire;
use tessera_client::ListParams;

use crate::{Node, PgDb};

fn backup(database: &str, to: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["backup", "--database", database, "--to"])
        .arg(to)
        .env_remove("TESSERA_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("tessera runs")
}

async fn emails(node: &Node) -> Vec<String> {
    let mut e: Vec<String> =
        node.client.list_users(&ListParams::default()).await.unwrap().users.into_iter().map(|u| u.email).collect();
    e.sort();
    e
}

async fn add_user(node: &Node, email: &str) {
    node.client.create_user(&wire::UserCreate { email: email.into(), ..Default::default() }).await.unwrap();
}

#[tokio::test]
async fn an_sqlite_backup_taken_while_serving_restores_to_that_moment() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("tessera.db");
    let node = Node::start(live.to_str().unwrap()).await;
    add_user(&node, "before@example.com").await;

    let copy = dir.path().join("backup.db");
    let out = backup(live.to_str().unwrap(), &copy);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    add_user(&node, "after@example.com").await;

    let again = backup(live.to_str().unwrap(), &copy);
    assert!(!again.status.success(), "a backup never overwrites");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    drop(node);

    // Restore: the copy is a database a server starts on, holding what was there at the backup.
    let restored = Node::start(copy.to_str().unwrap()).await;
    let found = emails(&restored).await;
    assert!(found.contains(&"before@example.com".to_owned()), "{found:?}");
    assert!(!found.contains(&"after@example.com".to_owned()), "{found:?}");
}

#[tokio::test]
async fn a_postgres_backup_is_a_pg_dump_archive_that_pg_restore_restores() {
    let Some(db) = PgDb::create("a_postgres_backup_is_a_pg_dump_archive_that_pg_restore_restores").await else {
        return;
    };
    let Some(target) = PgDb::create("a_postgres_backup_restore_target").await else { return };
    let node = Node::start(&db.url).await;
    add_user(&node, "before@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("tessera.dump");
    let out = backup(&db.url, &archive);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(node);

    let restore = Command::new("pg_restore")
        .args(["--no-owner", "--no-privileges", "--dbname", &target.url])
        .arg(&archive)
        .output()
        .expect("pg_restore runs");
    assert!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
    let restored = Node::start(&target.url).await;
    assert!(emails(&restored).await.contains(&"before@example.com".to_owned()));
}

/// `tessera serve` on `database`, expected to refuse to start; its stderr.
fn refused_start(database: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--database", database, "--listen", "127.0.0.1:0", "--gateway-listen", "off"])
        .env_remove("TESSERA_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("tessera runs");
    assert!(!out.status.success(), "a node served a database a newer Tessera migrated");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn serve_refuses_an_sqlite_database_with_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    drop(Node::start(path.to_str().unwrap()).await);
    rusqlite::Connection::open(&path).unwrap().pragma_update(None, "user_version", 999).unwrap();
    let stderr = refused_start(path.to_str().unwrap());
    assert!(stderr.contains("schema is version 999, newer than this Tessera knows"), "{stderr}");
    let version: i64 =
        rusqlite::Connection::open(&path).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 999, "nothing was changed");
}

#[tokio::test]
async fn serve_refuses_a_postgres_database_with_a_newer_schema() {
    let Some(db) = PgDb::create("serve_refuses_a_postgres_database_with_a_newer_schema").await else { return };
    drop(Node::start(&db.url).await);
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    client.execute("UPDATE tessera_schema_version SET version = 999", &[]).await.unwrap();
    let stderr = refused_start(&db.url);
    assert!(stderr.contains("schema is version 999, newer than this Tessera knows"), "{stderr}");
    drop(client);
    let _ = conn.await;
}
