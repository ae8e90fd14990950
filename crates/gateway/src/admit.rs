//! What every request goes through before routing: size limits (answered in JSON by us, below
//! hyper's own limits), the path normalised once (the route is chosen on it and exactly it is
//! forwarded), every header the gateway owns removed whatever the client sent, and the
//! client's facts (address, scheme, host, port) decided from the connection and, only when
//! the peer is a trusted proxy, from its `X-Forwarded-*` headers.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response, StatusCode, Uri};
use ipnet::IpNet;
use tessera_domain::path::{PathError, normalize};

use crate::error::{error_response, field_error};

/// Longest request target (path and query) we take: nginx's (and so Kong's) default buffer.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 100;
/// Most bytes of header names and values in one request.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The listener's local address, when the gateway's own listener served the connection.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// How the request reached the gateway: over TLS or not. Set by the listener; absent (plain)
/// when the router is served elsewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transport {
    pub tls: bool,
}

/// An HTTP/1.1 request asking to switch to WebSocket (`Connection: upgrade`, `Upgrade:
/// websocket`), recorded before the hop-by-hop headers are removed: the proxy asks the
/// upstream for the same upgrade.
#[derive(Debug, Clone)]
pub struct WebSocketUpgrade(pub HeaderValue);

/// The `Upgrade` value when `h` asks for a WebSocket upgrade (RFC 6455 §4.1), else None.
fn websocket_upgrade(h: &HeaderMap) -> Option<HeaderValue> {
    let connection_upgrade = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let upgrade = h.get(header::UPGRADE)?;
    let websocket = upgrade.to_str().ok()?.split(',').any(|p| p.trim().eq_ignore_ascii_case("websocket"));
    (connection_upgrade && websocket).then(|| upgrade.clone())
}

/// Who is asking, as the gateway decides it.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    /// The client's address: the TCP peer, or, when the peer is a trusted proxy, the nearest
    /// untrusted address of its `X-Forwarded-For`.
    pub ip: IpAddr,
    /// `X-Forwarded-For` for the upstream: a trusted proxy's chain plus the peer, else the peer.
    pub forwarded_for: String,
    /// `https` when the connection came over TLS, else `http`; or what a trusted proxy says.
    pub proto: String,
    /// The host the client asked for (a trusted proxy's `X-Forwarded-Host`, else `Host`).
    pub host: Option<HeaderValue>,
    /// The port the client connected to (a trusted proxy's `X-Forwarded-Port`, else ours).
    pub port: Option<u16>,
}

impl Client {
    pub fn ip_string(&self) -> String {
        self.ip.to_string()
    }
}

/// Header families only the gateway may set upstream: identity (ours and Kong's), session
/// facts, forwarding facts, and anything `X-Tessera-`.
const OWNED_PREFIXES: &[&str] =
    &["x-tessera-", "x-consumer-", "x-credential-", "x-authenticated-", "x-anonymous-", "x-forwarded-"];
const OWNED_NAMES: &[&str] = &["forwarded", "x-real-ip"];

fn owned(name: &HeaderName) -> bool {
    let n = name.as_str();
    OWNED_NAMES.contains(&n)
        || OWNED_PREFIXES.iter().any(|p| n.starts_with(p))
        || n.strip_prefix("session-").is_some_and(|s| tessera_domain::gateway::SESSION_HEADERS.contains(&s))
}

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, and whatever the `Connection` header names.
pub(crate) fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in HOP_BY_HOP {
        h.remove(*n);
    }
    for n in named {
        h.remove(n);
    }
}

/// Removes the cookies `named` picks from a request's `Cookie` header(s), keeping the rest.
pub(crate) fn strip_cookies(h: &mut HeaderMap, named: impl Fn(&str) -> bool) {
    let name = |kv: &str| kv.split('=').next().unwrap_or("").trim().to_owned();
    let values: Vec<&str> = h.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
    if !values.iter().flat_map(|v| v.split(';')).any(|kv| named(&name(kv))) {
        return;
    }
    let kept: Vec<String> = values
        .iter()
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|kv| !kv.is_empty() && !named(&name(kv)))
        .map(str::to_owned)
        .collect();
    h.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept.join("; "))
    {
        h.insert(header::COOKIE, v);
    }
}

