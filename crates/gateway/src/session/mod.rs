//! The `session` plugin on one request, as Kong runs it: open the cookie (and, with server
//! storage, its stored record), handle logout, then try the authenticators in order (the
//! session cookie, refreshed; the remember cookie; HTTP Basic credentials of a Tessera user).
//! A signed-in request goes upstream with identity headers and comes back with the cookies
//! and `Session-*` headers; any other is rejected, redirected to the sign-in page, or passed
//! on, as the plugin's `unauthenticated` says.
//!
//! - `open`: reading and verifying the session cookie (lua-resty-session's `open()`).
//! - `start`: sealing a new session for a user (sign-in, remember, Basic).
//! - `refresh`: touch after 60 s idle, renew past ¾ of the rolling timeout.
//! - `logout`: whether a request asks to log out, and what logging out leaves.
//! - `remember`: restoring a session from the remember cookie.
//! - `authenticate`: the chain of authenticators.
//! - `upstream`: identity headers for the upstream, cookies and headers for the answer.

mod authenticate;
mod logout;
mod open;
mod refresh;
mod remember;
mod start;
mod upstream;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, Request, Response, StatusCode, request::Parts};
use tessera_session_cookie::{BindValues, Header};

use crate::admit::Client;
use crate::error::{error_response, redirect};
use crate::plugin::{SessionPlugin, Unauthenticated};
use crate::table::Matched;
use crate::{Gateway, LOGIN_PATH, proxy};

pub(crate) use open::DecodedCache;
pub(crate) use start::start_session;

/// An answer the plugin gives itself instead of forwarding (an error, or a logout).
type Answer = Response<Body>;

/// Who a session says the caller is.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub user_id: String,
    pub subject: String,
    pub credential: String,
    pub groups: Vec<String>,
}

/// A request signed in by one of the authenticators: who it is, the cookies to send back
/// and the cookie header the `Session-*` headers are computed from.
pub(crate) struct Signed {
    pub identity: Identity,
    pub cookies: Vec<String>,
    pub header: Header,
    /// HTTP Basic signed the request in: the password must not reach the upstream.
    pub by_password: bool,
}

/// What a request presents to the plugin: the values a cookie may be bound to, and its
/// cookies by name (the first of a repeated name wins).
pub(crate) struct Presented<'a> {
    pub bind: BindValues<'a>,
    pub cookies: Cookies<'a>,
}

impl<'a> Presented<'a> {
    /// `scheme`: `https` when the request came over TLS (or a trusted proxy says so).
    fn new(headers: &'a HeaderMap, ip: &'a str, scheme: &'a str) -> Self {
        let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        Self { bind: BindValues { ip, scheme, user_agent }, cookies: parse_cookies(headers) }
    }
}

/// A request's cookies in the order sent (a handful: a list scanned is cheaper than a map
/// hashed on every request).
pub(crate) struct Cookies<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Cookies<'a> {
    /// The value of the first cookie named `name`.
    pub fn get(&self, name: &str) -> Option<&&'a str> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for Cookies<'a> {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> Self {
        Self(pairs.into_iter().collect())
    }
}

fn parse_cookies(headers: &HeaderMap) -> Cookies<'_> {
    let values = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok());
    let pairs = values.flat_map(|s| s.split(';')).filter_map(|pair| pair.trim().split_once('='));
    Cookies(pairs.map(|(k, v)| (k.trim(), v.trim())).collect())
}

/// Runs the plugin around forwarding one request.
pub async fn run(
    gw: &Gateway,
    m: &Matched<'_>,
    p: Arc<SessionPlugin>,
    req: Request<Body>,
    client: &Client,
    rid: &HeaderValue,
) -> Response<Body> {
    let now = gw.app.now().0.max(0) as u64;
    let (mut parts, body) = req.into_parts();
    // Read from the request's own headers (taken out, put back below): no copy per request.
    let headers = std::mem::take(&mut parts.headers);
    let decided = decide(gw, &p, &parts, &headers, body, client, now).await;
    parts.headers = headers;
    let (signed, body) = match decided {
        Ok(decided) => decided,
        Err(answer) => return answer,
    };
    let Some(signed) = signed else {
        return match unauthenticated(p.unauthenticated, &parts) {
            Unauthenticated::Pass => {
                proxy::forward(&gw.upstream, m, Request::from_parts(parts, body), client, rid).await
            }
            Unauthenticated::Redirect => sign_in_first(&parts),
            Unauthenticated::Reject => error_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &format!("sign in first: POST {LOGIN_PATH}, or send HTTP Basic credentials"),
            ),
        };
    };
    // Basic credentials on a protected route are a Tessera user's password: never forwarded,
    // also when the cookie signed the request in (clients keep resending them).
    if signed.by_password || authenticate::is_basic(&parts.headers) {
        parts.headers.remove(header::AUTHORIZATION);
    }
    upstream::identify(&mut parts.headers, &p, &signed, now);
    let mut res = proxy::forward(&gw.upstream, m, Request::from_parts(parts, body), client, rid).await;
    upstream::answer(res.headers_mut(), &p, &signed, now);
    res
}

/// Opens the session, handles a logout, and runs the authenticators. `Ok` hands back who
/// signed the request in (if anyone) and the body to forward.
async fn decide(
    gw: &Gateway,
    p: &SessionPlugin,
    parts: &Parts,
    headers: &HeaderMap,
    body: Body,
    client: &Client,
    now: u64,
) -> Result<(Option<Signed>, Body), Answer> {
    let ip = client.ip_string();
    let presented = Presented::new(headers, &ip, &client.proto);
    let (found, others) = open::open(gw, p, &presented, now).await?.into_parts();
    // Logout needs a valid session; the body is read only when the config says so.
    let (found, body) = match found {
        Some(o) if p.logout_methods.contains(&parts.method) => {
            let (wanted, body) = logout::requested(p, parts, headers, body).await?;
            if wanted {
                return Err(logout::logout(gw, p, o, &presented.bind, now).await);
            }
            (Some(o), body)
        }
        other => (other, body),
    };
    let attempt = authenticate::Attempt { found, others, presented: &presented, headers, client };
    Ok((authenticate::authenticate(gw, p, attempt, now).await?, body))
}

/// What a request without a valid session gets: a redirect only for a browser's `GET`
/// asking for HTML; programs are told 401.
fn unauthenticated(mode: Unauthenticated, req: &Parts) -> Unauthenticated {
    match mode {
        Unauthenticated::Redirect if !wants_html(req) => Unauthenticated::Reject,
        other => other,
    }
}

fn wants_html(req: &Parts) -> bool {
    req.method == Method::GET
        && req.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// To the sign-in page, coming back to this request's path and query.
fn sign_in_first(req: &Parts) -> Response<Body> {
    let next = req.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    redirect(StatusCode::FOUND, &format!("{LOGIN_PATH}?next={}", percent_encode(next)))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An internal error of the cookie codec (sealing, splitting), in the gateway's JSON shape.
fn session_error(message: &str) -> Answer {
    error_response(StatusCode::INTERNAL_SERVER_ERROR, "session_error", message)
}

fn append_cookies(h: &mut HeaderMap, cookies: &[String]) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(header::SET_COOKIE, v);
        }
    }
}
