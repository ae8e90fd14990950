//! Tessera's HTTP API: the `/v2` routes, their extractors and the error mapping.
//!
//! Handlers are thin: parse at the edge (`extract`, `convert`), call one `App` method, and
//! render the answer. [`ApiError`] is the only place an error becomes a status code.

pub mod config;
mod convert;
pub mod error;
mod extract;
mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri};
use axum::routing::{get, post};
use tessera_app::App;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};

pub use error::{ApiError, ApiResult};

use routes::{assumed, iam, sessions};

pub use config::ServerConfig;

/// Builds the router over an app with default settings.
pub fn router(app: Arc<App>) -> Router {
    router_with(app, ServerConfig::default())
}

/// Builds the router over an app.
pub fn router_with(app: Arc<App>, config: ServerConfig) -> Router {
    let v2 = Router::new()
        .route("/v2/users", get(iam::list_users).post(iam::create_user))
        .route("/v2/users/{user_id}", get(iam::get_user).patch(iam::update_user).delete(iam::delete_user))
        .route("/v2/users/{user_id}/apikeys", get(iam::list_api_keys).post(iam::create_api_key))
        .route("/v2/users/{user_id}/apikeys/{apikey_id}", axum::routing::delete(iam::delete_api_key))
        .route("/v2/users/{user_id}/policies", get(iam::list_user_policies))
        .route("/v2/groups", get(iam::list_groups).post(iam::create_group))
        .route("/v2/groups/{group_id}", get(iam::get_group).put(iam::update_group).delete(iam::delete_group))
        .route("/v2/groups/{group_id}/members", get(iam::list_members).post(iam::add_member))
        .route("/v2/groups/{group_id}/members/{user_id}", axum::routing::delete(iam::remove_member))
        .route("/v2/groups/{group_id}/policies", get(iam::list_group_policies))
        .route("/v2/policies", get(iam::list_policies).post(iam::create_policy))
        .route("/v2/policies/{policy_id}", get(iam::get_policy).put(iam::update_policy).delete(iam::delete_policy))
        .route("/v2/policies/{policy_id}/users", get(iam::list_policy_users))
        .route("/v2/policies/{policy_id}/users/{user_id}", post(iam::attach_user).delete(iam::detach_user))
        .route("/v2/policies/{policy_id}/groups", get(iam::list_policy_groups))
        .route("/v2/policies/{policy_id}/groups/{group_id}", post(iam::attach_group).delete(iam::detach_group))
        .route("/v2/roles", get(iam::list_roles).post(iam::create_role))
        .route("/v2/roles/{role_id}", get(iam::get_role).put(iam::update_role).delete(iam::delete_role))
        .route("/v2/roles/{role_id}/policies", get(iam::list_role_policies))
        .route(
            "/v2/roles/{role_id}/policies/{policy_id}",
            post(iam::attach_role_policy).delete(iam::detach_role_policy),
        )
        .route("/v2/role-trusts", get(iam::list_trusts).post(iam::create_trust))
        .route("/v2/role-trusts/by-role/{role_id}", get(iam::list_trusts_by_role))
        .route("/v2/role-trusts/{role_trust_id}", get(iam::get_trust).put(iam::update_trust).delete(iam::delete_trust))
        .route("/v2/assumed-roles/assume", post(assumed::assume))
        .route("/v2/assumed-roles/users/{user_id}/sessions", get(assumed::list_for_user))
        .route("/v2/assumed-roles/{session_id}", get(assumed::get).delete(assumed::revoke))
        .route("/v2/sessions", post(sessions::sign_in))
        .route("/v2/sessions/current", get(sessions::current).delete(sessions::sign_out))
        .route("/v2/iam/sessions", get(sessions::query))
        .route("/v2/iam/sessions/{moid}", get(sessions::get).delete(sessions::terminate))
        .route("/v2/iam/session-limits", get(sessions::get_limits).put(sessions::put_limits))
        .route("/v2/users/{user_id}/sessions", axum::routing::delete(sessions::terminate_user))
        .route("/v2/users/{user_id}/login-lock", get(sessions::get_lock).delete(sessions::clear_lock))
        .route("/v2/oauth2/introspect", post(sessions::introspect))
        .route("/v2/auth/forward", axum::routing::any(sessions::forward_auth))
        .route("/v2/auth/check", get(sessions::check))
        .merge(routes::gateway::routes());

    Router::new()
        .route("/healthz", get(healthz))
        // Routes carry their /v2 prefix rather than being nested: nesting rewrites every
        // request's URI (a measurable share of the cheapest authenticated call).
        .merge(v2)
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .layer(axum::Extension(Arc::new(config)))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ))
        }))
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

async fn healthz(State(app): State<Arc<App>>) -> axum::Json<tessera_api_types::Health> {
    axum::Json(tessera_api_types::Health { status: "ok".into(), store: app.store().backend().into() })
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
    let service = router_with(app, config).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown).await
}
