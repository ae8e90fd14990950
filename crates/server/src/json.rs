//! `Json`: a JSON answer, written into a buffer sized for a typical answer.
//!
//! axum's own `Json` starts from 128 bytes and grows by doubling: a 600-byte session view
//! (`GET /v2/sessions/current`, the call every client makes) reallocated and copied itself
//! three times on every answer. This one starts at [`INITIAL`] bytes, enough for every single
//! resource view; lists grow from there as before.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The buffer a JSON answer starts with.
const INITIAL: usize = 1024;

/// A JSON answer (`Content-Type: application/json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut buf = Vec::with_capacity(INITIAL);
        match serde_json::to_writer(&mut buf, &self.0) {
            Ok(()) => {
                let mut res = Response::new(axum::body::Body::from(buf));
                res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                res
            }
            Err(e) => {
                // Only a map with non-string keys or a failing `Serialize` impl: a bug of ours.
                tracing::error!(error = %e, "cannot serialize an answer");
                let mut res = Response::new(axum::body::Body::from(
                    r#"{"error":{"code":"internal","message":"internal error"}}"#,
                ));
                *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                res
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_the_value_as_json_with_its_content_type() {
        let res = Json(serde_json::json!({"allowed": true, "n": [1, 2]})).into_response();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        assert_eq!(&bytes[..], br#"{"allowed":true,"n":[1,2]}"#);
    }

    #[tokio::test]
    async fn an_answer_that_cannot_be_serialized_is_a_json_500() {
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), "a map with non-string keys");
        let res = Json(bad).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"]["code"], "internal");
    }
}
