//! Moving from Kong, as docs/gateway.md tells it: `deck gateway dump` gives a YAML file,
//! `tessera gateway apply --file kong.yaml` takes it, traffic switches, and a browser's Kong
//! session cookie (sealed here the way Kong seals it, with the plugin's secret, for a
//! consumer of the file) opens on Tessera's gateway and reaches the upstream as that user.
//! Nobody signs in again.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ADMIN_KEY, free_port};

const CONSUMER: &str = "3f9a1c2e-8b7d-4e6f-9a0b-1c2d3e4f5a6b";
const CREDENTIAL: &str = "7c6b5a49-3827-4165-8efd-cba987654321";
const SECRET: &str = "kongs-session-secret-from-the-dump";

/// A `tessera serve` process, killed when dropped.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(port: u16, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// An upstream that answers every request with the request's own head as its body.
fn echo_upstream() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = vec![];
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", head.len());
            let _ = conn.write_all(answer.as_bytes());
            let _ = conn.write_all(&head);
        }
    });
    port
}

fn apply(api: u16, file: &std::path::Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["gateway", "apply", "--output", "json", "--file"])
        .arg(file)
        .env("TESSERA_ENDPOINT", format!("http://127.0.0.1:{api}"))
        .env("TESSERA_API_KEY", ADMIN_KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A session cookie as Kong 3's session plugin writes it for a consumer: lua-resty-session
/// 4 with the plugin's secret, data `[consumer id, credential id]`, audience `default`,
/// subject the consumer's username.
fn kong_cookie(now: u64) -> String {
    use tessera_session_cookie::{BindValues, Keys, SealOptions, SessionEntry, seal};
    let entry = SessionEntry {
        data: serde_json::json!([CONSUMER, CREDENTIAL]),
        audience: "default".into(),
        subject: Some("alice".into()),
    };
    let bind = BindValues { ip: "", scheme: "", user_agent: "" };
    let sealed = seal(&Keys::from_secret(SECRET), &SealOptions::default(), &[entry], &bind, now).unwrap();
    sealed.value
}

#[tokio::test]
async fn a_kong_deck_file_applies_twice_and_kong_sessions_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let (api, gw) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", &format!("127.0.0.1:{api}"), "--gateway-listen", &format!("127.0.0.1:{gw}")])
        .args(["--database", &format!("sqlite://{}", dir.path().join("t.db").display())])
        .env("TESSERA_BOOTSTRAP_API_KEY", ADMIN_KEY)
        .env("TESSERA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _serve = Serve(child);
    let client = tessera_client::Client::new(format!("http://127.0.0.1:{api}"), Some(ADMIN_KEY.into()));
    let start = Instant::now();
    let mut every = tokio::time::interval(Duration::from_millis(20));
    while client.health().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "tessera serve never became ready");
        every.tick().await;
    }
    let upstream = echo_upstream();

    // A CA certificate object and a service verified against it.
    let ca_pem = {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem()
    };
    let ca_yaml: String = ca_pem.lines().map(|l| format!("    {l}\n")).collect();
    const KONG_CA: &str = "7c0a9d3e-1b2c-4d5e-8f90-a1b2c3d4e5f6";

    // What `deck gateway dump` writes (YAML), with a plugin Tessera does not have.
    let file = dir.path().join("kong.yaml");
    std::fs::write(
        &file,
        format!(
            r#"_format_version: "3.0"
consumers:
- id: {CONSUMER}
  username: alice
  custom_id: alice-17
ca_certificates:
- id: {KONG_CA}
  cert: |
{ca_yaml}  tags: [internal]
services:
- name: secure
  url: https://127.0.0.1:1
  ca_certificates: [{KONG_CA}]
  tls_verify_depth: 2
- name: app
  host: 127.0.0.1
  port: {upstream}
  protocol: http
  connect_timeout: 60000
  read_timeout: 60000
  write_timeout: 60000
  retries: 5
  enabled: true
  tls_verify_depth: null
  routes:
  - name: app
    paths:
    - /app
    path_handling: v0
    preserve_host: false
    protocols:
    - http
    - https
    regex_priority: 0
    request_buffering: true
    response_buffering: true
    strip_path: true
    https_redirect_status_code: 426
    plugins:
    - name: session
      enabled: true
      protocols: [grpc, grpcs, http, https]
      config:
        secret: {SECRET}
        cookie_secure: false
        cookie_domain: null
        idling_timeout: 900
        rolling_timeout: 3600
        absolute_timeout: 86400
        stale_ttl: 10
        storage: cookie
  plugins:
  - name: rate-limiting
    config:
      minute: 5
"#
        ),
    )
    .unwrap();
    let report = apply(api, &file);
    let rows = report.as_array().unwrap();
    let row = |kind: &str| rows.iter().find(|r| r["kind"] == kind).cloned().unwrap_or_default();
    assert_eq!(row("user")["id"], CONSUMER, "{report}");
    assert_eq!(row("user")["change"], "created");
    assert_eq!(row("user")["name"], "alice@kong.invalid");
    assert_eq!(row("plugin")["change"], "skipped", "rate-limiting has no Tessera counterpart: {report}");
    assert_eq!(
        rows.iter().filter(|r| r["change"] == "created").count(),
        6,
        "user, CA certificate, two services, route, plugin: {report}"
    );
    let ca = row("ca_certificate");
    assert_eq!(ca["id"], KONG_CA, "the CA keeps Kong's id: {report}");
    let services: Vec<tessera_api_types::gateway::Service> = client.list_gateway().await.unwrap();
    let secure = services.iter().find(|s| s.name.as_deref() == Some("secure")).unwrap();
    assert_eq!(secure.ca_certificates, Some(vec![KONG_CA.to_owned()]));
    assert_eq!(secure.tls_verify_depth, Some(2));

    // Applying the same file again creates nothing and keeps every id.
    let again = apply(api, &file);
    let again_rows = again.as_array().unwrap();
    assert!(again_rows.iter().all(|r| r["change"] != "created"), "{again}");
    assert_eq!(again_rows.iter().find(|r| r["kind"] == "user").unwrap()["change"], "unchanged");
    for (a, b) in rows.iter().zip(again_rows) {
        assert_eq!(a["id"], b["id"], "{a} vs {b}");
    }

    // Traffic switched: the cookie Kong gave the browser opens on Tessera, and the upstream
    // sees the consumer (the same id) and its username.
    let ready = Instant::now();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let cookie = kong_cookie(now);
    let res = loop {
        let res = http(
            gw,
            &format!("GET /app/whoami HTTP/1.1\r\nHost: x\r\nCookie: session={cookie}\r\nConnection: close\r\n\r\n"),
        );
        if res.starts_with("HTTP/1.1 200") || ready.elapsed() > Duration::from_secs(30) {
            break res;
        }
        std::thread::yield_now();
    };
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    let lower = res.to_ascii_lowercase();
    assert!(lower.contains(&format!("x-consumer-id: {CONSUMER}")), "{res}");
    assert!(lower.contains("x-consumer-username: alice"), "{res}");
    assert!(lower.contains("get /whoami http/1.1"), "strip_path: {res}");
    // A cookie sealed with another secret does not.
    let forged = {
        use tessera_session_cookie::{BindValues, Keys, SealOptions, SessionEntry, seal};
        let entry = SessionEntry { data: serde_json::json!([CONSUMER]), audience: "default".into(), subject: None };
        let bind = BindValues { ip: "", scheme: "", user_agent: "" };
        seal(&Keys::from_secret("another"), &SealOptions::default(), &[entry], &bind, now).unwrap().value
    };
    let res =
        http(gw, &format!("GET /app/x HTTP/1.1\r\nHost: x\r\nCookie: session={forged}\r\nConnection: close\r\n\r\n"));
    assert!(res.starts_with("HTTP/1.1 401"), "{res}");

    // The API took the consumer's id; a second user with it is a 409, a bad id a 400.
    let body = format!(r#"{{"id":"{CONSUMER}","email":"other@example.com"}}"#);
    let (status, answer) = client.raw(reqwest::Method::POST, "/v2/users", Some(&body)).await.unwrap();
    assert_eq!(status.as_u16(), 409, "{answer}");
    let (status, answer) =
        client.raw(reqwest::Method::POST, "/v2/users", Some(r#"{"id":"nope","email":"n@example.com"}"#)).await.unwrap();
    assert_eq!(status.as_u16(), 400, "{answer}");
    assert!(answer.to_string().contains("id"), "{answer}");
}
