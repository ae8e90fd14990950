//! `cargo xtask schemathesis [--examples N]`: PyPI's schemathesis against a live `tessera
//! serve` on SQLite, driven by the server's own `/v2/openapi.json`: every operation with
//! generated valid and invalid requests (examples, coverage and fuzzing phases), then the
//! stateful phase that follows the document's links (create, then read, change and delete
//! what was created). It fails on any 5xx and on any answer the document does not allow
//! (status, content type, headers, body schema), and on a deleted object that can still be read.
//!
//! `cargo xtask ci` runs it; the seed is fixed so a finding reproduces.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The administrator's key the server is bootstrapped with (a throwaway database).
const KEY: &str = "tessera_ak_schemathesis_0123456789abcdef0123456789abcdef";
/// What a run must reach, in generated cases over every operation.
pub const MIN_CASES: u64 = 2_000;
/// The checks that make "0 server errors and 0 answers violating the document".
/// Plus: schema-invalid data is refused (`negative_data_rejection`). Not run:
/// `positive_data_acceptance`, since the schemas do not yet state every domain rule (an email's
/// shape, a name's length), so the server rightly refuses some schema-valid bodies.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,use_after_free,negative_data_rejection,\
unsupported_method";

pub fn run(args: &[String]) -> Result<(), String> {
    let examples = args
        .iter()
        .position(|a| a == "--examples")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(40), |n| n.parse::<u32>().map_err(|_| format!("--examples takes a number, not {n}")))?;
    crate::tools::ensure_schemathesis()?;
    crate::run("cargo", &["build", "-p", "tessera", "--bin", "tessera"])?;
    let dir = std::env::temp_dir().join(format!("tessera-schemathesis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let port = free_port()?;
    let server = Server(start(&dir, port)?);
    wait_until_ready(port)?;
    let started = Instant::now();
    let result = schemathesis(port, examples, &dir);
    drop(server);
    eprintln!("xtask: schemathesis took {:.0} s", started.elapsed().as_secs_f64());
    let cases = result?;
    if cases < MIN_CASES {
        return Err(format!("schemathesis generated {cases} cases, fewer than {MIN_CASES}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Stops the server however the run ends.
pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(|p| p.join("target")).unwrap_or_else(|| "target".into())
    })
}

pub(crate) fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn start(dir: &Path, port: u16) -> Result<Child, String> {
    start_with(dir, port, "off", KEY)
}

/// Starts `tessera serve` on SQLite in `dir` with the API on `port`, the gateway on
/// `gateway` (an address or `off`), bootstrapped with the administrator's API key `key`.
pub(crate) fn start_with(dir: &Path, port: u16, gateway: &str, key: &str) -> Result<Child, String> {
    let bin = target_dir().join("debug").join("tessera");
    let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
    Command::new(&bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--gateway-listen", gateway])
        .arg("--data-dir")
        .arg(dir)
        .env("TESSERA_BOOTSTRAP_API_KEY", key)
        .env("TESSERA_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))
}

/// Polls `GET /healthz` until it answers 200 (one generous deadline, no fixed sleep).
pub(crate) fn wait_until_ready(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("the server on port {port} did not become healthy within 60 s"))
}

/// Runs schemathesis; returns how many cases it generated.
fn schemathesis(port: u16, examples: u32, dir: &Path) -> Result<u64, String> {
    let bin = crate::tools::schemathesis_bin();
    let url = format!("http://127.0.0.1:{port}");
    let examples = examples.to_string();
    let report = dir.join("report.json");
    let args = [
        "run",
        &format!("{url}/v2/openapi.json"),
        "--url",
        &url,
        "-H",
        &format!("Authorization: Bearer {KEY}"),
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        &examples,
        "--seed",
        "20261130",
        // One worker: with two, Hypothesis's lambda descriptions parse source in both threads
        // and CPython 3.11's AST constructor can fail ("recursion depth mismatch"), a crash of
        // the tool that CI would read as a finding (seen once in a rehearsal).
        "--workers",
        "1",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        &report.display().to_string(),
    ];
    eprintln!("+ {} {}", bin.display(), args.join(" "));
    let status = Command::new(&bin)
        .args(args)
        // Its cache (`.schemathesis/`) goes with the run's other files, not into the tree.
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let cases = count_cases(&report);
    eprintln!("xtask: schemathesis generated {cases} cases");
    if !status.success() {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!("xtask: the server's last log lines:");
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
        return Err(format!("schemathesis found problems ({status}); the server log is in {}", dir.display()));
    }
    Ok(cases)
}

/// The number of test cases in schemathesis's JSON report (0 when it cannot be read).
fn count_cases(report: &Path) -> u64 {
    let Ok(text) = std::fs::read_to_string(report) else { return 0 };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { return 0 };
    v.pointer("/test_cases/generated").and_then(serde_json::Value::as_u64).unwrap_or(0)
}
