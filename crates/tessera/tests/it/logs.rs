//! No log level prints a secret: the real binary at `TESSERA_LOG=trace`, on SQLite and on
//! PostgreSQL (whose driver logs every query parameter at debug), signs a user in and stores
//! a session plugin's secret; neither output stream may then hold a password, a password
//! hash, the plugin secret or any token.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tessera_api_types as wire;
use tessera_client::Client;

use crate::{ADMIN_KEY, DEADLINE, PgDb, free_port};

const PASSWORD: &str = "pw-never-logged-6a1f0c";
const PLUGIN_SECRET: &str = "plugin-secret-never-logged-93be27";

/// Runs `tessera serve` on `database` (the data directory's SQLite file when `None`) with
/// every log level on, drives it through the API, stops it, and answers what it printed
/// (standard output and standard error) and the secrets it handed out.
async fn run_at_trace(database: Option<&str>) -> (String, Vec<String>) {
    run_logged(database, "trace,tokio_postgres::query=trace,hyper=trace,h2=trace", "text").await
}

/// Like [`run_at_trace`], with the given log filter and format.
async fn run_logged(database: Option<&str>, filter: &str, format: &str) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--gateway-listen", "off", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("TESSERA_DATABASE")
        .env("TESSERA_BOOTSTRAP_API_KEY", ADMIN_KEY)
        // Everything on, and the driver named explicitly: no directive may reopen it.
        .env("TESSERA_LOG", filter)
        .env("TESSERA_LOG_FORMAT", format)
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()));
    if let Some(db) = database {
        cmd.args(["--database", db]);
    }
    let mut child = cmd.spawn().expect("tessera starts");
    let admin = Client::new(format!("http://127.0.0.1:{port}"), Some(ADMIN_KEY.into()));
    let start = Instant::now();
    while admin.health().await.is_err() {
        assert!(start.elapsed() < DEADLINE, "tessera did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let user = admin
        .create_user(&wire::UserCreate {
            email: "lee@example.com".into(),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let wrong = wire::SignInRequest {
        email: "lee@example.com".into(),
        password: format!("{PASSWORD}-wrong"),
        organization_id: None,
    };
    assert!(admin.sign_in(&wrong).await.is_err());
    let signed = admin
        .sign_in(&wire::SignInRequest {
            email: "lee@example.com".into(),
            password: PASSWORD.into(),
            organization_id: None,
        })
        .await
        .unwrap();
    admin.with_token(signed.token.clone()).current_session().await.unwrap();
    let key =
        admin.create_api_key(&user.id, &wire::ApiKeyCreate { name: "k".into(), date_expire: None }).await.unwrap();
    let key = key.api_key.unwrap();
    admin.with_token(key.clone()).current_session().await.unwrap_err();
    let (status, body) = admin
        .raw(
            reqwest::Method::POST,
            "/v2/gateway/plugins",
            Some(&serde_json::json!({"name": "session", "config": {"secret": PLUGIN_SECRET}}).to_string()),
        )
        .await
        .unwrap();
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    admin.with_token(signed.token.clone()).sign_out().await.unwrap();

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < DEADLINE, "SIGTERM did not stop tessera");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let printed = std::fs::read_to_string(&out_path).unwrap() + &std::fs::read_to_string(&err_path).unwrap();
    // The negative checks below must not pass on empty output: the sign-in was logged.
    assert!(printed.contains("signed in"), "the logs were not captured:\n{printed}");
    (printed, vec![PASSWORD.into(), PLUGIN_SECRET.into(), signed.token, key, ADMIN_KEY.into()])
}

fn assert_no_secret(printed: &str, secrets: &[String]) {
    let mut found = vec![];
    for s in secrets.iter().map(String::as_str).chain(["$argon2id$", "tessera_ls_", "tessera_ak_", "tessera_rs_"]) {
        if let Some(at) = printed.find(s) {
            let line = printed[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = printed[at..].find('\n').map_or(printed.len(), |i| at + i);
            found.push(format!("{s:?} in: {}", &printed[line..end]));
        }
    }
    assert!(found.is_empty(), "secrets in the output at TESSERA_LOG=trace:\n{}", found.join("\n"));
}

#[tokio::test]
async fn trace_logs_hold_no_secret_on_sqlite() {
    let (printed, secrets) = run_at_trace(None).await;
    assert_no_secret(&printed, &secrets);
}

#[tokio::test]
async fn trace_logs_hold_no_secret_on_postgres() {
    let Some(db) = PgDb::create("trace_logs_hold_no_secret_on_postgres").await else { return };
    let (printed, secrets) = run_at_trace(Some(&db.url)).await;
    assert_no_secret(&printed, &secrets);
}

/// `--log-format json` at info: one access line per API request, with the route template,
/// status, latency and the caller's ids, and still no secret.
#[tokio::test]
async fn json_access_lines_name_route_status_and_caller_but_no_secret() {
    let (printed, secrets) = run_logged(None, "info", "json").await;
    assert_no_secret(&printed, &secrets);
    let lines: Vec<serde_json::Value> = printed
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &serde_json::Value| v["target"] == "tessera::access")
        .collect();
    let find = |method: &str, route: &str, status: u64| {
        lines
            .iter()
            .find(|v| {
                v["fields"]["method"] == method && v["fields"]["route"] == route && v["fields"]["status"] == status
            })
            .unwrap_or_else(|| panic!("no access line for {method} {route} {status} in:\n{printed}"))
            .clone()
    };
    let whoami = find("GET", "/v2/sessions/current", 200);
    let f = &whoami["fields"];
    assert_eq!(f["credential"], "login_session");
    assert!(f["org"].as_str().is_some_and(|o| o.len() == 36), "{whoami}");
    assert!(f["principal"].as_str().is_some_and(|o| o.len() == 36), "{whoami}");
    assert!(f["latency_ms"].as_f64().is_some_and(|l| l >= 0.0), "{whoami}");
    assert!(f["request_id"].as_str().is_some_and(|r| !r.is_empty()), "{whoami}");
    let plugin = find("POST", "/v2/gateway/plugins", 201);
    assert_eq!(plugin["fields"]["credential"], "api_key");
    // A refused sign-in has no caller.
    let refused = find("POST", "/v2/sessions", 401);
    assert!(refused["fields"].get("principal").is_none(), "{refused}");
    // Templates, never raw paths: ids stay out of the route.
    assert!(lines.iter().all(|v| !v["fields"]["route"].as_str().unwrap_or("").contains("-4")), "{printed}");
}
