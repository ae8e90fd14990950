//! The listener: HTTP/1.1 connections (over TLS when configured: the handshake has the head's
//! deadline) served by hyper with limits set so that this server, not hyper, answers an
//! oversized request head, in the JSON error shape.
//!
//! hyper refuses a request head it cannot buffer (431), with more header fields than it has
//! room for (431) or with a target over 64 KiB (414) by itself, with an empty body, before
//! any of our code runs. So hyper's byte limits are set well above ours: its buffer holds a
//! [`HEAD_BUFFER`] head, and the edge (`crate::front`) refuses anything past the configured (much
//! smaller) limits with a JSON answer.
//!
//! Header *fields* are the exception: hyper sizes the table it parses a head into by its
//! field limit, on every request, inline up to [`HYPER_INLINE_FIELDS`] and with a heap
//! allocation past it. A limit of 2 048 fields (what this listener had) made that table the
//! largest single cost of the cheapest authenticated call (13 % of its CPU in `perf`, in
//! `SmallVec::from_elem`). So hyper's field limit is the configured limit when it is above
//! [`HYPER_INLINE_FIELDS`] (a request over it gets hyper's bare 431), and hyper's default of
//! [`HYPER_INLINE_FIELDS`], left unset, otherwise (a request between the two gets our JSON
//! 431). Either way the status is 431 and nothing past the limit reaches a handler.
use std::future::Future;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::Api;

/// The largest request head hyper buffers; past it hyper answers a bare 431 and closes.
pub const HEAD_BUFFER: usize = 1024 * 1024;
/// How many header fields hyper parses into a table on the stack (hyper's default); a larger
/// limit costs a heap allocation on every request.
pub const HYPER_INLINE_FIELDS: usize = 100;

/// hyper's field limit for a configured limit of `configured` fields (see the module doc):
/// `None` for hyper's default of [`HYPER_INLINE_FIELDS`]. Even a limit equal to the default,
/// once set, makes hyper fill its two 100-slot tables slot by slot on every request (1–2 % of
/// the cheapest call's CPU); left unset, they are taken uninitialised.
pub fn hyper_fields(configured: usize) -> Option<usize> {
    (configured > HYPER_INLINE_FIELDS).then_some(configured)
}
/// A client has this long to send a whole request head (slow-loris connections are closed).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `api` on `listener` (over TLS when `tls` is given) until `shutdown` resolves,
/// then lets in-flight requests finish (idle connections close at once).
pub async fn serve(
    listener: TcpListener,
    api: Api,
    max_fields: usize,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_buf_size(HEAD_BUFFER).timer(TokioTimer::new()).header_read_timeout(HEAD_TIMEOUT);
    if let Some(fields) = hyper_fields(max_fields) {
        http.max_headers(fields);
    }
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the connections we have.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let api = api.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            // The router is always ready (its `poll_ready` answers at once): call it directly.
            api.clone().call_from(Some(peer), req)
        });
        let Some(acceptor) = &tls else {
            let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
            });
            continue;
        };
        let (acceptor, http, watcher) = (acceptor.clone(), http.clone(), graceful.watcher());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            if let Err(e) = watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
