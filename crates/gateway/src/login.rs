//! The reserved sign-in page and endpoint (`/.tessera/login`): `GET` shows a small form;
//! `POST` takes `email`, `password` and `next` as a form or JSON, signs the user in on the
//! session plugin that protects `next`, and answers with the cookies (303 to `next` for a
//! form, 200 JSON for JSON).

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Deserialize;
use serde_json::json;
use tessera_app::{AppError, SIGN_IN_FAILED, SignIn};
use tessera_session_cookie::BindValues;

use crate::session::{create, peer_ip};
use crate::{Gateway, error_response};

#[derive(Deserialize, Default)]
struct Form {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// Only local paths: never redirect off-site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".into(),
    }
}

fn page(next: &str, error: Option<&str>) -> String {
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
<button type="submit">Sign in</button>
</form></body></html>"#,
        next = html_escape(next),
    )
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
        .header("x-frame-options", "DENY")
        .body(Body::from(body))
        .expect("static parts")
}

fn query_next(req: &Request<Body>) -> Option<String> {
    let q = req.uri().query()?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "next").then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
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
            _ => {}
        }
    }
    f
}

pub async fn handle(gw: &Gateway, peer: SocketAddr, req: Request<Body>) -> Response<Body> {
    match *req.method() {
        Method::GET | Method::HEAD => {
            let next = safe_next(query_next(&req).as_deref());
            html(StatusCode::OK, page(&next, None))
        }
        Method::POST => sign_in(gw, peer, req).await,
        _ => {
            let mut r = error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use GET or POST");
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
            r
        }
    }
}

async fn sign_in(gw: &Gateway, peer: SocketAddr, req: Request<Body>) -> Response<Body> {
    let json_body = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_owned();
    let ua = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let query_next = query_next(&req);
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), 64 * 1024).await else {
        return error_response(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the sign-in body is limited to 64 KiB");
    };
    let form = if json_body {
        match serde_json::from_slice::<Form>(&bytes) {
            Ok(f) => f,
            Err(e) => {
                return error_response(StatusCode::BAD_REQUEST, "invalid", &format!("body: {e}"));
            }
        }
    } else {
        parse_form(&bytes)
    };
    let next = safe_next(form.next.as_deref().or(query_next.as_deref()));
    let fail = |status: StatusCode, code: &str, msg: &str| {
        if json_body { error_response(status, code, msg) } else { html(status, page(&next, Some(msg))) }
    };
    if form.email.is_empty() || form.password.is_empty() {
        return fail(StatusCode::BAD_REQUEST, "invalid", "email and password are required");
    }
    let table = gw.table();
    let plugin = table.find(&host, "GET", next.split('?').next().unwrap_or("/")).and_then(|m| m.route.plugin.clone());
    let Some(plugin) = plugin else {
        return fail(
            StatusCode::NOT_FOUND,
            "no_session_plugin",
            &format!("no session plugin protects {next} on this host"),
        );
    };
    let sign_in = SignIn {
        email: form.email,
        password: form.password,
        organization: Some(plugin.org),
        client_ip: Some(peer.ip().to_canonical()),
    };
    let user = match gw.app.check_password(&sign_in).await {
        Ok((user, _)) => user,
        Err(AppError::Unavailable(m)) => return fail(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &m),
        Err(AppError::Invalid(e)) => return fail(StatusCode::BAD_REQUEST, "invalid", &e.to_string()),
        Err(_) => return fail(StatusCode::UNAUTHORIZED, "unauthorized", SIGN_IN_FAILED),
    };
    let ip = peer_ip(peer);
    let bind = BindValues { ip: &ip, scheme: "http", user_agent: &ua };
    let now = gw.app.now().0.max(0) as u64;
    let (cookies, identity, header) = match create(gw, &plugin, &user, &ip, &bind, vec![], now).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let mut res = if json_body {
        let body = json!({"session": {
            "id": header.storage_key(),
            "user_id": identity.user_id,
            "subject": identity.subject,
            "audience": plugin.config.audience,
            "next": next,
        }});
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("static parts")
    } else {
        Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, next)
            .body(Body::empty())
            .expect("static parts")
    };
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}
