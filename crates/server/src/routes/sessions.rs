//! Handlers for login sessions, session administration, limits, introspection and
//! forward-auth.

use std::sync::Arc;

use crate::json::{Json, Written};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_api_types as wire;
use tessera_app::{App, CallerKind, SignIn};
use tessera_domain::login::SessionLimits;
use tessera_domain::page::PageToken;

use crate::config::ServerConfig;
use crate::convert::{Introspected, SessionEnvelopeJson, SessionJson, iam_session_view, login_lock_view};
use crate::error::{ApiError, ApiResult};
use crate::extract::{
    Authed, Body, ClientIp, Config, FormContent, SameOrigin, body_id, context, credential, form_iter, form_pairs,
    form_value, path_id, peer_addr, peer_ip, record_query_options,
};

type S = State<Arc<App>>;

/// A `Set-Cookie` value; `http_only` is off only for the CSRF cookie, which the admin
/// console's scripts read to echo it back.
fn cookie(config: &ServerConfig, name: &str, value: &str, max_age: i64, http_only: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; SameSite={}; Max-Age={max_age}", config.cookie_same_site);
    if http_only {
        c.push_str("; HttpOnly");
    }
    if config.cookie_secure || config.cookie_same_site == "None" {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub async fn sign_in(
    State(app): S,
    Config(config): Config,
    _: SameOrigin,
    ClientIp(ip): ClientIp,
    Body(b): Body<wire::SignInRequest>,
) -> ApiResult<Response> {
    let organization = b.organization_id.as_deref().map(|o| body_id("organization_id", o)).transpose()?;
    let signed = app.sign_in(SignIn { email: b.email, password: b.password, organization, client_ip: ip }).await?;
    let max_age = signed.session.expires.0 - signed.session.created.0;
    let csrf_token = crate::csrf::token_for(&signed.token);
    let session_cookie = cookie(&config, &config.cookie_name, &signed.token, max_age, true);
    let csrf_cookie = cookie(&config, &config.csrf_cookie_name, &csrf_token, max_age, false);
    let body = wire::SignInResponse { session: iam_session_view(&signed.session), token: signed.token, csrf_token };
    let mut res = (StatusCode::CREATED, Json(body)).into_response();
    res.headers_mut().append(header::SET_COOKIE, session_cookie);
    res.headers_mut().append(header::SET_COOKIE, csrf_cookie);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

pub async fn current(State(app): S, Authed(c): Authed) -> ApiResult<Response> {
    let current = app.current_session(&c).await?;
    Ok(SessionEnvelopeJson::current(&current).written().into_response())
}

pub async fn sign_out(State(app): S, Config(config): Config, Authed(c): Authed) -> ApiResult<Response> {
    app.sign_out(&c).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().append(header::SET_COOKIE, cookie(&config, &config.cookie_name, "", 0, true));
    res.headers_mut().append(header::SET_COOKIE, cookie(&config, &config.csrf_cookie_name, "", 0, false));
    Ok(res)
}

pub async fn get(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    let s = app.get_session(&c, path_id("moid", &id)?).await?;
    Ok(SessionEnvelopeJson::of(&s).written().into_response())
}

pub async fn terminate(State(app): S, Authed(c): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    let s = app.terminate_session(&c, path_id("moid", &id)?).await?;
    Ok(SessionEnvelopeJson::of(&s).written().into_response())
}

pub async fn terminate_user(
    State(app): S,
    Authed(c): Authed,
    Path(user): Path<String>,
) -> ApiResult<Json<wire::TerminatedCount>> {
    let n = app.terminate_user_sessions(&c, path_id("user_id", &user)?).await?;
    Ok(Json(wire::TerminatedCount { terminated: n as u64 }))
}

pub async fn get_lock(
    State(app): S,
    Authed(c): Authed,
    Path(user): Path<String>,
) -> ApiResult<Json<wire::LoginLockEnvelope>> {
    let lock = app.get_login_lock(&c, path_id("user_id", &user)?).await?;
    Ok(Json(wire::LoginLockEnvelope { login_lock: login_lock_view(&lock) }))
}

pub async fn clear_lock(State(app): S, Authed(c): Authed, Path(user): Path<String>) -> ApiResult<StatusCode> {
    app.clear_login_lock(&c, path_id("user_id", &user)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn limits_view(l: &SessionLimits) -> wire::SessionLimitsView {
    wire::SessionLimitsView {
        idle_timeout: l.idle_timeout,
        absolute_timeout: l.absolute_timeout,
        max_sessions_per_user: l.max_sessions_per_user.into(),
    }
}

pub async fn get_limits(State(app): S, Authed(c): Authed) -> ApiResult<Json<wire::SessionLimitsEnvelope>> {
    let l = app.get_session_limits(&c).await?;
    Ok(Json(wire::SessionLimitsEnvelope { session_limits: limits_view(&l) }))
}

pub async fn put_limits(
    State(app): S,
    Authed(c): Authed,
    Body(b): Body<wire::SessionLimitsView>,
) -> ApiResult<Json<wire::SessionLimitsEnvelope>> {
    let limits = SessionLimits::new(b.idle_timeout, b.absolute_timeout, b.max_sessions_per_user)?;
    let l = app.put_session_limits(&c, limits).await?;
    Ok(Json(wire::SessionLimitsEnvelope { session_limits: limits_view(&l) }))
}

/// RFC 7662: `POST /v2/oauth2/introspect` with a form-encoded `token`.
pub async fn introspect(
    State(app): S,
    ClientIp(ip): ClientIp,
    Authed(c): Authed,
    FormContent(form): FormContent,
    body: axum::body::Bytes,
) -> ApiResult<Written> {
    if !form {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "introspection takes application/x-www-form-urlencoded, as RFC 7662 says",
        ));
    }
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::invalid("token", "the form is not UTF-8"))?;
    let token = form_value(text, "token")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid("token", "token: required"))?;
    // The token's IP binding is checked against the caller's view of the client: callers
    // that introspect for someone else see bound tokens as valid only from their own address.
    let found = app.introspect(&c, &token, ip).await?;
    let Some(subject) = found.caller.as_ref().filter(|_| found.active) else {
        return Ok(Introspected::inactive());
    };
    let (sid, role) = match subject.kind {
        CallerKind::LoginSession(s) => (Some(s.0), None),
        CallerKind::RoleSession { session, role } => (Some(session.0), Some(role.0)),
        CallerKind::ApiKey(_) => (None, None),
    };
    let answer = Introspected {
        token_type: found.token_type,
        user: subject.user_id().map(|u| u.0),
        username: subject.display_name(),
        exp: found.expires.map(|t| t.0),
        iat: found.issued.map(|t| t.0),
        sid,
        org: subject.org_id.0,
        role,
    };
    Ok(answer.written())
}

/// Forward-auth for nginx `auth_request` and Traefik ForwardAuth: 200 with identity headers
/// when the forwarded request carries a valid token (header or cookie), else 401. Only
/// trusted proxies may ask.
pub async fn forward_auth(State(app): S, req: Request) -> ApiResult<Response> {
    let (parts, _) = req.into_parts();
    let peer = peer_addr(&parts);
    let allowed = context(&parts).zip(peer).is_some_and(|(c, peer)| c.config.may_forward_auth(peer));
    if !allowed {
        let who = peer.map_or_else(|| "a caller without an address".to_owned(), |p| p.to_string());
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{who} may not ask for forward-auth; add it to --trusted-proxy"),
        ));
    }
    // A read-only check for a proxy, never a state change: the cookie needs no CSRF proof.
    let Some(token) = credential(&parts)?.map(|c| c.token) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "no session token or API key"));
    };
    let caller = app.authenticate(token, peer_ip(&parts)).await?;
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    // Each id is formatted straight into its header value (no `String` in between).
    let id = |u: uuid::Uuid| {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        HeaderValue::from_bytes(u.hyphenated().encode_lower(&mut buf).as_bytes()).ok()
    };
    let mut set = |name: &'static str, value: Option<HeaderValue>| {
        if let Some(v) = value {
            h.insert(name, v);
        }
    };
    // A workload has no user: its subject goes where a user's email would.
    set("x-tessera-user-id", Some(caller.user_id().and_then(|u| id(u.0)).unwrap_or(HeaderValue::from_static(""))));
    set("x-tessera-user-email", HeaderValue::from_str(caller.display_name()).ok());
    set("x-tessera-org-id", id(caller.org_id.0));
    match caller.kind {
        CallerKind::LoginSession(s) => {
            set("x-tessera-session-id", id(s.0));
            set("x-tessera-auth", Some(HeaderValue::from_static("login_session")));
        }
        CallerKind::RoleSession { session, role } => {
            set("x-tessera-session-id", id(session.0));
            set("x-tessera-role-id", id(role.0));
            set("x-tessera-auth", Some(HeaderValue::from_static("role_session")));
        }
        CallerKind::ApiKey(k) => {
            set("x-tessera-api-key-id", id(k.0));
            set("x-tessera-auth", Some(HeaderValue::from_static("api_key")));
        }
    }
    Ok(res)
}

