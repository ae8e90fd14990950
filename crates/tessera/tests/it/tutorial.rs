//! docs/tutorial.md, run as a reader would: each track's fenced blocks (```` ```sh cli ````
//! or ```` ```sh curl ````), in order, in one bash, against a fresh `tessera serve` with its
//! gateway and a stand-in application. A ```` ```text ```` block right after a command
//! block is output that block must print (line by line, in order; `…` matches anything).
//! So the tutorial cannot rot: a command that stops working, or prints something else, fails
//! here. The README's quick start (its ```` ```sh cli ```` blocks) runs the same way.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tessera_client::Client;

use crate::{ADMIN_KEY, DEADLINE, Node, free_port, in_ci};

/// The addresses the tutorial names, replaced by the test's own ports.
const API: &str = "127.0.0.1:8080";
const GATEWAY: &str = "127.0.0.1:8000";
const APP: &str = "127.0.0.1:3000";

/// One fenced block of the tutorial.
#[derive(Debug)]
struct Block {
    /// The line of its opening fence, for messages.
    line: usize,
    /// The words after ```` ```sh ````: the tracks that run it.
    tracks: Vec<String>,
    code: String,
    /// The ```` ```text ```` block that follows it, if any.
    expected: Option<String>,
}

const TUTORIAL: &str = "docs/tutorial.md";
const README: &str = "README.md";

/// A document of the repository, by its path from the root.
fn read(doc: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(doc);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every ```` ```sh ```` block, with the ```` ```text ```` block that directly follows it.
fn sh_blocks(markdown: &str) -> Vec<Block> {
    enum Item {
        Fence { line: usize, info: String, body: String },
        Prose,
    }
    let mut items = vec![];
    let mut lines = markdown.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let mut body = String::new();
            for (_, l) in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            items.push(Item::Fence { line: n + 1, info: info.trim().to_owned(), body });
        } else if !line.trim().is_empty() {
            items.push(Item::Prose);
        }
    }
    let mut blocks = vec![];
    for (i, item) in items.iter().enumerate() {
        let Item::Fence { line, info, body } = item else { continue };
        let mut words = info.split_whitespace();
        if words.next() != Some("sh") {
            continue;
        }
        let expected = match items.get(i + 1) {
            Some(Item::Fence { info, body, .. }) if info == "text" => Some(body.clone()),
            _ => None,
        };
        blocks.push(Block { line: *line, tracks: words.map(str::to_owned).collect(), code: body.clone(), expected });
    }
    blocks
}

/// Whether `line` matches `pattern`: `…` stands for any text, runs of spaces for any spacing.
fn matches(pattern: &str, line: &str) -> bool {
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (pattern, line) = (squeeze(pattern), squeeze(line));
    let parts: Vec<&str> = pattern.split('…').map(str::trim).collect();
    let mut rest = line.as_str();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        let at = match i {
            0 if rest.starts_with(part) => 0,
            0 => return false,
            _ => match rest.find(part) {
                Some(at) => at,
                None => return false,
            },
        };
        rest = &rest[at + part.len()..];
    }
    parts.last().is_some_and(|last| last.is_empty()) || rest.trim().is_empty()
}

