//! The edge: the one hand-written layer every API request passes before routing, and every
//! answer after it. In order:
//!
//! 1. the request id (a client-sent `X-Request-Id` is kept, else one is made), echoed on the
//!    answer;
//! 2. the request's context (peer, client address, the server's configuration, the access
//!    line's slot) as one request extension for the extractors;
//! 3. the head limits (target, header fields and bytes, declared body length): a request over
//!    one is refused in JSON, and its connection closed, before routing;
//! 4. the access log's slot, when the access log is on, and the request's route metrics,
//!    when metrics are on (counted here, by the route the request is routed to);
//! 5. the audit scope (client address and request id for the events a change causes);
//! 6. panic recovery: a handler that panics answers a JSON 500, and the server keeps serving;
//! 7. the JSON error net ([`crate::error::json_errors`]) for refusals the framework makes itself.
//!
//! These were seven tower and axum layers. Each of those boxed its future and cloned a boxed
//! service per request; together they were a quarter of the allocations of the cheapest
//! authenticated call. Here they are one service whose future is a plain state machine: no
//! allocation of its own on the way of a request that succeeds.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::access;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::extract::{MAX_BODY, RequestContext};

/// The request id header, read from the client and echoed on every answer.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the edge needs for every request, shared by all clones of the service.
struct Shared {
    config: Arc<ServerConfig>,
    ids: RequestIds,
    access_log: bool,
    metrics: Option<&'static crate::metrics::ApiMetrics>,
}

/// The edge around `S` (the router): see the module documentation.
pub struct Edge<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for Edge<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), shared: Arc::clone(&self.shared) }
    }
}

impl<S> Edge<S> {
    pub(crate) fn new(
        inner: S,
        config: Arc<ServerConfig>,
        access_log: bool,
        metrics: Option<&'static crate::metrics::ApiMetrics>,
    ) -> Self {
        Self { inner, shared: Arc::new(Shared { config, ids: RequestIds::new(), access_log, metrics }) }
    }
}

/// Request ids without a system call or a formatting pass per request: a random per-process
/// prefix and a counter (`3f2a9c1e-00000000002a`). Unique per process run.
struct RequestIds {
    prefix: [u8; 8],
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let mut prefix = [0u8; 8];
        hex_into(u64::from(rand::random::<u32>()), &mut prefix);
        Self { prefix, next: AtomicU64::new(1) }
    }

    fn make(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 21];
        id[..8].copy_from_slice(&self.prefix);
        id[8] = b'-';
        hex_into(n, &mut id[9..]);
        HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

/// Writes the low `4 * out.len()` bits of `n` as lowercase hex, most significant first.
fn hex_into(mut n: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n & 0xf) as usize];
        n >>= 4;
    }
}

impl<S, B> tower::Service<Request<B>> for Edge<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    /// A request as hyper hands it over carries no peer: [`Edge::call_from`] is what the
    /// listener calls. This is for in-process callers, which may name the peer the axum way.
    fn call(&mut self, req: Request<B>) -> Self::Future {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        self.call_from(peer, req)
    }
}

impl<S> Edge<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
{
    /// Serves a request that came from `peer`.
    pub fn call_from<B>(&mut self, peer: Option<SocketAddr>, req: Request<B>) -> EdgeFuture<S::Future>
    where
        B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let mut req = req.map(Body::new);
        let shared = &*self.shared;
        // A made id is not added to the request's headers (that would grow hyper's exactly
        // sized header table): what needs it reads it from the audit scope.
        let request_id = req
            .headers()
            .get(&X_REQUEST_ID)
            .filter(|v| tessera_domain::audit::is_plain_request_id(v.as_bytes()))
            .cloned()
            .unwrap_or_else(|| shared.ids.make());
        let mut context = RequestContext::new(peer, req.headers(), Arc::clone(&shared.config));
        // The id as the audit trail keeps it (the access line reads the same from the header).
        let id_text = id_text(&request_id).to_owned();
        let log = shared.access_log.then(|| {
            let slot = Arc::new(access::Slot::default());
            context.slot = Some(Arc::clone(&slot));
            access::Pending::new(slot, req.method().clone(), request_id.clone())
        });
        let ip = context.client;
        req.extensions_mut().insert(context);
        let mut tail = Tail { request_id, log, observed: None };
        if let Some(refusal) = head_limits(&req, &shared.config) {
            return EdgeFuture::Done { res: Some(tail.finish(refusal)) };
        }
        // Counted by the route the router will pick (a request over a head limit never
        // reaches one), timed from here to the answer.
        tail.observed = shared
            .metrics
            .and_then(|m| m.route_of(req.method().as_str(), req.uri().path()))
            .map(|cells| (cells, Instant::now()));
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(fut) => EdgeFuture::Inner { fut: tessera_app::audit::request_scope(ip, id_text, fut), tail: Some(tail) },
            Err(_) => EdgeFuture::Done { res: Some(tail.finish(panicked())) },
        }
    }
}