/// Removes the `Set-Cookie` fields of an answer whose cookie `named` picks.
pub(crate) fn drop_set_cookies(h: &mut HeaderMap, named: impl Fn(&str) -> bool) {
    let all: Vec<HeaderValue> = h.get_all(header::SET_COOKIE).iter().cloned().collect();
    let cookie_name = |v: &HeaderValue| {
        v.to_str().map_or_else(|_| String::new(), |s| s.split('=').next().unwrap_or("").trim().to_owned())
    };
    if !all.iter().any(|v| named(&cookie_name(v))) {
        return;
    }
    h.remove(header::SET_COOKIE);
    for v in all.into_iter().filter(|v| !named(&cookie_name(v))) {
        h.append(header::SET_COOKIE, v);
    }
}

fn trusted(proxies: &[IpNet], ip: IpAddr) -> bool {
    proxies.iter().any(|n| n.contains(&ip))
}

fn header_str<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The client's facts, from the connection (`tls`: it came over TLS) and a trusted proxy's
/// word.
pub(crate) fn client(
    h: &HeaderMap,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    tls: bool,
    proxies: &[IpNet],
) -> Client {
    let peer_ip = peer.ip().to_canonical();
    let host = h.get(header::HOST).cloned();
    let own_port = local.map(|l| l.port());
    let own_proto = if tls { "https" } else { "http" };
    if !trusted(proxies, peer_ip) {
        return Client {
            ip: peer_ip,
            forwarded_for: peer_ip.to_string(),
            proto: own_proto.into(),
            host,
            port: own_port,
        };
    }
    let chain: Vec<&str> = h.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    let chain = chain.join(",");
    let hops: Vec<IpAddr> = chain.split(',').map_while(|hop| hop.trim().parse::<IpAddr>().ok()).collect();
    let mut ip = peer_ip;
    for hop in hops.iter().rev() {
        ip = hop.to_canonical();
        if !trusted(proxies, ip) {
            break;
        }
    }
    let mut forwarded_for: Vec<String> = hops.iter().map(IpAddr::to_string).collect();
    forwarded_for.push(peer_ip.to_string());
    let proto = match header_str(h, "x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(_) => "http",
        None => own_proto,
    };
    Client {
        ip,
        forwarded_for: forwarded_for.join(", "),
        proto: proto.into(),
        host: h.get("x-forwarded-host").filter(|v| !v.is_empty()).cloned().or(host),
        port: header_str(h, "x-forwarded-port").and_then(|p| p.parse().ok()).or(own_port),
    }
}

/// Why a request was refused before routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    UriTooLong,
    HeadersTooLarge,
    BadPath(PathError),
}

impl Refusal {
    pub fn response(self) -> Response<Body> {
        let too_large = |status, code, message: &str| {
            let mut res = error_response(status, code, message);
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        };
        match self {
            Refusal::UriTooLong => too_large(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                &format!("the request target is longer than {MAX_URI_BYTES} bytes"),
            ),
            Refusal::HeadersTooLarge => too_large(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                &format!("at most {MAX_HEADERS} header fields and {MAX_HEADER_BYTES} bytes of headers"),
            ),
            Refusal::BadPath(e) => field_error(StatusCode::BAD_REQUEST, "bad_path", &e.to_string(), "path"),
        }
    }
}