/// `GET /v2/iam/sessions`: Intersight's query options over every kind of session.
pub async fn query(State(app): S, Authed(c): Authed, uri: axum::http::Uri) -> ApiResult<Response> {
    let query = uri.query().unwrap_or("");
    if let Some(apply) = apply_option(query)? {
        let a = app.aggregate_sessions(&c, &apply).await?;
        let results = a
            .rows
            .into_iter()
            .map(|row| a.names.iter().cloned().zip(row.into_iter().map(crate::convert::cell)).collect())
            .collect();
        return Ok(Json(wire::SessionQueryResponse {
            object_type: Some("mo.AggregateTransform".into()),
            count: None,
            results: Some(results),
            next_skip_token: None,
        })
        .into_response());
    }
    let (q, fields) = record_query_options(query, crate::convert::SESSION_VIEW_FIELDS, true)?;
    let count_only = q.count_only;
    let result = app.query_sessions(&c, q).await?;
    // Each row is written straight from its session (no view, no `Value` map in between).
    let results = (!count_only)
        .then(|| result.sessions.iter().map(|session| SessionJson::of(session, fields.as_deref())).collect());
    Ok(Json(SessionPage { count: result.count, results, next_skip_token: result.next.map(PageToken::into_string) })
        .into_response())
}

/// [`wire::SessionQueryResponse`] for rows (an `$apply` answer uses the wire type itself).
#[derive(serde::Serialize)]
struct SessionPage<'a> {
    #[serde(rename = "Count", skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(rename = "Results", skip_serializing_if = "Option::is_none")]
    results: Option<Vec<SessionJson<'a>>>,
    #[serde(rename = "NextSkipToken", skip_serializing_if = "Option::is_none")]
    next_skip_token: Option<String>,
}

