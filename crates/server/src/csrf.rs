//! Cross-site request refusal for cookie-authenticated calls.
//!
//! A browser attaches the `tessera_session` cookie to any request to this host, whichever site
//! made it, so a state change carried by the cookie alone must prove it came from the
//! server's own origin (or a configured one):
//!
//! 1. `Sec-Fetch-Site`, when sent, must be `same-origin` or `none` (typed by the user);
//! 2. `Origin`, when sent, must be the server's own origin or an allowed one;
//! 3. when a client sends neither (old browsers, scripts that replay a cookie), the
//!    `X-CSRF-Token` header must carry the token bound to the session: an HMAC of the session
//!    token, handed out at sign-in in the answer and in the readable `tessera_csrf` cookie.
//!
//! The token needs no server-side secret or state, so every node derives the same one, and it
//! cannot be computed without the session token, which page scripts cannot read (`HttpOnly`).
//! Bearer-token calls are not affected: a cross-site page cannot set `Authorization`.

use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::extract::peer_addr;

/// The request header that carries the token when no browser header proves the origin.
pub const TOKEN_HEADER: &str = "x-csrf-token";

/// The CSRF token bound to a session token.
pub fn token_for(session_token: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(session_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"tessera csrf token v1");
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether a method changes state (anything but GET, HEAD, OPTIONS).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn refused(reason: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "cross_site_request", format!("cross-site request refused: {reason}"))
}

/// Checks a cookie-authenticated state change (see the module documentation).
pub fn check_cookie_request(parts: &Parts, config: &ServerConfig, session_token: &str) -> Result<(), ApiError> {
    if check_origin(parts, config)? {
        return Ok(());
    }
    let sent = parts.headers.get(TOKEN_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if sent.is_empty() {
        return Err(refused(format!(
            "a request authenticated by the session cookie needs an Origin header or the {TOKEN_HEADER} \
             header with the csrf_token given at sign-in"
        )));
    }
    let expected = token_for(session_token);
    if bool::from(subtle::ConstantTimeEq::ct_eq(sent, expected.as_bytes())) {
        Ok(())
    } else {
        Err(refused(format!("the {TOKEN_HEADER} header does not belong to this session")))
    }
}

/// Checks the browser's origin headers. `Ok(true)`: a browser proved the request is from an
/// accepted origin; `Ok(false)`: no browser header was sent, so nothing is proven either way;
/// `Err`: a browser said the request is cross-site.
pub fn check_origin(parts: &Parts, config: &ServerConfig) -> Result<bool, ApiError> {
    let h = &parts.headers;
    let origin = h.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Some(o) = origin
        && config.allowed_origins.iter().any(|a| same_origin(a, o))
    {
        return Ok(true);
    }
    let fetch_site = h.get("sec-fetch-site").map(|v| v.to_str().unwrap_or(""));
    if let Some(site) = fetch_site
        && !matches!(site, "same-origin" | "none")
    {
        return Err(refused(format!("Sec-Fetch-Site is {site:?}")));
    }
    if let Some(o) = origin {
        let own = own_origin(parts, config).ok_or_else(|| refused("the request names no Host"))?;
        if !same_origin(&own, o) {
            return Err(refused(format!("Origin {o:?} is not this server's origin {own:?}")));
        }
    }
    Ok(origin.is_some() || fetch_site.is_some())
}

/// The server's origin as the client sees it: scheme and host from a trusted proxy's
/// `X-Forwarded-Proto`/`X-Forwarded-Host`, else `https` when cookies are `Secure` (the
/// deployment is served over HTTPS) or `http`, and the `Host` header.
pub fn own_origin(parts: &Parts, config: &ServerConfig) -> Option<String> {
    let trusted = peer_addr(parts).is_some_and(|ip| config.is_trusted_proxy(ip));
    let forwarded = |name: &str| trusted.then(|| first_value(&parts.headers, name)).flatten();
    let scheme = forwarded("x-forwarded-proto").unwrap_or(if config.cookie_secure { "https" } else { "http" });
    let host = forwarded("x-forwarded-host")
        .or_else(|| parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))?;
    Some(format!("{scheme}://{host}"))
}

fn first_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()?.split(',').next().map(str::trim).filter(|s| !s.is_empty())
}