/// The longest client-sent request id the audit trail and the access log keep.
pub const MAX_REQUEST_ID: usize = 128;

/// A request id as the audit trail and the access log keep it: text, at most
/// [`MAX_REQUEST_ID`] characters (a header value that is text at all is visible ASCII, so
/// bytes are characters); empty when it is not text.
pub fn id_text(id: &HeaderValue) -> &str {
    id.to_str().map_or("", |s| &s[..s.len().min(MAX_REQUEST_ID)])
}

/// What is left to do on the answer: echo the request id, write the access line, count the
/// answer in its route's metrics.
pub struct Tail {
    request_id: HeaderValue,
    log: Option<access::Pending>,
    observed: Option<(&'static crate::metrics::RouteCells, Instant)>,
}

impl Tail {
    fn finish(self, mut res: Response) -> Response {
        if let Some((cells, started)) = self.observed {
            cells.observe(res.status().as_u16(), started.elapsed().as_secs_f64());
        }
        if let Some(log) = self.log {
            log.write(res.status());
        }
        res.headers_mut().entry(X_REQUEST_ID.clone()).or_insert(self.request_id);
        res
    }
}

pin_project_lite::pin_project! {
    /// The edge's future: the routed request in its audit scope, then the answer's fix-ups.
    #[project = State]
    pub enum EdgeFuture<F: Future> {
        Inner { #[pin] fut: tessera_app::audit::RequestScope<F>, tail: Option<Tail> },
        /// A framework refusal being rewritten into the JSON error shape (rare: it reads the body).
        Rewrite { fut: Pin<Box<dyn Future<Output = Response> + Send>>, tail: Option<Tail> },
        Done { res: Option<Response> },
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                State::Inner { fut, tail } => {
                    let res = match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(Ok(res))) => res,
                        Err(_) => panicked(),
                    };
                    let tail = tail.take();
                    if crate::error::needs_rewrite(&res) {
                        let fut = Box::pin(crate::error::json_errors(res));
                        self.set(EdgeFuture::Rewrite { fut, tail });
                        continue;
                    }
                    let res = crate::error::close_after_413(res);
                    return Poll::Ready(Ok(match tail {
                        Some(tail) => tail.finish(res),
                        None => res,
                    }));
                }
                State::Rewrite { fut, tail } => {
                    let res = ready!(fut.as_mut().poll(cx));
                    return Poll::Ready(Ok(match tail.take() {
                        Some(tail) => tail.finish(res),
                        None => res,
                    }));
                }
                State::Done { res } => {
                    return Poll::Ready(Ok(res.take().unwrap_or_else(panicked)));
                }
            }
        }
    }
}

/// The answer to a handler that panicked: a JSON 500 that says nothing of why (the panic's
/// message goes to the log through the panic hook).
fn panicked() -> Response {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error").into_response()
}

/// Refuses a request whose target, header block or declared body is over the limit, in the
/// JSON shape, and closes the connection after it (the rest of the head or body is not read).
fn head_limits(req: &Request<Body>, config: &ServerConfig) -> Option<Response> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > config.max_uri_bytes {
        return Some(close(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is {target} bytes; at most {} are accepted", config.max_uri_bytes),
        )));
    }
    let fields = req.headers().len();
    let bytes: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if fields > config.max_headers || bytes > config.max_header_bytes {
        return Some(close(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request carries {fields} header fields in {bytes} bytes; at most {} fields and {} bytes are \
                 accepted",
                config.max_headers, config.max_header_bytes
            ),
        )));
    }
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        // Refused before a byte of the body is read.
        return Some(close(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds {MAX_BODY} bytes"),
        )));
    }
    None
}

