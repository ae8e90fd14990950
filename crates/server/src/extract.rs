//! Request extractors that parse at the edge: JSON bodies with the failing field named,
//! bearer authentication, paging, and typed ids from the path.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use tessera_app::{App, Caller};
use tessera_domain::page::{PageRequest, PageToken};

use crate::config::ServerConfig;
use crate::error::ApiError;

/// A JSON body, rejected with the path of the first bad field.
pub struct Body<T>(pub T);

/// Bodies are small documents; anything larger is a mistake or an attack.
pub const MAX_BODY: usize = 256 * 1024;

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
            let mime = ct.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json")
        });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body exceeds {MAX_BODY} bytes"),
                )
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", format!("cannot read the body: {e}"))
            }
        })?;
        parse_json(&bytes).map(Body)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every request body is an object. serde would read a struct from an array too
    // (`["ops","assumable"]` as a role), so anything else is refused before it is looked at.
    let found = match bytes.iter().find(|b| !b" \t\r\n".contains(b)) {
        Some(b'[') => Some("an array"),
        Some(b'"') => Some("a string"),
        Some(b'-' | b'0'..=b'9') => Some("a number"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'n') => Some("null"),
        _ => None,
    };
    if let Some(found) = found {
        return Err(ApiError::invalid("body", format!("the body must be a JSON object, found {found}")));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde's message ends with "at line 1 column 7"; keep it, it helps find the spot.
        if path == "." || path == "?" || path.is_empty() {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", format!("invalid JSON body: {message}"))
        } else {
            ApiError::invalid(path.clone(), format!("{path}: {message}"))
        }
    })
}

/// The authenticated caller of a request.
pub struct Authed(pub Caller);

/// What the edge learned about a request before routing, kept as the request's one
/// extension of ours: the peer and the client it decided on, the server's configuration and
/// the access line's slot. (They were three extensions, each a boxed entry in a map that then
/// grew, on every request.)
#[derive(Clone)]
pub struct RequestContext {
    /// The TCP peer, canonical (a v4-mapped v6 address as v4); `None` for a request made
    /// in-process without one.
    pub peer: Option<IpAddr>,
    /// The client: the peer, or, when the peer is a trusted proxy, the nearest untrusted
    /// address in `X-Forwarded-For` (see [`client_ip`]). Decided once, before routing.
    pub client: Option<IpAddr>,
    pub config: Arc<ServerConfig>,
    /// The access line's slot, when the access log is on.
    pub slot: Option<Arc<crate::access::Slot>>,
}

impl RequestContext {
    /// The context of a request from `peer` with these headers.
    pub fn new(peer: Option<SocketAddr>, headers: &axum::http::HeaderMap, config: Arc<ServerConfig>) -> Self {
        let peer = peer.map(|p| p.ip().to_canonical());
        let client = peer.map(|p| client_ip(p, headers, &config));
        Self { peer, client, config, slot: None }
    }
}

/// The request's context, when the edge made one (it always does for a served request).
pub fn context(parts: &Parts) -> Option<&RequestContext> {
    parts.extensions.get::<RequestContext>()
}

/// The server's configuration for a request (the defaults outside the edge).
pub fn config_of(parts: &Parts) -> Arc<ServerConfig> {
    context(parts).map(|c| Arc::clone(&c.config)).unwrap_or_default()
}

/// The TCP peer's address.
pub fn peer_addr(parts: &Parts) -> Option<IpAddr> {
    context(parts)?.peer
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the nearest
/// untrusted address in `X-Forwarded-For`.
pub fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    context(parts)?.client
}

