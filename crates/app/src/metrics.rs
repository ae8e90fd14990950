//! What the app counts for Prometheus (rendered on the metrics listener beside the API's
//! request metrics): sign-ins and lockouts, role assumptions by outcome, the authentication
//! cache's hits and misses. Relaxed atomic adds only: nothing here waits or allocates. The
//! store's own metrics (statements, change feed) follow, rendered by the backend.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::{AppError, AppResult};

/// The outcome labels of a use case, by [`outcome`].
const OUTCOMES: [&str; 10] = [
    "ok",
    "invalid",
    "not_found",
    "unauthorized",
    "forbidden",
    "conflict",
    "unavailable",
    "overloaded",
    "contended",
    "internal",
];

fn outcome<T>(r: &AppResult<T>) -> usize {
    match r {
        Ok(_) => 0,
        Err(AppError::Invalid(_)) => 1,
        Err(AppError::NotFound(_)) => 2,
        Err(AppError::Unauthorized(_)) => 3,
        Err(AppError::Forbidden(_)) => 4,
        Err(AppError::Conflict(_)) => 5,
        Err(AppError::Unavailable(_)) => 6,
        Err(AppError::Overloaded { .. }) => 7,
        Err(AppError::Contended(_)) => 8,
        Err(AppError::Internal(_)) => 9,
    }
}

/// Counts of one use case by outcome.
#[derive(Default)]
pub(crate) struct Outcomes([AtomicU64; OUTCOMES.len()]);

impl Outcomes {
    pub(crate) fn observe<T>(&self, r: &AppResult<T>) {
        self.0[outcome(r)].fetch_add(1, Relaxed);
    }
}

/// How long the live-session gauge's count is reused: a scrape every few seconds must not
/// turn into a count over every session each time.
const LIVE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The last count of live sessions by kind, and when it was taken.
type LiveCounts = Option<(std::time::Instant, Vec<(String, u64)>)>;

#[derive(Default)]
pub(crate) struct AppMetrics {
    live: tokio::sync::Mutex<LiveCounts>,
    pub(crate) sign_ins: Outcomes,
    pub(crate) lockouts: AtomicU64,
    pub(crate) assumes: Outcomes,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) cache_misses: AtomicU64,
}

impl crate::App {
    /// The app's metrics in the Prometheus text format (appended to the API's on `/metrics`).
    pub async fn render_metrics(&self, out: &mut String) {
        let m = &self.metrics;
        let live = {
            let mut live = m.live.lock().await;
            match &*live {
                Some((at, counts)) if at.elapsed() < LIVE_TTL => Ok(counts.clone()),
                _ => self.store.count_live_sessions(self.now()).await.inspect(|counts| {
                    *live = Some((std::time::Instant::now(), counts.clone()));
                }),
            }
        };
        let _ = writeln!(
            out,
            "# HELP tessera_sessions_live Sessions live now by kind, in every organization (refreshed at most every {}s).\n# TYPE tessera_sessions_live gauge",
            LIVE_TTL.as_secs()
        );
        let store_up = live.is_ok();
        match live {
            Ok(counts) => {
                for kind in ["login", "assumed_role", "gateway"] {
                    let n = counts.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
                    let _ = writeln!(out, "tessera_sessions_live{{kind=\"{kind}\"}} {n}");
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot count live sessions"),
        }
        let _ = writeln!(
            out,
            "# HELP tessera_store_up Whether the last metrics read of the store succeeded.\n# TYPE tessera_store_up gauge\ntessera_store_up {}",
            u8::from(store_up)
        );
        let outcomes = |out: &mut String, name: &str, help: &str, o: &Outcomes| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (label, n) in OUTCOMES.iter().zip(&o.0) {
                let _ = writeln!(out, "{name}{{outcome=\"{label}\"}} {}", n.load(Relaxed));
            }
        };
        outcomes(out, "tessera_sign_ins_total", "Password sign-ins by outcome (unauthorized: refused).", &m.sign_ins);
        let _ = writeln!(
            out,
            "# HELP tessera_lockouts_total Accounts locked after failed sign-ins.\n# TYPE tessera_lockouts_total counter\ntessera_lockouts_total {}",
            m.lockouts.load(Relaxed)
        );
        outcomes(out, "tessera_role_assumptions_total", "Role assumptions by outcome.", &m.assumes);
        let _ = writeln!(
            out,
            "# HELP tessera_auth_cache_lookups_total Credential lookups by whether the cache answered.\n# TYPE tessera_auth_cache_lookups_total counter\ntessera_auth_cache_lookups_total{{result=\"hit\"}} {}\ntessera_auth_cache_lookups_total{{result=\"miss\"}} {}",
            m.cache_hits.load(Relaxed),
            m.cache_misses.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tessera_auth_cache_credentials Credentials held in this node's cache.\n# TYPE tessera_auth_cache_credentials gauge\ntessera_auth_cache_credentials {}",
            self.cache.cached_credentials()
        );
        // The backend's own: statement latency and errors, the change feed.
        self.store.render_metrics(out);
    }
}
