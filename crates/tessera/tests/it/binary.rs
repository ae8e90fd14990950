//! First start, the printed key, restart, and graceful shutdown.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

fn start(dir: &std::path::Path, port: u16, key: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--gateway-listen", "off", "--data-dir"])
        .arg(dir)
        .env_remove("TESSERA_BOOTSTRAP_API_KEY")
        .env_remove("TESSERA_DATABASE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = key {
        cmd.env("TESSERA_BOOTSTRAP_API_KEY", k);
    }
    cmd.spawn().expect("tessera starts")
}

fn get(port: u16, path: &str, key: Option<&str>) -> Option<u16> {
    let mut req = ureq_like(port, path, key)?;
    let mut buf = String::new();
    req.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

/// A minimal HTTP/1.1 GET over a TcpStream, so this test needs no HTTP client crate.
fn ureq_like(port: u16, path: &str, key: Option<&str>) -> Option<std::net::TcpStream> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").ok()?;
    Some(s)
}

fn wait_ready(port: u16) {
    let start = Instant::now();
    while get(port, "/healthz", None) != Some(200) {
        assert!(start.elapsed() < Duration::from_secs(20), "server did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(mut child: Child) -> (std::process::ExitStatus, String) {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            return (status, out);
        }
        assert!(start.elapsed() < Duration::from_secs(10), "SIGTERM did not stop the server");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn first_start_prints_a_working_key_once_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = start(dir.path(), port, None);
    wait_ready(port);
    let (status, out) = stop(child);
    assert!(status.success(), "exit status {status}");
    let key = out.split_whitespace().find(|w| w.starts_with("tessera_ak_")).expect("the key is printed").to_owned();

    let port = free_port();
    let child = start(dir.path(), port, None);
    wait_ready(port);
    assert_eq!(get(port, "/v2/users", Some(&key)), Some(200), "the printed key works after a restart");
    assert_eq!(get(port, "/v2/users", Some("tessera_ak_wrong")), Some(401));
    let (status, out) = stop(child);
    assert!(status.success());
    assert!(!out.contains("tessera_ak_"), "the key is printed only on the first start");
}

#[test]
fn bootstrap_key_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let key = "operator-chosen-key-with-plenty-of-entropy-42";
    let child = start(dir.path(), port, Some(key));
    wait_ready(port);
    assert_eq!(get(port, "/v2/users", Some(key)), Some(200));
    let (status, out) = stop(child);
    assert!(status.success());
    assert!(!out.contains(key), "an operator's key is never echoed");

    let short = start(tempfile::tempdir().unwrap().path(), free_port(), Some("too-short"));
    let out = short.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 characters"));
}
