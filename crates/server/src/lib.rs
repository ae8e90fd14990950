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
mod front;
mod json;
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

pub use error::{ApiError, ApiResult};

pub use config::ServerConfig;
pub use routes::{Access, RouteSpec, route_table};

/// The API's service: the router behind its edge ([`front`]), what `serve` answers requests
/// with (and what tests send requests to).
pub type Api = front::Edge<Router>;

/// Builds the API over an app with default settings.
pub fn router(app: Arc<App>) -> Api {
    router_with(app, ServerConfig::default())
}

/// Builds the API over an app: the route table behind one edge layer (request ids, the
/// configuration, head limits, the access log, the audit scope, panic recovery and the JSON
/// error net; see [`front`]), and the body limit.
pub fn router_with(app: Arc<App>, config: ServerConfig) -> Api {
    // Routes carry their /v2 prefix rather than being nested: nesting rewrites every
    // request's URI (a measurable share of the cheapest authenticated call).
    // Request metrics when a metrics listener is configured (none of their cost otherwise):
    // the edge counts each request by its route. The access log's route tag is a route
    // layer, only when the access log is on.
    let access_log = access::wanted();
    let metrics = config.metrics.as_ref().map(metrics::ApiMetrics::for_process);
    let mut router = Router::new();
    for mut entry in routes::table() {
        if access_log {
            entry.handler = entry.handler.route_layer(access::Tag(entry.spec.path));
        }
        router = router.route(entry.spec.path, entry.handler);
    }
    // The admin console's pages (`ui`): HTML, outside /v2 and its OpenAPI document.
    for mut page in ui::pages() {
        if access_log {
            page.handler = page.handler.route_layer(access::Tag(page.path));
        }
        router = router.route(page.path, page.handler);
    }
    let router = router
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .with_state(app);
    front::Edge::new(router, Arc::new(config), access_log, metrics)
}

pub(crate) async fn healthz(State(app): State<Arc<App>>) -> crate::json::Json<tessera_api_types::Health> {
    crate::json::Json(tessera_api_types::Health { status: "ok".into(), store: app.backend().into() })
}

/// `GET /readyz`: 200 when the node can serve, 503 naming the failing check otherwise.
pub(crate) async fn readyz(
    State(app): State<Arc<App>>,
) -> (StatusCode, crate::json::Json<tessera_api_types::Readiness>) {
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
    (status, crate::json::Json(body))
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
