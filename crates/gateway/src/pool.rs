//! Kept-alive HTTP/1.1 connections to one upstream (a service's scheme, host and port): idle
//! senders in a stack, the most recently used first. A request takes one (or connects, over
//! TLS for `https` services), and its connection goes back when the answer's body has been
//! read to its end, with no task spawned per request (as hyper-util's pooled client does).
//! A request that a reused connection could not send (the upstream closed it while idle) is
//! sent again on another. Connections idle for [`IDLE_TIMEOUT`] are closed.

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
use tokio_rustls::TlsConnector;

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
    sender: SendRequest<Body>,
    since: Instant,
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
    sender: SendRequest<Body>,
    pool: Arc<Pool>,
}

impl Lease {
    fn give_back(self) {
        if self.sender.is_closed() {
            return;
        }
        let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.push(Idle { sender: self.sender, since: Instant::now() });
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
    fn checkout(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(i) = idle.pop() {
            if !i.sender.is_closed() && i.since.elapsed() < IDLE_TIMEOUT {
                return Some(i.sender);
            }
        }
        None
    }

    /// Closes the connections idle for longer than [`IDLE_TIMEOUT`], forgets closed ones.
    fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|i| i.since.elapsed() < IDLE_TIMEOUT && !i.sender.is_closed());
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

    async fn connect(self: &Arc<Self>) -> Result<SendRequest<Body>, UpstreamError> {
        let tcp =
            tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect((self.host.as_str(), self.port)))
                .await
                .map_err(|_| {
                    UpstreamError::Connect(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))
                })?
                .map_err(UpstreamError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let sender = match &self.tls {
            None => handshake(TokioIo::new(tcp)).await?,
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), tcp).await.map_err(UpstreamError::Connect)?;
                handshake(TokioIo::new(tls)).await?
            }
        };
        self.start_sweeper();
        Ok(sender)
    }

    /// Sends `req` (its URI in origin form, its `Host` set) on a kept-alive connection, or a
    /// new one. The lease goes back to the pool with [`PooledBody`] or is dropped (upgrades).
    pub async fn request(
        self: &Arc<Self>,
        mut req: Request<Body>,
    ) -> Result<(Response<Incoming>, Lease), UpstreamError> {
        loop {
            let (mut sender, reused) = match self.checkout() {
                Some(s) => (s, true),
                None => (self.connect().await?, false),
            };
            if let Err(e) = sender.ready().await {
                if reused {
                    continue;
                }
                return Err(UpstreamError::Request(e));
            }
            match sender.try_send_request(req).await {
                Ok(res) => return Ok((res, Lease { sender, pool: Arc::clone(self) })),
                Err(mut e) => match e.take_message() {
                    // Not sent: the upstream had closed the idle connection meanwhile.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(UpstreamError::Request(e.into_error())),
                },
            }
        }
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Body>, UpstreamError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(io).await.map_err(UpstreamError::Request)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "an upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// An upstream answer's body, streamed as it comes; its connection goes back to the pool
/// when the body has been read to its end (dropped before that, the connection closes).
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
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
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