/// The client behind `peer` (canonical): `peer` itself unless it is a trusted proxy, else the
/// nearest address in `X-Forwarded-For` that is not one (a hop that is not an address stops
/// the walk).
pub fn client_ip(peer: IpAddr, headers: &axum::http::HeaderMap, config: &ServerConfig) -> IpAddr {
    if !config.is_trusted_proxy(peer) {
        return peer;
    }
    // The hops, nearest first: the last value's last entry is the proxy's own peer.
    let mut client = peer;
    let values = headers.get_all("x-forwarded-for").iter().rev().filter_map(|v| v.to_str().ok());
    for hop in values.flat_map(|v| v.rsplit(',')) {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !config.is_trusted_proxy(client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// A token a request authenticates with (borrowed from the request's head), and where it
/// came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential<'a> {
    pub token: &'a str,
    /// From the session cookie, which a browser sends on cross-site requests too: state
    /// changes carried by it need a same-origin proof (see `csrf`).
    pub from_cookie: bool,
}

/// The token of a request: the `Authorization: Bearer` header, else the session cookie.
pub fn credential(parts: &Parts) -> Result<Option<Credential<'_>>, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the Authorization header must be 'Bearer <token>'",
                )
            })?;
        return Ok(Some(Credential { token, from_cookie: false }));
    }
    let name = context(parts).map_or("tessera_session", |c| c.config.cookie_name.as_str());
    Ok(cookie(&parts.headers, name).map(|token| Credential { token, from_cookie: true }))
}

/// The value of the first cookie `name` that is not empty, across every `Cookie` header.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name && !v.is_empty()).then_some(v))
}

impl FromRequestParts<Arc<App>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let Some(cred) = credential(parts)? else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing Authorization: Bearer <api key or session token>",
            ));
        };
        if cred.from_cookie && crate::csrf::is_unsafe(&parts.method) {
            crate::csrf::check_cookie_request(parts, &config_of(parts), cred.token)?;
        }
        let caller = app.authenticate(cred.token, peer_ip(parts)).await?;
        if let Some(slot) = context(parts).and_then(|c| c.slot.as_ref()) {
            slot.set_caller(&caller);
        }
        Ok(Authed(caller))
    }
}

/// The caller of a route that also takes a workload's OIDC token as its bearer (assuming a
/// role with `auth_method` `oidc`): the bearer as presented, and the Tessera caller it
/// authenticates as, if it does. The body decides which one the handler uses.
pub struct BearerOrCaller {
    pub bearer: Option<String>,
    pub caller: Result<Caller, ApiError>,
}

impl FromRequestParts<Arc<App>> for BearerOrCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let bearer = match credential(parts) {
            Ok(Some(Credential { token, from_cookie: false })) => Some(token.to_owned()),
            _ => None,
        };
        let caller = Authed::from_request_parts(parts, app).await.map(|a| a.0);
        Ok(BearerOrCaller { bearer, caller })
    }
}

/// Refuses a request a browser marked as cross-site (login CSRF on `POST /v2/sessions`):
/// a sign-in needs no cookie, but a foreign page must not sign the visitor in as someone else.
pub struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        crate::csrf::check_origin(parts, &config_of(parts))?;
        Ok(SameOrigin)
    }
}

/// `?per_page=&cursor=` with Vultr's defaults.
pub struct Paging(pub PageRequest);

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut per_page = PageRequest::DEFAULT_PER_PAGE;
        let mut cursor = None;
        for (k, v) in form_pairs(parts.uri.query().unwrap_or("")) {
            match k.as_str() {
                "per_page" => {
                    per_page =
                        v.parse::<u32>().ok().filter(|n| (1..=PageRequest::MAX_PER_PAGE).contains(n)).ok_or_else(
                            || {
                                ApiError::invalid(
                                    "per_page",
                                    format!(
                                        "per_page must be an integer from 1 to {}, found '{v}'",
                                        PageRequest::MAX_PER_PAGE
                                    ),
                                )
                            },
                        )?;
                }
                // Only the store reads a cursor: one it did not issue is refused there, naming
                // `cursor`.
                "cursor" if !v.is_empty() => cursor = Some(PageToken::new(v)),
                _ => {}
            }
        }
        Ok(Paging(PageRequest { per_page, cursor }))
    }
}

