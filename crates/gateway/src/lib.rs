//! The session gateway: a reverse proxy whose `session` plugin keeps users signed in with
//! lua-resty-session 4.x cookies, with the semantics of Kong's session plugin.
//!
//! - `admit`: what every request goes through before routing: size limits, the normalised
//!   path (routing and forwarding both use it), owned headers removed, the client's facts.
//! - `table`: services, routes and plugins compiled into a routing table, rebuilt whole on
//!   every configuration change (API on this node, or the store's change feed from others).
//! - `proxy`: streaming forwarding with `X-Forwarded-*`, 502/504 answers; the TLS clients
//!   for `https` upstreams, one per trust.
//! - `verify`: upstream certificate verifiers beyond rustls's: none (`tls_verify = false`),
//!   and a bound on the chain's intermediate CAs (`tls_verify_depth`).
//! - `plugin`: a session plugin's stored config parsed into keys, timeouts and enums.
//! - `session`: the session plugin on a request: opening, refreshing (touch/renew), logout,
//!   remember, the chain of authenticators, identity headers; server-side storage through
//!   the app.
//! - `login`: the reserved sign-in page and endpoint under [`LOGIN_PATH`].
//! - `listener`: the listener (HTTP/1.1, or TLS with HTTP/2 by ALPN) with its limits,
//!   WebSocket upgrades and graceful stop.
//! - `error`: the gateway's own JSON errors.
//! - `metrics`: the upstreams' answers, failures and latency for Prometheus.

mod admit;
mod error;
mod listener;
mod login;
mod metrics;
mod plugin;
mod pool;
mod proxy;
mod session;
pub mod table;
mod verify;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tessera_app::System;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use ipnet::IpNet;
use tessera_app::App;

pub use admit::{LocalAddr, Transport};
pub use listener::{ALPN, serve, serve_tls};
#[doc(hidden)]
pub use login::sign_in_redirect;
pub use proxy::UpstreamTls;
use table::Table;

use crate::error::{OwnError, error_response};

/// Where the gateway's own sign-in page and endpoint live, on every host it serves.
pub const LOGIN_PATH: &str = "/.tessera/login";
/// The gateway's readiness probe: 200 once its table reflects every configuration change
/// this node has seen, 503 before.
pub const READY_PATH: &str = "/.tessera/ready";

/// How the gateway treats its peers.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Peers whose `X-Forwarded-For`, `-Proto`, `-Host` and `-Port` are believed. Empty by
    /// default: every client's forwarding headers are replaced with what the gateway saw.
    pub trusted_proxies: Vec<IpNet>,
    /// How `https` services' certificates are verified: Mozilla's roots, or a bundle.
    pub upstream_tls: UpstreamTls,
    /// The names of the API's and console's cookies (its session and CSRF cookies, and the
    /// console sign-in form's token). Browsers do not keep cookies apart by port, so on a
    /// host that serves both the API and the gateway they come with gateway requests too:
    /// they are removed from every request forwarded upstream (an upstream must never hold a
    /// Tessera credential), and an upstream's `Set-Cookie` of those names is dropped (nor
    /// plant one in the console).
    pub api_cookies: Vec<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: vec![],
            upstream_tls: UpstreamTls::default(),
            api_cookies: vec!["tessera_session".into(), "tessera_csrf".into(), "tessera_csrf_login".into()],
        }
    }
}

/// The gateway: the app, the current routing table and a pooled upstream client.
pub struct Gateway {
    app: Arc<App>,
    config: GatewayConfig,
    table: RwLock<Arc<Table>>,
    /// The configuration generation (the app's gateway change counter) the table was built at.
    generation: tokio::sync::watch::Sender<u64>,
    /// One rebuild at a time, so an older snapshot never replaces a newer one.
    rebuilding: tokio::sync::Mutex<()>,
    decoded: session::DecodedCache,
    /// The upstreams' answers, failures and latency (rendered by [`Gateway::render_metrics`]).
    upstream: metrics::UpstreamMetrics,
}

impl Gateway {
    /// Builds the gateway (trusting no proxy) and loads its table from the store.
    pub async fn new(app: Arc<App>) -> Result<Arc<Self>, tessera_app::AppError> {
        Self::with_config(app, GatewayConfig::default()).await
    }

    /// Builds the gateway with `config` and loads its table from the store.
    pub async fn with_config(app: Arc<App>, config: GatewayConfig) -> Result<Arc<Self>, tessera_app::AppError> {
        let gw = Arc::new(Self {
            app,
            config,
            table: RwLock::new(Arc::new(Table::default())),
            generation: tokio::sync::watch::Sender::new(0),
            rebuilding: tokio::sync::Mutex::new(()),
            decoded: session::DecodedCache::default(),
            upstream: metrics::UpstreamMetrics::default(),
        });
        gw.reload().await?;
        Ok(gw)
    }

