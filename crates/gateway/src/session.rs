//! The `session` plugin on one request, as Kong runs it: open the cookie (and, with server
//! storage, its stored record), refresh it (touch after 60 s idle, renew past ¾ of the
//! rolling timeout), handle logout, set identity headers upstream, and add the cookies and
//! `Session-*` headers to the answer. Without a valid session the request may sign in with
//! HTTP Basic credentials of a Tessera user; otherwise it is rejected, redirected to the
//! login page, or passed on, as configured.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Request, Response, StatusCode};
use base64::Engine;
use serde_json::{Value, json};
use tessera_app::gateway::GatewayRenewal;
use tessera_app::{AppError, SignIn};
use tessera_domain::Timestamp;
use tessera_domain::ids::{OrgId, SessionId, UserId};
use tessera_domain::token::TokenDigest;
use tessera_domain::user::User;
use tessera_session_cookie::{
    BindValues, CookieAttributes, CookieFlags, CookieKind, Header, OpenOptions, RefreshAction, RememberExpiry,
    RememberSafety, SameSite, SealOptions, SessionData, SessionEntry, Storage, chunk,
};

use crate::admit::Client;
use crate::error::{app_error, error_response, redirect};
use crate::table::{Matched, SessionPlugin};
use crate::{Gateway, LOGIN_PATH, proxy};

const TOUCH_THRESHOLD: u64 = 60;
/// Kong's `remember_safety` is not configurable: Medium, 10 000 PBKDF2 iterations.
const REMEMBER: CookieKind = CookieKind::Remember(RememberSafety::Medium);
/// Longest a server-side key lives when no timeout bounds it (lua-resty-session's 400 days).
const MAX_TTL: u64 = 400 * 86_400;

/// Payloads already decrypted, by plugin, session id and GCM tag. A header whose MAC
/// verified names exactly one ciphertext (the tag authenticates it), so a hit whose payload
/// is byte-for-byte the one decrypted before skips AES-GCM and JSON parsing. Bounded: it is
/// emptied when it grows past [`DECODED_MAX`] entries.
#[derive(Default)]
pub struct DecodedCache(Mutex<HashMap<DecodedKey, Decoded>>);

/// Plugin id, session id, GCM tag.
type DecodedKey = (uuid::Uuid, [u8; 32], [u8; 16]);
/// The payload as received, and what it decrypted to.
type Decoded = Arc<(Box<str>, Arc<SessionData>)>;

const DECODED_MAX: usize = 100_000;

/// A cache's lock: a panic elsewhere while holding it leaves a map that is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DecodedCache {
    fn get(&self, plugin: uuid::Uuid, h: &Header, payload: &str) -> Option<Arc<SessionData>> {
        let map = lock(&self.0);
        let hit = map.get(&(plugin, h.sid, h.tag))?;
        (*hit.0 == *payload).then(|| Arc::clone(&hit.1))
    }

    fn put(&self, plugin: uuid::Uuid, h: &Header, payload: &str, data: &Arc<SessionData>) {
        let mut map = lock(&self.0);
        if map.len() >= DECODED_MAX {
            map.clear();
        }
        map.insert((plugin, h.sid, h.tag), Arc::new((payload.into(), Arc::clone(data))));
    }
}

/// Who a session says the caller is.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub user_id: String,
    pub subject: String,
    pub credential: String,
    pub groups: Vec<String>,
}

/// An opened, valid session of this plugin's audience.
struct Open {
    header: Header,
    value: String,
    data: Arc<SessionData>,
    identity: Identity,
    /// Server storage: the record and the key the cookie names.
    server: Option<(OrgId, SessionId, TokenDigest)>,
    chunks: usize,
}

/// What the request's cookies hold for this plugin.
enum Found {
    Valid(Box<Open>),
    /// A valid cookie without this audience: its entries are kept on the next save.
    OtherAudiences(SessionData),
    None,
}

pub(crate) struct Request2<'a> {
    pub bind: BindValues<'a>,
    pub cookies: HashMap<&'a str, &'a str>,
}

fn parse_cookies(headers: &HeaderMap) -> HashMap<&str, &str> {
    let mut map = HashMap::new();
    for v in headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for pair in s.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                map.entry(k.trim()).or_insert(v.trim());
            }
        }
    }
    map
}

pub(crate) fn attributes(p: &SessionPlugin) -> CookieFlags {
    CookieAttributes {
        path: p.config.cookie_path.clone(),
        domain: p.config.cookie_domain.clone(),
        same_site: SameSite::from_name(&p.config.cookie_same_site).unwrap_or_default(),
        secure: p.config.cookie_secure,
        http_only: p.config.cookie_http_only,
    }
    .render()
}

fn storage(p: &SessionPlugin) -> Storage {
    if p.config.server_storage() { Storage::Server } else { Storage::Cookie }
}

fn identity_from_entry(e: &SessionEntry) -> Option<Identity> {
    let d = e.data.as_array()?;
    let user_id = d.first()?.as_str()?.to_owned();
    let credential = d.get(1).and_then(Value::as_str).unwrap_or(&user_id).to_owned();
    let groups = d
        .get(2)
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    Some(Identity { user_id, subject: e.subject.clone().unwrap_or_default(), credential, groups })
}

