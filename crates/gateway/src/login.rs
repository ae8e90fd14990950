//! The reserved sign-in page and endpoint (`/.tessera/login`): `GET` shows a small form;
//! `POST` takes `email`, `password` and `next` as a form or JSON, signs the user in on the
//! session plugin that protects `next`, and answers with the cookies (303 to `next` for a
//! form, 200 JSON for JSON).
//!
//! Login CSRF (a site signing a victim into the attacker's account) is refused three ways: a
//! browser's `Sec-Fetch-Site` must say `same-origin` (or `none`, typed by the user), an
//! `Origin` must be this gateway's own, and a form post must carry the token the page put in
//! both its hidden field and a `SameSite=Strict` cookie (double submit; nothing to share
//! between nodes). JSON needs no token: a browser cannot send `application/json` across
//! sites without a CORS preflight, which the gateway never grants. Programs that send neither
//! `Origin` nor `Sec-Fetch-Site` sign in with JSON as before.

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, Request, Response, StatusCode, Uri, request::Parts};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use tessera_app::{AppError, SIGN_IN_FAILED, SignIn};
use tessera_domain::path::local_redirect;
use tessera_session_cookie::BindValues;

use crate::admit::Client;
use crate::error::{app_error, error_response, field_error, redirect};
use crate::plugin::SessionPlugin;
use crate::session::{Signed, start_session};
use crate::{Gateway, LOGIN_PATH};

/// The double-submit cookie holding the sign-in form's token.
pub(crate) const CSRF_COOKIE: &str = "tessera_login_csrf";
/// Largest sign-in body.
const MAX_BODY: usize = 64 * 1024;

#[derive(Deserialize, Default)]
struct Form {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    csrf: Option<String>,
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// Only a normalised local path: anything else goes to `/`.
fn safe_next(next: Option<&str>) -> String {
    next.and_then(local_redirect).unwrap_or_else(|| "/".into())
}

fn page(next: &str, error: Option<&str>, csrf: &str) -> String {
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", html_escape(e))).unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f4f5f7;display:flex;min-height:100vh;align-items:center;justify-content:center;margin:0}}
form{{background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15);width:20rem}}
h1{{font-size:1.25rem;margin:0 0 1rem}} label{{display:block;margin:.75rem 0 .25rem}}
input{{width:100%;padding:.5rem;box-sizing:border-box}} button{{margin-top:1.25rem;width:100%;padding:.6rem}}
.error{{color:#b00020}}
</style></head>
<body><form method="post" action="/.tessera/login">
<h1>Sign in</h1>{error}
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit">Sign in</button>
</form></body></html>"#,
        next = html_escape(next),
        csrf = html_escape(csrf),
    )
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    res
}

fn query_next(uri: &Uri) -> Option<String> {
    let q = uri.query()?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "next").then(|| percent_decode(v))
    })
}

/// `application/x-www-form-urlencoded` decoding of one value (`+` is a space; a `%` not
/// followed by two hex digits stays as it is).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |at: usize| b.get(at).and_then(|c| (*c as char).to_digit(16));
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let (byte, used) = match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => ((h * 16 + l) as u8, 3),
            (b'+', _, _) => (b' ', 1),
            (c, _, _) => (c, 1),
        };
        out.push(byte);
        i += used;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_form(body: &[u8]) -> Form {
    let mut f = Form::default();
    for kv in std::str::from_utf8(body).unwrap_or("").split('&') {
        let Some((k, v)) = kv.split_once('=') else { continue };
        let v = percent_decode(v);
        match k {
            "email" => f.email = v,
            "password" => f.password = v,
            "next" => f.next = Some(v),
            "csrf" => f.csrf = Some(v),
            _ => {}
        }
    }
    f
}

/// Where a successful sign-in redirects: `next` from the body (a form, or JSON when
/// `json_body`), else from the request's query, through [`local_redirect`], as `sign_in`
/// decides it. `Err` is the message of the 400 a JSON body that does not parse gets. Public
/// for the fuzz targets (`crates/fuzz`), which check the target stays on the site.
#[doc(hidden)]
pub fn sign_in_redirect(json_body: bool, body: &[u8], query: Option<&str>) -> Result<String, String> {
    let form = if json_body {
        serde_json::from_slice::<Form>(body).map_err(|e| format!("body: {e}"))?
    } else {
        parse_form(body)
    };
    let uri = query.and_then(|q| format!("{LOGIN_PATH}?{q}").parse::<Uri>().ok());
    let query_next = uri.as_ref().and_then(query_next);
    Ok(safe_next(form.next.as_deref().or(query_next.as_deref())))
}

fn is_json(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
}

/// The origin a browser on this gateway's own pages would send: scheme and host (a trusted
/// proxy's word for both, else ours and `Host`), without a default port.
fn own_origin(client: &Client) -> Option<String> {
    let host = client.host.as_ref()?.to_str().ok()?.to_ascii_lowercase();
    Some(without_default_port(&client.proto, &host))
}

fn without_default_port(scheme: &str, authority: &str) -> String {
    let default = if scheme == "https" { ":443" } else { ":80" };
    format!("{scheme}://{}", authority.strip_suffix(default).unwrap_or(authority))
}