/// Origins compared as browsers serialise them: case-insensitive scheme and host, the
/// default port implied.
fn same_origin(a: &str, b: &str) -> bool {
    fn canonical(o: &str) -> Option<(String, String)> {
        let (scheme, rest) = o.trim().trim_end_matches('/').split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let mut host = rest.to_ascii_lowercase();
        if host.is_empty() || host.contains(['/', '?', '#', '@']) {
            return None;
        }
        let default = match scheme.as_str() {
            "http" => ":80",
            "https" => ":443",
            _ => "",
        };
        if !default.is_empty() && host.ends_with(default) {
            host.truncate(host.len() - default.len());
        }
        Some((scheme, host))
    }
    matches!((canonical(a), canonical(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::RequestContext;

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = axum::http::Request::builder().method(Method::POST).uri("/v2/users");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        let context = RequestContext::new(Some(peer.parse().unwrap()), &parts.headers, Default::default());
        parts.extensions.insert(context);
        parts
    }

    const TOKEN: &str = "tessera_ls_0123456789abcdef0123456789abcdef0123456789abcdef";

    fn check(config: &ServerConfig, headers: &[(&str, &str)]) -> Result<(), ApiError> {
        check_cookie_request(&parts("192.0.2.7:5000", headers), config, TOKEN)
    }

    #[test]
    fn same_origin_browsers_pass_and_cross_site_ones_are_refused() {
        let c = ServerConfig::default();
        let host = ("host", "tessera.example:8080");
        assert!(check(&c, &[host, ("origin", "http://tessera.example:8080")]).is_ok());
        assert!(
            check(&c, &[host, ("origin", "HTTP://Tessera.Example:8080"), ("sec-fetch-site", "same-origin")]).is_ok()
        );
        assert!(check(&c, &[host, ("sec-fetch-site", "same-origin")]).is_ok());
        assert!(check(&c, &[host, ("sec-fetch-site", "none")]).is_ok());
        for bad in [
            vec![host, ("origin", "https://evil.example")],
            vec![host, ("origin", "null")],
            vec![host, ("origin", "http://tessera.example:8081")],
            vec![host, ("origin", "https://tessera.example:8080")],
            vec![host, ("sec-fetch-site", "cross-site")],
            vec![host, ("sec-fetch-site", "same-site")],
            vec![host, ("sec-fetch-site", "same-origin"), ("origin", "https://evil.example")],
            vec![host, ("origin", "http://tessera.example:8080"), ("sec-fetch-site", "cross-site")],
        ] {
            let err = check(&c, &bad).unwrap_err();
            assert_eq!(err.status, StatusCode::FORBIDDEN, "{bad:?}");
            assert!(err.message.starts_with("cross-site request refused"), "{bad:?}: {}", err.message);
        }
    }

    #[test]
    fn without_browser_headers_the_session_bound_token_is_required() {
        let c = ServerConfig::default();
        let token = token_for(TOKEN);
        assert!(check(&c, &[("x-csrf-token", &token)]).is_ok());
        assert!(check(&c, &[]).is_err(), "no proof at all");
        assert!(check(&c, &[("x-csrf-token", "")]).is_err());
        assert!(check(&c, &[("x-csrf-token", &token_for("tessera_ls_another_session"))]).is_err());
        assert!(check(&c, &[("x-csrf-token", &token[1..])]).is_err());
        assert_ne!(token_for(TOKEN), token_for("tessera_ls_another_session"));
        assert!(!token.contains(TOKEN), "the token does not reveal the session");
    }

    #[test]
    fn forwarded_scheme_and_host_count_only_from_a_trusted_proxy() {
        let forwarded = [
            ("host", "10.0.0.5:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "id.example.com"),
            ("origin", "https://id.example.com"),
        ];
        let untrusted = ServerConfig::default();
        assert!(check_origin(&parts("10.0.0.9:4000", &forwarded), &untrusted).is_err());
        let trusted = ServerConfig { trusted_proxies: vec!["10.0.0.9/32".parse().unwrap()], ..Default::default() };
        assert!(check_origin(&parts("10.0.0.9:4000", &forwarded), &trusted).unwrap());
        assert!(check_origin(&parts("10.0.0.8:4000", &forwarded), &trusted).is_err(), "another peer is not trusted");
        let listed = ServerConfig { allowed_origins: vec!["https://console.example.com".into()], ..Default::default() };
        let console =
            [("host", "10.0.0.5:8080"), ("origin", "https://console.example.com"), ("sec-fetch-site", "cross-site")];
        assert!(check_origin(&parts("10.0.0.9:4000", &console), &listed).unwrap());
        let secure = ServerConfig { cookie_secure: true, ..Default::default() };
        let https = [("host", "id.example.com"), ("origin", "https://id.example.com")];
        assert!(check_origin(&parts("192.0.2.1:1", &https), &secure).unwrap());
    }
}
