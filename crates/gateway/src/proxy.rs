//! Forwarding one request upstream: streamed bodies both ways, kept-alive upstream
//! connections (plain, or TLS to `https` services with their certificate verified),
//! WebSocket upgrades (both sides upgraded, then bytes copied both ways), `X-Forwarded-*`
//! rebuilt from what the gateway decided about the client, and 502/504 answers when the
//! upstream fails or is slow. The request arrives admitted: its URI is the normalised path,
//! and no header the gateway owns is left from the client.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::header::{self, HeaderValue};
use axum::http::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use crate::admit::{self, WebSocketUpgrade, strip_hop_by_hop};
use crate::error::error_response;
use crate::metrics::{Failure, UpstreamMetrics};
use crate::pool::{Pool, PooledBody};
use crate::table::{Matched, upstream_path};
use crate::verify::{DepthLimited, NoVerifier};

/// The kept-alive connections to one upstream.
pub type HttpClient = Arc<Pool>;

/// How the gateway verifies `https` services by default: against Mozilla's root certificates
/// (webpki-roots, the set reqwest uses), or against a configured CA bundle instead
/// (`--gateway-upstream-ca`). A service with `ca_certificates` is verified against those
/// instead ([`Roots::Cas`]); one with `tls_verify_depth` through at most that many
/// intermediate CAs; one with `tls_verify = false` is not verified.
#[derive(Clone)]
pub struct UpstreamTls {
    roots: Arc<RootCertStore>,
    /// The TLS client for the default roots without a depth, the most common trust: built
    /// once, shared by every table.
    verified: Arc<ClientConfig>,
    unverified: Arc<ClientConfig>,
    /// Where the roots came from, for logs.
    from: String,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls").field("roots", &self.from).finish()
    }
}

impl Default for UpstreamTls {
    /// Mozilla's roots.
    fn default() -> Self {
        static SYSTEM: OnceLock<UpstreamTls> = OnceLock::new();
        SYSTEM
            .get_or_init(|| {
                let roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
                Self::with_roots(roots, "Mozilla's root certificates".into())
            })
            .clone()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
}

/// A TLS client verifying against `roots`, through at most `depth` intermediate CAs when given.
/// ALPN is set by the connector: HTTP/1.1 upstream (as Kong's), which upgrades need.
fn verified_config(roots: Arc<RootCertStore>, depth: Option<u8>) -> ClientConfig {
    match depth.and_then(|d| DepthLimited::new(Arc::clone(&roots), provider(), d)) {
        Some(limited) => builder().dangerous().with_custom_certificate_verifier(Arc::new(limited)),
        None => builder().with_root_certificates(roots),
    }
    .with_no_client_auth()
}

impl UpstreamTls {
    /// Trusts only the CA certificates of a PEM bundle; the error names the file.
    pub fn from_pem_file(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&bytes) {
            let cert = cert.map_err(|e| format!("{} is not a PEM certificate bundle: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("a certificate in {} cannot be a trust anchor: {e}", path.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        Ok(Self::with_roots(roots, path.display().to_string()))
    }

    fn with_roots(roots: RootCertStore, from: String) -> Self {
        let roots = Arc::new(roots);
        let verified = verified_config(Arc::clone(&roots), None);
        let unverified = builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerifier(provider())))
            .with_no_client_auth();
        Self { roots, verified: Arc::new(verified), unverified: Arc::new(unverified), from }
    }
}

/// Whom an `https` service's certificate must chain to, and through how many intermediate
/// CAs: the key of the TLS clients and of the connection pools, so services that verify
/// differently never share a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Trust {
    /// `tls_verify = false` (any `tls_verify_depth` is moot).
    Unverified,
    /// Verified against `roots`; with `depth` (`tls_verify_depth`), through at most that many
    /// intermediate CA certificates; without, webpki's own bound alone.
    Verified { roots: Roots, depth: Option<u8> },
}

/// The trust anchors of a verified `https` service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Roots {
    /// The gateway's roots: Mozilla's, or `--gateway-upstream-ca`.
    Default,
    /// Exactly these CA certificates (DER) of the service's `ca_certificates`, and nothing
    /// else; one the table could not find or read is left out (verified against fewer CAs,
    /// never against more).
    Cas(Vec<Vec<u8>>),
}

impl UpstreamTls {
    /// The TLS client for `trust`. Built when a table is (once per trust), never per request.
    pub fn config(&self, trust: &Trust) -> Arc<ClientConfig> {
        let (roots, depth) = match trust {
            Trust::Unverified => return Arc::clone(&self.unverified),
            Trust::Verified { roots: Roots::Default, depth: None } => return Arc::clone(&self.verified),
            Trust::Verified { roots, depth } => (roots, *depth),
        };
        let roots = match roots {
            Roots::Default => Arc::clone(&self.roots),
            Roots::Cas(ders) => {
                let mut roots = RootCertStore::empty();
                for der in ders {
                    // The API stored only certificates that are valid trust anchors.
                    if let Err(e) = roots.add(CertificateDer::from(der.as_slice()).into_owned()) {
                        tracing::warn!(error = %e, "a CA certificate cannot be a trust anchor; left out");
                    }
                }
                Arc::new(roots)
            }
        };
        Arc::new(verified_config(roots, depth))
    }
}

