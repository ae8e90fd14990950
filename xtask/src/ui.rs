//! `cargo xtask ui`: the admin console's end-to-end test. Checks that the vendored htmx is
//! byte for byte the file npm publishes for the pinned version, starts a real `tessera serve`
//! on SQLite (API and gateway listeners on free ports, a bootstrap administrator key), and
//! runs `crates/testkit/ui/test_console.py`: Playwright (PyPI) driving Debian's headless
//! Chromium through the console, with axe-core (npm) in each main view. Screenshots of each
//! main view land in `target/ui-screenshots/`.
//!
//! `cargo xtask ci` runs it.

use std::path::Path;
use std::process::Command;

use crate::schemathesis::{Server, free_port, start_with, target_dir, wait_until_ready};

/// The administrator's key the server is bootstrapped with (a throwaway database).
const KEY: &str = "tessera_ak_console_e2e_0123456789abcdef0123456789abcdef";
/// The npm package the console's htmx comes from, and the integrity npm publishes for it.
const HTMX_PACKAGE: &str = "htmx.org@2.0.11";
const HTMX_NPM_INTEGRITY: &str =
    "sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==";
const HTMX_FILE: &str = "crates/server/src/ui/assets/htmx-2.0.11.min.js";

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_owned).unwrap_or_else(|| ".".into())
}

pub fn run() -> Result<(), String> {
    crate::tools::ensure_ui_tools()?;
    let dir = std::env::temp_dir().join(format!("tessera-ui-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    check_htmx(&dir)?;
    crate::run("cargo", &["build", "-p", "tessera", "--bin", "tessera"])?;
    let port = free_port()?;
    let gateway_port = free_port()?;
    let server = Server(start_with(&dir, port, &format!("127.0.0.1:{gateway_port}"), KEY)?);
    wait_until_ready(port)?;
    let shots = target_dir().join("ui-screenshots");
    std::fs::create_dir_all(&shots).map_err(|e| format!("cannot create {}: {e}", shots.display()))?;
    let python = crate::tools::playwright_python();
    let script = root().join("crates/testkit/ui/test_console.py");
    eprintln!("+ {} {}", python.display(), script.display());
    let status = Command::new(&python)
        .arg(&script)
        .env("TESSERA_URL", format!("http://127.0.0.1:{port}"))
        .env("TESSERA_GATEWAY_URL", format!("http://127.0.0.1:{gateway_port}"))
        .env("TESSERA_ADMIN_KEY", KEY)
        .env("CHROMIUM", "/usr/bin/chromium")
        .env("AXE_JS", crate::tools::axe_js())
        .env("SCREENSHOTS", &shots)
        .current_dir(&dir)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    drop(server);
    if !status.success() {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        eprintln!("xtask: the server's last log lines:");
        for l in log.lines().rev().take(30).collect::<Vec<_>>().iter().rev() {
            eprintln!("  {l}");
        }
        return Err(format!("the console's end-to-end test failed ({status}); the server log is in {}", dir.display()));
    }
    eprintln!("xtask: console screenshots in {}", shots.display());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The vendored htmx must be the file npm serves for the pinned version: `npm pack` fetches
/// the tarball, whose integrity must be the pinned one, and the file inside must be ours.
fn check_htmx(dir: &Path) -> Result<(), String> {
    let out = Command::new("npm")
        .args(["pack", HTMX_PACKAGE, "--json", "--pack-destination"])
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run npm pack: {e}"))?;
    if !out.status.success() {
        return Err(format!("npm pack {HTMX_PACKAGE} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("npm pack --json answered no JSON: {e}"))?;
    let integrity = answer.pointer("/0/integrity").and_then(|v| v.as_str()).unwrap_or_default();
    if integrity != HTMX_NPM_INTEGRITY {
        return Err(format!("npm's {HTMX_PACKAGE} has integrity {integrity}, not the pinned {HTMX_NPM_INTEGRITY}"));
    }
    let file = answer.pointer("/0/filename").and_then(|v| v.as_str()).unwrap_or_default();
    crate::run("tar", &["-xzf", &dir.join(file).display().to_string(), "-C", &dir.display().to_string()])?;
    let published = std::fs::read(dir.join("package/dist/htmx.min.js")).map_err(|e| e.to_string())?;
    let vendored = std::fs::read(root().join(HTMX_FILE)).map_err(|e| e.to_string())?;
    if published != vendored {
        return Err(format!("{HTMX_FILE} is not npm's {HTMX_PACKAGE} dist/htmx.min.js"));
    }
    eprintln!("xtask: {HTMX_FILE} is npm's {HTMX_PACKAGE} (integrity {HTMX_NPM_INTEGRITY})");
    Ok(())
}
