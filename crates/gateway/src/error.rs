//! The gateway's own answers to errors: the API's JSON shape
//! (`{"error": {"code", "message", "field"?}}`, `Content-Type: application/json`), built
//! without anything that can panic, and marked so the listener can close the connection when
//! the request's body was left unread. Upstream answers never pass through here.

use axum::body::Body;
use axum::http::header::{self, HeaderValue};
use axum::http::{Response, StatusCode};
use tessera_app::AppError;

/// Marks a response the gateway produced itself (as opposed to an upstream's answer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnError;

/// A JSON error in the API's shape.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_error(status, code, message, None)
}

/// A JSON error naming the part of the request it is about.
pub(crate) fn field_error(status: StatusCode, code: &str, message: &str, field: &str) -> Response<Body> {
    json_error(status, code, message, Some(field))
}

fn json_error(status: StatusCode, code: &str, message: &str, field: Option<&str>) -> Response<Body> {
    let mut detail = serde_json::json!({"code": code, "message": message});
    if let Some(f) = field {
        detail["field"] = f.into();
    }
    let mut res = Response::new(Body::from(serde_json::json!({ "error": detail }).to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.extensions_mut().insert(OwnError);
    res
}

/// An application error met outside sign-in (where every refusal reads the same).
pub(crate) fn app_error(e: &AppError) -> Response<Body> {
    match e {
        AppError::Invalid(f) => {
            field_error(StatusCode::BAD_REQUEST, "invalid_request", &format!("{}: {}", f.field, f.message), &f.field)
        }
        AppError::NotFound(m) => error_response(StatusCode::NOT_FOUND, "not_found", m),
        AppError::Unauthorized(m) => error_response(StatusCode::UNAUTHORIZED, "unauthorized", m),
        AppError::Forbidden(m) => error_response(StatusCode::FORBIDDEN, "forbidden", m),
        AppError::Conflict(m) => error_response(StatusCode::CONFLICT, "conflict", m),
        AppError::Overloaded { message, retry_after_secs } => {
            let mut res = error_response(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message);
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            res
        }
        AppError::Unavailable(m) => {
            tracing::warn!(error = %m, "store unavailable");
            error_response(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store is unavailable; retry shortly")
        }
        AppError::Contended(m) => {
            tracing::warn!(error = %m, "write contended");
            let mut res = error_response(StatusCode::SERVICE_UNAVAILABLE, "contended", tessera_app::CONTENDED);
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(tessera_app::CONTENDED_RETRY_AFTER_SECS));
            res
        }
        AppError::Internal(m) => {
            tracing::error!(error = %m, "internal error");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
        }
    }
}

/// A response whose status and headers come from our own code; `location` is checked, so a
/// value built from input can never panic (it falls back to `/`).
pub(crate) fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status;
    let loc = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    res.headers_mut().insert(header::LOCATION, loc);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_have_the_api_shape() {
        let res = field_error(StatusCode::BAD_REQUEST, "bad_path", "no", "path");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        assert!(res.extensions().get::<OwnError>().is_some());
        let body = axum::body::to_bytes(res.into_body(), 1 << 10).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({"error": {"code": "bad_path", "message": "no", "field": "path"}}));
        let body = axum::body::to_bytes(error_response(StatusCode::NOT_FOUND, "x", "y").into_body(), 1 << 10).await;
        let v: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
        assert!(v["error"].get("field").is_none());
    }

    #[test]
    fn a_saturated_password_queue_is_429_with_retry_after() {
        let res = app_error(&AppError::Overloaded { message: "busy".into(), retry_after_secs: 3 });
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "3");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let res = app_error(&AppError::Unavailable("pool timed out on 10.0.0.5".into()));
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_contended_write_is_503_contended_with_retry_after_and_no_store_detail() {
        let res = app_error(&AppError::Contended("40P01: deadlock detected on 10.0.0.5".into()));
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(res.into_body(), 1 << 10).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({"error": {"code": "contended", "message": tessera_app::CONTENDED}}));
    }

    #[test]
    fn a_redirect_built_from_input_never_panics() {
        let res = redirect(StatusCode::SEE_OTHER, "/x\r\nSet-Cookie: a=b");
        assert_eq!(res.headers()[header::LOCATION], "/");
        assert_eq!(redirect(StatusCode::SEE_OTHER, "/ok").headers()[header::LOCATION], "/ok");
    }
}
