//! `tessera-bench`: the pieces `cargo xtask bench` runs in separate processes.
//!
//! - `hello`: a bare axum server answering "hello", the baseline for the API's overhead.
//! - `load`: an HTTP/1.1 load generator (kept-alive connections, bounded by time and count)
//!   printing one JSON line of throughput and latency percentiles.
//! - `seed`: writes many login sessions straight into a stopped server's SQLite store.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rand::SeedableRng;
use tessera_domain::Timestamp;
use tessera_domain::ids::SessionId;
use tessera_domain::session::{Session, SessionKind, SessionStatus};
use tessera_domain::token::{TokenDigest, TokenKind, mint};
use tessera_store::{Credential, Store};
use tessera_store_sqlite::SqliteStore;

mod tls;

#[derive(Parser)]
#[command(name = "tessera-bench", about = "Benchmark tools for Tessera (see `cargo xtask bench`)")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The transport rows' tools (TLS, WebSockets): see tls.rs.
    #[command(flatten)]
    Transport(tls::Cmd),
    /// Serve "hello" on GET / with bare axum.
    Hello {
        #[arg(long)]
        listen: String,
    },
    /// Send requests and print {"requests","errors","rps","p50_us","p99_us",...} as JSON.
    Load {
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "GET")]
        method: String,
        /// `Name: value`; repeatable.
        #[arg(long = "header")]
        headers: Vec<String>,
        #[arg(long)]
        body: Option<String>,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Seconds.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Stop after this many requests in all.
        #[arg(long)]
        max_requests: Option<u64>,
        /// The status a successful answer has.
        #[arg(long, default_value_t = 200)]
        expect: u16,
        /// A file of bearer tokens, one per line, used in turn (each request one token).
        #[arg(long)]
        tokens_file: Option<PathBuf>,
    },
    /// Create a user allowed to assume a role (policy, role, trust, API key, password) through
    /// the API and sign it in; prints {"user_id","role_id","user_key","login_token","email",
    /// "password"}.
    Setup {
        #[arg(long)]
        url: String,
        #[arg(long)]
        admin_key: String,
    },
    /// Configure the gateway in front of --upstream (service, route `/`, session plugin with
    /// cookie storage), sign a user in through it, and print {"cookie": "session=..."}.
    GatewaySetup {
        #[arg(long)]
        url: String,
        #[arg(long)]
        admin_key: String,
        #[arg(long)]
        upstream: String,
        #[arg(long)]
        gateway: String,
    },
    /// Insert users into the organization of --admin-key in a SQLite database (server stopped).
    SeedUsers {
        #[arg(long)]
        database: PathBuf,
        #[arg(long)]
        admin_key: String,
        #[arg(long)]
        count: u64,
    },
    /// Insert login sessions for the user of --admin-key into a SQLite database (server stopped).
    Seed {
        #[arg(long)]
        database: PathBuf,
        #[arg(long)]
        admin_key: String,
        #[arg(long)]
        count: u64,
        /// Write the minted tokens here, one per line.
        #[arg(long)]
        tokens_out: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match args.cmd {
            Cmd::Transport(cmd) => tls::run(cmd).await,
            Cmd::Hello { listen } => hello(&listen).await,
            Cmd::Load { url, method, headers, body, connections, duration, max_requests, expect, tokens_file } => {
                load(LoadSpec { url, method, headers, body, connections, duration, max_requests, expect, tokens_file })
                    .await
            }
            Cmd::Seed { database, admin_key, count, tokens_out } => {
                seed(&database, &admin_key, count, tokens_out).await
            }
            Cmd::SeedUsers { database, admin_key, count } => seed_users(&database, &admin_key, count).await,
            Cmd::Setup { url, admin_key } => setup(&url, &admin_key).await,
            Cmd::GatewaySetup { url, admin_key, upstream, gateway } => {
                gateway_setup(&url, &admin_key, &upstream, &gateway).await
            }
        }
    })
}

async fn hello(listen: &str) -> anyhow::Result<()> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

struct LoadSpec {
    url: String,
    method: String,
    headers: Vec<String>,
    body: Option<String>,
    connections: usize,
    duration: f64,
    max_requests: Option<u64>,
    expect: u16,
    tokens_file: Option<PathBuf>,
}