/// A stand-in for the tutorial's application: answers every request with 200 and a line of
/// text, on a thread of its own (the test's runtime is blocked while bash runs). Stops when
/// dropped.
struct App {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl App {
    fn start() -> App {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "hello from the app\n";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        App { port, stop, thread: Some(thread) }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the thread's accept, which then sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `tessera serve` with the gateway on, on free ports, with a database of its own.
async fn server(dir: &std::path::Path) -> (Node, u16) {
    let (port, gateway) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--gateway-listen", &format!("127.0.0.1:{gateway}")])
        .arg("--database")
        .arg(dir.join("tessera.db"))
        .env("TESSERA_BOOTSTRAP_API_KEY", ADMIN_KEY)
        .env("TESSERA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tessera starts");
    let client = Client::new(format!("http://127.0.0.1:{port}"), Some(ADMIN_KEY.into()));
    let node = Node { child, port, client };
    let start = Instant::now();
    while node.client.health().await.is_err() {
        assert!(start.elapsed() < DEADLINE, "tessera serve did not become ready within {DEADLINE:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (node, gateway)
}

/// True when `tool` runs; a missing tool skips the test (and fails it under CI).
fn have(tool: &str, test: &str) -> bool {
    let found = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        assert!(!in_ci(), "{test} cannot run under CI: `{tool}` is not installed");
        println!("SKIPPED {test}: `{tool}` is not installed");
    }
    found
}

/// Runs one track of `doc` (at least `least` blocks) and checks every expected output.
async fn run_track(doc: &str, track: &str, least: usize) {
    let test = format!("{doc}, {track} track");
    if !["bash", "curl", "jq"].iter().all(|t| have(t, &test)) {
        return;
    }
    let blocks: Vec<Block> =
        sh_blocks(&read(doc)).into_iter().filter(|b| b.tracks.iter().any(|t| t == track)).collect();
    assert!(blocks.len() >= least, "{test} has only {} blocks", blocks.len());
    let dir = tempfile::tempdir().unwrap();
    let app = App::start();
    let (node, gateway) = server(dir.path()).await;
    let addresses = [
        (API, format!("127.0.0.1:{}", node.port)),
        (GATEWAY, format!("127.0.0.1:{gateway}")),
        (APP, format!("127.0.0.1:{}", app.port)),
    ];
    let mut script = String::from("set -euo pipefail\nexec 2>&1\n");
    for (i, b) in blocks.iter().enumerate() {
        let mut code = b.code.clone();
        for (from, to) in &addresses {
            code = code.replace(from, to);
        }
        script.push_str(&format!("echo '@@block {i}@@'\n{code}"));
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tessera"));
    let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let started = Instant::now();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("TESSERA_API_KEY", ADMIN_KEY)
        .env("TESSERA_ENDPOINT", format!("http://127.0.0.1:{}", node.port))
        .env_remove("TESSERA_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .output()
        .expect("bash runs");
    let output = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{test}: ran {} blocks in {:?}", blocks.len(), started.elapsed());

    // The output of each block, by the marker echoed before it.
    let mut outputs = vec![String::new(); blocks.len()];
    let mut current = None;
    for line in output.lines() {
        if let Some(i) = line.strip_prefix("@@block ").and_then(|l| l.strip_suffix("@@")) {
            current = i.parse::<usize>().ok();
        } else if let Some(i) = current {
            outputs[i].push_str(line);
            outputs[i].push('\n');
        }
    }
    if !out.status.success() {
        let failed = current.map(|i| &blocks[i]);
        panic!(
            "{test}: the block at line {} failed ({}):\n{}\n--- its output:\n{}",
            failed.map_or(0, |b| b.line),
            out.status,
            failed.map_or("", |b| b.code.as_str()),
            current.map_or(output.as_str(), |i| outputs[i].as_str()),
        );
    }
    for (b, actual) in blocks.iter().zip(&outputs) {
        let Some(expected) = &b.expected else { continue };
        let mut lines = actual.lines();
        for want in expected.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                lines.any(|got| matches(want, got)),
                "{test}: the block at line {} should print a line like\n    {want}\n\
                 (in this order after the lines before it) but printed:\n{actual}",
                b.line
            );
        }
    }
}

#[tokio::test]
async fn tutorial_cli_track() {
    run_track(TUTORIAL, "cli", 10).await;
}

#[tokio::test]
async fn tutorial_curl_track() {
    run_track(TUTORIAL, "curl", 10).await;
}

/// The README's quick start, from the installed binary to an assumed role.
#[tokio::test]
async fn readme_quick_start() {
    run_track(README, "cli", 2).await;
}

/// A block nobody runs is a block that can rot: every ```sh block belongs to a track, except
/// the few that start long-running processes or stand for what the reader types by hand.
#[test]
fn every_tutorial_command_is_tested() {
    let untested = ["tessera serve", "export TESSERA_API_KEY=tessera_ak_...", "python3 -m http.server"];
    for b in sh_blocks(&read(TUTORIAL)) {
        let known = ["cli", "curl"];
        assert!(
            b.tracks.iter().all(|t| known.contains(&t.as_str())),
            "line {}: unknown track in {:?}",
            b.line,
            b.tracks
        );
        if b.tracks.is_empty() {
            assert!(
                untested.iter().any(|u| b.code.contains(u)),
                "docs/tutorial.md line {}: a ```sh block that no test runs; mark it `sh cli`, `sh curl` or both:\n{}",
                b.line,
                b.code
            );
        }
    }
}

#[test]
fn expected_lines_match_with_ellipses_and_any_spacing() {
    assert!(matches("…  ann@example.com  Ann  active", "0b1e  ann@example.com   Ann   active"));
    assert!(matches("error: …403 Forbidden…iam.role.List…", "error: GET /v2/roles: 403 Forbidden: iam.role.List x"));
    assert!(matches("401", "401"));
    assert!(!matches("401", "200"));
    assert!(!matches("401", "4011"));
    assert!(!matches("login Active", "assumed_role Terminated"));
    assert!(!matches("… reader …", "writer"));
}
