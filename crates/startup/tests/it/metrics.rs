//! `--metrics-listen`: a node serves `GET /metrics` there, counting the API's requests; off
//! by default.

use std::io::{Read, Write};
use std::net::SocketAddr;

use tessera_startup::{Application, DatabaseUrl, Listen, Settings};

fn settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    s.server.listen = "127.0.0.1:0".parse().unwrap();
    s.gateway.listen = Listen(None);
    s.database.url = Some(DatabaseUrl::Sqlite(dir.join("tessera.db")));
    s
}

/// One HTTP/1.1 GET; the whole answer as text.
async fn get(addr: SocketAddr, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_counts_the_api_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.metrics.listen = Listen(Some("127.0.0.1:0".parse().unwrap()));
    let node = Application::build(s).await.unwrap();
    let metrics = node.metrics_addr().expect("a metrics listener");
    assert!(get(node.api_addr(), "/healthz").await.starts_with("HTTP/1.1 200"));
    let answer = get(metrics, "/metrics").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("text/plain; version=0.0.4"), "{answer}");
    assert!(
        answer.contains(r#"tessera_http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{answer}"
    );
    assert!(get(node.api_addr(), "/metrics").await.starts_with("HTTP/1.1 404"), "not on the API listener");
    let stop = node.shutdown_handle();
    stop.shutdown();
    node.run_until_stopped().await.unwrap();
}

/// One HTTP/1.1 request with a JSON body and an optional bearer; the whole answer as text.
async fn send(addr: SocketAddr, method: &str, path: &str, bearer: Option<&str>, body: &str) -> String {
    let auth = bearer.map(|b| format!("Authorization: Bearer {b}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_counts_sign_ins_assumptions_and_cache_lookups() {
    const KEY: &str = "metrics-admin-key-0123456789abcdef0123456789";
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.metrics.listen = Listen(Some("127.0.0.1:0".parse().unwrap()));
    s.bootstrap.api_key = Some(tessera_startup::Secret::new(KEY));
    let node = Application::build(s).await.unwrap();
    let (api, metrics) = (node.api_addr(), node.metrics_addr().unwrap());
    let user = r#"{"email":"mo@example.com","password":"correct horse battery staple"}"#;
    let created = send(api, "POST", "/v2/users", Some(KEY), user).await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let body: serde_json::Value = serde_json::from_str(created.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let user_id = body["user"]["id"].as_str().expect("the user's id").to_owned();
    assert!(send(api, "GET", "/v2/users", Some(KEY), "").await.starts_with("HTTP/1.1 200"));
    let wrong = r#"{"email":"mo@example.com","password":"wrong horse"}"#;
    assert!(send(api, "POST", "/v2/sessions", None, wrong).await.starts_with("HTTP/1.1 401"));
    assert!(send(api, "POST", "/v2/sessions", None, user).await.starts_with("HTTP/1.1 201"));
    let no_role =
        format!(r#"{{"user_id":"{user_id}","role_id":"00000000-0000-4000-8000-000000000000","session_name":"x"}}"#);
    let refused = send(api, "POST", "/v2/assumed-roles/assume", Some(KEY), &no_role).await;
    assert!(refused.starts_with("HTTP/1.1 4"), "{refused}");

    let answer = get(metrics, "/metrics").await;
    for line in [
        r#"tessera_sign_ins_total{outcome="ok"} 1"#,
        r#"tessera_sign_ins_total{outcome="unauthorized"} 1"#,
        "tessera_lockouts_total 0",
        r#"tessera_auth_cache_lookups_total{result="miss"} 1"#,
        r#"tessera_auth_cache_lookups_total{result="hit"} 2"#,
        "tessera_auth_cache_credentials 1",
        r#"tessera_sessions_live{kind="login"} 1"#,
        r#"tessera_sessions_live{kind="assumed_role"} 0"#,
        "tessera_store_up 1",
    ] {
        assert!(answer.lines().any(|l| l == line), "no line {line:?} in:\n{answer}");
    }
    let assumed: u64 = answer
        .lines()
        .filter(|l| l.starts_with("tessera_role_assumptions_total{") && !l.contains(r#"outcome="ok""#))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(assumed, 1, "the refused assumption is counted:\n{answer}");
    let stop = node.shutdown_handle();
    stop.shutdown();
    node.run_until_stopped().await.unwrap();
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let node = Application::build(settings(dir.path())).await.unwrap();
    assert_eq!(node.metrics_addr(), None);
}
