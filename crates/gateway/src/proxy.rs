//! Forwarding one request upstream: streamed bodies both ways, kept-alive upstream
//! connections, `X-Forwarded-*` rebuilt from what the gateway decided about the client, and
//! 502/504 answers when the upstream fails or is slow. The request arrives admitted: its URI
//! is the normalised path, and no header the gateway owns is left from the client.

use axum::body::Body;
use axum::http::header::{self, HeaderValue};
use axum::http::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::admit::{self, strip_hop_by_hop};
use crate::error::error_response;
use crate::table::{Matched, upstream_path};

pub type HttpClient = Client<HttpConnector, Body>;

pub fn client(connect_timeout: std::time::Duration) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(std::time::Duration::from_secs(60)).build(connector)
}

/// The upstream URI: the route's service, and the (normalised) path Kong's way.
fn target(matched: &Matched<'_>, uri: &Uri) -> Option<Uri> {
    let route = matched.route;
    let up = &route.upstream;
    let mut target = upstream_path(&up.path, matched.prefix, route.strip_path, uri.path());
    if let Some(q) = uri.query() {
        target.push('?');
        target.push_str(q);
    }
    format!("http://{}{}", up.authority, target).parse().ok()
}

/// Sends `req` to the matched route's upstream and streams the answer back.
pub async fn forward(
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
