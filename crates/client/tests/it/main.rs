//! The client against a stand-in server (a few lines of axum, not a Tessera component) that
//! answers `503 contended` a set number of times: the client sends the request again after
//! `Retry-After`, a bounded number of times, and sends nothing else again. The same retry
//! against a real server is in testkit's suite (`contention`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_client::{Client, ClientError};

/// A server answering every request with `code` and `retry_after` the first `failures` times,
/// then `204`; and the number of requests it saw.
async fn stand_in(failures: u32, code: &'static str, retry_after: Option<&'static str>) -> (String, Arc<AtomicU32>) {
    let seen = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&seen);
    let app = Router::new().fallback(move || {
        let n = counter.fetch_add(1, SeqCst);
        async move {
            if n >= failures {
                return StatusCode::NO_CONTENT.into_response();
            }
            let body = format!(r#"{{"error":{{"code":"{code}","message":"try again"}}}}"#);
            let mut res: Response =
                (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(secs) = retry_after {
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
            }
            res
        }
    });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn a_contended_write_is_sent_again_after_retry_after_and_succeeds() {
    let (url, seen) = stand_in(2, "contended", Some("1")).await;
    let client = Client::new(url, Some("t".into()));
    let started = Instant::now();
    client.delete_user("u-1").await.expect("the third request succeeds");
    assert_eq!(seen.load(SeqCst), 3);
    assert!(started.elapsed() >= Duration::from_secs(2), "waited Retry-After twice: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_write_contended_beyond_the_retries_answers_the_servers_503() {
    let (url, seen) = stand_in(10, "contended", Some("0")).await;
    let err = Client::new(url, None).delete_user("u-1").await.unwrap_err();
    assert!(err.is_contended(), "{err:?}");
    assert_eq!(seen.load(SeqCst), 1 + tessera_client::CONTENDED_RETRIES);
}

#[tokio::test]
async fn retries_can_be_turned_off() {
    let (url, seen) = stand_in(1, "contended", Some("0")).await;
    let err = Client::new(url, None).with_contended_retries(0).delete_user("u-1").await.unwrap_err();
    assert!(err.is_contended(), "{err:?}");
    assert_eq!(seen.load(SeqCst), 1);
}

#[tokio::test]
async fn other_503s_are_not_sent_again() {
    let (url, seen) = stand_in(1, "unavailable", Some("0")).await;
    let err = Client::new(url, None).delete_user("u-1").await.unwrap_err();
    assert!(matches!(&err, ClientError::Api { status, .. } if status.as_u16() == 503), "{err:?}");
    assert!(!err.is_contended());
    assert_eq!(seen.load(SeqCst), 1);
}
