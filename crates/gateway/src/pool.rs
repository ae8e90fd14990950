//! Kept-alive HTTP/1.1 connections to one upstream (a service's scheme, host and port): idle
//! connections in a stack, the most recently used first. A request takes one (or connects,
//! over TLS for `https` services), and its connection goes back when the answer's body has
//! been read to its end, with no task spawned per request (as hyper-util's pooled client
//! does). A request that a reused connection could not send (the upstream closed it while
//! idle) is sent again on another. Connections idle for [`IDLE_TIMEOUT`] are closed.
//!
//! An upstream connection has no task of its own: the request holding it drives it (writes
//! the request and reads the answer's head while waiting for it, then reads its body as the
//! listener asks [`PooledBody`] for it), so a proxied request wakes one task instead of two
//! handing it over to each other. Only a WebSocket upgrade gives its connection a task,
//! which hyper needs to hand the upgraded connection over.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long a connection may stay idle in the pool before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The pool of one upstream.
pub struct Pool {
    host: String,
    port: u16,
    connect_timeout: Duration,
    /// `https` services: the TLS client (HTTP/1.1 by ALPN) and the name verified.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    idle: Mutex<Vec<Idle>>,
    /// Whether the idle sweeper runs (started with the first connection).
    sweeping: std::sync::atomic::AtomicBool,
}

struct Idle {
    up: Upstream,
    since: Instant,
}

/// An upstream connection's socket: plain TCP, or TLS for `https` services.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Connection = http1::Connection<TokioIo<Stream>, Body>;

/// One upstream connection: the sender requests go in by, and the connection itself, driven
/// by whichever task holds it (`None` once it has ended, or when a task of its own drives it).
struct Upstream {
    sender: SendRequest<Body>,
    conn: Option<Connection>,
}

impl Upstream {
    /// Lets the connection make progress: write what was sent, read what came. An ended
    /// connection is dropped, which hands a request it never wrote back to its sender.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(conn) = &mut self.conn
            && let Poll::Ready(ended) = Pin::new(conn).poll(cx)
        {
            if let Err(e) = ended {
                tracing::debug!(error = %e, "an upstream connection ended with an error");
            }
            self.conn = None;
        }
    }

    /// Whether no further request may go on this connection.
    fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Hands the connection to a task of its own, polled with upgrades (hyper hands an
    /// upgraded connection over only from there).
    fn spawn(&mut self) {
        if let Some(conn) = self.conn.take() {
            tokio::spawn(async move {
                if let Err(e) = conn.with_upgrades().await {
                    tracing::debug!(error = %e, "an upstream connection ended with an error");
                }
            });
        }
    }

    /// Waits until the connection takes a request, driving it meanwhile.
    async fn ready(&mut self) -> hyper::Result<()> {
        poll_fn(|cx| {
            self.drive(cx);
            self.sender.poll_ready(cx)
        })
        .await
    }

    /// Drives the connection until `f` (an answer on it) is ready.
    async fn driving<F: Future>(&mut self, f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        poll_fn(|cx| {
            self.drive(cx);
            f.as_mut().poll(cx)
        })
        .await
    }
}

/// Why an upstream request failed.
#[derive(Debug)]
pub enum UpstreamError {
    /// Connecting failed: TCP (refused, unreachable, timed out) or the TLS handshake.
    Connect(std::io::Error),
    /// The connection failed while the request was sent or its answer's head read.
    Request(hyper::Error),
}

impl UpstreamError {
    pub fn is_connect(&self) -> bool {
        matches!(self, UpstreamError::Connect(_))
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Connect(_) => f.write_str("cannot connect to the upstream"),
            UpstreamError::Request(_) => f.write_str("the upstream request failed"),
        }
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamError::Connect(e) => Some(e),
            UpstreamError::Request(e) => Some(e),
        }
    }
}

/// A connection lent to one request: back to its pool when the answer has been read.
pub struct Lease {
    up: Upstream,
    pool: Arc<Pool>,
}

impl Lease {
    fn give_back(self) {
        if self.up.is_closed() {
            return;
        }
        let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.push(Idle { up: self.up, since: Instant::now() });
    }
}