fn close(e: ApiError) -> Response {
    let mut res = e.into_response();
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    /// An edge over `inner`, with the default configuration and no access log.
    fn edge<S>(inner: S) -> Edge<S> {
        Edge::new(inner, Arc::new(ServerConfig::default()), false, None)
    }

    async fn body_json(res: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn ok(_: Request<Body>) -> std::future::Ready<Result<Response, Infallible>> {
        std::future::ready(Ok(Response::new(Body::from("fine"))))
    }

    #[tokio::test]
    async fn every_answer_carries_a_request_id_and_a_clients_own_is_kept() {
        let res = edge(tower::service_fn(ok)).oneshot(Request::new(Body::empty())).await.unwrap();
        let made = res.headers()[&X_REQUEST_ID].to_str().unwrap().to_owned();
        assert_eq!(made.len(), 21, "{made}");
        let req = Request::builder().header("x-request-id", "client-7").body(Body::empty()).unwrap();
        let res = edge(tower::service_fn(ok)).oneshot(req).await.unwrap();
        assert_eq!(res.headers()[&X_REQUEST_ID], "client-7");
        // An id that could forge a text log line's fields is replaced, not echoed.
        for forged in ["x status=500", "a\"b", "a\tb"] {
            let req = Request::builder().header("x-request-id", forged).body(Body::empty()).unwrap();
            let res = edge(tower::service_fn(ok)).oneshot(req).await.unwrap();
            let id = res.headers()[&X_REQUEST_ID].to_str().unwrap();
            assert!(id != forged && id.len() == 21, "{forged:?} answered {id:?}");
        }
    }

    #[tokio::test]
    async fn a_handler_that_panics_answers_a_json_500_and_the_service_keeps_serving() {
        let panics_when_polled = tower::service_fn(|req: Request<Body>| async move {
            if req.uri().path() == "/boom" {
                panic!("a bug in a handler");
            }
            Ok::<_, Infallible>(Response::new(Body::from("fine")))
        });
        let api = edge(panics_when_polled);
        let res = api.clone().oneshot(Request::builder().uri("/boom").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(res.headers().contains_key(&X_REQUEST_ID));
        let body = body_json(res).await;
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("a bug"), "the panic's message stays out of the answer: {body}");
        let res = api.oneshot(Request::builder().uri("/fine").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_panic_while_building_the_future_is_caught_too() {
        #[derive(Clone)]
        struct PanicsInCall;
        impl tower::Service<Request<Body>> for PanicsInCall {
            type Response = Response;
            type Error = Infallible;
            type Future = std::future::Ready<Result<Response, Infallible>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request<Body>) -> Self::Future {
                panic!("a bug before the first poll")
            }
        }
        let res = edge(PanicsInCall).oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_json(res).await["error"]["code"], "internal");
    }

    #[tokio::test]
    async fn a_framework_refusal_in_plain_text_becomes_the_json_shape_with_its_message() {
        let plain = tower::service_fn(|_: Request<Body>| async {
            let mut res = Response::new(Body::from("Invalid URL: not UTF-8"));
            *res.status_mut() = StatusCode::BAD_REQUEST;
            Ok::<_, Infallible>(res)
        });
        let res = edge(plain).oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(res.headers().contains_key(&X_REQUEST_ID));
        let body = body_json(res).await;
        assert_eq!(body["error"]["code"], "invalid_request");
        assert_eq!(body["error"]["message"], "Invalid URL: not UTF-8");
    }

    #[tokio::test]
    async fn an_oversized_head_is_refused_before_the_inner_service_sees_it() {
        let seen = Arc::new(AtomicU64::new(0));
        let counted = seen.clone();
        let inner = tower::service_fn(move |_: Request<Body>| {
            counted.fetch_add(1, Ordering::Relaxed);
            std::future::ready(Ok::<_, Infallible>(Response::new(Body::empty())))
        });
        let long = format!("/{}", "a".repeat(ServerConfig::default().max_uri_bytes + 1));
        let res = edge(inner).oneshot(Request::builder().uri(long).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::URI_TOO_LONG);
        assert_eq!(res.headers()[header::CONNECTION], "close");
        assert_eq!(body_json(res).await["error"]["code"], "uri_too_long");
        assert_eq!(seen.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn request_ids_are_the_prefix_a_dash_and_a_counter_in_hex() {
        let ids = RequestIds::new();
        let (a, b) = (ids.make(), ids.make());
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        assert_eq!(a.len(), 21);
        assert_eq!(&a[..9], &b[..9], "one prefix per process");
        assert_eq!(&a[8..9], "-");
        assert_eq!(u64::from_str_radix(&a[9..], 16).unwrap() + 1, u64::from_str_radix(&b[9..], 16).unwrap());
    }

    #[test]
    fn hex_keeps_leading_zeros() {
        let mut out = [0u8; 6];
        hex_into(0x2a, &mut out);
        assert_eq!(&out, b"00002a");
    }
}