async fn load(spec: LoadSpec) -> anyhow::Result<()> {
    let uri: hyper::Uri = spec.url.parse().context("--url")?;
    let host = uri.host().context("--url needs a host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    let method: hyper::Method = spec.method.parse().context("--method")?;
    let mut headers = vec![];
    for h in &spec.headers {
        let (k, v) = h.split_once(':').context("--header must be 'Name: value'")?;
        headers.push((
            hyper::header::HeaderName::from_bytes(k.trim().as_bytes())?,
            hyper::header::HeaderValue::from_str(v.trim())?,
        ));
    }
    let tokens: Arc<Vec<String>> = Arc::new(match &spec.tokens_file {
        Some(f) => std::fs::read_to_string(f)?.lines().map(str::to_owned).collect(),
        None => vec![],
    });
    let budget = spec.max_requests.unwrap_or(u64::MAX);
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs_f64(spec.duration);
    let started = Instant::now();
    let mut workers = vec![];
    for _ in 0..spec.connections.max(1) {
        let (host, path, method, headers, body) =
            (host.clone(), path.clone(), method.clone(), headers.clone(), spec.body.clone());
        let (issued, errors, stop, tokens) =
            (Arc::clone(&issued), Arc::clone(&errors), Arc::clone(&stop), Arc::clone(&tokens));
        let expect = spec.expect;
        workers.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
            let stream = match tokio::net::TcpStream::connect((host.as_str(), port)).await {
                Ok(s) => s,
                Err(_) => return latencies,
            };
            let _ = stream.set_nodelay(true);
            let Ok((mut sender, conn)) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await
            else {
                return latencies;
            };
            tokio::spawn(conn);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= budget {
                    break;
                }
                let mut req =
                    hyper::Request::builder().method(method.clone()).uri(path.as_str()).header("host", host.as_str());
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                if !tokens.is_empty() {
                    req = req.header("authorization", format!("Bearer {}", tokens[(n as usize) % tokens.len()]));
                }
                if body.is_some() && !headers.iter().any(|(k, _)| k == hyper::header::CONTENT_TYPE) {
                    req = req.header("content-type", "application/json");
                }
                let req = req.body(Full::new(Bytes::from(body.clone().unwrap_or_default()))).expect("request");
                let t = Instant::now();
                match sender.send_request(req).await {
                    Ok(res) => {
                        let ok = res.status().as_u16() == expect;
                        let _ = res.into_body().collect().await;
                        if ok {
                            latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            latencies
        }));
    }
    let mut all: Vec<u32> = vec![];
    for w in workers {
        all.extend(w.await?);
    }
    stop.store(true, Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| if all.is_empty() { 0 } else { all[((all.len() as f64 - 1.0) * p).round() as usize] };
    let out = serde_json::json!({
        "requests": all.len(),
        "errors": errors.load(Ordering::Relaxed),
        "seconds": secs,
        "rps": all.len() as f64 / secs,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
    });
    println!("{out}");
    Ok(())
}

async fn seed_users(database: &std::path::Path, admin_key: &str, count: u64) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(database)?);
    let Some(Credential::ApiKey { user: admin, .. }) =
        store.find_credential(TokenKind::ApiKey, &TokenDigest::of(admin_key)).await?
    else {
        bail!("--admin-key is not an API key of this database");
    };
    let now = Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64);
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut done = 0u64;
    while done < count {
        let batch = (count - done).min(2_000);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..batch {
            let n = done + i;
            let user = tessera_domain::user::User {
                id: tessera_domain::ids::UserId::generate(&mut rng),
                org_id: admin.org_id,
                email: tessera_domain::user::Email::parse(&format!("seeded{n:07}@bench.example"))?,
                first_name: format!("First{n}"),
                last_name: format!("Last{n}"),
                status: tessera_domain::user::UserStatus::Active,
                date_created: now.plus_secs(-((count - n) as i64)),
            };
            let store = Arc::clone(&store);
            tasks.spawn(async move { store.create_user(&user, None).await });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        done += batch;
    }
    eprintln!("seeded {count} users");
    Ok(())
}

