//! First start, the printed key, restart, and graceful shutdown. Both output streams are
//! read: the key belongs on standard output, once, and never in the logs (standard error).

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
        // Every level: no log level may print a key.
        .env("TESSERA_LOG", "debug")
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

/// Polls the readiness probe inside one generous deadline.
fn wait_ready(port: u16) {
    let start = Instant::now();
    while get(port, "/healthz", None) != Some(200) {
        assert!(start.elapsed() < crate::DEADLINE, "server did not become ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the process wrote, stream by stream.
struct Output {
    stdout: String,
    /// The logs.
    stderr: String,
}

/// Reads a stream to its end on a thread of its own, so a chatty process never blocks on a
/// full pipe.
fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = r.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// A started server whose output is being read.
struct Server {
    child: Child,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Server {
    fn new(mut child: Child) -> Server {
        let stdout = drain(child.stdout.take().unwrap());
        let stderr = drain(child.stderr.take().unwrap());
        Server { child, stdout, stderr }
    }
}

fn stop(mut server: Server) -> (std::process::ExitStatus, Output) {
    Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            let out = Output { stdout: server.stdout.join().unwrap(), stderr: server.stderr.join().unwrap() };
            // Proves the logs were read: the negative checks on them cannot pass on nothing.
            assert!(out.stderr.contains("listening"), "no logs on standard error:\n{}", out.stderr);
            return (status, out);
        }
        assert!(start.elapsed() < crate::DEADLINE, "SIGTERM did not stop the server");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn first_start_prints_a_working_key_once_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::new(start(dir.path(), port, None));
    wait_ready(port);
    let (status, out) = stop(server);
    assert!(status.success(), "exit status {status}");
    let keys: Vec<&str> = out.stdout.split_whitespace().filter(|w| w.starts_with("tessera_ak_")).collect();
    assert_eq!(keys.len(), 1, "the key is printed once on standard output:\n{}", out.stdout);
    let key = keys[0].to_owned();
    assert!(!out.stderr.contains(&key), "the key reached the logs:\n{}", out.stderr);
    assert!(!out.stderr.contains("tessera_ak_"), "a key reached the logs:\n{}", out.stderr);

    let port = free_port();
    let server = Server::new(start(dir.path(), port, None));
    wait_ready(port);
    assert_eq!(get(port, "/v2/users", Some(&key)), Some(200), "the printed key works after a restart");
    assert_eq!(get(port, "/v2/users", Some("tessera_ak_wrong")), Some(401));
    let (status, out) = stop(server);
    assert!(status.success());
    for (name, text) in [("standard output", &out.stdout), ("the logs", &out.stderr)] {
        assert!(!text.contains(&key), "the key is printed only on the first start, yet {name} show it:\n{text}");
    }
}

#[test]
fn bootstrap_key_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let key = "operator-chosen-key-with-plenty-of-entropy-42";
    let server = Server::new(start(dir.path(), port, Some(key)));
    wait_ready(port);
    assert_eq!(get(port, "/v2/users", Some(key)), Some(200));
    let (status, out) = stop(server);
    assert!(status.success());
    for (name, text) in [("standard output", &out.stdout), ("the logs", &out.stderr)] {
        assert!(!text.contains(key), "an operator's key is never echoed, yet {name} show it:\n{text}");
    }

    let short = start(tempfile::tempdir().unwrap().path(), free_port(), Some("too-short"));
    let out = short.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 characters"));
}
