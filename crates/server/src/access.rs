//! The API's access log: one line per request on the `tessera::access` target (level info),
//! with the request id, method, route template, status, latency, and the caller's
//! organization, principal and credential (ids only: never a token, a cookie, a query string
//! or a body). With `--log-format json` each line is one JSON object.
//!
//! It costs nothing when that target is off (`TESSERA_LOG=info,tessera::access=off`): the
//! edge ([`crate::front`]) opens a line only when the log subscriber wants it, and each route's
//! [`Tag`] is installed only then.

use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{HeaderValue, Method, Request, StatusCode};
use tessera_app::{Caller, CallerKind};
use tessera_domain::ids::{OrgId, UserId};
use tessera_domain::session::Principal;

pub const TARGET: &str = "tessera::access";

/// Whether the log subscriber wants access lines (decided when the router is built).
pub fn wanted() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

/// What the inner parts of the stack learn about a request for its log line.
#[derive(Default)]
pub struct Slot {
    route: OnceLock<&'static str>,
    caller: OnceLock<CallerFacts>,
}

/// Copies of the caller's ids (no text is made until the line is written).
struct CallerFacts {
    org: OrgId,
    principal: Who,
    kind: CallerKind,
}

/// The principal as the line names it: the user's id, or `workload:<issuer>:<subject>`.
enum Who {
    User(UserId),
    Workload(String),
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::User(id) => id.fmt(f),
            Who::Workload(text) => f.write_str(text),
        }
    }
}

impl Slot {
    /// Called by the authenticating extractor once the caller is known.
    pub fn set_caller(&self, c: &Caller) {
        let principal = match c.principal() {
            Principal::User { id, .. } => Who::User(*id),
            Principal::Workload { issuer, subject } => Who::Workload(format!("workload:{issuer}:{subject}")),
        };
        let _ = self.caller.set(CallerFacts { org: c.org_id, principal, kind: c.kind });
    }
}

/// A request's line, opened by the edge before routing and written with its answer.
pub struct Pending {
    slot: Arc<Slot>,
    method: Method,
    request_id: HeaderValue,
    started: Instant,
}

impl Pending {
    /// `request_id` as the answer carries it; the line keeps its text, at most
    /// [`crate::front::MAX_REQUEST_ID`] characters.
    pub fn new(slot: Arc<Slot>, method: Method, request_id: HeaderValue) -> Self {
        Self { slot, method, request_id, started: Instant::now() }
    }

    pub fn write(self, status: StatusCode) {
        let latency_ms = self.started.elapsed().as_secs_f64() * 1_000.0;
        let route = self.slot.route.get().copied().unwrap_or("-");
        let request_id = crate::front::id_text(&self.request_id);
        let (method, status) = (&self.method, status.as_u16());
        match self.slot.caller.get() {
            Some(c) => {
                let (credential, credential_id): (&str, &dyn std::fmt::Display) = match &c.kind {
                    CallerKind::ApiKey(k) => ("api_key", k),
                    CallerKind::LoginSession(s) => ("login_session", s),
                    CallerKind::RoleSession { session, .. } => ("role_session", session),
                };
                tracing::info!(
                    target: TARGET,
                    request_id = %request_id,
                    method = %method,
                    route,
                    status,
                    latency_ms,
                    org = %c.org,
                    principal = %c.principal,
                    credential,
                    credential_id = %credential_id,
                    "request"
                )
            }
            None => {
                tracing::info!(target: TARGET, request_id = %request_id, method = %method, route, status, latency_ms, "request")
            }
        }
    }
}

/// Route layer: names the matched route's template (`/v2/users/{user_id}`, never the raw
/// path) in the request's line. Its future is the route's own: no wrapper, no allocation.
#[derive(Clone, Copy)]
pub struct Tag(pub &'static str);

impl<S> tower::Layer<S> for Tag {
    type Service = Tagged<S>;

    fn layer(&self, inner: S) -> Tagged<S> {
        Tagged { inner, route: self.0 }
    }
}

#[derive(Clone)]
pub struct Tagged<S> {
    inner: S,
    route: &'static str,
}

impl<S, B> tower::Service<Request<B>> for Tagged<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> S::Future {
        if let Some(slot) = req.extensions().get::<crate::extract::RequestContext>().and_then(|c| c.slot.as_ref()) {
            let _ = slot.route.set(self.route);
        }
        self.inner.call(req)
    }
}