/// Refuses a request a browser sent from another site.
fn same_origin(h: &HeaderMap, client: &Client) -> Result<(), &'static str> {
    if let Some(site) = h.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if !site.eq_ignore_ascii_case("same-origin") && !site.eq_ignore_ascii_case("none") {
            return Err("the sign-in came from another site (Sec-Fetch-Site)");
        }
    }
    if let Some(origin) = h.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
        let theirs = origin.split_once("://").map(|(s, a)| without_default_port(s, a));
        if theirs.is_none() || theirs != own_origin(client) {
            return Err("the sign-in came from another origin (Origin)");
        }
    }
    Ok(())
}

fn cookie<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(name)?.strip_prefix('='))
}

/// A token we issued: 32 bytes, base64url.
fn well_formed_token(t: &str) -> bool {
    t.len() == 43 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn csrf_cookie(token: &str, client: &Client) -> Option<HeaderValue> {
    let secure = if client.proto == "https" { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{CSRF_COOKIE}={token}; Path={LOGIN_PATH}; Max-Age=7200; SameSite=Strict; HttpOnly{secure}"
    ))
    .ok()
}

/// The form's token matches its cookie (compared in constant time).
fn token_matches(h: &HeaderMap, form: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    match (cookie(h, CSRF_COOKIE), form) {
        (Some(c), Some(f)) if well_formed_token(c) => c.as_bytes().ct_eq(f.as_bytes()).into(),
        _ => false,
    }
}

pub async fn handle(gw: &Gateway, client: &Client, req: Request<Body>) -> Response<Body> {
    match *req.method() {
        Method::GET | Method::HEAD => show(gw, client, &req),
        Method::POST => sign_in(gw, client, req).await,
        _ => {
            let mut r = error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use GET or POST");
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
            r
        }
    }
}