    /// The upstreams' answers by status class, failures by reason and latency, in
    /// Prometheus's text format (served on the metrics listener).
    pub fn render_metrics(&self, out: &mut String) {
        self.upstream.render(out);
    }

    /// Rebuilds the routing table from the store.
    pub async fn reload(&self) -> Result<usize, tessera_app::AppError> {
        let _one_at_a_time = self.rebuilding.lock().await;
        // Read before the snapshot: the table holds at least every change up to this one.
        let generation = *self.app.gateway_changes().borrow();
        let snapshot = self.app.gateway_snapshot(System::GATEWAY).await?;
        let table = Table::build_with_tls(
            snapshot.services,
            snapshot.routes,
            snapshot.plugins,
            &snapshot.ca_certificates,
            &self.config.upstream_tls,
        );
        let n = table.len();
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        self.generation.send_if_modified(|g| {
            let newer = generation > *g;
            if newer {
                *g = generation;
            }
            newer
        });
        tracing::debug!(routes = n, generation, "gateway table rebuilt");
        Ok(n)
    }

    /// Rebuilds the table whenever the configuration changes, until the app is dropped.
    pub fn follow_changes(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let mut rx = self.app.gateway_changes();
        // A change between loading and following is not missed: start with one rebuild.
        rx.mark_changed();
        let gw = Arc::downgrade(self);
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let Some(gw) = gw.upgrade() else { return };
                gw.reload_until_done().await;
            }
        })
    }

    /// Rebuilds the table, retrying until the store answers: an outage must not leave a
    /// stale table forever.
    async fn reload_until_done(&self) {
        let mut delay = std::time::Duration::from_millis(100);
        while let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "cannot rebuild the gateway table; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(5));
        }
    }

    /// How many routes the current table has.
    pub fn route_count(&self) -> usize {
        self.table().len()
    }

    /// The configuration generation the current table was built at.
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Whether the table reflects every configuration change this node has seen.
    pub fn is_current(&self) -> bool {
        self.generation() >= *self.app.gateway_changes().borrow()
    }

    /// Waits until the table reflects every configuration change this node had seen when
    /// called (an API write on this node, or a change feed notice from another).
    pub async fn caught_up(&self) {
        let target = *self.app.gateway_changes().borrow();
        let mut rx = self.generation.subscribe();
        let _ = rx.wait_for(|g| *g >= target).await;
    }

    fn table(&self) -> Arc<Table> {
        Arc::clone(&self.table.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The gateway's HTTP service. [`serve`] runs it with the gateway's limits; served
    /// elsewhere, it needs `ConnectInfo<SocketAddr>` (`into_make_service_with_connect_info`).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(Arc::clone(self))
    }
}

/// The client's request id when it is plain ([`tessera_domain::audit::is_plain_request_id`]),
/// or a new one: a random per-process prefix and a counter (no system call per request,
/// unlike a random UUID).
fn request_id(req: &Request<Body>) -> HeaderValue {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let own = req.headers().get("x-request-id").filter(|v| tessera_domain::audit::is_plain_request_id(v.as_bytes()));
    own.cloned().unwrap_or_else(|| {
        let prefix = PREFIX.get_or_init(|| format!("{:08x}", rand::random::<u32>()));
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        HeaderValue::try_from(format!("{prefix}-{n:012x}")).unwrap_or(HeaderValue::from_static("-"))
    })
}

/// Whether the request carries a body (which an early answer leaves unread).
fn has_body(req: &Request<Body>) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|n| n.trim() != "0")
}

async fn handle(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let local = req.extensions().get::<LocalAddr>().map(|l| l.0);
    let tls = req.extensions().get::<Transport>().is_some_and(|t| t.tls);
    serve_request(&gw, peer, local, tls, req).await
}