/// lua-resty-session's `open()` for the session cookie of one plugin.
async fn open(gw: &Gateway, p: &SessionPlugin, r: &Request2<'_>, now: u64) -> Result<Found, Response<Body>> {
    let Ok(value) = chunk::join(&p.config.cookie_name, |n| r.cookies.get(n).copied()) else { return Ok(Found::None) };
    let st = storage(p);
    let opts = OpenOptions { storage: st, kind: CookieKind::Session, timeouts: p.timeouts };
    let header = match tessera_session_cookie::verify(&p.keys, &opts, &value, &r.bind, now) {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(reason = %e, cookie = %p.config.cookie_name, "session cookie rejected");
            return Ok(Found::None);
        }
    };
    let chunks = chunk::count(p.config.cookie_name.len(), value.len().saturating_sub(110)).unwrap_or(1);
    let (data, server, stored_identity) = match st {
        Storage::Cookie => {
            let payload = &value[110..];
            match gw.decoded.get(p.id, &header, payload) {
                Some(d) => (d, None, None),
                None => match tessera_session_cookie::decrypt(&p.keys, CookieKind::Session, &header, payload) {
                    Ok(d) => {
                        let d = Arc::new(d);
                        gw.decoded.put(p.id, &header, payload, &d);
                        (d, None, None)
                    }
                    Err(e) => {
                        tracing::debug!(reason = %e, "session payload rejected");
                        return Ok(Found::None);
                    }
                },
            }
        }
        Storage::Server => {
            let digest = TokenDigest::of(&header.storage_key());
            let key = match gw.app.find_gateway_key(&digest).await {
                Ok(Some(k)) if k.session.org_id == p.org => k,
                Ok(_) => return Ok(Found::None),
                Err(e) => return Err(app_error(&e)),
            };
            let Ok(record) = tessera_session_cookie::decode_storage_record(&key.data) else { return Ok(Found::None) };
            match tessera_session_cookie::decrypt(&p.keys, CookieKind::Session, &header, &record.ciphertext) {
                Ok(d) => {
                    let id = Identity {
                        user_id: key.user.id.to_string(),
                        subject: key.user.email.as_str().to_owned(),
                        credential: key.session.id.to_string(),
                        groups: vec![],
                    };
                    (Arc::new(d), Some((key.session.org_id, key.session.id, digest)), Some(id))
                }
                Err(_) => return Ok(Found::None),
            }
        }
    };
    let Some(entry) = data.iter().find(|e| e.audience == p.config.audience) else {
        return Ok(Found::OtherAudiences((*data).clone()));
    };
    let Some(mut identity) = identity_from_entry(entry) else { return Ok(Found::None) };
    if let Some(stored) = stored_identity {
        identity = Identity { groups: identity.groups, ..stored };
    } else {
        let Ok(uid) = identity.user_id.parse::<UserId>() else { return Ok(Found::None) };
        if gw.app.gateway_user(p.org, uid).await.map_err(|e| app_error(&e))?.is_none() {
            return Ok(Found::None);
        }
    }
    Ok(Found::Valid(Box::new(Open { header, value: value.into_owned(), data, identity, server, chunks })))
}

/// The data Tessera keeps for a signed-in user, in Kong's shape:
/// `[user_id, credential_id, [group names]]`, subject = email.
async fn entry_for(gw: &Gateway, p: &SessionPlugin, user: &User, credential: &str) -> Result<SessionEntry, AppError> {
    let groups = gw.app.gateway_groups(user).await?;
    Ok(SessionEntry::new(
        json!([user.id.to_string(), credential, groups]),
        p.config.audience.clone(),
        user.email.as_str(),
    ))
}

/// Signs `user` in on this plugin: seals a new cookie (keeping other audiences' entries),
/// stores the record with server storage, and adds the remember cookie when configured.
pub(crate) async fn create(
    gw: &Gateway,
    p: &SessionPlugin,
    user: &User,
    client_ip: &str,
    bind: &BindValues<'_>,
    mut others: SessionData,
    now: u64,
) -> Result<(Vec<String>, Identity, Header), Response<Body>> {
    let st = storage(p);
    let mut opts = SealOptions { storage: st, bind: p.bind, ..SealOptions::default() };
    // With server storage the record's id is the credential; pick it before sealing.
    let session_id = gw.app.new_session_id();
    let credential = if st == Storage::Server { session_id.to_string() } else { user.id.to_string() };
    let entry = entry_for(gw, p, user, &credential).await.map_err(|e| app_error(&e))?;
    others.retain(|e| e.audience != p.config.audience);
    others.push(entry.clone());
    let sealed = tessera_session_cookie::seal(&p.keys, &opts, &others, bind, now).map_err(|e| {
        tracing::warn!(error = %e, "cannot seal a session cookie");
        error_response(StatusCode::INTERNAL_SERVER_ERROR, "session_error", &e.to_string())
    })?;
    if st == Storage::Server {
        let digest = TokenDigest::of(&sealed.storage_key());
        let absolute = (p.timeouts.absolute > 0).then_some(p.timeouts.absolute as i64);
        let mut record = gw.app.gateway_session_record(user, client_ip, &digest, absolute);
        record.id = session_id;
        let key_ttl = key_ttl(p, now, sealed.header.creation_time);
        gw.app
            .create_gateway_session(&record, &digest, &sealed.storage_record(), Timestamp((now + key_ttl) as i64))
            .await
            .map_err(|e| app_error(&e))?;
    }
    let flags = attributes(p);
    let mut cookies = flags.set_cookies(&p.config.cookie_name, &sealed.value, None).map_err(|e| {
        error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "session_error",
            &format!("{e}: the session data is too large"),
        )
    })?;
    if p.config.remember {
        opts.kind = REMEMBER;
        opts.storage = Storage::Cookie;
        if let Ok(r) = tessera_session_cookie::seal(&p.keys, &opts, &others, bind, now) {
            let expiry = RememberExpiry::new(r.header.creation_time, p.remember_timeouts.rolling);
            cookies
                .extend(flags.set_cookies(&p.config.remember_cookie_name, &r.value, Some(&expiry)).unwrap_or_default());
        }
    }
    let identity = identity_from_entry(&entry).ok_or_else(|| {
        error_response(StatusCode::INTERNAL_SERVER_ERROR, "session_error", "the session entry has no user")
    })?;
    Ok((cookies, identity, sealed.header))
}

