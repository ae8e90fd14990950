//! `ApiError`: the only place an error becomes an HTTP answer, and the net that gives the
//! framework's own refusals (axum's extractor rejections, a body over the limit) the same
//! JSON shape.

use crate::json::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_api_types::{ErrorBody, ErrorDetail};
use tessera_app::AppError;
use tessera_domain::{DomainError, FieldError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds for `Retry-After` (429 and 503 answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None, retry_after: None }
    }
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: message.into(),
            field: Some(field.into()),
            retry_after: None,
        }
    }
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        let message = format!("{}: {}", e.field, e.message);
        ApiError::invalid(e.field, message)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        e.into_field_error().into()
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid(f) => f.into(),
            AppError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            AppError::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m),
            AppError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            AppError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            AppError::Overloaded { message, retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
            },
            AppError::Unavailable(m) => {
                tracing::warn!(error = %m, "store unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store is unavailable; retry shortly")
            }
            AppError::Contended(m) => {
                tracing::warn!(error = %m, "write contended");
                ApiError {
                    retry_after: Some(tessera_app::CONTENDED_RETRY_AFTER_SECS),
                    ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "contended", tessera_app::CONTENDED)
                }
            }
            AppError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(ErrorBody { error: ErrorDetail { code: self.code.into(), message: self.message, field: self.field } }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"tessera\""),
            );
        }
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// The code and a fallback message for a status the framework answered on its own.
fn framework_code(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("invalid_request", "the request is malformed"),
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the body is too large"),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "the request target is too long"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "unsupported content type"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ("headers_too_large", "the request headers are too large"),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid_request", "the request could not be processed"),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("error", "the request failed"),
    }
}

/// Whether an answer is a refusal the framework made itself (not in the JSON error shape),
/// which [`json_errors`] rewrites. Our handlers answer with [`ApiError`]; this catches what
/// axum produces on its own (a path segment that is not UTF-8 answers "Invalid URL…", a body
/// over the limit on a route that reads raw bytes, a missing extension).
pub fn needs_rewrite(res: &Response) -> bool {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return false;
    }
    !res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // STS's XML errors (`routes::sts`) are answers in their own protocol's shape.
        // The console's pages (`ui`) answer their errors as HTML pages.
        .is_some_and(|ct| {
            ct.starts_with("application/json") || ct.starts_with("text/xml") || ct.starts_with("text/html")
        })
}

/// A 413 closes the connection, and says so: the rest of the body is not read.
pub fn close_after_413(mut res: Response) -> Response {
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE {
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// Every 4xx or 5xx this server answers is the JSON error shape: a refusal the framework
/// made itself ([`needs_rewrite`]) is rewritten, keeping its message (and its headers).
pub async fn json_errors(res: Response) -> Response {
    if !needs_rewrite(&res) {
        return close_after_413(res);
    }
    let status = res.status();
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let (code, fallback) = framework_code(status);
    let message = if status.is_server_error() {
        // Internal details stay in the log, never in the answer.
        tracing::error!(status = status.as_u16(), body = %String::from_utf8_lossy(&text), "framework error");
        fallback.to_owned()
    } else {
        let printable: String = String::from_utf8_lossy(&text).chars().filter(|c| !c.is_control()).take(300).collect();
        if printable.trim().is_empty() { fallback.to_owned() } else { printable.trim().to_owned() }
    };
    let mut out = ApiError::new(status, code, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    close_after_413(out)
}

pub type ApiResult<T> = Result<T, ApiError>;
