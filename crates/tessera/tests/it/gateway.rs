//! The gateway as operators run it: `tessera serve --gateway-listen`, configured from a file
//! with `tessera gateway apply`, proxying a signed-in browser to an upstream.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ADMIN_KEY, DEADLINE, free_port};

fn http(port: u16, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Waits for the gateway's readiness probe: 200 once its table reflects every configuration
/// change the node has seen (one generous deadline; each probe is a round trip, no sleep).
fn wait_until_ready(gw: u16) {
    let start = Instant::now();
    loop {
        let res = http(gw, "GET /.tessera/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if res.starts_with("HTTP/1.1 200") {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the gateway never became ready: {res}");
        std::thread::yield_now();
    }
}

/// A `tessera serve` process, killed when dropped.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn apply(api: u16, file: &std::path::Path, prune: bool) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(["gateway", "apply", "--output", "json", "--file"]).arg(file);
    if prune {
        cmd.arg("--prune");
    }
    cmd.env("TESSERA_ENDPOINT", format!("http://127.0.0.1:{api}")).env("TESSERA_API_KEY", ADMIN_KEY).output().unwrap()
}

#[tokio::test]
async fn gateway_apply_from_a_file_then_sign_in_and_pass_through() {
    // The upstream: a second gateway-less tessera would do, but any HTTP server works; use
    // the API of the same process (GET /healthz answers without credentials).
    let dir = tempfile::tempdir().unwrap();
    let (api, gw) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", &format!("127.0.0.1:{api}"), "--gateway-listen", &format!("127.0.0.1:{gw}")])
        .args(["--database", &format!("sqlite://{}", dir.path().join("t.db").display())])
        .env("TESSERA_BOOTSTRAP_API_KEY", ADMIN_KEY)
        .env("TESSERA_LOG", "warn,tessera::gateway::access=info")
        .env("TESSERA_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("stderr")).unwrap()))
        .spawn()
        .unwrap();
    // Killed however the test ends: a failed assertion must not leave the server running.
    let _serve = Serve(child);
    let client = tessera_client::Client::new(format!("http://127.0.0.1:{api}"), Some(ADMIN_KEY.into()));
    // Its readiness probe, polled every 20 ms within one generous deadline.
    let start = Instant::now();
    let mut every = tokio::time::interval(Duration::from_millis(20));
    while client.health().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "tessera serve never became ready");
        every.tick().await;
    }
    client
        .create_user(&tessera_api_types::UserCreate {
            email: "op@example.com".into(),
            password: Some("correct horse battery staple".into()),
            ..Default::default()
        })
        .await
        .unwrap();

    let file = dir.path().join("gateway.json");
    let config = serde_json::json!({
        "services": [{"name": "self", "url": format!("http://127.0.0.1:{api}")}],
        "routes": [{"name": "health", "paths": ["/up"], "service": {"name": "self"}}],
        "plugins": [{"name": "session", "instance_name": "sso", "route": {"name": "health"},
                     "config": {"cookie_secure": false, "secret": "a-shared-secret-for-every-node"}}]
    });
    std::fs::write(&file, config.to_string()).unwrap();
    let out = apply(api, &file, false);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.as_array().unwrap().iter().filter(|r| r["change"] == "created").count(), 3, "{report}");
    // Applying again replaces in place (same ids), creating nothing.
    let again: serde_json::Value = serde_json::from_slice(&apply(api, &file, false).stdout).unwrap();
    assert!(again.as_array().unwrap().iter().all(|r| r["change"] == "replaced"), "{again}");
    assert_eq!(report[0]["id"], again[0]["id"]);

    // Without a session: 401. After signing in through the gateway: proxied (strip_path makes
    // /up/healthz reach /healthz upstream).
    wait_until_ready(gw);
    let res = http(gw, "GET /up/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(res.starts_with("HTTP/1.1 401"), "{res}");
    let body = r#"{"email":"op@example.com","password":"correct horse battery staple","next":"/up/healthz"}"#;
    let res = http(
        gw,
        &format!(
            "POST /.tessera/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    let cookie = res
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let res =
        http(gw, &format!("GET /up/healthz HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"));
    assert!(res.starts_with("HTTP/1.1 200") && res.contains("\"status\":\"ok\""), "{res}");
    // The gateway's access log: a JSON line per request, path without query, never the cookie.
    // Lines at info are written in batches, within 50 ms: wait for both.
    let found = |logged: &str, status: u16| {
        logged
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "tessera::gateway::access")
            .any(|v| {
                v["fields"]["path"] == "/up/healthz"
                    && v["fields"]["status"] == status
                    && v["fields"]["method"] == "GET"
                    && v["fields"]["client"] == "127.0.0.1"
            })
    };
    let start = Instant::now();
    let logged = loop {
        let logged = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
        if [401, 200].into_iter().all(|status| found(&logged, status)) {
            break logged;
        }
        assert!(start.elapsed() < DEADLINE, "no access line for GET /up/healthz 401 and 200:\n{logged}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let cookie_value = cookie.split_once('=').unwrap().1;
    assert!(!logged.contains(cookie_value), "the session cookie reached the log:\n{logged}");

    // --prune with an empty file removes everything the file does not name.
    std::fs::write(&file, "{}").unwrap();
    let out = apply(api, &file, true);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pruned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pruned = pruned.as_array().unwrap();
    assert_eq!(pruned.len(), 3, "the service, the route and the plugin: {pruned:?}");
    assert!(pruned.iter().all(|r| r["change"] == "deleted"), "{pruned:?}");
    for kind in ["services", "routes", "plugins"] {
        let list = client.raw(reqwest::Method::GET, &format!("/v2/gateway/{kind}"), None).await.unwrap().1;
        assert_eq!(list["meta"]["total"], 0, "{kind} are gone: {list}");
    }
    wait_until_ready(gw);
    let res = http(gw, "GET /up/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(res.starts_with("HTTP/1.1 404"), "the route is gone from the gateway too: {res}");
}
