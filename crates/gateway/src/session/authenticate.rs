//! The chain of authenticators a request is tried against, in order: the session cookie
//! (refreshed), the remember cookie, HTTP Basic credentials of a Tessera user. The first
//! that signs the request in wins; a new way to sign in (OIDC) is one more variant.

use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap};
use base64::Engine;
use tessera_app::{AppError, SignIn};
use tessera_session_cookie::SessionData;

use super::open::Open;
use super::start::start_session;
use super::{Answer, Presented, Signed, refresh, remember};
use crate::Gateway;
use crate::admit::Client;
use crate::error::{app_error, error_response};
use crate::plugin::SessionPlugin;

/// One way a request can be signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Authenticator {
    /// The plugin's own session cookie, touched or renewed as due.
    SessionCookie,
    /// The remember cookie, which starts a new session.
    RememberCookie,
    /// `Authorization: Basic`, checked like a sign-in (lockout included).
    HttpBasic,
}

impl Authenticator {
    const CHAIN: [Self; 3] = [Self::SessionCookie, Self::RememberCookie, Self::HttpBasic];
}

/// What the authenticators work from.
pub(super) struct Attempt<'a> {
    /// The opened session cookie, if valid (taken by the first authenticator).
    pub found: Option<Open>,
    /// The other audiences' entries a new session keeps.
    pub others: SessionData,
    pub presented: &'a Presented<'a>,
    pub headers: &'a HeaderMap,
    pub client: &'a Client,
}

/// Who signs the request in; None when no authenticator does.
pub(super) async fn authenticate(
    gw: &Gateway,
    p: &SessionPlugin,
    mut attempt: Attempt<'_>,
    now: u64,
) -> Result<Option<Signed>, Answer> {
    for authenticator in Authenticator::CHAIN {
        let signed = match authenticator {
            Authenticator::SessionCookie => session_cookie(gw, p, &mut attempt, now).await?,
            Authenticator::RememberCookie => remember::restore(gw, p, attempt.presented, now).await?,
            Authenticator::HttpBasic => http_basic(gw, p, &mut attempt, now).await?,
        };
        if signed.is_some() {
            return Ok(signed);
        }
    }
    Ok(None)
}

async fn session_cookie(
    gw: &Gateway,
    p: &SessionPlugin,
    a: &mut Attempt<'_>,
    now: u64,
) -> Result<Option<Signed>, Answer> {
    let Some(mut o) = a.found.take() else { return Ok(None) };
    let Some(cookies) = refresh::refresh(gw, p, &mut o, &a.presented.bind, now).await? else { return Ok(None) };
    Ok(Some(Signed { identity: o.identity, cookies, header: o.header, by_password: false }))
}

async fn http_basic(gw: &Gateway, p: &SessionPlugin, a: &mut Attempt<'_>, now: u64) -> Result<Option<Signed>, Answer> {
    let Some((email, password)) = basic_credentials(a.headers) else { return Ok(None) };
    let sign_in = SignIn { email, password, organization: Some(p.org), client_ip: Some(a.client.ip) };
    let user = match gw.app.check_password(&sign_in).await {
        Ok((user, _)) => user,
        Err(AppError::Invalid(_) | AppError::Unauthorized(_) | AppError::Forbidden(_) | AppError::NotFound(_)) => {
            return Err(error_response(StatusCode::UNAUTHORIZED, "unauthorized", tessera_app::SIGN_IN_FAILED));
        }
        Err(
            e @ (AppError::Conflict(_)
            | AppError::Overloaded { .. }
            | AppError::Unavailable(_)
            | AppError::Contended(_)
            | AppError::Internal(_)),
        ) => return Err(app_error(&e)),
    };
    let others = std::mem::take(&mut a.others);
    let signed = start_session(gw, p, &user, &a.presented.bind, others, now).await?;
    Ok(Some(Signed { by_password: true, ..signed }))
}

/// Whether an `Authorization` field of the request uses the Basic scheme.
pub(super) fn is_basic(h: &HeaderMap) -> bool {
    h.get_all(header::AUTHORIZATION)
        .iter()
        .any(|v| v.as_bytes().get(..6).is_some_and(|s| s.eq_ignore_ascii_case(b"basic ")))
}

fn basic_credentials(h: &HeaderMap) -> Option<(String, String)> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}
