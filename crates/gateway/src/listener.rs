//! The gateway's listener: HTTP/1.1, or TLS (rustls) with HTTP/2 or HTTP/1.1 by ALPN. hyper
//! runs with limits above the gateway's own (so a request that is too large gets our JSON
//! answer, not hyper's empty one), a deadline for the TLS handshake and the request head
//! (slow clients cannot hold a connection open forever), upgrades (WebSockets) and a
//! graceful stop. Every request carries its connection's facts: the peer, the local
//! address and whether it came over TLS ([`Transport`]).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::Gateway;
use crate::admit::{MAX_HEADER_BYTES, MAX_HEADERS};

/// Hyper's own limits: beyond these hyper answers by itself (431 or 414, without a body).
/// The buffer is well above ours, so a head with too many bytes gets our JSON answer. The
/// field limit is ours exactly, and it is hyper's default (100), so it is not set: hyper sizes
/// the tables it parses every head into by a limit that is set (on the stack up to 100
/// fields, with a heap allocation past that) and fills them slot by slot on every request,
/// while its default tables are taken uninitialised. A request with too many fields gets
/// hyper's 431 without a body over HTTP/1.1 (ours, in JSON, over HTTP/2).
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;
const _: () = assert!(MAX_HEADERS == HYPER_DEFAULT_MAX_HEADERS, "set hyper's max_headers to MAX_HEADERS");
const HYPER_MAX_BUF: usize = MAX_HEADER_BYTES * 32;
/// How long a client may take to send a request head (and, over TLS, to finish the handshake).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The ALPN protocols the gateway's TLS listener offers, preferred first.
pub const ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).max_buf_size(HYPER_MAX_BUF);
    // The same limits for HTTP/2: a header list past hyper's buffer is refused by hyper; ours
    // (far smaller) is answered in JSON by admission.
    b.http2().timer(TokioTimer::new()).max_header_list_size(HYPER_MAX_BUF as u32);
    b
}

/// Serves the gateway on `listener` (over TLS when `tls` is given) until `shutdown`
/// completes, then waits for requests in flight to finish.
pub async fn serve(
    gw: Arc<Gateway>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_tls(gw, listener, None, shutdown).await
}

/// [`serve`], over TLS when `tls` is given.
pub async fn serve_tls(
    gw: Arc<Gateway>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut http = builder();
    // Over TLS, one buffer per write: vectored writes would become one TLS record each.
    http.http1().writev(false);
    // Plain connections speak HTTP/1.1 only (as before); TLS ones what ALPN chose.
    let plain = builder().http1_only();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "the gateway cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let over_tls = tls.is_some();
        let gw = Arc::clone(&gw);
        // The gateway's handler called directly: no router, no per-request extensions (each
        // an allocation), the connection's facts passed as arguments.
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let gw = Arc::clone(&gw);
            async move { Ok::<_, Infallible>(crate::serve_request(&gw, peer, local, over_tls, req.map(Body::new)).await) }
        });
        let watcher = graceful.watcher();
        match &tls {
            None => {
                let conn = plain.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                tokio::spawn(async move {
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, "gateway connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let http = http.clone();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, "gateway connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
