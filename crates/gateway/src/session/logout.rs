//! Logout (Kong's `logout_methods`, `logout_query_arg`, `logout_post_arg`): whether a
//! request asks for it, and what it leaves. With other audiences in the cookie it is
//! re-sealed without this one; otherwise every cookie of the session expires (chunks and
//! remember too) and a server record ends.

use axum::body::Body;
use axum::http::header::{self, HeaderMap};
use axum::http::{Method, Response, StatusCode, request::Parts};
use serde_json::Value;
use tessera_app::System;
use tessera_session_cookie::{BindValues, SealOptions, SessionData, SessionEntry, Storage};

use super::open::Open;
use super::{Answer, append_cookies};
use crate::Gateway;
use crate::error::{app_error, error_response};
use crate::plugin::SessionPlugin;

/// Largest body read to find a logout argument.
const MAX_BODY: usize = 1 << 20;

/// Whether this request asks to log out (reading the body only when the config says so);
/// hands the body back for forwarding otherwise.
pub(super) async fn requested(
    p: &SessionPlugin,
    parts: &Parts,
    headers: &HeaderMap,
    body: Body,
) -> Result<(bool, Body), Answer> {
    let has_body = matches!(parts.method, Method::POST | Method::DELETE | Method::PUT | Method::PATCH);
    if !(p.read_body_for_logout && has_body) {
        return Ok((is_logout(p, parts, headers, None), body));
    }
    let Ok(b) = axum::body::to_bytes(body, MAX_BODY).await else {
        return Err(error_response(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the request body is too large"));
    };
    Ok((is_logout(p, parts, headers, Some(&b)), Body::from(b)))
}

/// The logout argument in the query, or in a form or JSON body when one was read.
pub(super) fn is_logout(p: &SessionPlugin, req: &Parts, headers: &HeaderMap, body: Option<&[u8]>) -> bool {
    if !p.logout_methods.contains(&req.method) {
        return false;
    }
    let arg = p.logout_query_arg.as_str();
    if req.uri.query().is_some_and(|q| has_form_key(q, arg)) {
        return true;
    }
    let Some(body) = body else { return false };
    let post = p.logout_post_arg.as_str();
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if is_json {
        serde_json::from_slice::<Value>(body).ok().is_some_and(|v| v.get(post).is_some())
    } else {
        std::str::from_utf8(body).is_ok_and(|b| has_form_key(b, post))
    }
}

/// Whether `a=1&b&c=2` names `key`.
fn has_form_key(form: &str, key: &str) -> bool {
    form.split('&').any(|kv| kv.split('=').next() == Some(key))
}

/// What logging out of one audience leaves in the cookie: the other audiences' entries to
/// re-seal, or None when every cookie of the session is to expire (no other audience, or
/// server storage, whose record ends for all of them).
pub(super) fn leaves(data: &[SessionEntry], audience: &str, server_storage: bool) -> Option<SessionData> {
    let remaining: SessionData = data.iter().filter(|e| e.audience != audience).cloned().collect();
    (!remaining.is_empty() && !server_storage).then_some(remaining)
}

/// Logs out of this plugin's audience and answers the request with the cookies that says.
pub(super) async fn logout(gw: &Gateway, p: &SessionPlugin, o: Open, bind: &BindValues<'_>, now: u64) -> Answer {
    if let Some(server) = o.server
        && let Err(e) = gw.app.end_gateway_session(System::GATEWAY, server.org, server.session, &server.key).await
    {
        return app_error(&e);
    }
    let cookies = match leaves(&o.data, &p.audience, p.server_storage()) {
        Some(remaining) => reseal(p, &remaining, o.chunks, bind, now),
        None => expire_all(p, o.chunks),
    };
    let mut res = Response::new(Body::empty());
    append_cookies(res.headers_mut(), &cookies);
    res
}

/// Every cookie of the session expired: its chunks, and the remember cookie.
fn expire_all(p: &SessionPlugin, chunks: usize) -> Vec<String> {
    let mut cookies = p.flags.expire_chunks(&p.cookie_name, 1..=chunks.max(1));
    if p.remember {
        cookies.push(p.flags.expire(&p.remember_cookie_name));
    }
    cookies
}

/// The cookie sealed again with the other audiences' entries only; chunks it no longer
/// needs expire.
fn reseal(p: &SessionPlugin, remaining: &SessionData, chunks: usize, bind: &BindValues<'_>, now: u64) -> Vec<String> {
    let opts = SealOptions { storage: Storage::Cookie, bind: p.bind, ..SealOptions::default() };
    let Ok(sealed) = tessera_session_cookie::seal(&p.keys, &opts, remaining, bind, now) else { return vec![] };
    let mut cookies = p.flags.set_cookies(&p.cookie_name, &sealed.value, None).unwrap_or_default();
    let n = cookies.len();
    if chunks > n {
        cookies.extend(p.flags.expire_chunks(&p.cookie_name, n + 1..=chunks));
    }
    cookies
}
