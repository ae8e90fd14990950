//! Rows 8 of `cargo xtask bench`: the gateway terminating TLS (kept-alive connections, a
//! valid session cookie) against nginx terminating TLS with `proxy_pass` to the same
//! upstream, and a WebSocket echo round trip through the gateway against the upstream direct and
//! against nginx's WebSocket proxy to the same upstream (the same extra hop).
//! One upstream (`tessera-bench hello-ws`) answers both: "hello" on GET, an echo on upgrade.

use std::path::Path;
use std::process::{Command, Stdio};

use super::{ADMIN_KEY, Proc, Settings, at_least, at_most, bench, f, free_port, nginx, release_bin, stop, wait_port};

type Row = (String, String, String);

/// The rows; a failure to measure is a row saying so, never a failed benchmark run.
pub(super) fn rows(work: &Path, s: &Settings) -> Vec<Row> {
    match measure(work, s) {
        Ok(rows) => rows,
        Err(e) => vec![("8. transport (TLS, WebSocket)".into(), format!("not measured: {e}"), "not measured".into())],
    }
}

fn tessera(db: &str, api: u16, gw: u16, tls: Option<&Path>) -> Result<Proc, String> {
    let mut cmd = Command::new(release_bin("tessera"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{api}"), "--database", db])
        .args(["--gateway-listen", &format!("127.0.0.1:{gw}")])
        .env("TESSERA_BOOTSTRAP_API_KEY", ADMIN_KEY)
        .env("TESSERA_LOG", "warn")
        .stdout(Stdio::null());
    if let Some(dir) = tls {
        cmd.arg("--gateway-tls-cert").arg(dir.join("cert.pem")).arg("--gateway-tls-key").arg(dir.join("key.pem"));
    }
    let child = cmd.spawn().map_err(|e| format!("cannot start tessera: {e}"))?;
    let p = Proc(child);
    wait_port(api)?;
    super::wait_ready(api)?;
    wait_port(gw)?;
    Ok(p)
}

fn measure(work: &Path, s: &Settings) -> Result<Vec<Row>, String> {
    let dir = work.join("transport");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let dir_s = dir.display().to_string();
    bench(&["make-certs", "--dir", &dir_s])?;
    let up_port = free_port();
    let upstream = Command::new(release_bin("tessera-bench"))
        .args(["hello-ws", "--listen", &format!("127.0.0.1:{up_port}")])
        .spawn()
        .map_err(|e| format!("cannot start the upstream: {e}"))?;
    let _upstream = Proc(upstream);
    wait_port(up_port)?;
    let db = format!("sqlite://{}", dir.join("transport.db").display());
    let (api, gw) = (free_port(), free_port());
    let mut rows = vec![];

    // The WebSocket row, on a plain gateway: configure, sign in, time round trips.
    let node = tessera(&db, api, gw, None)?;
    let cookie = bench(&[
        "gateway-setup",
        "--url",
        &format!("http://127.0.0.1:{api}"),
        "--admin-key",
        ADMIN_KEY,
        "--upstream",
        &format!("http://127.0.0.1:{up_port}"),
        "--gateway",
        &format!("http://127.0.0.1:{gw}"),
    ])?;
    let cookie = format!("Cookie: {}", cookie["cookie"].as_str().unwrap_or_default());
    let messages = if s.duration < 5.0 { "500" } else { "5000" };
    let direct = bench(&["ws-rtt", "--url", &format!("ws://127.0.0.1:{up_port}/"), "--messages", messages])?;
    let through =
        bench(&["ws-rtt", "--url", &format!("ws://127.0.0.1:{gw}/"), "--header", &cookie, "--messages", messages])?;
    let ratio = f(&through, "p50_us") / f(&direct, "p50_us").max(1.0);
    // Any proxy adds a second loopback hop, so the same round trip through nginx's own
    // WebSocket proxying (Upgrade and Connection passed on) to the same upstream says how
    // much of the ratio to direct is the hop and how much is the gateway.
    let via_nginx = nginx(&dir, "nginx-ws", up_port, |port| {
        format!(
            "server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://up; proxy_http_version 1.1; \
             proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\"; \
             proxy_read_timeout 3600s; }} }}"
        )
    })
    .map(|n| {
        let r = bench(&["ws-rtt", "--url", &format!("ws://127.0.0.1:{}/", n.1), "--messages", messages]);
        stop(n.0);
        r
    })
    .transpose()?;
    let (nginx_text, nginx_ratio) = match &via_nginx {
        Some(n) => (
            format!("; nginx WebSocket proxy p50 {} µs, p99 {} µs", n["p50_us"], n["p99_us"]),
            format!("; ÷ nginx-WS {:.2}", f(&through, "p50_us") / f(n, "p50_us").max(1.0)),
        ),
        None => ("; nginx not installed".into(), "; ÷ nginx-WS not measured".into()),
    };
    rows.push((
        "8b. WebSocket echo round trip (64 B, one at a time) through the gateway vs direct (and vs nginx's WebSocket proxy)"
            .into(),
        format!(
            "p50 {} µs, p99 {} µs vs direct p50 {} µs, p99 {} µs{nginx_text} ({} messages)",
            through["p50_us"], through["p99_us"], direct["p50_us"], direct["p99_us"], messages
        ),
        format!("{}{nginx_ratio}", at_most(ratio, 1.2, "p50 ratio ≤ 1.2")),
    ));
    stop(node);

    // The TLS row: the same node and cookie (cookie storage: the session is in the cookie),
    // now terminating TLS; nginx terminating TLS with the same certificate.
    let node = tessera(&db, api, gw, Some(&dir))?;
    let ca = dir.join("ca.pem").display().to_string();
    let d = s.duration.to_string();
    let tls_load = |url: &str, extra: &[&str]| {
        let mut args = vec!["tls-load", "--url", url, "--ca", &ca, "--duration", &d, "--connections", "32"];
        args.extend_from_slice(extra);
        bench(&args)
    };
    let g = tls_load(&format!("https://127.0.0.1:{gw}/"), &["--header", &cookie])?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    match nginx(&dir, "nginx-tls", up_port, |port| {
        format!(
            "server {{ listen 127.0.0.1:{port} ssl; keepalive_requests 100000000; ssl_certificate {}; ssl_certificate_key {}; \
             location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}",
            cert.display(),
            key.display()
        )
    }) {
        Some(n) => {
            let r = tls_load(&format!("https://127.0.0.1:{}/", n.1), &[]);
            stop(n.0);
            let r = r?;
            rows.insert(
                0,
                (
                    "8a. gateway over TLS (keep-alive, valid cookie) vs nginx TLS proxy_pass, same upstream".into(),
                    format!(
                        "{:.0} req/s (p50 {} µs, p99 {} µs, errors {}) vs nginx {:.0} req/s (p50 {} µs, errors {})",
                        f(&g, "rps"),
                        g["p50_us"],
                        g["p99_us"],
                        g["errors"],
                        f(&r, "rps"),
                        r["p50_us"],
                        r["errors"]
                    ),
                    at_least(f(&g, "rps") / f(&r, "rps").max(1.0), 0.85, "ratio ≥ 0.85"),
                ),
            );
        }
        None => rows.insert(
            0,
            (
                "8a. gateway over TLS vs nginx TLS proxy_pass".into(),
                format!("gateway {:.0} req/s; nginx not installed", f(&g, "rps")),
                "ratio ≥ 0.85: not measured".into(),
            ),
        ),
    }
    stop(node);
    Ok(rows)
}
