//! `cargo xtask bench [--quick | --smoke]`: builds release binaries (debug ones for `--smoke`), starts Tessera and the comparison
//! servers in the same run, drives load from a separate process, and prints one table of
//! absolute figures and ratios (ratios hold on a noisy machine; absolute figures do not).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod transport;

const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef0123456789";

struct Settings {
    duration: f64,
    users: u64,
    query_sessions: u64,
    cached_sessions: u64,
}

pub(crate) struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr().map(|a| a.port()).unwrap_or(0)).unwrap_or(0)
}

fn wait_port(port: u16) -> Result<(), String> {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("nothing listens on {port} after 30 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// How much the run measures: `Full` and `Quick` time release binaries; `Smoke` (what CI
/// runs) drives every row with tiny loads against the debug binaries the tests already built,
/// to prove the benchmark still runs end to end without a second, optimised build.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Full,
    Quick,
    Smoke,
}

static PROFILE_DIR: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// A binary of this run's profile (`target/release`, or `target/debug` for `--smoke`).
fn release_bin(name: &str) -> PathBuf {
    let dir = PROFILE_DIR.get().copied().unwrap_or("release");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).join("target"));
    target.join(dir).join(name)
}

fn serve(database: &str, port: u16) -> Result<Proc, String> {
    serve_with_gateway(database, port, None)
}

fn serve_with_gateway(database: &str, port: u16, gateway: Option<u16>) -> Result<Proc, String> {
    serve_with(database, port, gateway, &[])
}

fn serve_with(database: &str, port: u16, gateway: Option<u16>, extra: &[&str]) -> Result<Proc, String> {
    serve_logged(database, port, gateway, extra, None)
}

