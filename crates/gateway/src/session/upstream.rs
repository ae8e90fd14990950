//! What a signed-in request carries upstream (identity headers, the configured `Session-*`
//! headers, the other cookies) and what its answer carries back (our cookies, replacing an
//! upstream cookie of the same name, and the configured `Session-*` headers).

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tessera_session_cookie::{Header, lua_number};

use super::{Identity, Signed, append_cookies};
use crate::plugin::{SessionHeader, SessionPlugin};

/// The identity headers and configured `Session-*` headers for the upstream; the session's
/// own cookies are not forwarded. (Admission removed whatever the client sent under these
/// names.)
pub(super) fn identify(h: &mut HeaderMap, p: &SessionPlugin, s: &Signed, now: u64) {
    let id = &s.identity;
    set(h, HeaderName::from_static("x-consumer-id"), &id.user_id);
    set(h, HeaderName::from_static("x-consumer-username"), &id.subject);
    set(h, HeaderName::from_static("x-credential-identifier"), &id.credential);
    if !id.groups.is_empty() {
        set(h, HeaderName::from_static("x-authenticated-groups"), &id.groups.join(", "));
    }
    strip_session_cookies(h, p);
    for (name, v) in session_headers(p, &p.request_headers, &s.header, id, now) {
        set(h, name, &v);
    }
}

/// Our cookies and the configured `Session-*` response headers, on the upstream's answer.
pub(super) fn answer(rh: &mut HeaderMap, p: &SessionPlugin, s: &Signed, now: u64) {
    if !s.cookies.is_empty() {
        replace_cookies(rh, &s.cookies);
    }
    for (name, v) in session_headers(p, &p.response_headers, &s.header, &s.identity, now) {
        set(rh, name, &v);
    }
}

fn set(h: &mut HeaderMap, name: HeaderName, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(name, v);
    }
}

/// Our cookies, replacing any the upstream set under the same names.
fn replace_cookies(rh: &mut HeaderMap, ours: &[String]) {
    let names: Vec<&str> = ours.iter().filter_map(|c| c.split('=').next()).collect();
    let upstream: Vec<HeaderValue> = rh
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| v.to_str().ok().and_then(|s| s.split('=').next()).is_none_or(|n| !names.contains(&n)))
        .cloned()
        .collect();
    rh.remove(header::SET_COOKIE);
    for v in upstream {
        rh.append(header::SET_COOKIE, v);
    }
    append_cookies(rh, ours);
}

/// The `Session-*` headers of a list, with their values now (a timeout without a deadline
/// is left out).
fn session_headers(
    p: &SessionPlugin,
    which: &[SessionHeader],
    header: &Header,
    id: &Identity,
    now: u64,
) -> Vec<(HeaderName, String)> {
    let rem = header.remaining(&p.timeouts, now);
    let value = |w: SessionHeader| match w {
        SessionHeader::Id => Some(header.storage_key()),
        SessionHeader::Audience => Some(p.audience.clone()),
        SessionHeader::Subject => Some(id.subject.clone()),
        SessionHeader::Timeout => rem.timeout().map(lua_number),
        SessionHeader::IdlingTimeout => rem.idling.map(lua_number),
        SessionHeader::RollingTimeout => rem.rolling.map(lua_number),
        SessionHeader::AbsoluteTimeout => rem.absolute.map(lua_number),
    };
    which.iter().filter_map(|&w| value(w).map(|v| (w.header_name(), v))).collect()
}

/// Removes this plugin's cookies (the session, its chunks `2`..`9`, and the remember cookie)
/// from the upstream request's Cookie header.
pub(super) fn strip_session_cookies(h: &mut HeaderMap, p: &SessionPlugin) {
    let base = &p.cookie_name;
    let ours = |name: &str| {
        name == base
            || name == p.remember_cookie_name
            || name.strip_prefix(base.as_str()).is_some_and(|n| matches!(n.parse::<u8>(), Ok(2..=9)))
    };
    let kept: Vec<String> = h
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|kv| !kv.is_empty() && !ours(kv.split('=').next().unwrap_or("")))
        .map(str::to_owned)
        .collect();
    h.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept.join("; "))
    {
        h.insert(header::COOKIE, v);
    }
}
