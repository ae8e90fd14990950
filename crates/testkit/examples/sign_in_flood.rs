//! Measures a sign-in flood against a real server: how the token-authenticated path's latency
//! (p50/p99/max) and the process's resident memory behave while `--flood` sign-ins arrive at
//! once, with the password-hashing bound as configured. Not a test: it prints figures.
//!
//! ```text
//! cargo run --release -p tessera-testkit --example sign_in_flood -- [--postgres] [--flood 500]
//!     [--permits N --queue N]    # the bound (default: one hash per core, 16 per core queued)
//!     [--unbounded]              # permits 512, no queue limit: the behaviour before the bound
//! ```
//! `--postgres` uses `TEST_POSTGRES_URL` (a fresh database, dropped afterwards). To measure
//! the real binary (its allocator and its defaults) instead of an in-process server, start
//! `TESSERA_BOOTSTRAP_API_KEY=flood-admin-key-0123456789abcdef0123456789 tessera serve …` and
//! pass `--url http://127.0.0.1:PORT --pid PID`: memory is then read from that process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use tessera_app::hashing::HashingLimits;
use tessera_app::{App, BootstrapRequest, SystemClock};
use tessera_store::Store;

const KEY: &str = "flood-admin-key-0123456789abcdef0123456789";
const READERS: usize = 4;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// Resident memory of the measured process (this one, or `--pid`), in MiB (current, peak).
fn rss_mib() -> (u64, u64) {
    let pid = arg("--pid").unwrap_or_else(|| "self".into());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (kib("VmRSS:") / 1024, kib("VmHWM:") / 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Token-authenticated reads from `READERS` loops until `stop`; latencies and failures.
async fn read_load(url: String, token: String, user: String, stop: Arc<AtomicBool>) -> (Vec<Duration>, usize) {
    let loops = (0..READERS).map(|_| {
        let (url, token, user, stop) = (url.clone(), token.clone(), user.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut lat, mut failed) = (vec![], 0);
            while !stop.load(Ordering::Acquire) {
                let t0 = Instant::now();
                let ok = http
                    .get(format!("{url}/v2/users/{user}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                lat.push(t0.elapsed());
                failed += usize::from(!ok);
            }
            (lat, failed)
        })
    });
    let mut all = vec![];
    let mut failed = 0;
    for l in futures_util::future::join_all(loops).await {
        let (lat, f) = l.unwrap();
        all.extend(lat);
        failed += f;
    }
    all.sort();
    (all, failed)
}

fn report(what: &str, lat: &[Duration], failed: usize) {
    println!(
        "{what:<28} {:>6} reads  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  failed {failed}",
        lat.len(),
        percentile(lat, 0.5).as_secs_f64() * 1e3,
        percentile(lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let flood: usize = arg("--flood").map_or(500, |n| n.parse().expect("--flood N"));
    let mut limits = HashingLimits::default();
    if let Some(n) = arg("--permits") {
        limits.permits = n.parse().expect("--permits N");
    }
    if let Some(n) = arg("--queue") {
        limits.queue = n.parse().expect("--queue N");
    }
    if flag("--unbounded") {
        limits = HashingLimits { permits: 512, queue: usize::MAX / 2, ..limits };
    }
    let dir = tempfile::tempdir().unwrap();
    let mut _db = None;
    let mut _server = None;
    let (url, backend) = match arg("--url") {
        Some(url) => (url, "external".to_owned()),
        None => {
            let store: Arc<dyn Store> = if flag("--postgres") {
                let url = std::env::var("TEST_POSTGRES_URL").expect("--postgres needs TEST_POSTGRES_URL");
                let db = tessera_testkit::TempDatabase::create(&url).await;
                let store = tessera_store_postgres::PgStore::connect(&db.url).await.unwrap();
                _db = Some(db);
                Arc::new(store)
            } else {
                Arc::new(tessera_store_sqlite::SqliteStore::open(&dir.path().join("flood.db")).unwrap())
            };
            let backend = store.backend().to_owned();
            let app = Arc::new(
                App::new(store, Arc::new(SystemClock), Box::new(rand::rngs::StdRng::from_entropy()))
                    .with_hashing_limits(limits),
            );
            app.bootstrap(
                tessera_app::System::BOOTSTRAP,
                BootstrapRequest {
                    organization_name: "flood".into(),
                    admin_email: "admin@example.com".into(),
                    api_key: Some(KEY.into()),
                },
            )
            .await
            .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(tessera_server::serve(listener, app, Default::default(), async {
                let _ = stopped.await;
            }));
            _server = Some((stop_server, server));
            (url, backend)
        }
    };
    let admin = tessera_client::Client::new(url.clone(), Some(KEY.into()));
    let user = admin
        .create_user(&tessera_api_types::UserCreate {
            email: "lee@example.com".into(),
            first_name: "Lee".into(),
            last_name: String::new(),
            password: Some("correct horse battery staple".into()),
        })
        .await
        .unwrap();
    let bound = match (arg("--url"), limits.queue > 1 << 40) {
        (Some(_), _) => "the binary's".to_owned(),
        (None, true) => format!("permits {} queue unbounded", limits.permits),
        (None, false) => format!("permits {} queue {}", limits.permits, limits.queue),
    };
    println!("backend {backend}, {flood} concurrent sign-ins, hashing {bound}, {READERS} token readers");
    let (rss_before, _) = rss_mib();

    // The token path alone, for reference.
    let stop = Arc::new(AtomicBool::new(false));
    let quiet = tokio::spawn(read_load(url.clone(), KEY.into(), user.id.clone(), Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Release);
    let (lat, failed) = quiet.await.unwrap();
    report("token path, no flood", &lat, failed);

    // The flood, with the token path measured alongside and RSS sampled.
    let stop = Arc::new(AtomicBool::new(false));
    let busy = tokio::spawn(read_load(url.clone(), KEY.into(), user.id.clone(), Arc::clone(&stop)));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let sampling = Arc::clone(&sampling);
        async move {
            let mut peak = 0;
            while sampling.load(Ordering::Acquire) {
                peak = peak.max(rss_mib().0);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        }
    });
    let http = reqwest::Client::new();
    let started = Instant::now();
    let sign_ins = (0..flood).map(|i| {
        let req = http.post(format!("{url}/v2/sessions")).json(&serde_json::json!({
            "email": format!("ghost{i}@example.com"), "password": "correct horse battery staple"
        }));
        async move { req.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    });
    let statuses = futures_util::future::join_all(sign_ins).await;
    let flood_time = started.elapsed();
    stop.store(true, Ordering::Release);
    sampling.store(false, Ordering::Release);
    let (lat, failed) = busy.await.unwrap();
    let peak = sampler.await.unwrap();
    report("token path, during the flood", &lat, failed);
    let count = |s: u16| statuses.iter().filter(|&&x| x == s).count();
    let other = statuses.iter().filter(|&&x| ![401, 429].contains(&x)).count();
    println!(
        "sign-ins: {} checked (401), {} shed (429), {other} other (5xx or dropped); flood over in {:.2} s",
        count(401),
        count(429),
        flood_time.as_secs_f64()
    );
    println!("resident memory: {rss_before} MiB before, {peak} MiB peak during the flood (VmHWM {} MiB)", rss_mib().1);
    if let Some((stop, server)) = _server {
        let _ = stop.send(());
        let _ = server.await;
    }
}