/// A server; with `log`, at a production node's default log level (`info`: the access log
/// is on), its log written to that file as a pipe to journald or a file would take it.
fn serve_logged(
    database: &str,
    port: u16,
    gateway: Option<u16>,
    extra: &[&str],
    log: Option<&Path>,
) -> Result<Proc, String> {
    let gw = gateway.map(|p| format!("127.0.0.1:{p}")).unwrap_or_else(|| "off".into());
    let mut cmd = Command::new(release_bin("tessera"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", database, "--gateway-listen", &gw])
        .args(extra)
        .env("TESSERA_BOOTSTRAP_API_KEY", ADMIN_KEY)
        .env("TESSERA_LOG", if log.is_some() { "info" } else { "warn" })
        // The forward-auth row asks as nginx's `auth_request` would, from 127.0.0.1.
        .env("TESSERA_TRUSTED_PROXIES", "127.0.0.1")
        .stdout(Stdio::null());
    if let Some(path) = log {
        cmd.stderr(std::fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?);
    }
    let child = cmd.spawn().map_err(|e| format!("cannot start tessera: {e}"))?;
    wait_port(port)?;
    wait_ready(port)?;
    Ok(Proc(child))
}

/// Waits until the server answers the administrator's key: it listens before its store is
/// open and bootstrapped, and a server stopped in between leaves no administrator behind.
fn wait_ready(port: u16) -> Result<(), String> {
    use std::io::{Read, Write};
    let start = Instant::now();
    loop {
        let answered = std::net::TcpStream::connect(("127.0.0.1", port)).ok().and_then(|mut s| {
            let req = format!(
                "GET /v2/auth/check?action=iam.user.Read HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                 Authorization: Bearer {ADMIN_KEY}\r\nConnection: close\r\n\r\n"
            );
            s.write_all(req.as_bytes()).ok()?;
            let mut head = [0u8; 12];
            s.read_exact(&mut head).ok()?;
            Some(head.ends_with(b" 200"))
        });
        if answered == Some(true) {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("the server on {port} does not accept the administrator's key after 60 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn bench(args: &[&str]) -> Result<Value, String> {
    let out = Command::new(release_bin("tessera-bench"))
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("tessera-bench {} failed", args.first().unwrap_or(&"")));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("null")).map_err(|e| format!("bad output {text}: {e}"))
}

fn load(url: &str, extra: &[&str], s: &Settings) -> Result<Value, String> {
    let d = s.duration.to_string();
    let mut args = vec!["load", "--url", url, "--duration", &d];
    args.extend_from_slice(extra);
    bench(&args)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// nginx as a plain reverse proxy to the upstream, when nginx is installed; one worker, as in
/// the reference measurements.
fn nginx_proxy(upstream_port: u16, work: &Path) -> Option<(Proc, u16)> {
    nginx(work, "nginx", upstream_port, |port| {
        format!(
            "server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://up; proxy_http_version 1.1; \
             proxy_set_header Connection \"\"; }} }}"
        )
    })
}

/// Starts nginx (when installed) from `work/<name>/nginx.conf`: one worker, no access log, an
/// upstream block `up` (keep-alive) on 127.0.0.1:`upstream_port`, and the `server` block(s)
/// that `server(port)` writes for a free port; answers the process and that port. The rows
/// that compare against nginx (plain, TLS, WebSocket) differ only in their server block.
pub(crate) fn nginx(
    work: &Path,
    name: &str,
    upstream_port: u16,
    server: impl Fn(u16) -> String,
) -> Option<(Proc, u16)> {
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| Path::new(p).exists())?;
    let port = free_port();
    let dir = work.join(name);
    std::fs::create_dir_all(dir.join("logs")).ok()?;
    let conf = format!(
        "worker_processes 1; daemon off; error_log {dir}/logs/error.log; pid {dir}/nginx.pid;\n\
         events {{ worker_connections 1024; }}\n\
         http {{ access_log off; upstream up {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}\n{server}\n}}\n",
        dir = dir.display(),
        server = server(port),
    );
    std::fs::write(dir.join("nginx.conf"), conf).ok()?;
    let child = Command::new(bin)
        .args(["-p", &dir.display().to_string(), "-c", &dir.join("nginx.conf").display().to_string()])
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_port(port).ok()?;
    Some((Proc(child), port))
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Alternating loads: `a`, `b`, `a`, `b`, … `pairs` times.
struct Paired {
    /// The median of the pairs' `b ÷ a` rate ratios.
    ratio: f64,
    /// The runs whose rates are the medians of `a`'s and of `b`'s.
    a: Value,
    b: Value,
    a_rates: Vec<f64>,
}

fn paired(
    pairs: usize,
    mut a: impl FnMut() -> Result<Value, String>,
    mut b: impl FnMut() -> Result<Value, String>,
) -> Result<Paired, String> {
    let (mut a_runs, mut b_runs, mut ratios) = (vec![], vec![], vec![]);
    for _ in 0..pairs.max(1) {
        let (x, y) = (a()?, b()?);
        ratios.push(f(&y, "rps") / f(&x, "rps").max(1.0));
        a_runs.push(x);
        b_runs.push(y);
    }
    let middle = |runs: &mut Vec<Value>| {
        runs.sort_by(|x, y| f(x, "rps").total_cmp(&f(y, "rps")));
        runs.swap_remove(runs.len() / 2)
    };
    let a_rates = a_runs.iter().map(|r| f(r, "rps")).collect();
    Ok(Paired { ratio: median(&mut ratios), a: middle(&mut a_runs), b: middle(&mut b_runs), a_rates })
}

fn stop(mut p: Proc) {
    let _ = Command::new("kill").args(["-TERM", &p.0.id().to_string()]).status();
    let _ = p.0.wait();
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(0.0)
}

/// The last column for a row whose measure should be at least `target`: the target, and how
/// far the run is from it, in words (a short `--quick` run on a shared machine is often
/// below a target set for the full run; that is information, not a failure).
fn at_least(measured: f64, target: f64, shown: &str) -> String {
    let ratio = measured / target.max(f64::MIN_POSITIVE);
    if ratio >= 1.0 {
        format!("{shown}: met ({ratio:.2}× the target)")
    } else {
        format!("{shown}: {:.0} % of the target", ratio * 100.0)
    }
}

/// The last column for a row whose measure should be at most `limit`.
fn at_most(measured: f64, limit: f64, shown: &str) -> String {
    let pct = measured / limit.max(f64::MIN_POSITIVE) * 100.0;
    if pct <= 100.0 {
        format!("{shown}: met (at {pct:.0} % of the limit)")
    } else {
        format!("{shown}: at {pct:.0} % of the limit")
    }
}

/// The last column for latencies that should stay within limits (p50 and p99, ms).
fn within(p50_ms: f64, p99_ms: f64, p50_limit: f64, p99_limit: f64) -> String {
    let pct = |v: f64, limit: f64| v / limit * 100.0;
    let verdict = if p50_ms <= p50_limit && p99_ms <= p99_limit { "met" } else { "over the limit" };
    format!(
        "p50 ≤ {p50_limit} ms, p99 ≤ {p99_limit} ms: {verdict} (p50 at {:.0} %, p99 at {:.0} % of its limit)",
        pct(p50_ms, p50_limit),
        pct(p99_ms, p99_limit)
    )
}

/// The last column for a row measured for context, with no target of its own.
const NO_TARGET: &str = "no target (context)";

pub fn run(mode: Mode) -> Result<(), String> {
    let s = match mode {
        Mode::Full => {
            Settings { duration: 10.0, users: 100_000, query_sessions: 1_000_000, cached_sessions: 1_000_000 }
        }
        Mode::Quick => Settings { duration: 2.0, users: 20_000, query_sessions: 100_000, cached_sessions: 50_000 },
        Mode::Smoke => Settings { duration: 0.5, users: 1_000, query_sessions: 2_000, cached_sessions: 1_000 },
    };
    if mode == Mode::Smoke {
        let _ = PROFILE_DIR.set("debug");
        crate::run("cargo", &["build", "-p", "tessera", "-p", "tessera-bench"])?;
    } else {
        let _ = PROFILE_DIR.set("release");
        crate::run("cargo", &["build", "--release", "-p", "tessera", "-p", "tessera-bench"])?;
    }
    if let Err(e) = crate::tools::ensure_nginx() {
        eprintln!("xtask: cannot install nginx ({e}); its comparison rows will say so");
    }
    let work = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).join("target/bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let mut rows: Vec<(String, String, String)> = vec![];

    // (1) an authenticated API call against bare axum.
    let hello_port = free_port();
    let hello = Proc(
        Command::new(release_bin("tessera-bench"))
            .args(["hello", "--listen", &format!("127.0.0.1:{hello_port}")])
            .spawn()
            .map_err(|e| e.to_string())?,
    );
    wait_port(hello_port)?;
    let db = work.join("api.db");
    let port = free_port();
    let gw_port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let server = serve_with_gateway(&format!("sqlite://{}", db.display()), port, Some(gw_port))?;
    let idle_rss = rss_kib(server.0.id());
    let ids = bench(&["setup", "--url", &url, "--admin-key", ADMIN_KEY])?;
    let user_key = ids["user_key"].as_str().unwrap_or_default().to_owned();
    let auth = format!("Authorization: Bearer {user_key}");
    let login = format!("Authorization: Bearer {}", ids["login_token"].as_str().unwrap_or_default());
    let admin = format!("Authorization: Bearer {ADMIN_KEY}");
    let introspect_body = format!("token={}", ids["login_token"].as_str().unwrap_or_default());
    let hello_url = format!("http://127.0.0.1:{hello_port}/");
    let who_is_this: [(&str, String, Vec<&str>); 4] = [
        (
            "1a. who am I (GET /v2/sessions/current, login-session token)",
            format!("{url}/v2/sessions/current"),
            vec!["--header", &login],
        ),
        (
            "1b. token-authenticated call (GET /v2/auth/check, API key)",
            format!("{url}/v2/auth/check?action=iam.user.Read"),
            vec!["--header", &auth],
        ),
        (
            "1c. forward-auth (GET /v2/auth/forward, login-session token)",
            format!("{url}/v2/auth/forward"),
            vec!["--header", &login],
        ),
        (
            "1d. introspection (POST /v2/oauth2/introspect of a login-session token)",
            format!("{url}/v2/oauth2/introspect"),
            vec![
                "--method",
                "POST",
                "--header",
                &admin,
                "--header",
                "Content-Type: application/x-www-form-urlencoded",
                "--body",
                &introspect_body,
            ],
        ),
    ];
    // Each row against the baseline in alternating pairs (baseline, row, baseline, row, …),
    // the median of the pairs' ratios: a drift of the machine falls on both sides of a pair,
    // and one disturbed pair does not decide the row.
    let pairs = if mode == Mode::Smoke { 1 } else { 5 };
    let half = Settings { duration: s.duration / 2.0, ..s };
    let mut measured = vec![];
    let mut bare_runs = vec![];
    for (label, target, extra) in &who_is_this {
        let mut args = vec!["--connections", "32"];
        args.extend_from_slice(extra);
        let p = paired(pairs, || load(&hello_url, &["--connections", "32"], &half), || load(target, &args, &half))?;
        bare_runs.extend(p.a_rates.iter().copied());
        measured.push((label, p));
    }
    let bare_rps = median(&mut bare_runs);
    let bare = serde_json::json!({"rps": bare_rps});
    for (label, p) in &measured {
        let r = &p.b;
        rows.push((
            format!("{label} vs bare axum hello (median of {pairs} A/B pairs)"),
            format!(
                "{:.0} req/s (p50 {} µs, p99 {} µs, errors {}) vs {:.0} req/s",
                f(r, "rps"),
                r["p50_us"],
                r["p99_us"],
                r["errors"],
                f(&p.a, "rps"),
            ),
            at_least(p.ratio, 0.85, "ratio ≥ 0.85"),
        ));
    }
    let api = &measured[1].1.b;

    // (6) sign-ins (Argon2id at the configured parameters) while the token path is loaded:
    // both loads at once, the token path's rate against its own rate alone (row 1b).
    let sign_in_body = serde_json::json!({"email": ids["email"], "password": ids["password"]}).to_string();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let (sign_ins, token_path) = std::thread::scope(|scope| {
        let sign_ins = scope.spawn(|| {
            load(
                &format!("{url}/v2/sessions"),
                &["--method", "POST", "--connections", "2", "--expect", "201", "--body", &sign_in_body],
                &s,
            )
        });
        let token_path =
            load(&format!("{url}/v2/auth/check?action=iam.user.Read"), &["--connections", "32", "--header", &auth], &s);
        (sign_ins.join().unwrap_or_else(|_| Err("the sign-in load panicked".into())), token_path)
    });
    let (sign_ins, token_path) = (sign_ins?, token_path?);
    let kept = f(&token_path, "rps") / f(api, "rps").max(1.0);
    rows.push((
        format!("6. sign-ins/s per core (2 connections signing in, {cores} cores) while row 1b's load runs"),
        format!(
            "{:.1} sign-ins/s per core ({:.0}/s, p50 {} µs, errors {}); the token path kept {:.0} req/s = {kept:.2} of its rate alone",
            f(&sign_ins, "rps") / cores as f64,
            f(&sign_ins, "rps"),
            sign_ins["p50_us"],
            sign_ins["errors"],
            f(&token_path, "rps"),
        ),
        format!(
            "{}; token path ≥ 0.7 of its rate: {}",
            "report (Keycloak: 15/s per vCPU)",
            if kept >= 0.7 { "met".to_owned() } else { format!("{:.0} % of the target", kept / 0.7 * 100.0) }
        ),
    ));

    // (4) the gateway: a valid cookie, proxied to the static hello upstream.
    let hello_url = format!("http://127.0.0.1:{hello_port}");
    let gw_url = format!("http://127.0.0.1:{gw_port}");
    let cookie = bench(&[
        "gateway-setup",
        "--url",
        &url,
        "--admin-key",
        ADMIN_KEY,
        "--upstream",
        &hello_url,
        "--gateway",
        &gw_url,
    ])?;
    let cookie_header = format!("Cookie: {}", cookie["cookie"].as_str().unwrap_or_default());
    let gw_args = ["--connections", "32", "--header", &cookie_header, "--expect", "200"];
    let gw = load(&format!("{gw_url}/"), &gw_args, &s)?;
    rows.push((
        "4a. gateway, valid cookie, proxied to a static upstream vs the upstream direct".into(),
        format!(
            "{:.0} req/s (p50 {} µs, p99 {} µs, errors {}) vs {:.0} req/s",
            f(&gw, "rps"),
            gw["p50_us"],
            gw["p99_us"],
            gw["errors"],
            f(&bare, "rps")
        ),
        format!("{NO_TARGET}: ratio {:.2}", f(&gw, "rps") / f(&bare, "rps").max(1.0)),
    ));
    match nginx_proxy(hello_port, &work) {
        Some(nginx) => {
            let p = paired(
                pairs,
                || load(&format!("http://127.0.0.1:{}/", nginx.1), &["--connections", "32"], &half),
                || load(&format!("{gw_url}/"), &gw_args, &half),
            )?;
            rows.push((
                format!(
                    "4b. gateway vs nginx proxy_pass (no session) to the same upstream (median of {pairs} A/B pairs)"
                ),
                format!("{:.0} req/s vs nginx {:.0} req/s", f(&p.b, "rps"), f(&p.a, "rps")),
                at_least(p.ratio, 0.85, "ratio ≥ 0.85"),
            ));
        }
        None => rows.push((
            "4b. gateway vs nginx".into(),
            "not measured: nginx is not installed".into(),
            "ratio ≥ 0.85: not measured".into(),
        )),
    }
    drop(hello);

    // (2) durable assume-role creates.
    let body = serde_json::json!({"user_id": ids["user_id"], "role_id": ids["role_id"], "session_name": "bench", "duration": 3600}).to_string();
    let assume_args =
        ["--method", "POST", "--connections", "64", "--expect", "201", "--header", &auth, "--body", &body];
    let sqlite_assume = load(&format!("{url}/v2/assumed-roles/assume"), &assume_args, &s)?;
    rows.push((
        "2a. durable assume-role creates, SQLite (64 concurrent)".into(),
        format!(
            "{:.0} /s (p50 {} µs, p99 {} µs, errors {})",
            f(&sqlite_assume, "rps"),
            sqlite_assume["p50_us"],
            sqlite_assume["p99_us"],
            sqlite_assume["errors"]
        ),
        at_least(f(&sqlite_assume, "rps"), 20_000.0, "≥ 20 000/s"),
    ));
    stop(server);

    match std::env::var("TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) {
        Some(admin_url) => {
            let name = format!("tessera_bench_{}", std::process::id());
            let ok = Command::new("psql")
                .args([admin_url.as_str(), "-qc", &format!("CREATE DATABASE {name}")])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                let base = &admin_url[..admin_url.rfind('/').unwrap_or(admin_url.len())];
                let pg_port = free_port();
                let pg = serve(&format!("{base}/{name}"), pg_port)?;
                let pg_url = format!("http://127.0.0.1:{pg_port}");
                let pg_ids = bench(&["setup", "--url", &pg_url, "--admin-key", ADMIN_KEY])?;
                let pg_auth = format!("Authorization: Bearer {}", pg_ids["user_key"].as_str().unwrap_or_default());
                let pg_body =
                    serde_json::json!({"user_id": pg_ids["user_id"], "role_id": pg_ids["role_id"], "session_name": "bench", "duration": 3600}).to_string();
                let r = load(
                    &format!("{pg_url}/v2/assumed-roles/assume"),
                    &[
                        "--method",
                        "POST",
                        "--connections",
                        "64",
                        "--expect",
                        "201",
                        "--header",
                        &pg_auth,
                        "--body",
                        &pg_body,
                    ],
                    &s,
                )?;
                rows.push((
                    "2b. durable assume-role creates, PostgreSQL (64 concurrent)".into(),
                    format!(
                        "{:.0} /s (p50 {} µs, p99 {} µs, errors {})",
                        f(&r, "rps"),
                        r["p50_us"],
                        r["p99_us"],
                        r["errors"]
                    ),
                    at_least(f(&r, "rps"), 8_000.0, "≥ 8 000/s"),
                ));
                stop(pg);
                let _ = Command::new("psql")
                    .args([admin_url.as_str(), "-qc", &format!("DROP DATABASE {name} WITH (FORCE)")])
                    .status();
            }
        }
        None => rows.push((
            "2b. PostgreSQL".into(),
            "not measured: TEST_POSTGRES_URL is not set".into(),
            "≥ 8 000/s: not measured".into(),
        )),
    }

    // (3) the session query over many stored sessions.
    let seed_start = Instant::now();
    let n = s.query_sessions.to_string();
    bench(&["seed", "--database", &db.display().to_string(), "--admin-key", ADMIN_KEY, "--count", &n]).ok();
    let seed_secs = seed_start.elapsed().as_secs_f64();
    let u = s.users.to_string();
    bench(&["seed-users", "--database", &db.display().to_string(), "--admin-key", ADMIN_KEY, "--count", &u])?;
    let server = serve(&format!("sqlite://{}", db.display()), port)?;
    let admin = format!("Authorization: Bearer {ADMIN_KEY}");
    for (label, q) in [
        (
            "3a. $filter on email, $top=100",
            "$filter=user_id_or_email%20eq%20'user42@bench.example'%20and%20status%20eq%20'Active'&$top=100",
        ),
        (
            "3b. $filter on status, newest first, $top=100, no count",
            "$filter=status%20eq%20'Active'&$orderby=create_time%20desc&$top=100&$inlinecount=none",
        ),
        (
            "3c. as 3b with Count of all matches (Intersight's default)",
            "$filter=status%20eq%20'Active'&$orderby=create_time%20desc&$top=100",
        ),
    ] {
        let r = load(&format!("{url}/v2/iam/sessions?{q}"), &["--connections", "1", "--header", &admin], &s)?;
        rows.push((
            format!("{label}, over {} sessions", s.query_sessions),
            format!(
                "p50 {:.2} ms, p99 {:.2} ms ({:.0} req/s)",
                f(&r, "p50_us") / 1000.0,
                f(&r, "p99_us") / 1000.0,
                f(&r, "rps")
            ),
            within(f(&r, "p50_us") / 1000.0, f(&r, "p99_us") / 1000.0, 5.0, 20.0),
        ));
    }
    // (7) the users list, first page of 100, one connection.
    let r = load(&format!("{url}/v2/users?per_page=100"), &["--connections", "1", "--header", &admin], &s)?;
    rows.push((
        format!("7. GET /v2/users?per_page=100 over {} users", s.users),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms ({:.0} req/s, errors {})",
            f(&r, "p50_us") / 1000.0,
            f(&r, "p99_us") / 1000.0,
            f(&r, "rps"),
            r["errors"]
        ),
        within(f(&r, "p50_us") / 1000.0, f(&r, "p99_us") / 1000.0, 2.0, 10.0),
    ));
    stop(server);

    // (5) memory: idle, and with many cached sessions.
    let mem_db = work.join("mem.db");
    let tokens = work.join("tokens.txt");
    {
        let p = serve(&format!("sqlite://{}", mem_db.display()), port)?;
        stop(p);
    }
    let m = s.cached_sessions.to_string();
    bench(&[
        "seed",
        "--database",
        &mem_db.display().to_string(),
        "--admin-key",
        ADMIN_KEY,
        "--count",
        &m,
        "--tokens-out",
        &tokens.display().to_string(),
    ])?;
    let server = serve(&format!("sqlite://{}", mem_db.display()), port)?;
    let before = rss_kib(server.0.id());
    let fill = bench(&[
        "load",
        "--url",
        &format!("{url}/v2/auth/check?action=iam.user.Read"),
        "--connections",
        "32",
        "--duration",
        "600",
        "--max-requests",
        &m,
        "--tokens-file",
        &tokens.display().to_string(),
    ])?;
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(server.0.id());
    stop(server);
    rows.push((
        "5a. peak RSS idle (fresh server)".into(),
        format!("{:.1} MB", idle_rss as f64 / 1024.0),
        at_most(idle_rss as f64 / 1024.0, 30.0, "≤ 30 MB"),
    ));
    rows.push((
        format!("5b. RSS with {} cached sessions ({} authenticated calls)", s.cached_sessions, fill["requests"]),
        format!(
            "{:.1} MB ({} B per cached session)",
            after as f64 / 1024.0,
            (after.saturating_sub(before) * 1024) / s.cached_sessions.max(1)
        ),
        at_most(
            ((after.saturating_sub(before) * 1024) / s.cached_sessions.max(1)) as f64,
            512.0,
            "≤ 512 B per session",
        ),
    ));
    rows.push((
        "(seeding)".into(),
        format!("{} sessions written in {:.1} s", s.query_sessions, seed_secs),
        NO_TARGET.into(),
    ));

    // (9) the cost of metrics, and (10) of the access log, on the token path: row 1b's load
    // against a node with the feature and one without, set up the same way, in alternating
    // pairs; the median of the pairs' ratios, so a drift of the machine falls on both sides
    // and one disturbed pair does not decide the row.
    let node = |name: &str, extra: &[&str], log: Option<&Path>| -> Result<(Proc, String, String), String> {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let db = format!("sqlite://{}", work.join(format!("{name}.db")).display());
        let server = serve_logged(&db, port, None, extra, log)?;
        let ids = bench(&["setup", "--url", &url, "--admin-key", ADMIN_KEY])?;
        let auth = format!("Authorization: Bearer {}", ids["user_key"].as_str().unwrap_or_default());
        Ok((server, url, auth))
    };
    let check = |base: &str, header: &str| {
        load(&format!("{base}/v2/auth/check?action=iam.user.Read"), &["--connections", "32", "--header", header], &s)
            .map(|r| f(&r, "rps"))
    };
    // The pairs' median ratio of `with` to `without`, and the median rates.
    let ab = |without: &(Proc, String, String), with: &(Proc, String, String)| -> Result<[f64; 3], String> {
        let (mut offs, mut ons, mut ratios) = (vec![], vec![], vec![]);
        for _ in 0..pairs {
            let off = check(&without.1, &without.2)?;
            let on = check(&with.1, &with.2)?;
            ratios.push(on / off.max(1.0));
            offs.push(off);
            ons.push(on);
        }
        Ok([median(&mut ratios), median(&mut ons), median(&mut offs)])
    };
    let plain = node("plain", &[], None)?;
    let metrics_port = free_port();
    let metered = node("metrics", &["--metrics-listen", &format!("127.0.0.1:{metrics_port}")], None)?;
    let [ratio, on, off] = ab(&plain, &metered)?;
    stop(metered.0);
    let slower = (1.0 - ratio) * 100.0;
    rows.push((
        format!("9. row 1b with --metrics-listen vs without (median of {pairs} A/B pairs)"),
        format!("{on:.0} vs {off:.0} req/s: {slower:.1} % slower"),
        at_most(slower, 3.0, "≤ 3 % slower"),
    ));
    let log_file = work.join("access.log");
    let logged = node("logged", &[], Some(&log_file))?;
    let [ratio, on, off] = ab(&plain, &logged)?;
    stop(logged.0);
    stop(plain.0);
    let lines = std::fs::read_to_string(&log_file).map(|t| t.lines().count()).unwrap_or(0);
    rows.push((
        format!("10. row 1b with the access log on (log level info, to a file) vs off (median of {pairs} A/B pairs)"),
        format!("{on:.0} vs {off:.0} req/s: {:.1} % slower ({lines} log lines written)", (1.0 - ratio) * 100.0),
        format!("{NO_TARGET}: a production node's default"),
    ));

    // (8) TLS and WebSockets through the gateway.
    rows.extend(transport::rows(&work, &s));

    let mut table = String::from("| measure | result | target: how far |\n|---|---|---|\n");
    for (a, b, c) in &rows {
        table.push_str(&format!("| {a} | {b} | {c} |\n"));
    }
    let met = rows.iter().filter(|r| r.2.contains(": met")).count();
    let with_target = rows.iter().filter(|r| !r.2.starts_with(NO_TARGET) && !r.2.ends_with("not measured")).count();
    let note = match mode {
        Mode::Quick => {
            "--quick: each load runs 2 s on whatever machine this is; \
             no threshold is checked, and the targets are for the full run on the machine in BENCHMARKS.md"
        }
        Mode::Smoke => {
            "--smoke: debug binaries and half-second loads, to prove every row still runs; \
             these figures mean nothing"
        }
        Mode::Full => "no threshold is checked; the targets are for the machine in BENCHMARKS.md",
    };
    println!("\n{table}\n{met} of the {with_target} measured rows with a target met it ({note}).");
    let _ = std::fs::write(work.join("latest.md"), &table);
    eprintln!("(also written to {})", work.join("latest.md").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_column_says_the_target_and_how_far_in_words() {
        assert_eq!(at_least(24_000.0, 20_000.0, "≥ 20 000/s"), "≥ 20 000/s: met (1.20× the target)");
        assert_eq!(at_least(5_000.0, 20_000.0, "≥ 20 000/s"), "≥ 20 000/s: 25 % of the target");
        assert_eq!(at_most(12.0, 30.0, "≤ 30 MB"), "≤ 30 MB: met (at 40 % of the limit)");
        assert_eq!(at_most(600.0, 512.0, "≤ 512 B"), "≤ 512 B: at 117 % of the limit");
        assert_eq!(
            within(1.0, 30.0, 5.0, 20.0),
            "p50 ≤ 5 ms, p99 ≤ 20 ms: over the limit (p50 at 20 %, p99 at 150 % of its limit)"
        );
        for text in [at_least(1.0, 2.0, "x"), at_most(3.0, 2.0, "x"), within(9.0, 9.0, 5.0, 20.0)] {
            assert!(!text.to_lowercase().contains("fail"), "{text}");
        }
    }

    #[test]
    fn the_median_is_the_middle_value_whatever_the_order() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [0.9, 1.1, 5.0, 0.95, 1.0]), 1.0);
        assert_eq!(median(&mut [4.0, 1.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
