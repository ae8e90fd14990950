//! The real `tessera` binary as operators run it: processes, signals, databases.

mod admin;
mod backup;
mod binary;
mod cli;
mod cluster;
mod colours;
mod config;
mod crash;
mod docs_examples;
mod gateway;
mod help;
mod kong_migration;
mod logs;
mod migrate;
mod names;
mod outage;
mod tutorial;
mod version;
mod web_identity;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tessera_api_types as wire;
use tessera_client::{Client, ListParams};

pub const ADMIN_KEY: &str = "cluster-admin-key-0123456789abcdef0123456789";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `tessera serve` process; killed (SIGKILL) when dropped.
pub struct Node {
    pub child: Child,
    pub port: u16,
    pub client: Client,
}

impl Node {
    /// Starts `tessera serve --database <database>` with the bootstrap key, and waits until it
    /// answers `/healthz`.
    pub async fn start(database: &str) -> Node {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database",
                database,
                "--gateway-listen",
                "off",
            ])
            .env("TESSERA_BOOTSTRAP_API_KEY", ADMIN_KEY)
            .env("TESSERA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tessera starts");
        let client = Client::new(format!("http://127.0.0.1:{port}"), Some(ADMIN_KEY.into()));
        // The readiness probe, polled inside one generous deadline.
        let start = Instant::now();
        while client.health().await.is_err() {
            assert!(start.elapsed() < DEADLINE, "node did not become ready within {DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Node { child, port, client }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A fresh database on `TEST_POSTGRES_URL`, dropped on success.
pub struct PgDb {
    pub url: String,
    admin: String,
    name: String,
}

/// True when running under CI: `CI` is set to anything but empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// How long a wait for an event may take on a loaded machine: generous, because each wait
/// ends as soon as the event happens.
pub const DEADLINE: Duration = Duration::from_secs(30);

impl PgDb {
    /// A fresh database, or None after printing `SKIPPED` when `TEST_POSTGRES_URL` is unset.
    /// Under CI a missing database fails the test: a test that cannot run never passes.
    pub async fn create(test: &str) -> Option<PgDb> {
        let Some(admin) = std::env::var("TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
            assert!(!in_ci(), "{test} cannot run under CI: TEST_POSTGRES_URL is not set");
            println!("SKIPPED {test}: TEST_POSTGRES_URL is not set");
            eprintln!("SKIPPED {test}: TEST_POSTGRES_URL is not set");
            return None;
        };
        let name = format!("tessera_bin_{:016x}", rand::random::<u64>());
        let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(conn);
        c.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        let base = &admin[..admin.rfind('/').expect("a database path")];
        Some(PgDb { url: format!("{base}/{name}"), admin, name })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok((c, conn)) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            })
        })
        .join();
    }
}

/// A user who may assume a role allowed to list users, with a trust; returns
/// (user id, role id, a client acting as the user).
pub async fn assume_setup(admin: &Client) -> (String, String, Client) {
    let user =
        admin.create_user(&wire::UserCreate { email: "ops@example.com".into(), ..Default::default() }).await.unwrap();
    let policy = admin
        .create_policy(&wire::PolicyInput {
            name: "assume".into(),
            description: String::new(),
            policy_document: serde_json::json!({"Statement": [{"Effect": "Allow", "Action": ["iam.role.AssumeRole", "iam.assumedrole.Read"], "Resource": "*"}]}),
        })
        .await
        .unwrap();
    admin.attach_policy_to_user(&policy.id, &user.id).await.unwrap();
    let role = admin
        .create_role(&wire::RoleInput {
            name: "reader".into(),
            description: String::new(),
            role_type: "assumable".into(),
            max_session_duration: Some(3_600),
        })
        .await
        .unwrap();
    let list = admin
        .create_policy(&wire::PolicyInput {
            name: "list-users".into(),
            description: String::new(),
            policy_document: serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "iam.user.List", "Resource": "*"}]}),
        })
        .await
        .unwrap();
    admin.attach_policy_to_role(&role.id, &list.id).await.unwrap();
    admin
        .create_trust(&wire::TrustInput {
            role_id: role.id.clone(),
            trusted_user_id: Some(user.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let key =
        admin.create_api_key(&user.id, &wire::ApiKeyCreate { name: "k".into(), date_expire: None }).await.unwrap();
    (user.id, role.id, admin.with_token(key.api_key.unwrap()))
}

pub fn assume_req(user: &str, role: &str) -> wire::AssumeRequest {
    wire::AssumeRequest {
        user_id: user.into(),
        role_id: role.into(),
        session_name: "load".into(),
        duration: Some(3_600),
        ..Default::default()
    }
}

pub async fn list_status(c: &Client) -> u16 {
    match c.list_users(&ListParams::default()).await {
        Ok(_) => 200,
        Err(e) => e.status().map(|s| s.as_u16()).unwrap_or(0),
    }
}