/// `$apply`, when the query has it. It stands alone: the other options are refused with it
/// (a filter goes inside it, as `filter(...)`), so no answer depends on an order of
/// evaluation the caller did not choose.
fn apply_option(query: &str) -> ApiResult<Option<String>> {
    let pairs = form_pairs(query);
    let Some((_, apply)) = pairs.iter().find(|(k, _)| k == "$apply") else { return Ok(None) };
    if let Some((other, _)) = pairs.iter().find(|(k, _)| k.starts_with('$') && k != "$apply") {
        return Err(ApiError::invalid(
            other,
            format!("{other} cannot be combined with $apply; put a filter inside it as filter(...)"),
        ));
    }
    if pairs.iter().filter(|(k, _)| k == "$apply").count() > 1 {
        return Err(ApiError::invalid("$apply", "$apply may be given once"));
    }
    Ok(Some(apply.clone()))
}

/// `GET /v2/auth/check?action=…&resource=…`: whether the caller may perform an action
/// (200 `{"allowed": true}`) or not (403 naming the action). Lets services ask Tessera instead
/// of evaluating policies themselves; it is also the cheapest authenticated call.
/// The answer of `GET /v2/auth/check`: the request was allowed.
#[derive(serde::Serialize)]
pub struct Allowed<'a> {
    allowed: bool,
    action: &'a str,
    resource: &'a str,
}

pub async fn check(Authed(c): Authed, uri: axum::http::Uri) -> ApiResult<Response> {
    let mut action = None;
    let mut resource = std::borrow::Cow::Borrowed("*");
    for (k, v) in form_iter(uri.query().unwrap_or("")) {
        match &*k {
            "action" => action = Some(v),
            "resource" => resource = v,
            _ => {}
        }
    }
    let action = action
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::invalid("action", "action: required, e.g. ?action=iam.role.Read"))?;
    tessera_domain::policy::ActionPattern::check(&action).map_err(|m| ApiError::invalid("action", m))?;
    c.authorize(&action, &resource)?;
    Ok(Json(Allowed { allowed: true, action: &action, resource: &resource }).into_response())
}