pub fn form_pairs(query: &str) -> Vec<(String, String)> {
    form_iter(query).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The first value of `name` in a form body or query string, decoded; borrowed from `text`
/// when it needed no decoding.
pub fn form_value<'a>(text: &'a str, name: &str) -> Option<Cow<'a, str>> {
    form_iter(text).find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A form's pairs, decoded, borrowing what needs no decoding.
pub fn form_iter(text: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    text.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space and `%XX` (two hex digits) a
/// byte; a `%` not followed by two hex digits stays as it is. Bytes that are not UTF-8 become
/// U+FFFD.
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'+' || b == b'%') {
        return Cow::Borrowed(s);
    }
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Whether the request's `Content-Type` is `application/x-www-form-urlencoded` (with or
/// without parameters), read without copying the headers.
pub struct FormContent(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for FormContent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let form = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
            ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
        Ok(FormContent(form))
    }
}

/// A page link as the wire carries it: the store's token, or empty.
pub fn page_link(t: Option<PageToken>) -> String {
    t.map(PageToken::into_string).unwrap_or_default()
}

/// The OData-style options of a record query (`GET /v2/iam/sessions`, `GET /v2/audit-events`)
/// and the `$select` list checked against `fields`; each refusal names its option. With
/// `positions`, an unknown `$select` field is reported with its offset (as the sessions query
/// always has).
pub fn record_query_options(
    query: &str,
    fields: &[&str],
    positions: bool,
) -> Result<(tessera_app::SessionQueryText, Option<Vec<Selected>>), ApiError> {
    let mut q = tessera_app::SessionQueryText { inline_count: true, ..Default::default() };
    let mut select = None;
    for (k, v) in form_pairs(query) {
        match k.as_str() {
            "$filter" => q.filter = Some(v),
            "$orderby" => q.orderby = Some(v),
            "$top" => {
                q.top = Some(v.parse().map_err(|_| {
                    ApiError::invalid(
                        "$top",
                        format!("$top must be an integer from 1 to {}, found '{v}'", tessera_app::MAX_TOP),
                    )
                })?)
            }
            "$skip" => {
                q.skip = Some(v.parse().map_err(|_| {
                    ApiError::invalid("$skip", format!("$skip must be a non-negative integer, found '{v}'"))
                })?)
            }
            "$select" => select = Some(v),
            "$count" => match v.as_str() {
                "true" => q.count_only = true,
                "false" => {}
                _ => return Err(ApiError::invalid("$count", format!("$count must be true or false, found '{v}'"))),
            },
            "$inlinecount" => match v.as_str() {
                "allpages" => q.inline_count = true,
                "none" => q.inline_count = false,
                _ => {
                    return Err(ApiError::invalid(
                        "$inlinecount",
                        format!("$inlinecount must be allpages or none, found '{v}'"),
                    ));
                }
            },
            // Only the store reads a skip token: one it did not issue is refused there,
            // naming `$skiptoken`.
            "$skiptoken" => q.after = Some(PageToken::new(v)),
            other if other.starts_with('$') => {
                return Err(ApiError::invalid(
                    other,
                    format!(
                        "{other} is not supported; use $filter, $orderby, $top, $skip, $select, $count, $inlinecount or $skiptoken"
                    ),
                ));
            }
            _ => {}
        }
    }
    let select = match select.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(sel) => Some(selected_fields(sel, fields, positions)?),
    };
    Ok((q, select))
}

/// A `$select`ed field: its key in the record's view, and the name the request gave it (the
/// key itself, or Intersight's PascalCase of it), which the answer uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub key: String,
    pub name: String,
}

/// Keeps the `$select`ed values of a record's view, named as the request named them.
pub fn project(
    m: serde_json::Map<String, serde_json::Value>,
    select: Option<&[Selected]>,
) -> serde_json::Map<String, serde_json::Value> {
    match select {
        None => m,
        Some(keep) => keep.iter().filter_map(|s| m.get(&s.key).map(|v| (s.name.clone(), v.clone()))).collect(),
    }
}