/// The connection pool for one upstream (`authority`, over TLS when `config` is given):
/// `connect_timeout` for the TCP connection.
pub fn client(authority: &str, connect_timeout: std::time::Duration, config: Option<Arc<ClientConfig>>) -> HttpClient {
    Arc::new(Pool::new(authority, connect_timeout, config))
}

/// The upstream request target (origin form): the route's service path, and the
/// (normalised) path Kong's way.
fn target(matched: &Matched<'_>, uri: &Uri) -> Option<Uri> {
    let route = matched.route;
    let up = &route.upstream;
    if up.path.is_empty() && (!route.strip_path || matched.prefix.is_empty()) {
        // The path goes as it came (admission left the URI in origin form, normalised).
        return Some(uri.clone());
    }
    let mut target = upstream_path(&up.path, &matched.prefix, route.strip_path, uri.path());
    if let Some(q) = uri.query() {
        target.push('?');
        target.push_str(q);
    }
    Uri::try_from(target).ok()
}

/// Sends `req` to the matched route's upstream and streams the answer back. A WebSocket
/// upgrade the upstream accepts (101) becomes a tunnel between the two upgraded connections.
pub async fn forward(
    metrics: &UpstreamMetrics,
    matched: &Matched<'_>,
    mut req: Request<Body>,
    client: &admit::Client,
    request_id: &HeaderValue,
) -> Response<Body> {
    let route = matched.route;
    let up = &route.upstream;
    let Some(uri) = target(matched, req.uri()) else {
        return error_response(StatusCode::BAD_REQUEST, "bad_path", "the request path cannot be forwarded");
    };
    let upgrade = req.extensions_mut().remove::<WebSocketUpgrade>();
    // The client's side of the upgrade, taken before the request goes upstream.
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let h = req.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&client.forwarded_for) {
        h.insert("x-forwarded-for", v);
    }
    let proto = if client.proto == "https" { "https" } else { "http" };
    h.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    if let Some(host) = &client.host {
        h.insert("x-forwarded-host", host.clone());
    }
    if let Some(port) = client.port {
        h.insert("x-forwarded-port", HeaderValue::from(port));
    }
    if !matched.prefix.is_empty()
        && route.strip_path
        && let Ok(v) = HeaderValue::from_str(matched.prefix.trim_end_matches('/'))
    {
        h.insert("x-forwarded-prefix", v);
    }
    h.insert("x-request-id", request_id.clone());
    if (!route.preserve_host || !h.contains_key(header::HOST))
        && let Ok(v) = HeaderValue::from_str(&up.authority)
    {
        h.insert(header::HOST, v);
    }
    if let Some(WebSocketUpgrade(protocol)) = &upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, protocol.clone());
    }
    *req.uri_mut() = uri;
    *req.version_mut() = axum::http::Version::HTTP_11;

    // read_timeout bounds the wait for the answer's head (connecting included; the connector
    // gives up earlier at connect_timeout).
    let deadline = up.read_timeout;
    let sent = std::time::Instant::now();
    let (mut res, lease) = match tokio::time::timeout(deadline, up.client.request(req, upgrade.is_some())).await {
        Err(_) => {
            metrics.failed(Failure::Timeout);
            return error_response(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                &format!("the upstream did not answer within {} ms", deadline.as_millis()),
            );
        }
        Ok(Err(e)) => {
            let failure = Failure::of(&e);
            metrics.failed(failure);
            tracing::warn!(route = %route.id, upstream = %up.authority, reason = failure.reason(), error = %e, error.source = ?std::error::Error::source(&e), "upstream request failed");
            let what = if e.is_connect() {
                if up.tls {
                    "cannot connect to the upstream over TLS (refused, or its certificate is not trusted)"
                } else {
                    "cannot connect to the upstream"
                }
            } else {
                "the upstream connection failed"
            };
            return error_response(StatusCode::BAD_GATEWAY, "bad_gateway", what);
        }
        Ok(Ok((res, lease))) => {
            metrics.answered(res.status().as_u16(), sent.elapsed());
            (res, lease)
        }
    };
    if let (Some(client_upgrade), StatusCode::SWITCHING_PROTOCOLS) = (client_upgrade, res.status()) {
        // The connection is the tunnel's now: it never goes back to the pool.
        drop(lease);
        let upstream_upgrade = hyper::upgrade::on(&mut res);
        let upgrade_header = res.headers().get(header::UPGRADE).cloned();
        let (mut parts, _) = res.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(u) = upgrade_header {
            parts.headers.insert(header::UPGRADE, u);
        }
        let route_id = route.id;
        tokio::spawn(async move {
            let (client_io, upstream_io) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok(both) => both,
                Err(e) => return tracing::debug!(route = %route_id, error = %e, "a WebSocket upgrade did not complete"),
            };
            let (mut client_io, mut upstream_io) = (TokioIo::new(client_io), TokioIo::new(upstream_io));
            if let Err(e) = tokio::io::copy_bidirectional(&mut client_io, &mut upstream_io).await {
                tracing::debug!(route = %route_id, error = %e, "a WebSocket tunnel ended with an error");
            }
        });
        return Response::from_parts(parts, Body::empty());
    }
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::new(PooledBody::new(body, lease)))
}