impl Pool {
    /// The pool for `authority` (`host:port`); `tls` for an `https` service.
    pub fn new(authority: &str, connect_timeout: Duration, tls: Option<Arc<ClientConfig>>) -> Self {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().unwrap_or(80)),
            None => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let tls = tls.and_then(|config| {
            let mut config = ClientConfig::clone(&config);
            // HTTP/1.1 upstream (as Kong's), which upgrades need.
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(host.clone()).ok()?;
            Some((TlsConnector::from(Arc::new(config)), name))
        });
        Self {
            host,
            port,
            connect_timeout,
            tls,
            idle: Mutex::new(vec![]),
            sweeping: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// An idle connection that is still open, most recently used first.
    fn checkout(&self) -> Option<Upstream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(i) = idle.pop() {
            if !i.up.is_closed() && i.since.elapsed() < IDLE_TIMEOUT {
                return Some(i.up);
            }
        }
        None
    }

    /// Closes the connections idle for longer than [`IDLE_TIMEOUT`], forgets closed ones.
    fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|i| i.since.elapsed() < IDLE_TIMEOUT && !i.up.is_closed());
    }

    fn start_sweeper(self: &Arc<Self>) {
        if self.sweeping.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let pool: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(IDLE_TIMEOUT / 2).await;
                let Some(pool) = pool.upgrade() else { return };
                pool.sweep();
            }
        });
    }

    async fn connect(self: &Arc<Self>) -> Result<Upstream, UpstreamError> {
        let tcp =
            tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect((self.host.as_str(), self.port)))
                .await
                .map_err(|_| {
                    UpstreamError::Connect(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))
                })?
                .map_err(UpstreamError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => {
                Stream::Tls(Box::new(connector.connect(name.clone(), tcp).await.map_err(UpstreamError::Connect)?))
            }
        };
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(UpstreamError::Request)?;
        self.start_sweeper();
        Ok(Upstream { sender, conn: Some(conn) })
    }

    /// Sends `req` (its URI in origin form, its `Host` set) on a kept-alive connection, or a
    /// new one. The lease goes back to the pool with [`PooledBody`] or is dropped (an
    /// `upgrade`, whose connection is then driven by a task of its own).
    pub async fn request(
        self: &Arc<Self>,
        mut req: Request<Body>,
        upgrade: bool,
    ) -> Result<(Response<Incoming>, Lease), UpstreamError> {
        loop {
            let (mut up, reused) = match self.checkout() {
                Some(up) => (up, true),
                None => (self.connect().await?, false),
            };
            if upgrade {
                up.spawn();
            }
            if let Err(e) = up.ready().await {
                if reused {
                    continue;
                }
                return Err(UpstreamError::Request(e));
            }
            let sent = up.sender.try_send_request(req);
            match up.driving(sent).await {
                Ok(res) => return Ok((res, Lease { up, pool: Arc::clone(self) })),
                Err(mut e) => match e.take_message() {
                    // Not sent: the upstream had closed the idle connection meanwhile.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(UpstreamError::Request(e.into_error())),
                },
            }
        }
    }
}

/// An upstream answer's body, streamed as it comes (reading it drives its connection); the
/// connection goes back to the pool when the body has been read to its end (dropped before
/// that, the connection closes).
pub struct PooledBody {
    inner: Incoming,
    lease: Option<Lease>,
}

impl PooledBody {
    pub fn new(inner: Incoming, lease: Lease) -> Self {
        let mut body = Self { inner, lease: Some(lease) };
        if body.inner.is_end_stream() {
            body.release();
        }
        body
    }

    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.give_back();
        }
    }
}

impl HttpBody for PooledBody {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut polled = Pin::new(&mut self.inner).poll_frame(cx);
        // Nothing read yet: the connection reads the body into `inner` when driven (by this task).
        if polled.is_pending()
            && let Some(lease) = &mut self.lease
        {
            lease.up.drive(cx);
            polled = Pin::new(&mut self.inner).poll_frame(cx);
        }
        match &polled {
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(),
            Poll::Ready(Some(Err(_))) => self.lease = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
