//! `tessera admin create-key`: a lost administrator key is recovered on the server machine,
//! against the database, while the server runs; no data is deleted, and the audit trail says
//! the operator made the new key.

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tessera_api_types as wire;
use tessera_client::{Client, ListParams};

use crate::{Node, PgDb, list_status};

fn admin_create_key(args: &[&str]) -> Output {
    admin_create_key_with(&[], args)
}

/// `tessera admin create-key <args>` with only `env` of Tessera's variables set.
fn admin_create_key_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["admin", "create-key"])
        .args(args)
        .env_remove("TESSERA_DATABASE")
        .env_remove("TESSERA_DATA_DIR")
        .env_remove("TESSERA_CONFIG")
        .env_remove("TESSERA_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .envs(env.iter().copied())
        .output()
        .expect("tessera runs")
}

/// Starts a server on `database`, loses its only administrator key (revoked), recovers one
/// with `tessera admin create-key --database <database>` while it runs, and uses it.
async fn recovers_a_lost_key(database: &str) {
    let node = Node::start(database).await;
    let users = node.client.list_users(&ListParams::default()).await.unwrap().users;
    let admin = users.iter().find(|u| u.email == "admin@tessera.local").expect("the bootstrap administrator");
    let keys = node.client.list_api_keys(&admin.id, &ListParams::default()).await.unwrap().api_keys;
    assert_eq!(keys.len(), 1);
    // The key is lost: nobody holds it any more, so it might as well be revoked.
    node.client.delete_api_key(&admin.id, &keys[0].id).await.unwrap();
    assert_eq!(list_status(&node.client).await, 401, "no working key is left");

    let out = admin_create_key(&["--database", database, "--email", "Admin@tessera.local"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tessera admin create-key failed: {stderr}");
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("tessera_ak_"), "the key alone on standard output, got {key:?}");
    assert!(stderr.contains("shown once"), "{stderr}");

    let recovered = Client::new(node.client.base_url().to_owned(), Some(key.clone()));
    assert_eq!(list_status(&recovered).await, 200, "the new key works against the running server");
    let users_after = recovered.list_users(&ListParams::default()).await.unwrap().users;
    assert_eq!(users_after.len(), users.len(), "no data was deleted");
    let keys = recovered.list_api_keys(&admin.id, &ListParams::default()).await.unwrap().api_keys;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].name, "recovery");
    assert!(keys[0].api_key.is_none(), "the secret is never shown again");

    let (status, events) = recovered.raw(reqwest::Method::GET, "/v2/audit-events", None).await.unwrap();
    assert_eq!(status, 200, "{events}");
    let made: Vec<&Value> =
        events["Results"].as_array().unwrap().iter().filter(|e| e["target_id"] == keys[0].id.as_str()).collect();
    assert_eq!(made.len(), 1, "one event for the new key: {events}");
    assert_eq!(made[0]["action"], "iam.apikey.Create");
    assert_eq!(made[0]["actor_kind"], "system");
    assert_eq!(made[0]["result"], "success");
    assert!(made[0]["reason"].as_str().unwrap().contains("operator"), "{}", made[0]);
    assert!(!events.to_string().contains(&key), "the secret is in no event");

    let unknown = admin_create_key(&["--database", database, "--email", "nobody@example.com"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user has the email nobody@example.com"));

    // A disabled user's key would not work: refused, and nothing is written.
    let lee = recovered
        .create_user(&wire::UserCreate { email: "lee@example.com".into(), ..Default::default() })
        .await
        .unwrap();
    let disabled = wire::UserUpdate { status: Some("disabled".into()), ..Default::default() };
    recovered.update_user(&lee.id, &disabled).await.unwrap();
    let refused = admin_create_key(&["--database", database, "--email", "lee@example.com"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is disabled"), "{refused:?}");
    assert!(recovered.list_api_keys(&lee.id, &ListParams::default()).await.unwrap().api_keys.is_empty());
}

#[tokio::test]
async fn create_key_recovers_a_lost_administrator_key_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    recovers_a_lost_key(dir.path().join("tessera.db").to_str().unwrap()).await;

    // Without --database, the one `tessera serve` would use: `tessera.db` in the data directory.
    let data_dir = dir.path().to_str().unwrap();
    let out = admin_create_key_with(&[("TESSERA_DATA_DIR", data_dir)], &["--email", "admin@tessera.local"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("tessera_ak_"));
}

#[tokio::test]
async fn create_key_recovers_a_lost_administrator_key_on_postgres() {
    let Some(db) = PgDb::create("create_key_recovers_a_lost_administrator_key_on_postgres").await else { return };
    recovers_a_lost_key(&db.url).await;
}

#[test]
fn create_key_refuses_a_database_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    let out = admin_create_key(&["--database", missing.to_str().unwrap(), "--email", "admin@tessera.local"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no database at"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!missing.exists(), "no empty database was created");
}

#[test]
fn create_key_help_names_both_databases_and_no_api_key() {
    // The command talks to the database, not the API: a key is neither needed nor used.
    let out = Command::new(env!("CARGO_BIN_EXE_tessera")).args(["admin", "create-key", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("postgres://") && help.contains("SQLite"), "{help}");
    assert!(!help.contains("--api-key"), "{help}");
}
