//! The API's access log: one line per request on the `tessera::access` target (level info),
//! with the request id, method, route template, status, latency, and the caller's
//! organization, principal and credential (ids only: never a token, a cookie, a query string
//! or a body). With `--log-format json` each line is one JSON object.
//!
//! It costs nothing when that target is off (`TESSERA_LOG=info,tessera::access=off`): the
//! layers are installed only when the log subscriber wants the lines.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tessera_app::{Caller, CallerKind};
use tessera_domain::session::Principal;

pub const TARGET: &str = "tessera::access";

/// Whether the log subscriber wants access lines (decided when the router is built).
pub fn wanted() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

/// What the inner parts of the stack learn about a request for its log line.
#[derive(Default)]
pub struct Slot {
    route: OnceLock<String>,
    caller: OnceLock<CallerFacts>,
}

struct CallerFacts {
    org: String,
    principal: String,
    credential: &'static str,
    credential_id: String,
}

impl Slot {
    /// Called by the authenticating extractor once the caller is known.
    pub fn set_caller(&self, c: &Caller) {
        let principal = match &c.principal {
            Principal::User { id, .. } => id.to_string(),
            Principal::Workload { issuer, subject } => format!("workload:{issuer}:{subject}"),
        };
        let (credential, credential_id) = match c.kind {
            CallerKind::ApiKey(k) => ("api_key", k.to_string()),
            CallerKind::LoginSession(s) => ("login_session", s.to_string()),
            CallerKind::RoleSession { session, .. } => ("role_session", session.to_string()),
        };
        let _ = self.caller.set(CallerFacts { org: c.org_id.to_string(), principal, credential, credential_id });
    }
}

/// Outer layer: times the request and writes its line.
pub async fn log(mut req: Request, next: Next) -> Response {
    let slot = Arc::new(Slot::default());
    req.extensions_mut().insert(slot.clone());
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(128)
        .collect::<String>();
    let started = Instant::now();
    let res = next.run(req).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1_000.0;
    let route = slot.route.get().map_or("-", String::as_str);
    let status = res.status().as_u16();
    match slot.caller.get() {
        Some(c) => tracing::info!(
            target: TARGET,
            request_id = %request_id,
            method = %method,
            route,
            status,
            latency_ms,
            org = %c.org,
            principal = %c.principal,
            credential = c.credential,
            credential_id = %c.credential_id,
            "request"
        ),
        None => {
            tracing::info!(target: TARGET, request_id = %request_id, method = %method, route, status, latency_ms, "request")
        }
    }
    res
}

/// Route layer: the matched route's template (`/v2/users/{user_id}`), never the raw path.
pub async fn route(req: Request, next: Next) -> Response {
    if let (Some(slot), Some(path)) = (req.extensions().get::<Arc<Slot>>(), req.extensions().get::<MatchedPath>()) {
        let _ = slot.route.set(path.as_str().to_owned());
    }
    next.run(req).await
}
