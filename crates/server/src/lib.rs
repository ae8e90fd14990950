//! Tessera's HTTP API: the `/v2` routes, their extractors and the error mapping.
//!
//! Handlers are thin: parse at the edge (`extract`, `convert`), call one `App` method, and
//! render the answer. [`ApiError`] is the only place an error becomes a status code.

mod access;
pub mod config;
mod convert;
mod csrf;
pub mod error;
mod extract;
pub mod metrics;
pub mod openapi;
mod routes;
mod serve;
pub mod ui;

/// The edge parsers and wire-to-app conversions the handlers call, public so the fuzz targets
/// (`crates/fuzz`) check a body exactly as a request's would be checked, without a server.
#[doc(hidden)]
pub mod edge {
    pub use crate::convert::{
        group_input, new_user, parse_ip, parse_time, policy_input, role_input, trust_input, user_patch,
    };
    pub use crate::extract::{body_id, form_pairs, parse_json};
}

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri};
use tessera_app::App;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};

pub use error::{ApiError, ApiResult};

pub use config::ServerConfig;
pub use routes::{Access, RouteSpec, route_table};

/// Builds the router over an app with default settings.
pub fn router(app: Arc<App>) -> Router {
    router_with(app, ServerConfig::default())
}

/// Builds the router over an app: the route table, then the layers every request passes
/// (outermost first): request ids, the configuration, the JSON error net, the head limits,
/// panic recovery and the body limit.
pub fn router_with(app: Arc<App>, config: ServerConfig) -> Router {
    // Routes carry their /v2 prefix rather than being nested: nesting rewrites every
    // request's URI (a measurable share of the cheapest authenticated call).
    // Request metrics when a metrics listener is configured (none of their cost otherwise):
    // each route's own layer, which knows its cells without a lookup per request.
    let mut router = Router::new();
    for mut entry in routes::table() {
        if let Some(layer) =
            config.metrics.as_ref().and_then(|m| metrics::Observe::route(m, entry.spec.method, entry.spec.path))
        {
            entry.handler = entry.handler.route_layer(layer);
        }
        router = router.route(entry.spec.path, entry.handler);
    }
    // The admin console's pages (`ui`): HTML, outside /v2 and its OpenAPI document.
    for page in ui::pages() {
        router = router.route(page.path, page.handler);
    }
    let access_log = access::wanted();
    if access_log {
        router = router.route_layer(axum::middleware::from_fn(access::route));
    }
    let router = router
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ))
        }))
        .layer(axum::middleware::from_fn(serve::head_limits))
        .layer(axum::middleware::from_fn(routes::audit::origin))
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::Extension(Arc::new(config)));
    let router = if access_log { router.layer(axum::middleware::from_fn(access::log)) } else { router };
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(RequestIds::new()))
        .with_state(app)
}

/// Request ids without a system call per request: a random per-process prefix and a counter
/// (`3f2a9c1e-000000000000002a`). Unique per process run; a client-sent id is kept.
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl RequestIds {
    fn new() -> Self {
        let r: u32 = rand::random();
        Self { prefix: format!("{r:08x}").into(), next: Arc::new(std::sync::atomic::AtomicU64::new(1)) }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        axum::http::HeaderValue::from_str(&format!("{}-{n:012x}", self.prefix)).ok().map(RequestId::new)
    }
}

pub(crate) async fn healthz(State(app): State<Arc<App>>) -> axum::Json<tessera_api_types::Health> {
    axum::Json(tessera_api_types::Health { status: "ok".into(), store: app.backend().into() })
}

/// `GET /readyz`: 200 when the node can serve, 503 naming the failing check otherwise.
pub(crate) async fn readyz(State(app): State<Arc<App>>) -> (StatusCode, axum::Json<tessera_api_types::Readiness>) {
    use tessera_api_types::{Readiness, ReadinessCheck};
    let found = app.readiness().await;
    let checks = vec![
        ReadinessCheck { name: "store".into(), ok: found.store.is_ok(), message: found.store.err() },
        ReadinessCheck {
            name: "change_feed".into(),
            ok: found.change_feed,
            message: (!found.change_feed).then(|| "the change feed from other nodes is lost; reconnecting".into()),
        },
    ];
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = Readiness { status: if ready { "ready" } else { "not_ready" }.into(), checks };
    (status, axum::Json(body))
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no route for {method} {}", uri.path()))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Serves the API on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let fields = config.max_headers;
    serve::serve(listener, router_with(app, config), fields, None, shutdown).await
}

/// [`serve`] over TLS when `tls` is given (its certificate may be swapped while serving).
pub async fn serve_tls(
    listener: TcpListener,
    app: Arc<App>,
    config: ServerConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let fields = config.max_headers;
    serve::serve(listener, router_with(app, config), fields, tls, shutdown).await
}