async fn seed(
    database: &std::path::Path,
    admin_key: &str,
    count: u64,
    tokens_out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(database)?);
    let Some(Credential::ApiKey { user, .. }) =
        store.find_credential(TokenKind::ApiKey, &TokenDigest::of(admin_key)).await?
    else {
        bail!("--admin-key is not an API key of this database");
    };
    let now = Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64);
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut out = tokens_out.map(|p| std::fs::File::create(p).map(std::io::BufWriter::new)).transpose()?;
    let statuses = ["Active", "Ended", "Terminated"];
    let mut done = 0u64;
    while done < count {
        let batch = (count - done).min(2_000);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..batch {
            let token = mint(TokenKind::LoginSession, &mut rng);
            if let Some(w) = out.as_mut() {
                use std::io::Write;
                writeln!(w, "{}", token.secret)?;
            }
            let n = done + i;
            let created = now.plus_secs(-((count - n) as i64));
            // Every third session is ended, so filters on status select a real subset.
            let status = if out.is_some() { "Active" } else { statuses[(n % 3) as usize] };
            let s = Session {
                id: SessionId::generate(&mut rng),
                org_id: user.org_id,
                handle: token.digest.handle(),
                kind: SessionKind::Login,
                principal: tessera_domain::session::Principal::user(
                    user.id,
                    format!("user{}@bench.example", n % 10_000),
                ),
                role_id: None,
                role_name: String::new(),
                session_name: String::new(),
                auth_method: "password".into(),
                duration: 57_600,
                bound_ip: None,
                source_ip: format!("10.{}.{}.{}", n % 256, (n / 256) % 256, (n / 65_536) % 256),
                conditions_met: vec![],
                created,
                modified: created,
                expires: now.plus_secs(57_600),
                idle_timeout: Some(18_000),
                last_activity: now,
                status: SessionStatus::parse(status).unwrap_or(SessionStatus::Active),
                ended: (status != "Active").then_some(created),
                end_reason: match status {
                    "Ended" => Some(tessera_domain::session::EndReason::Logout),
                    "Terminated" => Some(tessera_domain::session::EndReason::Terminated),
                    _ => None,
                },
                failed_logins: (n % 4) as i64,
                last_login_time: None,
                last_login_client: String::new(),
                session_policy: None,
            };
            let store = Arc::clone(&store);
            let digest = token.digest;
            tasks.spawn(async move { store.create_session(&s, &digest).await });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        done += batch;
    }
    if let Some(mut w) = out {
        use std::io::Write;
        w.flush()?;
    }
    eprintln!("seeded {count} sessions");
    Ok(())
}

/// One JSON request over a fresh connection; answers the status and the JSON body.
async fn call(
    url: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let uri: hyper::Uri = format!("{url}{path}").parse()?;
    let host = uri.host().context("host")?.to_owned();
    let stream = tokio::net::TcpStream::connect((host.as_str(), uri.port_u16().unwrap_or(80))).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header("host", host)
        .header("content-type", "application/json");
    if !key.is_empty() {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    let req = req.body(Full::new(Bytes::from(body.map(|b| b.to_string()).unwrap_or_default())))?;
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await?.to_bytes();
    let json = if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes)? };
    Ok((status, json))
}

