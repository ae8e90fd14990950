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

#[tokio::test]
async fn metrics_are_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let node = Application::build(settings(dir.path())).await.unwrap();
    assert_eq!(node.metrics_addr(), None);
}
