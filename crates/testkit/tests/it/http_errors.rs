//! Every error the API server itself produces is the JSON error shape, including the ones
//! the HTTP layer makes before a handler runs: an oversized target, header block or body, a
//! path that is not UTF-8, an unknown route or method, a wrong content type, broken JSON.
//! Checked with raw TCP, so nothing in a client library smooths the answer over.

use std::time::Duration;

use serde_json::Value;
use tessera_testkit::{ADMIN_KEY, Backend, TestApp, spawn_app, spawn_app_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw answer: status, lower-cased headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Asserts the JSON error shape and returns the error object.
    fn json_error(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        let ct = self.header("content-type").unwrap_or("");
        assert!(
            ct.starts_with("application/json"),
            "{status} answered {ct:?}: {}",
            String::from_utf8_lossy(&self.body)
        );
        let v: Value = serde_json::from_slice(&self.body).expect("a JSON body");
        let e = v["error"].clone();
        assert!(e["code"].as_str().is_some_and(|c| !c.is_empty()), "{v}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        e
    }
}

/// Sends `head` (and `body`) on a fresh connection and reads one answer.
async fn raw(t: &TestApp, head: &str, body: &[u8]) -> Answer {
    let mut s = TcpStream::connect(t.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk)).await.expect("an answer in time").unwrap();
        buf.extend_from_slice(&chunk[..n]);
        if let Some(answer) = parse(&buf) {
            return answer;
        }
        assert!(n > 0, "the connection closed before a whole answer: {:?}", String::from_utf8_lossy(&buf));
    }
}

fn parse(buf: &[u8]) -> Option<Answer> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
    let body = buf.get(end + 4..end + 4 + len)?.to_vec();
    Some(Answer { status, headers, body })
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_KEY}\r\n{extra}\r\n")
}

async fn oversized_requests_get_json_answers(backend: Backend) {
    let t = spawn_app(backend.clone()).await;
    // A 20 kB request target.
    let long = format!("/v2/users?filter={}", "a".repeat(20_000));
    let e = raw(&t, &get(&long, ""), b"").await.json_error(414);
    assert_eq!(e["code"], "uri_too_long");
    // 200 kB of headers in 2 000 fields: past the default limit of 100 fields hyper refuses
    // the head itself (a 431 without a body; see server/src/serve.rs for why).
    let many: String = (0..2_000).map(|i| format!("X-Filler-{i}: {}\r\n", "v".repeat(80))).collect();
    let a = raw(&t, &get("/v2/users", &many), b"").await;
    assert_eq!(a.status, 431, "{:?}", String::from_utf8_lossy(&a.body));
    // Under a lower configured field limit, a head between it and hyper's is ours to refuse, in JSON.
    let strict = spawn_app_with(backend, |s| s.server.max_headers = 20).await;
    let some: String = (0..40).map(|i| format!("X-Filler-{i}: v\r\n")).collect();
    let a = raw(&strict, &get("/v2/users", &some), b"").await;
    assert_eq!(a.json_error(431)["code"], "headers_too_large");
    assert_eq!(a.header("connection"), Some("close"));
    let fine: String = (0..10).map(|i| format!("X-Filler-{i}: v\r\n")).collect();
    assert_eq!(raw(&strict, &get("/v2/users", &fine), b"").await.status, 200);
    strict.shutdown().await;
    // 200 kB in one field: the byte limit, in JSON.
    let big = format!("X-Big: {}\r\n", "v".repeat(200_000));
    assert_eq!(raw(&t, &get("/v2/users", &big), b"").await.json_error(431)["code"], "headers_too_large");
    // A 10 MB body, refused on its Content-Length before a byte of it is read.
    let head = format!(
        "POST /v2/roles HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        10 * 1024 * 1024
    );
    let a = raw(&t, &head, b"").await;
    assert_eq!(a.json_error(413)["code"], "payload_too_large");
    assert_eq!(a.header("connection"), Some("close"), "the server says it closes the connection");
    // A body over the limit without a Content-Length (chunked), on a route that reads raw bytes.
    let chunk = vec![b'x'; 300 * 1024];
    let head = format!(
        "POST /v2/gateway/services HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        chunk.len()
    );
    let mut body = chunk;
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let a = raw(&t, &head, &body).await;
    assert_eq!(a.json_error(413)["code"], "payload_too_large");
    assert_eq!(a.header("connection"), Some("close"));
    // The server still serves.
    assert!(t.admin.health().await.is_ok());
}

async fn framework_errors_are_json(backend: Backend) {
    let t = spawn_app(backend).await;
    // A path segment that is not UTF-8 (axum's own "Invalid URL" rejection).
    let e = raw(&t, &get("/v2/users/%FF%FE", ""), b"").await.json_error(400);
    assert!(e["message"].as_str().unwrap().contains("Invalid URL"), "{e}");
    assert_eq!(raw(&t, &get("/v2/nothing-here", ""), b"").await.json_error(404)["code"], "not_found");
    let a = raw(&t, "PATCH /v2/roles HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", b"").await;
    assert_eq!(a.json_error(405)["code"], "method_not_allowed");
    let post = |ct: &str, body: &str| {
        format!(
            "POST /v2/roles HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Type: {ct}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let e = raw(&t, &post("text/plain", "name=r"), b"").await.json_error(415);
    assert_eq!(e["code"], "unsupported_media_type");
    let e = raw(&t, &post("application/json", r#"{"name": "r", "role_type": }"#), b"").await.json_error(400);
    assert_eq!((e["code"].as_str(), e["field"].as_str()), (Some("invalid_request"), Some("role_type")), "{e}");
    let e = raw(&t, &post("application/json", r#"{"name": "r""#), b"").await.json_error(400);
    assert!(e["message"].as_str().unwrap().starts_with("invalid JSON body"), "{e}");
    let e = raw(&t, &post("application/json", r#"["r", "assumable"]"#), b"").await.json_error(400);
    assert_eq!(e["field"], "body", "{e}");
    // The gateway routes read raw bytes and check the type themselves.
    let gw =
        "POST /v2/gateway/services HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {K}\r\nContent-Type: text/plain\r\n\
              Content-Length: 2\r\n\r\n{}"
            .replace("{K}", ADMIN_KEY);
    raw(&t, &gw, b"").await.json_error(415);
    let e = raw(&t, "GET /v2/users HTTP/1.1\r\nHost: t\r\n\r\n", b"").await.json_error(401);
    assert_eq!(e["code"], "unauthorized");
}

tessera_testkit::both_backends!(oversized_requests_get_json_answers, framework_errors_are_json);