/// How long a server-side key should live: to the rolling deadline, capped by the absolute
/// one, or 400 days when neither bounds it.
fn key_ttl(p: &SessionPlugin, now: u64, creation: u64) -> u64 {
    let mut ttl = if p.timeouts.rolling > 0 { p.timeouts.rolling } else { MAX_TTL };
    if p.timeouts.absolute > 0 {
        ttl = ttl.min((creation + p.timeouts.absolute).saturating_sub(now));
    }
    ttl.max(1)
}

/// `refresh()`: touch or renew. Returns the cookies to send, or None if the session could not
/// be renewed (ended meanwhile).
async fn refresh(
    gw: &Gateway,
    p: &SessionPlugin,
    o: &mut Open,
    bind: &BindValues<'_>,
    now: u64,
) -> Result<Option<Vec<String>>, Response<Body>> {
    let flags = attributes(p);
    match o.header.refresh_action(&p.timeouts, TOUCH_THRESHOLD, now) {
        RefreshAction::None => Ok(Some(vec![])),
        RefreshAction::Touch => {
            let t = tessera_session_cookie::touch(&p.keys, &o.header, &o.value, bind, now);
            // Only the first cookie changes on touch (the payload chunks stay).
            let first = chunk::split(&p.config.cookie_name, &t.value)
                .ok()
                .and_then(|c| c.into_iter().next().map(|c| flags.set_cookie(&c.name, c.value, None)));
            o.header = t.header;
            o.value = t.value;
            Ok(Some(first.into_iter().collect()))
        }
        RefreshAction::Renew => {
            let st = storage(p);
            let opts = SealOptions { storage: st, bind: p.bind, ..SealOptions::default() }.renewing(&o.header);
            let sealed = tessera_session_cookie::seal(&p.keys, &opts, &o.data, bind, now)
                .map_err(|e| error_response(StatusCode::INTERNAL_SERVER_ERROR, "session_error", &e.to_string()))?;
            if let Some((org, sid, old)) = o.server {
                let new = TokenDigest::of(&sealed.storage_key());
                let renewal = GatewayRenewal {
                    org,
                    session: sid,
                    old,
                    new,
                    data: sealed.storage_record(),
                    stale_until: Timestamp((now + p.stale_ttl) as i64),
                    expires: Timestamp((now + key_ttl(p, now, sealed.header.creation_time)) as i64),
                };
                match gw.app.renew_gateway_session(renewal).await {
                    Ok(true) => o.server = Some((org, sid, new)),
                    Ok(false) => return Ok(None),
                    Err(e) => return Err(app_error(&e)),
                }
            }
            let mut cookies = flags
                .set_cookies(&p.config.cookie_name, &sealed.value, None)
                .map_err(|e| error_response(StatusCode::INTERNAL_SERVER_ERROR, "session_error", &e.to_string()))?;
            let n = cookies.len();
            if o.chunks > n {
                cookies.extend(flags.expire_chunks(&p.config.cookie_name, n + 1..=o.chunks));
            }
            o.header = sealed.header;
            o.value = sealed.value;
            o.chunks = n;
            Ok(Some(cookies))
        }
    }
}

fn is_logout(p: &SessionPlugin, req: &axum::http::request::Parts, headers: &HeaderMap, body: Option<&[u8]>) -> bool {
    if !p.config.logout_methods.iter().any(|m| m == req.method.as_str()) {
        return false;
    }
    let arg = p.config.logout_query_arg.as_str();
    let in_query = req.uri.query().is_some_and(|q| q.split('&').any(|kv| kv.split('=').next() == Some(arg)));
    if in_query {
        return true;
    }
    let Some(body) = body else { return false };
    let post = p.config.logout_post_arg.as_str();
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if is_json {
        serde_json::from_slice::<Value>(body).ok().is_some_and(|v| v.get(post).is_some())
    } else {
        std::str::from_utf8(body).is_ok_and(|b| b.split('&').any(|kv| kv.split('=').next() == Some(post)))
    }
}

/// What logging out of one audience leaves in the cookie: the other audiences' entries to
/// re-seal, or None when every cookie of the session is to expire (no other audience, or
/// server storage, whose record ends for all of them).
fn logout_leaves(data: &[SessionEntry], audience: &str, server_storage: bool) -> Option<SessionData> {
    let remaining: SessionData = data.iter().filter(|e| e.audience != audience).cloned().collect();
    (!remaining.is_empty() && !server_storage).then_some(remaining)
}

/// Logout: with other audiences in the cookie, re-save without this one; otherwise expire
/// every cookie of the session (chunks and remember too) and end the server record.
async fn logout(gw: &Gateway, p: &SessionPlugin, o: Open, bind: &BindValues<'_>, now: u64) -> Response<Body> {
    let flags = attributes(p);
    let mut cookies = vec![];
    if let Some((org, sid, key)) = o.server
        && let Err(e) = gw.app.end_gateway_session(org, sid, &key).await
    {
        return app_error(&e);
    }
    let Some(remaining) = logout_leaves(&o.data, &p.config.audience, storage(p) == Storage::Server) else {
        cookies.extend(flags.expire_chunks(&p.config.cookie_name, 1..=o.chunks.max(1)));
        if p.config.remember {
            cookies.push(flags.expire(&p.config.remember_cookie_name));
        }
        let mut res = Response::new(Body::empty());
        append_cookies(res.headers_mut(), &cookies);
        return res;
    };
    {
        let opts = SealOptions { storage: Storage::Cookie, bind: p.bind, ..SealOptions::default() };
        if let Ok(s) = tessera_session_cookie::seal(&p.keys, &opts, &remaining, bind, now) {
            let n;
            match flags.set_cookies(&p.config.cookie_name, &s.value, None) {
                Ok(c) => {
                    n = c.len();
                    cookies.extend(c);
                }
                Err(_) => n = 0,
            }
            if o.chunks > n {
                cookies.extend(flags.expire_chunks(&p.config.cookie_name, n + 1..=o.chunks));
            }
        }
    }
    let mut res = Response::new(Body::empty());
    append_cookies(res.headers_mut(), &cookies);
    res
}

