//! The server in-process (`Router::oneshot` over a real SQLite store): how a request is
//! authenticated (cookie or bearer, with or without a same-origin proof), which client address
//! counts behind a proxy, and that every route comes from the route table.

mod auth;
mod health;
mod metrics;
mod openapi;
mod route_table;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use rand::SeedableRng;
use serde_json::Value;
use tessera_app::{App, BootstrapRequest, ManualClock};
use tower::ServiceExt;

pub const ADMIN_KEY: &str = "server-test-admin-key-0123456789abcdef012345";

/// An app over a fresh SQLite file, bootstrapped with [`ADMIN_KEY`].
pub struct Fixture {
    pub app: Arc<App>,
    _dir: tempfile::TempDir,
}

pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(tessera_store_sqlite::SqliteStore::open(&dir.path().join("t.db")).unwrap());
    let clock = ManualClock::new(tessera_domain::Timestamp(1_893_492_000));
    let app = Arc::new(App::new(store, Arc::new(clock), Box::new(rand::rngs::StdRng::from_entropy())));
    app.bootstrap(
        tessera_app::System::BOOTSTRAP,
        BootstrapRequest {
            organization_name: "test".into(),
            admin_email: "admin@example.com".into(),
            api_key: Some(ADMIN_KEY.into()),
        },
    )
    .await
    .unwrap();
    Fixture { app, _dir: dir }
}

/// One request from `peer`, as the listener would hand it to the router.
pub struct Call {
    req: axum::http::request::Builder,
    peer: SocketAddr,
    body: Option<Value>,
}

pub fn call(method: Method, path: &str) -> Call {
    Call {
        req: Request::builder().method(method).uri(path).header("host", "tessera.test:8080"),
        peer: "192.0.2.10:40000".parse().unwrap(),
        body: None,
    }
}

impl Call {
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.req = self.req.header(k, v);
        self
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }
    pub fn cookie(self, token: &str) -> Self {
        self.header("cookie", &format!("tessera_session={token}"))
    }
    pub fn from(mut self, peer: &str) -> Self {
        self.peer = peer.parse().unwrap();
        self
    }
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    pub async fn send(self, router: &tessera_server::Api) -> (StatusCode, HeaderMap, Value) {
        let (status, headers, text) = self.send_text(router).await;
        let json = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
        (status, headers, json)
    }
    /// [`Call::send`] for an answer that is not JSON.
    pub async fn send_text(self, router: &tessera_server::Api) -> (StatusCode, HeaderMap, String) {
        let mut req = match self.body {
            Some(b) => self.req.header("content-type", "application/json").body(Body::from(b.to_string())),
            None => self.req.body(Body::empty()),
        }
        .unwrap();
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let res = router.clone().oneshot(req).await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }
}