fn selected_fields(sel: &str, fields: &[&str], positions: bool) -> Result<Vec<Selected>, ApiError> {
    let mut keep = vec![];
    let mut pos = 0;
    for part in sel.split(',') {
        let name = part.trim();
        let key = fields.iter().find(|f| **f == name || tessera_domain::filter::is_pascal_of(name, f));
        let Some(key) = key else {
            let at = pos + part.chars().count() - part.trim_start().chars().count();
            let at = if positions { format!("at {at}: ") } else { String::new() };
            return Err(ApiError::invalid(
                "$select",
                format!("{at}unknown field '{name}'; known fields: {}", fields.join(", ")),
            ));
        };
        keep.push(Selected { key: (*key).to_owned(), name: name.to_owned() });
        pos += part.chars().count() + 1;
    }
    Ok(keep)
}

/// Parses a typed id from a path segment, naming the segment when it is not an id.
pub fn path_id<T: std::str::FromStr>(name: &str, raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::invalid(format!("path.{name}"), format!("{name} '{raw}' is not a valid id")))
}

/// Parses a typed id from a body field.
pub fn body_id<T: std::str::FromStr>(field: &str, raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::invalid(field, format!("{field}: '{raw}' is not a valid id")))
}

/// The client's address, as [`peer_ip`] decides it.
pub struct ClientIp(pub Option<IpAddr>);

/// The server's configuration, as [`config_of`] gives it.
pub struct Config(pub Arc<ServerConfig>);

impl<S: Send + Sync> FromRequestParts<S> for Config {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Config(config_of(parts)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(peer_ip(parts)))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(peer: &str, config: ServerConfig, headers: &[(&str, &str)]) -> Parts {
        let mut req = Request::builder().uri("/v2/sessions/current");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        let context = RequestContext::new(Some(peer.parse().unwrap()), &parts.headers, Arc::new(config));
        parts.extensions.insert(context);
        parts
    }

    fn trusting(nets: &[&str]) -> ServerConfig {
        ServerConfig { trusted_proxies: nets.iter().map(|n| n.parse().unwrap()).collect(), ..Default::default() }
    }