/// One request on a connection from `peer` to `local` (`tls`: it came over TLS). The
/// listener calls it directly (no router, no per-request extensions); [`Gateway::router`]
/// through `handle`.
pub(crate) async fn serve_request(
    gw: &Gateway,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    tls: bool,
    req: Request<Body>,
) -> Response<Body> {
    let rid = request_id(&req);
    // The access line's facts, gathered only when the log wants the line.
    let access = tracing::enabled!(target: ACCESS, tracing::Level::INFO)
        .then(|| (std::time::Instant::now(), req.method().clone(), req.uri().path().to_owned()));
    let unread_body = has_body(&req);
    let client = admit::client(req.headers(), peer, local, tls, &gw.config.trusted_proxies);
    let mut res = match admit::admit(req) {
        Err(refusal) => refusal.response(),
        Ok(req) => dispatch(gw, &client, req, &rid).await,
    };
    // An error of ours answered before the body was read: the connection cannot be reused,
    // so say so rather than let the client find a closed socket.
    if unread_body && res.extensions().get::<OwnError>().is_some() {
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some((started, method, path)) = access {
        // The path without its query (which may carry codes or tokens), the client as the
        // trusted-proxy rules decided it; never a cookie or a header value.
        tracing::info!(
            target: ACCESS,
            request_id = rid.to_str().unwrap_or(""),
            method = %method,
            path = %path,
            status = res.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1_000.0,
            client = %client.ip,
            "gateway request"
        );
    }
    res.headers_mut().insert("x-request-id", rid);
    res
}

/// The gateway's access log target: one line per proxied request (`TESSERA_LOG` decides).
const ACCESS: &str = "tessera::gateway::access";

async fn dispatch(gw: &Gateway, client: &admit::Client, req: Request<Body>, rid: &HeaderValue) -> Response<Body> {
    match req.uri().path() {
        LOGIN_PATH => return login::handle(gw, client, req).await,
        READY_PATH => return ready(gw),
        _ => {}
    }
    let table = gw.table();
    // Routes match the Host the request names (as Kong's router does), not a forwarded one.
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().host());
    let host = host.unwrap_or("");
    let facts = table::RequestFacts {
        host,
        method: req.method().as_str(),
        path: req.uri().path(),
        headers: req.headers(),
        https: client.proto == "https",
        websocket: req.extensions().get::<admit::WebSocketUpgrade>().is_some(),
    };
    let found = match table.lookup(&facts) {
        table::Lookup::Found(m) => m,
        table::Lookup::NotFound => {
            return error_response(StatusCode::NOT_FOUND, "no_route", "no route matched this request");
        }
        table::Lookup::HttpsRequired(route) => return https_required(route, host, &req),
        table::Lookup::WrongProtocol(route) => {
            return error_response(
                StatusCode::UPGRADE_REQUIRED,
                "wrong_protocol",
                &format!("this route takes only {}", route_protocols(route)),
            );
        }
    };
    let plugin = found.plugin_for(facts.protocols());
    let api_cookie = |name: &str| gw.config.api_cookies.iter().any(|c| c == name);
    let mut req = req;
    admit::strip_cookies(req.headers_mut(), api_cookie);
    let mut res = match plugin {
        None => proxy::forward(&gw.upstream, &found, req, client, rid).await,
        Some(plugin) => session::run(gw, &found, Arc::clone(plugin), req, client, rid).await,
    };
    admit::drop_set_cookies(res.headers_mut(), api_cookie);
    res
}

/// A plain-http request to a route that takes only https: Kong's 426 ("Please use HTTPS
/// protocol", with `Upgrade: TLS/1.2, HTTP/1.1`), or the redirect the route asks for.
fn https_required(route: &table::CompiledRoute, host: &str, req: &Request<Body>) -> Response<Body> {
    let code = StatusCode::from_u16(route.https_redirect_status_code).unwrap_or(StatusCode::UPGRADE_REQUIRED);
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if code != StatusCode::UPGRADE_REQUIRED && !host.is_empty() {
        return error::redirect(code, &format!("https://{host}{path}"));
    }
    let mut res = error_response(StatusCode::UPGRADE_REQUIRED, "https_required", "Please use HTTPS protocol");
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    res.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("TLS/1.2, HTTP/1.1"));
    res
}

fn route_protocols(route: &table::CompiledRoute) -> String {
    let all = [
        (table::Protocols::HTTP, "http"),
        (table::Protocols::HTTPS, "https"),
        (table::Protocols::WS, "ws (WebSocket upgrades)"),
        (table::Protocols::WSS, "wss (WebSocket upgrades over TLS)"),
    ];
    all.iter().filter(|(p, _)| route.protocols.intersects(*p)).map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
}

fn ready(gw: &Gateway) -> Response<Body> {
    if !gw.is_current() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the routing table is being rebuilt after a configuration change",
        );
    }
    let body = serde_json::json!({"status": "ready", "generation": gw.generation(), "routes": gw.route_count()});
    let mut res = Response::new(Body::from(body.to_string()));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_id(id: &str) -> Request<Body> {
        Request::builder().header("x-request-id", id).body(Body::empty()).unwrap()
    }

    #[test]
    fn a_plain_client_request_id_is_kept_and_any_other_replaced() {
        assert_eq!(request_id(&with_id("client-7")), "client-7");
        let made = request_id(&Request::new(Body::empty()));
        assert_eq!(made.len(), 21, "{made:?}");
        // A space or a quote would let the client forge the access line's other fields.
        for forged in ["x status=500", "a\"b", &"a".repeat(201)] {
            let id = request_id(&with_id(forged));
            assert!(id != forged && id.len() == 21, "{forged:?} answered {id:?}");
        }
    }
}