/// The form, with this browser's token (kept when it has one, so two open tabs both work).
fn show(gw: &Gateway, client: &Client, req: &Request<Body>) -> Response<Body> {
    let next = safe_next(query_next(req.uri()).as_deref());
    let token = match cookie(req.headers(), CSRF_COOKIE).filter(|t| well_formed_token(t)) {
        Some(t) => t.to_owned(),
        None => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(gw.app.form_nonce()),
    };
    let mut res = html(StatusCode::OK, page(&next, None, &token));
    if let Some(c) = csrf_cookie(&token, client) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// How a refused sign-in is answered: JSON for a JSON body, else the form again with the
/// message (keeping the browser's token).
struct Reply {
    json: bool,
    next: String,
    token: String,
}

impl Reply {
    fn fail(&self, status: StatusCode, code: &str, msg: &str) -> Response<Body> {
        if self.json {
            error_response(status, code, msg)
        } else {
            html(status, page(&self.next, Some(msg), &self.token))
        }
    }
}

async fn sign_in(gw: &Gateway, client: &Client, req: Request<Body>) -> Response<Body> {
    if let Err(why) = same_origin(req.headers(), client) {
        return error_response(StatusCode::FORBIDDEN, "csrf", why);
    }
    let json = is_json(req.headers());
    let (parts, form) = match read_form(req, json).await {
        Ok(read) => read,
        Err(res) => return res,
    };
    let query_next = query_next(&parts.uri);
    let next = safe_next(form.next.as_deref().or(query_next.as_deref()));
    // A form re-shown after an error keeps the browser's token.
    let token = cookie(&parts.headers, CSRF_COOKIE).unwrap_or("").to_owned();
    let reply = Reply { json, next, token };
    if !json && !token_matches(&parts.headers, form.csrf.as_deref()) {
        return error_response(
            StatusCode::FORBIDDEN,
            "csrf",
            "the sign-in form's token is missing or does not match: reload the sign-in page",
        );
    }
    if form.email.is_empty() || form.password.is_empty() {
        return reply.fail(StatusCode::BAD_REQUEST, "invalid_request", "email and password are required");
    }
    let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let next_path = reply.next.split(['?', '#']).next().unwrap_or("/");
    let Some(plugin) = gw.table().find(host, "GET", next_path).and_then(|m| m.route.plugin.clone()) else {
        let msg = format!("no session plugin protects {} on this host", reply.next);
        return reply.fail(StatusCode::NOT_FOUND, "no_session_plugin", &msg);
    };
    let sign_in = SignIn {
        email: form.email,
        password: form.password,
        organization: Some(plugin.org),
        client_ip: Some(client.ip),
    };
    let user = match gw.app.check_password(&sign_in).await {
        Ok((user, _)) => user,
        Err(AppError::Invalid(e)) => return reply.fail(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
        Err(AppError::Unauthorized(_) | AppError::Forbidden(_) | AppError::NotFound(_) | AppError::Conflict(_)) => {
            return reply.fail(StatusCode::UNAUTHORIZED, "unauthorized", SIGN_IN_FAILED);
        }
        Err(
            e @ (AppError::Overloaded { .. }
            | AppError::Unavailable(_)
            | AppError::Contended(_)
            | AppError::Internal(_)),
        ) => {
            return app_error(&e);
        }
    };
    let ua = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ip = client.ip_string();
    let bind = BindValues { ip: &ip, scheme: &client.proto, user_agent: ua };
    let now = gw.app.now().0.max(0) as u64;
    match start_session(gw, &plugin, &user, &bind, vec![], now).await {
        Ok(signed) => signed_in(&reply, &plugin, signed),
        Err(res) => res,
    }
}

/// The sign-in body, as a form or JSON (at most [`MAX_BODY`]).
async fn read_form(req: Request<Body>, json: bool) -> Result<(Parts, Form), Response<Body>> {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        let mut res =
            error_response(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the sign-in body is limited to 64 KiB");
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Err(res);
    };
    if !json {
        return Ok((parts, parse_form(&bytes)));
    }
    match serde_json::from_slice::<Form>(&bytes) {
        Ok(f) => Ok((parts, f)),
        Err(e) => Err(field_error(StatusCode::BAD_REQUEST, "invalid_request", &format!("body: {e}"), "body")),
    }
}

/// A signed-in answer: 200 JSON for a JSON body, else 303 to `next`; with the cookies.
fn signed_in(reply: &Reply, plugin: &SessionPlugin, signed: Signed) -> Response<Body> {
    let mut res = if reply.json {
        let body = json!({"session": {
            "id": signed.header.storage_key(),
            "user_id": signed.identity.user_id,
            "subject": signed.identity.subject,
            "audience": plugin.audience,
            "next": reply.next,
        }});
        let mut res = Response::new(Body::from(body.to_string()));
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    } else {
        redirect(StatusCode::SEE_OTHER, &reply.next)
    };
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in signed.cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What admission decides for a request with these headers, from an untrusted peer (or,
    /// with `proto` https, from a trusted proxy saying so).
    fn client(h: &HeaderMap, proto: &str) -> Client {
        let peer = "127.0.0.1:9".parse().unwrap();
        let mut c = crate::admit::client(h, peer, None, false, &[]);
        c.proto = proto.into();
        c
    }

    fn check(pairs: &[(&str, &str)], proto: &str) -> Result<(), &'static str> {
        let h = headers(pairs);
        same_origin(&h, &client(&h, proto))
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse::<header::HeaderName>().unwrap(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn only_same_origin_browsers_and_programs_may_sign_in() {
        for ok in [
            vec![("host", "gw.example:8000")],
            vec![("host", "gw.example:8000"), ("sec-fetch-site", "same-origin")],
            vec![("host", "gw.example"), ("sec-fetch-site", "none")],
            vec![("host", "gw.example:8000"), ("origin", "http://gw.example:8000")],
            vec![("host", "GW.example:80"), ("origin", "http://gw.example")],
        ] {
            assert_eq!(check(&ok, "http"), Ok(()), "{ok:?}");
        }
        for bad in [
            vec![("host", "gw.example"), ("sec-fetch-site", "cross-site")],
            vec![("host", "gw.example"), ("sec-fetch-site", "same-site")],
            vec![("host", "gw.example"), ("origin", "http://evil.example")],
            vec![("host", "gw.example"), ("origin", "null")],
            vec![("host", "gw.example"), ("origin", "https://gw.example")],
            vec![("host", "gw.example:8000"), ("origin", "http://gw.example:8001")],
            vec![("origin", "http://gw.example")],
        ] {
            assert!(check(&bad, "http").is_err(), "{bad:?}");
        }
        assert_eq!(check(&[("host", "gw.example"), ("origin", "https://gw.example")], "https"), Ok(()));
    }

    #[test]
    fn the_form_token_must_match_its_cookie() {
        let t = "a".repeat(43);
        let h = headers(&[("cookie", &format!("x=1; {CSRF_COOKIE}={t}"))]);
        assert!(token_matches(&h, Some(&t)));
        assert!(!token_matches(&h, Some(&"b".repeat(43))));
        assert!(!token_matches(&h, None));
        assert!(!token_matches(&headers(&[]), Some(&t)));
        let short = headers(&[("cookie", &format!("{CSRF_COOKIE}=abc"))]);
        assert!(!token_matches(&short, Some("abc")), "only tokens we issue count");
    }

    #[test]
    fn forms_decode_and_next_stays_local() {
        let f = parse_form(b"email=a%40b.c&password=p+w%zz&next=%2F%09%2Fevil.com&csrf=t");
        assert_eq!((f.email.as_str(), f.password.as_str(), f.csrf.as_deref()), ("a@b.c", "p w%zz", Some("t")));
        assert_eq!(safe_next(f.next.as_deref()), "/");
        assert_eq!(safe_next(Some("/api/x?y=1")), "/api/x?y=1");
        assert_eq!(safe_next(Some("/\r\nSet-Cookie: a=b")), "/");
        assert_eq!(safe_next(None), "/");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn the_page_escapes_what_it_echoes() {
        let p = page("/a\"><script>", Some("<b>"), "tok\"en");
        assert!(p.contains("value=\"/a&quot;&gt;&lt;script&gt;\""));
        assert!(p.contains("&lt;b&gt;") && p.contains("value=\"tok&quot;en\""));
    }
}