fn append_cookies(h: &mut HeaderMap, cookies: &[String]) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(header::SET_COOKIE, v);
        }
    }
}

/// The `Session-*` headers a config asks for.
fn session_headers(
    p: &SessionPlugin,
    which: &[String],
    header: &Header,
    id: &Identity,
    now: u64,
) -> Vec<(HeaderName, String)> {
    let rem = header.remaining(&p.timeouts, now);
    let mut out = vec![];
    for w in which {
        let (name, value) = match w.as_str() {
            "id" => ("session-id", Some(header.storage_key())),
            "audience" => ("session-audience", Some(p.config.audience.clone())),
            "subject" => ("session-subject", Some(id.subject.clone())),
            "timeout" => ("session-timeout", rem.timeout().map(|t| t.to_string())),
            "idling-timeout" => ("session-idling-timeout", rem.idling.map(|t| t.to_string())),
            "rolling-timeout" => ("session-rolling-timeout", rem.rolling.map(|t| t.to_string())),
            "absolute-timeout" => ("session-absolute-timeout", rem.absolute.map(|t| t.to_string())),
            _ => continue,
        };
        if let Some(v) = value {
            out.push((HeaderName::from_static(name), v));
        }
    }
    out
}

/// Removes this plugin's cookies from the upstream request's Cookie header.
fn strip_session_cookies(h: &mut HeaderMap, p: &SessionPlugin) {
    let base = &p.config.cookie_name;
    let ours = |name: &str| {
        name == base
            || name == p.config.remember_cookie_name
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

fn wants_html(req: &axum::http::request::Parts) -> bool {
    req.method == Method::GET
        && req.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

pub(crate) fn percent_encode(s: &str) -> String {
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

/// Who a request is, once the plugin has decided: the identity, the cookies to send back and
/// the header the `Session-*` headers are computed from.
struct Signed {
    identity: Identity,
    cookies: Vec<String>,
    header: Option<Header>,
    /// HTTP Basic signed the request in: the password must not reach the upstream.
    by_password: bool,
}

/// What a request without a valid session gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unauthenticated {
    /// Upstream, without identity headers (Kong's own behaviour).
    Pass,
    /// To the sign-in page (browsers asking for HTML, when configured).
    Redirect,
    /// 401 JSON.
    Reject,
}

fn unauthenticated(mode: &str, req: &axum::http::request::Parts) -> Unauthenticated {
    match mode {
        "pass" => Unauthenticated::Pass,
        "redirect" if wants_html(req) => Unauthenticated::Redirect,
        _ => Unauthenticated::Reject,
    }
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
    let ip = client.ip_string();
    let (mut parts, mut body) = req.into_parts();
    // Read from the request's own headers (taken out, put back below): no copy per request.
    let headers = std::mem::take(&mut parts.headers);
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let r = Request2 { bind: BindValues { ip: &ip, scheme: "http", user_agent: ua }, cookies: parse_cookies(&headers) };

    let (found, others) = match open(gw, &p, &r, now).await {
        Ok(Found::Valid(o)) => (Some(*o), vec![]),
        Ok(Found::OtherAudiences(d)) => (None, d),
        Ok(Found::None) => (None, vec![]),
        Err(res) => return res,
    };
    // Logout needs a valid session; the body is read only when the config says so.
    let found = match found {
        Some(o) if p.config.logout_methods.iter().any(|m| m == parts.method.as_str()) => {
            let (wanted, b) = match logout_requested(&p, &parts, &headers, body).await {
                Ok(x) => x,
                Err(res) => return res,
            };
            body = b;
            if wanted {
                return logout(gw, &p, o, &r.bind, now).await;
            }
            Some(o)
        }
        other => other,
    };
    let signed = match authenticate(gw, &p, found, others, &r, &headers, client, now).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    drop(r);
    parts.headers = headers;
    let Some(signed) = signed else {
        return match unauthenticated(&p.config.unauthenticated, &parts) {
            Unauthenticated::Pass => proxy::forward(m, Request::from_parts(parts, body), client, rid).await,
            Unauthenticated::Redirect => {
                let next = parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
                redirect(StatusCode::FOUND, &format!("{LOGIN_PATH}?next={}", percent_encode(next)))
            }
            Unauthenticated::Reject => error_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &format!("sign in first: POST {LOGIN_PATH}, or send HTTP Basic credentials"),
            ),
        };
    };
    if signed.by_password {
        parts.headers.remove(header::AUTHORIZATION);
    }
    identify_upstream(&mut parts.headers, &p, &signed, now);
    let mut res = proxy::forward(m, Request::from_parts(parts, body), client, rid).await;
    answer_with_session(res.headers_mut(), &p, &signed, now);
    res
}

/// Whether this request asks to log out (reading the body only when the config says so);
/// hands the body back for forwarding otherwise.
async fn logout_requested(
    p: &SessionPlugin,
    parts: &axum::http::request::Parts,
    headers: &HeaderMap,
    body: Body,
) -> Result<(bool, Body), Response<Body>> {
    if !(p.config.read_body_for_logout
        && matches!(parts.method, Method::POST | Method::DELETE | Method::PUT | Method::PATCH))
    {
        return Ok((is_logout(p, parts, headers, None), body));
    }
    let Ok(b) = axum::body::to_bytes(body, 1 << 20).await else {
        return Err(error_response(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the request body is too large"));
    };
    Ok((is_logout(p, parts, headers, Some(&b)), Body::from(b)))
}

/// The session (refreshed), else the remember cookie, else HTTP Basic credentials; None when
/// none of them signs the request in.
#[allow(clippy::too_many_arguments)]
async fn authenticate(
    gw: &Gateway,
    p: &SessionPlugin,
    found: Option<Open>,
    others: SessionData,
    r: &Request2<'_>,
    headers: &HeaderMap,
    client: &Client,
    now: u64,
) -> Result<Option<Signed>, Response<Body>> {
    if let Some(mut o) = found
        && let Some(cookies) = refresh(gw, p, &mut o, &r.bind, now).await?
    {
        return Ok(Some(Signed { identity: o.identity, cookies, header: Some(o.header), by_password: false }));
    }
    let ip = client.ip_string();
    if let Some((cookies, identity, header)) = remembered(gw, p, r, &ip, now).await? {
        return Ok(Some(Signed { identity, cookies, header: Some(header), by_password: false }));
    }
    let Some((email, password)) = basic_credentials(headers) else { return Ok(None) };
    let sign_in = SignIn { email, password, organization: Some(p.org), client_ip: Some(client.ip) };
    let user = match gw.app.check_password(&sign_in).await {
        Ok((user, _)) => user,
        Err(AppError::Invalid(_) | AppError::Unauthorized(_) | AppError::Forbidden(_) | AppError::NotFound(_)) => {
            return Err(error_response(StatusCode::UNAUTHORIZED, "unauthorized", tessera_app::SIGN_IN_FAILED));
        }
        Err(
            e
            @ (AppError::Conflict(_) | AppError::Overloaded { .. } | AppError::Unavailable(_) | AppError::Internal(_)),
        ) => {
            return Err(app_error(&e));
        }
    };
    let (cookies, identity, header) = create(gw, p, &user, &ip, &r.bind, others, now).await?;
    Ok(Some(Signed { identity, cookies, header: Some(header), by_password: true }))
}

/// The identity headers and configured `Session-*` headers for the upstream; the session's
/// own cookies are not forwarded. (Admission removed whatever the client sent under these
/// names.)
fn identify_upstream(h: &mut HeaderMap, p: &SessionPlugin, s: &Signed, now: u64) {
    let set = |h: &mut HeaderMap, name: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(name, v);
        }
    };
    let id = &s.identity;
    set(h, "x-consumer-id", &id.user_id);
    set(h, "x-consumer-username", &id.subject);
    set(h, "x-credential-identifier", &id.credential);
    if !id.groups.is_empty() {
        set(h, "x-authenticated-groups", &id.groups.join(", "));
    }
    strip_session_cookies(h, p);
    if let (Some(list), Some(hd)) = (&p.config.request_headers, &s.header) {
        for (name, v) in session_headers(p, list, hd, id, now) {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(name, v);
            }
        }
    }
}

/// Our cookies (replacing an upstream cookie of the same name) and the configured
/// `Session-*` response headers.
fn answer_with_session(rh: &mut HeaderMap, p: &SessionPlugin, s: &Signed, now: u64) {
    if !s.cookies.is_empty() {
        let ours: Vec<&str> = s.cookies.iter().filter_map(|c| c.split('=').next()).collect();
        let upstream: Vec<HeaderValue> = rh
            .get_all(header::SET_COOKIE)
            .iter()
            .filter(|v| v.to_str().ok().and_then(|s| s.split('=').next()).is_none_or(|n| !ours.contains(&n)))
            .cloned()
            .collect();
        rh.remove(header::SET_COOKIE);
        for v in upstream {
            rh.append(header::SET_COOKIE, v);
        }
        append_cookies(rh, &s.cookies);
    }
    if let (Some(list), Some(hd)) = (&p.config.response_headers, &s.header) {
        for (name, v) in session_headers(p, list, hd, &s.identity, now) {
            if let Ok(v) = HeaderValue::from_str(&v) {
                rh.insert(name, v);
            }
        }
    }
}

/// The remember cookie, when the session cookie is missing or invalid: opens it (PBKDF2) and
/// starts a new session from its data, re-issuing both cookies.
async fn remembered(
    gw: &Gateway,
    p: &SessionPlugin,
    r: &Request2<'_>,
    ip: &str,
    now: u64,
) -> Result<Option<(Vec<String>, Identity, Header)>, Response<Body>> {
    if !p.config.remember {
        return Ok(None);
    }
    let Ok(value) = chunk::join(&p.config.remember_cookie_name, |n| r.cookies.get(n).copied()) else { return Ok(None) };
    let opts = OpenOptions { storage: Storage::Cookie, kind: REMEMBER, timeouts: p.remember_timeouts };
    let Ok(opened) = tessera_session_cookie::open(&p.keys, &opts, &value, None, &r.bind, now) else { return Ok(None) };
    let Some(identity) = opened.entry(&p.config.audience).and_then(identity_from_entry) else { return Ok(None) };
    let Ok(uid) = identity.user_id.parse::<UserId>() else { return Ok(None) };
    let Some(user) = gw.app.gateway_user(p.org, uid).await.map_err(|e| app_error(&e))? else { return Ok(None) };
    let (mut cookies, identity, header) = create(gw, p, &user, ip, &r.bind, opened.data.clone(), now).await?;
    // `create` issued a new remember cookie; keep the original creation time instead, as
    // lua-resty-session renews the remember session rather than starting a new one.
    cookies.retain(|c| !c.starts_with(&format!("{}=", p.config.remember_cookie_name)));
    let ropts = SealOptions { storage: Storage::Cookie, kind: REMEMBER, bind: p.bind, ..SealOptions::default() }
        .renewing(&opened.header);
    if let Ok(s) = tessera_session_cookie::seal(&p.keys, &ropts, &opened.data, &r.bind, now) {
        let expiry = RememberExpiry::new(s.header.creation_time, p.remember_timeouts.rolling);
        cookies.extend(
            attributes(p).set_cookies(&p.config.remember_cookie_name, &s.value, Some(&expiry)).unwrap_or_default(),
        );
    }
    Ok(Some((cookies, identity, header)))
}

#[cfg(test)]
mod tests {
    //! The plugin's decisions over a real app on SQLite with a controlled clock: opening,
    //! refreshing (nothing, touch, renew), logout, remember, and who is refused.

    use rand::SeedableRng;
    use tessera_app::{App, BootstrapOutcome, BootstrapRequest, Caller, ManualClock, UserPatch};
    use tessera_domain::gateway::{Plugin, merge_patch};
    use tessera_domain::user::UserStatus;

    use super::*;

    const T0: u64 = 1_700_000_000;
    const UA: &str = "UA-1";
    const ADMIN_KEY: &str = "gateway-unit-admin-key-0123456789abcdef";

    struct Harness {
        gw: Arc<Gateway>,
        clock: ManualClock,
        user: User,
        /// The administrator's API caller, for changes made through the app.
        caller: Caller,
        _dir: tempfile::TempDir,
    }

    async fn harness() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(tessera_store_sqlite::SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let clock = ManualClock::new(Timestamp(T0 as i64));
        let rng = Box::new(rand::rngs::StdRng::seed_from_u64(7));
        let app = Arc::new(App::new(store, Arc::new(clock.clone()), rng));
        let req = BootstrapRequest {
            organization_name: "t".into(),
            admin_email: "gia@example.com".into(),
            api_key: Some(ADMIN_KEY.into()),
        };
        let BootstrapOutcome::Created { organization, admin, .. } = app.bootstrap(req).await.unwrap() else {
            panic!("a fresh store")
        };
        let user = app.gateway_user(organization, admin).await.unwrap().expect("an active administrator");
        let caller = app.authenticate(ADMIN_KEY, None).await.unwrap();
        let gw = Gateway::new(app).await.unwrap();
        Harness { gw, clock, user, caller, _dir: dir }
    }

    fn plugin(h: &Harness, config: Value) -> SessionPlugin {
        let mut cfg = json!({"secret": "a-test-secret", "cookie_secure": false});
        merge_patch(&mut cfg, config);
        let mut p: Plugin = serde_json::from_value(json!({"name": "session", "config": cfg})).unwrap();
        p.normalize().unwrap();
        p.id = Some(uuid::Uuid::from_u128(1));
        SessionPlugin::new(h.user.org_id, &p)
    }

    fn now(h: &Harness) -> u64 {
        h.gw.app.now().0 as u64
    }

    /// A browser's cookie jar: `Set-Cookie` lines applied in order (Max-Age=0 removes).
    #[derive(Default, Clone)]
    struct Jar(HashMap<String, String>);

    impl Jar {
        fn apply(&mut self, set_cookies: &[String]) {
            for c in set_cookies {
                let (name, rest) = c.split_once('=').unwrap();
                let value = rest.split(';').next().unwrap();
                if c.contains("Max-Age=0") {
                    self.0.remove(name);
                } else {
                    self.0.insert(name.to_owned(), value.to_owned());
                }
            }
        }

        fn request(&self, ua: &'static str) -> Request2<'_> {
            let cookies = self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Request2 { bind: BindValues { ip: "127.0.0.1", scheme: "http", user_agent: ua }, cookies }
        }
    }

    async fn sign_in(h: &Harness, p: &SessionPlugin, others: SessionData) -> Jar {
        let bind = BindValues { ip: "127.0.0.1", scheme: "http", user_agent: UA };
        let (cookies, identity, _) = create(&h.gw, p, &h.user, "127.0.0.1", &bind, others, now(h)).await.unwrap();
        assert_eq!(identity.subject, "gia@example.com");
        let mut jar = Jar::default();
        jar.apply(&cookies);
        jar
    }

    async fn open_as(h: &Harness, p: &SessionPlugin, jar: &Jar, ua: &'static str) -> Found {
        open(&h.gw, p, &jar.request(ua), now(h)).await.expect("the store answers")
    }

    fn valid(f: Found) -> Open {
        match f {
            Found::Valid(o) => *o,
            Found::OtherAudiences(_) => panic!("expected a valid session, found other audiences"),
            Found::None => panic!("expected a valid session, found none"),
        }
    }

    #[tokio::test]
    async fn a_session_opens_for_its_audience_and_its_browser_only() {
        let h = harness().await;
        let p = plugin(&h, json!({"audience": "app-a", "bind": ["user-agent"]}));
        let jar = sign_in(&h, &p, vec![]).await;
        let o = valid(open_as(&h, &p, &jar, UA).await);
        assert_eq!(
            (o.identity.user_id.as_str(), o.identity.subject.as_str()),
            (&*h.user.id.to_string(), "gia@example.com")
        );
        assert!(matches!(open_as(&h, &p, &jar, "UA-2").await, Found::None), "bound to the User-Agent");
        let other = plugin(&h, json!({"audience": "app-b", "bind": ["user-agent"]}));
        match open_as(&h, &other, &jar, UA).await {
            Found::OtherAudiences(d) => {
                assert_eq!(d.iter().map(|e| e.audience.as_str()).collect::<Vec<_>>(), ["app-a"])
            }
            _ => panic!("another audience's plugin must see the entries to keep"),
        }
        let wrong_secret = plugin(&h, json!({"audience": "app-a", "secret": "another"}));
        assert!(matches!(open_as(&h, &wrong_secret, &jar, UA).await, Found::None), "another secret cannot open it");
    }

    #[tokio::test]
    async fn refresh_does_nothing_then_touches_then_renews() {
        let h = harness().await;
        let p = plugin(&h, json!({"idling_timeout": 300, "rolling_timeout": 1000, "absolute_timeout": 5000}));
        let bind = BindValues { ip: "127.0.0.1", scheme: "http", user_agent: UA };
        let mut jar = sign_in(&h, &p, vec![]).await;
        let mut o = valid(open_as(&h, &p, &jar, UA).await);
        let first = o.header.storage_key();
        h.clock.advance(30);
        assert_eq!(refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap(), Some(vec![]), "fresh: nothing to send");
        h.clock.advance(31); // 61 s since the last save: touch
        let touched = refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap().unwrap();
        assert_eq!(touched.len(), 1, "a touch re-sends the first cookie only: {touched:?}");
        assert_eq!(o.header.storage_key(), first, "a touch keeps the session id");
        jar.apply(&touched);
        // Kept busy (a request every 250 s, each a touch) until 761 s > 3/4 of rolling (750).
        for _ in 0..2 {
            h.clock.advance(250);
            let mut o = valid(open_as(&h, &p, &jar, UA).await);
            let touched = refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap().unwrap();
            assert_eq!(o.header.storage_key(), first, "still a touch");
            jar.apply(&touched);
        }
        h.clock.advance(200);
        let mut o = valid(open_as(&h, &p, &jar, UA).await);
        let renewed = refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap().unwrap();
        assert!(renewed.iter().any(|c| c.starts_with("session=")), "{renewed:?}");
        assert_ne!(o.header.storage_key(), first, "a renewal gives a new session id");
        jar.apply(&renewed);
        assert_eq!(valid(open_as(&h, &p, &jar, UA).await).header.storage_key(), o.header.storage_key());
        h.clock.advance(301);
        assert!(matches!(open_as(&h, &p, &jar, UA).await, Found::None), "idle past idling_timeout");
    }

    #[tokio::test]
    async fn logout_keeps_other_audiences_and_otherwise_expires_every_cookie() {
        let h = harness().await;
        let a = plugin(&h, json!({"audience": "app-a", "remember": true}));
        let b = plugin(&h, json!({"audience": "app-b", "remember": true}));
        let bind = BindValues { ip: "127.0.0.1", scheme: "http", user_agent: UA };
        let jar = sign_in(&h, &a, vec![]).await;
        let a_data = (*valid(open_as(&h, &a, &jar, UA).await).data).clone();
        let mut jar = {
            let mut j = jar.clone();
            j.apply(&create(&h.gw, &b, &h.user, "127.0.0.1", &bind, a_data, now(&h)).await.unwrap().0);
            j
        };
        let o = valid(open_as(&h, &a, &jar, UA).await);
        assert_eq!(o.data.len(), 2, "one cookie, two audiences");
        let res = logout(&h.gw, &a, o, &bind, now(&h)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let set: Vec<String> =
            res.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert!(set.iter().all(|c| !c.contains("Max-Age=0")), "re-sealed, nothing expired: {set:?}");
        jar.apply(&set);
        assert!(matches!(open_as(&h, &a, &jar, UA).await, Found::OtherAudiences(_)), "out of app-a");
        let o = valid(open_as(&h, &b, &jar, UA).await);
        let res = logout(&h.gw, &b, o, &bind, now(&h)).await;
        let set: Vec<String> =
            res.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert!(set.iter().any(|c| c.starts_with("session=;") && c.contains("Max-Age=0")), "{set:?}");
        assert!(set.iter().any(|c| c.starts_with("remember=;") && c.contains("Max-Age=0")), "{set:?}");
        jar.apply(&set);
        assert!(jar.0.is_empty(), "every cookie expired: {:?}", jar.0);
    }

    #[test]
    fn logout_leaves_the_other_audiences_unless_the_record_is_shared() {
        let e = |aud: &str| SessionEntry::new(json!(["u"]), aud, "s");
        let data = vec![e("a"), e("b")];
        let left = logout_leaves(&data, "a", false).unwrap();
        assert_eq!(left.iter().map(|e| e.audience.as_str()).collect::<Vec<_>>(), ["b"]);
        assert!(logout_leaves(&data, "a", true).is_none(), "server storage ends the record for all");
        assert!(logout_leaves(&data[..1], "a", false).is_none(), "nothing left: expire");
    }

    #[tokio::test]
    async fn the_remember_cookie_brings_back_an_idled_session_and_a_disabled_user_loses_it() {
        let h = harness().await;
        let p = plugin(&h, json!({"remember": true, "idling_timeout": 60, "rolling_timeout": 3600}));
        let jar = sign_in(&h, &p, vec![]).await;
        assert!(jar.0.contains_key("remember"));
        h.clock.advance(120);
        assert!(matches!(open_as(&h, &p, &jar, UA).await, Found::None), "the session cookie idled out");
        let (cookies, identity, _) =
            remembered(&h.gw, &p, &jar.request(UA), "127.0.0.1", now(&h)).await.unwrap().unwrap();
        assert_eq!(identity.subject, "gia@example.com");
        assert!(
            cookies.iter().any(|c| c.starts_with("session=")) && cookies.iter().any(|c| c.starts_with("remember="))
        );
        let mut renewed = jar.clone();
        renewed.apply(&cookies);
        valid(open_as(&h, &p, &renewed, UA).await);
        let without = plugin(&h, json!({"remember": false, "idling_timeout": 60}));
        assert!(remembered(&h.gw, &without, &jar.request(UA), "127.0.0.1", now(&h)).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_disabled_user_opens_neither_cookie() {
        let h = harness().await;
        let p = plugin(&h, json!({"remember": true, "idling_timeout": 60}));
        let jar = sign_in(&h, &p, vec![]).await;
        let disable = UserPatch { status: Some(UserStatus::Disabled), ..UserPatch::default() };
        h.gw.app.update_user(&h.caller, h.user.id, disable).await.unwrap();
        assert!(matches!(open_as(&h, &p, &jar, UA).await, Found::None), "the session cookie is refused");
        assert!(remembered(&h.gw, &p, &jar.request(UA), "127.0.0.1", now(&h)).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn server_storage_keys_open_renew_and_end_with_logout() {
        let h = harness().await;
        let p = plugin(&h, json!({"storage": "server", "rolling_timeout": 100, "idling_timeout": 0, "stale_ttl": 10}));
        let bind = BindValues { ip: "127.0.0.1", scheme: "http", user_agent: UA };
        let old = sign_in(&h, &p, vec![]).await;
        assert_eq!(old.0["session"].len(), 110, "the cookie is the header only");
        h.clock.advance(80);
        let mut o = valid(open_as(&h, &p, &old, UA).await);
        assert!(o.server.is_some());
        let renewed = refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap().unwrap();
        let mut new = old.clone();
        new.apply(&renewed);
        valid(open_as(&h, &p, &old, UA).await); // within stale_ttl
        h.clock.advance(11);
        assert!(matches!(open_as(&h, &p, &old, UA).await, Found::None), "the old key went stale");
        let o = valid(open_as(&h, &p, &new, UA).await);
        assert_eq!(logout(&h.gw, &p, o, &bind, now(&h)).await.status(), StatusCode::OK);
        assert!(matches!(open_as(&h, &p, &new, UA).await, Found::None), "logout ended the record");
    }

    #[test]
    fn server_keys_live_to_the_rolling_deadline_capped_by_the_absolute_one() {
        let mut p = SessionPlugin::new(
            OrgId(uuid::Uuid::nil()),
            &serde_json::from_value(json!({"name": "session", "config": {"secret": "s"}})).unwrap(),
        );
        p.timeouts = tessera_session_cookie::Timeouts { idling: 0, rolling: 3600, absolute: 86_400 };
        assert_eq!(key_ttl(&p, 1000, 1000), 3600);
        assert_eq!(key_ttl(&p, 86_000 + 1000, 1000), 400, "capped by the absolute deadline");
        assert_eq!(key_ttl(&p, 90_000, 1000), 1, "never zero");
        p.timeouts = tessera_session_cookie::Timeouts { idling: 0, rolling: 0, absolute: 0 };
        assert_eq!(key_ttl(&p, 0, 0), MAX_TTL);
    }

    fn parts(method: &str, uri: &str, accept: Option<&str>) -> axum::http::request::Parts {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(a) = accept {
            b = b.header(header::ACCEPT, a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn requests_without_a_session_pass_redirect_or_are_rejected_as_configured() {
        let html = parts("GET", "/x", Some("text/html,application/xhtml+xml"));
        let api = parts("GET", "/x", Some("application/json"));
        let post = parts("POST", "/x", Some("text/html"));
        assert_eq!(unauthenticated("pass", &api), Unauthenticated::Pass);
        assert_eq!(unauthenticated("redirect", &html), Unauthenticated::Redirect);
        assert_eq!(unauthenticated("redirect", &api), Unauthenticated::Reject, "programs get 401");
        assert_eq!(unauthenticated("redirect", &post), Unauthenticated::Reject, "only GET is redirected");
        assert_eq!(unauthenticated("reject", &html), Unauthenticated::Reject);
    }

    #[tokio::test]
    async fn logout_is_asked_by_query_or_body_with_a_configured_method() {
        let h = harness().await;
        let p = plugin(&h, json!({"logout_methods": ["POST"], "read_body_for_logout": true}));
        let none = HeaderMap::new();
        assert!(is_logout(&p, &parts("POST", "/x?a=1&session_logout", None), &none, None));
        assert!(!is_logout(&p, &parts("DELETE", "/x?session_logout", None), &none, None), "not a logout method");
        assert!(!is_logout(&p, &parts("POST", "/x?session_logoutx=1", None), &none, None));
        assert!(is_logout(&p, &parts("POST", "/x", None), &none, Some(b"a=1&session_logout=1")));
        let json_ct: HeaderMap =
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))].into_iter().collect();
        assert!(is_logout(&p, &parts("POST", "/x", None), &json_ct, Some(br#"{"session_logout":true}"#)));
        assert!(!is_logout(&p, &parts("POST", "/x", None), &json_ct, Some(b"session_logout")));
        let (asked, body) =
            logout_requested(&p, &parts("POST", "/x", None), &none, Body::from("keep=me")).await.unwrap();
        assert!(!asked);
        assert_eq!(axum::body::to_bytes(body, 100).await.unwrap(), "keep=me", "the body still goes upstream");
    }

    #[test]
    fn the_session_cookies_never_reach_the_upstream() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("theme=dark; session=a; session2=b; remember=c"));
        h.append(header::COOKIE, HeaderValue::from_static("session10=x; sessionx=y"));
        let p = SessionPlugin::new(
            OrgId(uuid::Uuid::nil()),
            &serde_json::from_value(json!({"name": "session", "config": {"secret": "s"}})).unwrap(),
        );
        strip_session_cookies(&mut h, &p);
        assert_eq!(h[header::COOKIE], "theme=dark; session10=x; sessionx=y");
    }
}
