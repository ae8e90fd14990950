//! The session gateway: a reverse proxy whose `session` plugin keeps users signed in with
//! lua-resty-session 4.x cookies, with the semantics of Kong's session plugin.
//!
//! - `table`: services, routes and plugins compiled into a routing table, rebuilt whole on
//!   every configuration change (API on this node, or the store's change feed from others).
//! - `proxy`: streaming forwarding with `X-Forwarded-*`, 502/504 answers.
//! - `session`: opening, refreshing (touch/renew), saving and destroying cookies; identity
//!   headers; logout; server-side storage through the store.
//! - `login`: the reserved sign-in page and endpoint under [`LOGIN_PATH`].

mod login;
mod proxy;
mod session;
pub mod table;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use tessera_app::App;

use table::Table;

/// Where the gateway's own sign-in page and endpoint live, on every host it serves.
pub const LOGIN_PATH: &str = "/.tessera/login";

/// The gateway: the app, the current routing table and a pooled upstream client.
pub struct Gateway {
    app: Arc<App>,
    table: RwLock<Arc<Table>>,
    users: session::UserCache,
    decoded: session::DecodedCache,
}

impl Gateway {
    /// Builds the gateway and loads its table from the store.
    pub async fn new(app: Arc<App>) -> Result<Arc<Self>, tessera_app::AppError> {
        let gw = Arc::new(Self {
            app,
            table: RwLock::new(Arc::new(Table::default())),
            users: session::UserCache::default(),
            decoded: session::DecodedCache::default(),
        });
        gw.reload().await?;
        Ok(gw)
    }

    /// Rebuilds the routing table from the store.
    pub async fn reload(&self) -> Result<usize, tessera_app::AppError> {
        let (services, routes, plugins) = self.app.gateway_snapshot().await?;
        let table = Table::build(services, routes, plugins);
        let n = table.len();
        *self.table.write().expect("table lock") = Arc::new(table);
        tracing::debug!(routes = n, "gateway table rebuilt");
        Ok(n)
    }

    /// Rebuilds the table whenever the configuration changes, until the app is dropped.
    pub fn follow_changes(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let mut rx = self.app.gateway_changes();
        let gw = Arc::downgrade(self);
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let Some(gw) = gw.upgrade() else { return };
                // Retry until the store answers: an outage must not leave a stale table forever.
                let mut delay = std::time::Duration::from_millis(100);
                while let Err(e) = gw.reload().await {
                    tracing::warn!(error = %e, "cannot rebuild the gateway table; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
            }
        })
    }

    /// How many routes the current table has.
    pub fn route_count(&self) -> usize {
        self.table().len()
    }

    fn table(&self) -> Arc<Table> {
        Arc::clone(&self.table.read().expect("table lock"))
    }

    /// The gateway's HTTP service (serve it `with_connect_info::<SocketAddr>()`).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(Arc::clone(self))
    }
}

/// A JSON error in the API's shape: `{"error": {"code", "message"}}`.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("static response parts")
}

/// The client's request id, or a new one: a random per-process prefix and a counter (no
/// system call per request, unlike a random UUID).
fn request_id(req: &Request<Body>) -> HeaderValue {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    req.headers().get("x-request-id").filter(|v| !v.is_empty() && v.len() <= 200).cloned().unwrap_or_else(|| {
        let prefix = PREFIX.get_or_init(|| format!("{:08x}", rand::random::<u32>()));
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{prefix}-{n:012x}")).expect("hex is a header value")
    })
}

async fn handle(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let rid = request_id(&req);
    let mut res = if req.uri().path() == LOGIN_PATH {
        login::handle(&gw, peer, req).await
    } else {
        let table = gw.table();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host())
            .unwrap_or("")
            .to_owned();
        match table.find(&host, req.method().as_str(), req.uri().path()) {
            None => error_response(StatusCode::NOT_FOUND, "no_route", "no route matched this request"),
            Some(m) => match &m.route.plugin {
                None => proxy::forward(&m, req, peer, &rid).await,
                Some(plugin) => session::run(&gw, &m, Arc::clone(plugin), req, peer, &rid).await,
            },
        }
    };
    res.headers_mut().insert("x-request-id", rid);
    res
}