    fn ip(s: &str) -> Option<std::net::IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        let xff = [("x-forwarded-for", "198.51.100.7")];
        assert_eq!(peer_ip(&parts("10.0.0.1:5000", ServerConfig::default(), &xff)), ip("10.0.0.1"));
        assert_eq!(
            peer_ip(&parts("127.0.0.1:5000", ServerConfig::default(), &xff)),
            ip("127.0.0.1"),
            "loopback is not trusted by default: a local process cannot claim another address"
        );
        assert_eq!(peer_ip(&parts("10.0.0.2:5000", trusting(&["10.0.0.1/32"]), &xff)), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_for_is_honoured_from_a_trusted_peer_up_to_the_first_untrusted_hop() {
        let config = || trusting(&["10.0.0.0/24", "::1/128"]);
        let one = [("x-forwarded-for", "198.51.100.7")];
        assert_eq!(peer_ip(&parts("10.0.0.1:5000", config(), &one)), ip("198.51.100.7"));
        // A client-supplied first hop is not believed past the nearest untrusted address.
        let chain = [("x-forwarded-for", "203.0.113.66, 198.51.100.7, 10.0.0.9")];
        assert_eq!(peer_ip(&parts("10.0.0.1:5000", config(), &chain)), ip("198.51.100.7"));
        let split = [("x-forwarded-for", "203.0.113.66"), ("x-forwarded-for", "198.51.100.7")];
        assert_eq!(peer_ip(&parts("10.0.0.1:5000", config(), &split)), ip("198.51.100.7"));
        let garbage = [("x-forwarded-for", "198.51.100.7, not-an-ip")];
        assert_eq!(peer_ip(&parts("10.0.0.1:5000", config(), &garbage)), ip("10.0.0.1"), "stops at garbage");
        assert_eq!(peer_ip(&parts("[::ffff:10.0.0.1]:5000", config(), &one)), ip("198.51.100.7"), "mapped v4 peer");
        assert_eq!(peer_ip(&parts("10.0.0.1:5000", config(), &[])), ip("10.0.0.1"));
    }

    #[test]
    fn the_bearer_header_wins_over_the_cookie_and_says_where_the_token_came_from() {
        let config = ServerConfig::default;
        let cookie = ("cookie", "theme=dark; tessera_session=tessera_ls_cookie; other=1");
        let cookie_parts = parts("10.0.0.1:1", config(), &[cookie]);
        let from_cookie = credential(&cookie_parts).unwrap().unwrap();
        assert_eq!(from_cookie, Credential { token: "tessera_ls_cookie", from_cookie: true });
        let both = [cookie, ("authorization", "Bearer tessera_ak_header")];
        let both_parts = parts("10.0.0.1:1", config(), &both);
        let from_header = credential(&both_parts).unwrap().unwrap();
        assert_eq!(from_header, Credential { token: "tessera_ak_header", from_cookie: false });
        let bad = [cookie, ("authorization", "Basic dXNlcjpwdw==")];
        assert_eq!(credential(&parts("10.0.0.1:1", config(), &bad)).unwrap_err().status, StatusCode::UNAUTHORIZED);
        assert_eq!(credential(&parts("10.0.0.1:1", config(), &[("cookie", "tessera_session=")])).unwrap(), None);
        assert_eq!(credential(&parts("10.0.0.1:1", config(), &[("cookie", "xtessera_session=t")])).unwrap(), None);
    }

    #[test]
    fn bodies_must_be_json_objects() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Role {
            name: String,
            role_type: String,
        }
        for (body, found) in [
            (&br#"["ops","assumable"]"#[..], "an array"),
            (b" \n[]", "an array"),
            (b"\"ops\"", "a string"),
            (b"42", "a number"),
            (b"true", "a boolean"),
            (b"null", "null"),
        ] {
            let err = parse_json::<Role>(body).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("body"), "{}", String::from_utf8_lossy(body));
            assert!(err.message.ends_with(found), "{}", err.message);
        }
        assert!(parse_json::<Role>(br#"{"name":"ops","role_type":"assumable"}"#).is_ok());
        assert!(parse_json::<Role>(b"{").unwrap_err().message.starts_with("invalid JSON body"));
    }

    #[test]
    fn forms_decode_plus_and_percent_escapes_and_keep_malformed_ones() {
        let form = "a=1&token=ab%2Bc+d%3D&empty=&token=second&%74oken=third";
        assert_eq!(form_value(form, "token").as_deref(), Some("ab+c d="));
        assert_eq!(form_value(form, "empty").as_deref(), Some(""));
        assert_eq!(form_value(form, "missing"), None);
        // Plain text is borrowed, not copied.
        assert!(matches!(form_value(form, "a"), Some(Cow::Borrowed("1"))));
        // A `%` needs two hex digits: a sign is not one (`from_str_radix` would read "+1").
        assert_eq!(form_value("t=%+1&u=%4&v=%zz&w=%", "t").as_deref(), Some("% 1"));
        assert_eq!(form_value("t=%+1&u=%4&v=%zz&w=%", "u").as_deref(), Some("%4"));
        assert_eq!(form_value("t=%+1&u=%4&v=%zz&w=%", "v").as_deref(), Some("%zz"));
        assert_eq!(form_value("t=%+1&u=%4&v=%zz&w=%", "w").as_deref(), Some("%"));
        // A split multi-byte character after `%` is kept, and invalid UTF-8 becomes U+FFFD.
        assert_eq!(form_value("t=%\u{e9}x", "t").as_deref(), Some("%\u{e9}x"));
        assert_eq!(form_value("t=%FF", "t").as_deref(), Some("\u{fffd}"));
        assert_eq!(
            form_pairs("x=1&&y&z=%41"),
            vec![("x".into(), "1".into()), ("y".into(), String::new()), ("z".into(), "A".into())]
        );
    }
}
