//! Logs written to a file or a pipe are plain text: colour codes only when standard error is
//! a terminal, so `tessera serve 2>tessera.log` and journald hold no `ESC[…m` sequences.

use std::process::{Command, Stdio};
use std::time::Instant;

use tessera_client::Client;

use crate::{ADMIN_KEY, DEADLINE, free_port};

#[tokio::test]
async fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--gateway-listen", "off", "--database"])
        .arg(dir.path().join("tessera.db"))
        .env("TESSERA_BOOTSTRAP_API_KEY", ADMIN_KEY)
        .env("TESSERA_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera starts");
    let client = Client::new(format!("http://127.0.0.1:{port}"), Some(ADMIN_KEY.into()));
    let start = Instant::now();
    while client.health().await.is_err() {
        assert!(start.elapsed() < DEADLINE, "tessera serve did not become ready within {DEADLINE:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // SIGTERM, as an operator stops it: lines at info are written in batches, and a killed
    // process loses the last 50 ms of them (docs/operations.md).
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("listening"), "the server logged its listener:\n{logs}");
    assert!(!logs.contains("\x1b["), "colour codes in logs written to a pipe:\n{logs:?}");
}
