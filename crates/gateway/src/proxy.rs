//! Forwarding one request upstream: streamed bodies both ways, kept-alive upstream
//! connections, `X-Forwarded-*`, and 502/504 answers when the upstream fails or is slow.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error_response;
use crate::table::{Matched, upstream_path};

pub type HttpClient = Client<HttpConnector, Body>;

pub fn client(connect_timeout: std::time::Duration) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(std::time::Duration::from_secs(60)).build(connector)
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

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Also whatever the Connection header names.
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

/// Sends `req` to the matched route's upstream and streams the answer back.
pub async fn forward(
    matched: &Matched<'_>,
    mut req: Request<Body>,
    peer: SocketAddr,
    request_id: &HeaderValue,
) -> Response<Body> {
    let route = matched.route;
    let up = &route.upstream;
    let path = req.uri().path();
    let mut target = upstream_path(&up.path, matched.prefix, route.strip_path, path);
    if let Some(q) = req.uri().query() {
        target.push('?');
        target.push_str(q);
    }
    let uri: Uri = match format!("http://{}{}", up.authority, target).parse() {
        Ok(u) => u,
        Err(_) => {
            return error_response(StatusCode::BAD_REQUEST, "bad_request", "the request path cannot be forwarded");
        }
    };
    let original_host = req.headers().get(header::HOST).cloned();
    let h = req.headers_mut();
    strip_hop_by_hop(h);
    let peer_ip = peer.ip().to_canonical().to_string();
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {peer_ip}"),
        None => peer_ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(host) = &original_host {
        h.insert("x-forwarded-host", host.clone());
        if let Some(port) = host.to_str().ok().and_then(|s| s.rsplit_once(':')).map(|(_, p)| p.to_owned())
            && let Ok(v) = HeaderValue::from_str(&port)
        {
            h.insert("x-forwarded-port", v);
        }
    }
    if !matched.prefix.is_empty()
        && route.strip_path
        && let Ok(v) = HeaderValue::from_str(matched.prefix.trim_end_matches('/'))
    {
        h.insert("x-forwarded-prefix", v);
    }
    h.insert("x-request-id", request_id.clone());
    if !route.preserve_host
        && let Ok(v) = HeaderValue::from_str(&up.authority)
    {
        h.insert(header::HOST, v);
    }
    *req.uri_mut() = uri;
    *req.version_mut() = axum::http::Version::HTTP_11;

    // read_timeout bounds the wait for the answer's head (connecting included; the connector
    // gives up earlier at connect_timeout).
    let deadline = up.read_timeout;
    let res = match tokio::time::timeout(deadline, up.client.request(req)).await {
        Err(_) => {
            return error_response(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                &format!("the upstream did not answer within {} ms", deadline.as_millis()),
            );
        }
        Ok(Err(e)) => {
            tracing::warn!(route = %route.id, upstream = %up.authority, error = %e, "upstream request failed");
            let what = if e.is_connect() { "cannot connect to the upstream" } else { "the upstream connection failed" };
            return error_response(StatusCode::BAD_GATEWAY, "bad_gateway", what);
        }
        Ok(Ok(res)) => res,
    };
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::new(body))
}