async fn setup(url: &str, admin: &str) -> anyhow::Result<()> {
    let expect = |r: (u16, serde_json::Value), want: u16| -> anyhow::Result<serde_json::Value> {
        if r.0 != want {
            bail!("setup call answered {}: {}", r.0, r.1);
        }
        Ok(r.1)
    };
    let (email, password) = ("bench@example.com", "bench-password-0123456789");
    let user = expect(
        call(url, admin, "POST", "/v2/users", Some(serde_json::json!({"email": email, "password": password}))).await?,
        201,
    )?;
    let user_id = user["user"]["id"].as_str().context("user id")?.to_owned();
    let policy = expect(
        call(url, admin, "POST", "/v2/policies", Some(serde_json::json!({"name": "bench", "policy_document":
            {"Statement": [{"Effect": "Allow", "Action": ["iam.role.AssumeRole", "iam.user.Read", "iam.user.List"], "Resource": "*"}]}}))).await?,
        201,
    )?;
    let policy_id = policy["policy"]["id"].as_str().context("policy id")?;
    expect(call(url, admin, "POST", &format!("/v2/policies/{policy_id}/users/{user_id}"), None).await?, 201)?;
    let role = expect(
        call(
            url,
            admin,
            "POST",
            "/v2/roles",
            Some(serde_json::json!({"name": "bench", "role_type": "assumable", "max_session_duration": 3600})),
        )
        .await?,
        201,
    )?;
    let role_id = role["role"]["id"].as_str().context("role id")?.to_owned();
    expect(call(url, admin, "POST", &format!("/v2/roles/{role_id}/policies/{policy_id}"), None).await?, 201)?;
    expect(
        call(
            url,
            admin,
            "POST",
            "/v2/role-trusts",
            Some(serde_json::json!({"role_id": role_id, "trusted_user_id": user_id})),
        )
        .await?,
        201,
    )?;
    let key = expect(
        call(url, admin, "POST", &format!("/v2/users/{user_id}/apikeys"), Some(serde_json::json!({"name": "bench"})))
            .await?,
        201,
    )?;
    let user_key = key["api_key"]["api_key"].as_str().context("api key")?;
    // A login session of the same user: what "who am I?" is asked with.
    let signed = expect(
        call(url, "", "POST", "/v2/sessions", Some(serde_json::json!({"email": email, "password": password}))).await?,
        201,
    )?;
    let login_token = signed["token"].as_str().context("session token")?;
    println!(
        "{}",
        serde_json::json!({"user_id": user_id, "role_id": role_id, "user_key": user_key,
            "login_token": login_token, "email": email, "password": password})
    );
    Ok(())
}

async fn gateway_setup(url: &str, admin: &str, upstream: &str, gateway: &str) -> anyhow::Result<()> {
    let expect = |r: (u16, serde_json::Value), want: u16| -> anyhow::Result<serde_json::Value> {
        if r.0 != want {
            bail!("gateway setup call answered {}: {}", r.0, r.1);
        }
        Ok(r.1)
    };
    let password = "bench-password-0123456789";
    expect(
        call(
            url,
            admin,
            "POST",
            "/v2/users",
            Some(serde_json::json!({"email": "gw@example.com", "password": password})),
        )
        .await?,
        201,
    )?;
    let service = expect(
        call(url, admin, "POST", "/v2/gateway/services", Some(serde_json::json!({"name": "static", "url": upstream})))
            .await?,
        201,
    )?;
    let sid = service["service"]["id"].as_str().context("service id")?;
    let route = expect(
        call(
            url,
            admin,
            "POST",
            "/v2/gateway/routes",
            Some(serde_json::json!({"paths": ["/"], "strip_path": false, "service": {"id": sid}})),
        )
        .await?,
        201,
    )?;
    let rid = route["route"]["id"].as_str().context("route id")?;
    expect(
        call(
            url,
            admin,
            "POST",
            "/v2/gateway/plugins",
            Some(serde_json::json!({"name": "session", "route": {"id": rid},
            "config": {"cookie_secure": false, "secret": "benchmark-secret-change-me"}})),
        )
        .await?,
        201,
    )?;
    // The gateway applies configuration asynchronously: retry the sign-in briefly.
    for _ in 0..100 {
        let uri: hyper::Uri = format!("{gateway}/.tessera/login").parse()?;
        let host = uri.host().context("host")?.to_owned();
        let stream = tokio::net::TcpStream::connect((host.as_str(), uri.port_u16().unwrap_or(80))).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let body = serde_json::json!({"email": "gw@example.com", "password": password, "next": "/"});
        let req = hyper::Request::builder()
            .method("POST")
            .uri("/.tessera/login")
            .header("host", host)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let res = sender.send_request(req).await?;
        if res.status() == 200 {
            let cookie = res
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| v.split(';').next())
                .collect::<Vec<_>>()
                .join("; ");
            println!("{}", serde_json::json!({"cookie": cookie}));
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    bail!("could not sign in through the gateway")
}