/// Checks the request's size and path and cleans its headers. On success the request's URI is
/// its normalised path and query: what routing, the plugin and forwarding all see.
pub(crate) fn admit(mut req: Request<Body>) -> Result<Request<Body>, Refusal> {
    let target_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > MAX_URI_BYTES {
        return Err(Refusal::UriTooLong);
    }
    let h = req.headers();
    let header_bytes: usize = h.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if h.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Err(Refusal::HeadersTooLarge);
    }
    let path = normalize(req.uri().path()).map_err(Refusal::BadPath)?;
    // A path already in normal form (the usual case) keeps its URI, reduced to origin form.
    if path != req.uri().path() || req.uri().scheme().is_some() || req.uri().authority().is_some() {
        let target = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        *req.uri_mut() = target.parse::<Uri>().map_err(|_| Refusal::BadPath(PathError::BadEscape))?;
    }
    if req.version() == axum::http::Version::HTTP_11
        && req.method() == axum::http::Method::GET
        && let Some(upgrade) = websocket_upgrade(req.headers())
    {
        req.extensions_mut().insert(WebSocketUpgrade(upgrade));
    }
    let h = req.headers_mut();
    strip_hop_by_hop(h);
    let names: Vec<HeaderName> = h.keys().filter(|n| owned(n)).cloned().collect();
    for n in names {
        h.remove(n);
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut b = Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn the_uri_becomes_its_normalised_path_and_query() {
        let req = admit(request("/public/%2e%2e/app//x?a=%2e%2e", &[])).unwrap();
        assert_eq!(req.uri(), "/app/x?a=%2e%2e");
        let e = admit(request("/public/..%2fapp", &[])).unwrap_err();
        assert_eq!(e, Refusal::BadPath(PathError::EncodedSeparator));
        assert_eq!(e.response().status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn owned_headers_never_survive_admission() {
        let sent = [
            ("session-id", "x"),
            ("Session-Subject", "x"),
            ("session-audience", "x"),
            ("session-timeout", "x"),
            ("x-forwarded-prefix", "/x"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-host", "evil"),
            ("x-tessera-user", "x"),
            ("x-consumer-id", "x"),
            ("x-credential-identifier", "x"),
            ("x-authenticated-groups", "admins"),
            ("x-anonymous-consumer", "false"),
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
            ("connection", "x-keep-me, close"),
            ("x-keep-me", "1"),
            ("session-token", "app's own"),
            ("accept", "*/*"),
        ];
        let req = admit(request("/", &sent)).unwrap();
        let mut left: Vec<&str> = req.headers().keys().map(HeaderName::as_str).collect();
        left.sort();
        assert_eq!(left, ["accept", "session-token"]);
    }

    #[test]
    fn a_websocket_upgrade_is_recorded_before_hop_by_hop_headers_go() {
        let ws = [("connection", "keep-alive, Upgrade"), ("upgrade", "websocket"), ("sec-websocket-key", "k")];
        let req = admit(request("/ws", &ws)).unwrap();
        assert_eq!(req.extensions().get::<WebSocketUpgrade>().unwrap().0, "websocket");
        assert!(req.headers().get("upgrade").is_none(), "the proxy sets it again for the upstream");
        assert_eq!(req.headers()["sec-websocket-key"], "k");
        let h2c = [("connection", "upgrade"), ("upgrade", "h2c")];
        assert!(admit(request("/", &h2c)).unwrap().extensions().get::<WebSocketUpgrade>().is_none());
        let no_connection = [("upgrade", "websocket")];
        assert!(admit(request("/", &no_connection)).unwrap().extensions().get::<WebSocketUpgrade>().is_none());
    }

    #[test]
    fn size_limits_answer_json_and_close() {
        let long = format!("/{}", "a".repeat(MAX_URI_BYTES));
        let res = admit(request(&long, &[])).unwrap_err().response();
        assert_eq!(res.status(), StatusCode::URI_TOO_LONG);
        assert_eq!(res.headers()[header::CONNECTION], "close");
        let big = "b".repeat(MAX_HEADER_BYTES);
        let res = admit(request("/", &[("x-big", &big)])).unwrap_err().response();
        assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    #[test]
    fn forwarded_facts_come_only_from_trusted_proxies() {
        let h: HeaderMap = [
            (header::HOST, HeaderValue::from_static("app.example")),
            (HeaderName::from_static("x-forwarded-for"), HeaderValue::from_static("203.0.113.9, 10.0.0.2")),
            (HeaderName::from_static("x-forwarded-proto"), HeaderValue::from_static("https")),
            (HeaderName::from_static("x-forwarded-host"), HeaderValue::from_static("evil.example")),
        ]
        .into_iter()
        .collect();
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let local: SocketAddr = "10.0.0.5:8000".parse().unwrap();
        let c = client(&h, peer, Some(local), false, &[]);
        assert_eq!(
            (c.ip.to_string(), c.forwarded_for.as_str(), c.proto.as_str()),
            ("10.0.0.1".into(), "10.0.0.1", "http")
        );
        let c = client(&h, peer, Some(local), true, &[]);
        assert_eq!(c.proto, "https", "an untrusted peer's scheme is its connection's");
        let mut plain = h.clone();
        plain.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        assert_eq!(client(&plain, peer, Some(local), true, &[]).proto, "https", "whatever it claims");
        assert_eq!((c.host.unwrap(), c.port), (HeaderValue::from_static("app.example"), Some(8000)));
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let c = client(&h, peer, Some(local), false, &proxies);
        assert_eq!(c.ip.to_string(), "203.0.113.9", "the nearest untrusted hop");
        assert_eq!(c.forwarded_for, "203.0.113.9, 10.0.0.2, 10.0.0.1");
        assert_eq!((c.proto.as_str(), c.host.unwrap()), ("https", HeaderValue::from_static("evil.example")));
    }
}
