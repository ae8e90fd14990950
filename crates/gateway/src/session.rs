//! The `session` plugin on one request, as Kong runs it: open the cookie (and, with server
//! storage, its stored record), refresh it (touch after 60 s idle, renew past ¾ of the
//! rolling timeout), handle logout, set identity headers upstream, and add the cookies and
//! `Session-*` headers to the answer. Without a valid session the request may sign in with
//! HTTP Basic credentials of a Tessera user; otherwise it is rejected, redirected to the
//! login page, or passed on, as configured.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Request, Response, StatusCode};
use base64::Engine;
use serde_json::{Value, json};
use tessera_app::SignIn;
use tessera_domain::Timestamp;
use tessera_domain::ids::{OrgId, SessionId, UserId};
use tessera_domain::token::TokenDigest;
use tessera_domain::user::{User, UserStatus};
use tessera_session_cookie::{
    BindValues, CookieAttributes, CookieFlags, CookieKind, Header, OpenOptions, RefreshAction, RememberExpiry,
    RememberSafety, SameSite, SealOptions, SessionData, SessionEntry, Storage, chunk,
};
use tessera_store::GatewayRekey;

use crate::table::{Matched, SessionPlugin};
use crate::{Gateway, LOGIN_PATH, error_response, proxy};

const TOUCH_THRESHOLD: u64 = 60;
/// Kong's `remember_safety` is not configurable: Medium, 10 000 PBKDF2 iterations.
const REMEMBER: CookieKind = CookieKind::Remember(RememberSafety::Medium);
/// Longest a server-side key lives when no timeout bounds it (lua-resty-session's 400 days).
const MAX_TTL: u64 = 400 * 86_400;

/// Whether users still exist and are active, checked at most every few seconds per user
/// (cookie storage carries the identity, but a deleted or disabled user must lose access).
#[derive(Default)]
pub struct UserCache(Mutex<HashMap<(OrgId, UserId), (bool, Instant)>>);

const USER_TTL: Duration = Duration::from_secs(5);

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

impl DecodedCache {
    fn get(&self, plugin: uuid::Uuid, h: &Header, payload: &str) -> Option<Arc<SessionData>> {
        let map = self.0.lock().expect("decoded cache");
        let hit = map.get(&(plugin, h.sid, h.tag))?;
        (*hit.0 == *payload).then(|| Arc::clone(&hit.1))
    }

    fn put(&self, plugin: uuid::Uuid, h: &Header, payload: &str, data: &Arc<SessionData>) {
        let mut map = self.0.lock().expect("decoded cache");
        if map.len() >= DECODED_MAX {
            map.clear();
        }
        map.insert((plugin, h.sid, h.tag), Arc::new((payload.into(), Arc::clone(data))));
    }
}

impl UserCache {
    async fn active(&self, gw: &Gateway, org: OrgId, user: UserId) -> bool {
        if let Some((ok, at)) = self.0.lock().expect("user cache").get(&(org, user))
            && at.elapsed() < USER_TTL
        {
            return *ok;
        }
        let ok = match gw.app.store().get_user(org, user).await {
            Ok(Some(u)) => u.status == UserStatus::Active,
            Ok(None) => false,
            // The store is down: keep the last answer rather than sign everyone out.
            Err(_) => return self.0.lock().expect("user cache").get(&(org, user)).is_some_and(|(ok, _)| *ok),
        };
        let mut map = self.0.lock().expect("user cache");
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert((org, user), (ok, Instant::now()));
        ok
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
async fn open(gw: &Gateway, p: &SessionPlugin, r: &Request2<'_>, now: u64) -> Found {
    let Ok(value) = chunk::join(&p.config.cookie_name, |n| r.cookies.get(n).copied()) else { return Found::None };
    let st = storage(p);
    let opts = OpenOptions { storage: st, kind: CookieKind::Session, timeouts: p.timeouts };
    let header = match tessera_session_cookie::verify(&p.keys, &opts, &value, &r.bind, now) {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(reason = %e, cookie = %p.config.cookie_name, "session cookie rejected");
            return Found::None;
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
                        return Found::None;
                    }
                },
            }
        }
        Storage::Server => {
            let digest = TokenDigest::of(&header.storage_key());
            let key = match gw.app.find_gateway_key(&digest).await {
                Ok(Some(k)) if k.session.org_id == p.org => k,
                Ok(_) => return Found::None,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot load a gateway session");
                    return Found::None;
                }
            };
            let Ok(record) = tessera_session_cookie::decode_storage_record(&key.data) else { return Found::None };
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
                Err(_) => return Found::None,
            }
        }
    };
    let Some(entry) = data.iter().find(|e| e.audience == p.config.audience) else {
        return Found::OtherAudiences((*data).clone());
    };
    let Some(mut identity) = identity_from_entry(entry) else { return Found::None };
    if let Some(stored) = stored_identity {
        identity = Identity { groups: identity.groups, ..stored };
    } else {
        let Ok(uid) = identity.user_id.parse::<UserId>() else { return Found::None };
        if !gw.users.active(gw, p.org, uid).await {
            return Found::None;
        }
    }
    Found::Valid(Box::new(Open { header, value: value.into_owned(), data, identity, server, chunks }))
}

/// The data Tessera keeps for a signed-in user, in Kong's shape:
/// `[user_id, credential_id, [group names]]`, subject = email.
async fn entry_for(gw: &Gateway, p: &SessionPlugin, user: &User, credential: &str) -> SessionEntry {
    let mut groups = vec![];
    if let Ok(ids) = gw.app.store().groups_of_user(user.org_id, user.id).await {
        for id in ids {
            if let Ok(Some(g)) = gw.app.store().get_group(user.org_id, id).await {
                groups.push(g.display_name);
            }
        }
    }
    SessionEntry::new(json!([user.id.to_string(), credential, groups]), p.config.audience.clone(), user.email.as_str())
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
    let entry = entry_for(gw, p, user, &credential).await;
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
            .map_err(|e| unavailable(&e))?;
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
    let identity = identity_from_entry(&entry).expect("the entry was just built");
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

fn unavailable(e: &tessera_app::AppError) -> Response<Body> {
    match e {
        tessera_app::AppError::Unavailable(m) => {
            error_response(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &format!("the store is unavailable: {m}"))
        }
        other => error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", &other.to_string()),
    }
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
                let rekey = GatewayRekey {
                    org_id: org,
                    session: sid,
                    old,
                    old_expires: Timestamp((now + p.stale_ttl) as i64),
                    new,
                    data: sealed.storage_record(),
                    new_expires: Timestamp((now + key_ttl(p, now, sealed.header.creation_time)) as i64),
                    now: Timestamp(now as i64),
                };
                match gw.app.rekey_gateway_session(&rekey).await {
                    Ok(true) => o.server = Some((org, sid, new)),
                    Ok(false) => return Ok(None),
                    Err(e) => return Err(unavailable(&e)),
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

/// Logout: with other audiences in the cookie, re-save without this one; otherwise expire
/// every cookie of the session (chunks and remember too) and end the server record.
async fn logout(gw: &Gateway, p: &SessionPlugin, o: Open, bind: &BindValues<'_>, now: u64) -> Response<Body> {
    let flags = attributes(p);
    let mut cookies = vec![];
    let remaining: SessionData = o.data.iter().filter(|e| e.audience != p.config.audience).cloned().collect();
    if let Some((org, sid, key)) = o.server
        && let Err(e) = gw.app.end_gateway_session(org, sid, &key).await
    {
        return unavailable(&e);
    }
    if remaining.is_empty() || storage(p) == Storage::Server {
        cookies.extend(flags.expire_chunks(&p.config.cookie_name, 1..=o.chunks.max(1)));
        if p.config.remember {
            cookies.push(flags.expire(&p.config.remember_cookie_name));
        }
    } else {
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
    let mut res = Response::builder().status(StatusCode::OK).body(Body::empty()).expect("static parts");
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

const IDENTITY_HEADERS: &[&str] = &[
    "x-consumer-id",
    "x-consumer-custom-id",
    "x-consumer-username",
    "x-credential-identifier",
    "x-authenticated-groups",
    "x-anonymous-consumer",
];

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

pub(crate) fn peer_ip(peer: SocketAddr) -> String {
    peer.ip().to_canonical().to_string()
}

/// Runs the plugin around forwarding one request.
pub async fn run(
    gw: &Gateway,
    m: &Matched<'_>,
    p: Arc<SessionPlugin>,
    req: Request<Body>,
    peer: SocketAddr,
    rid: &HeaderValue,
) -> Response<Body> {
    let now = gw.app.now().0.max(0) as u64;
    let ip = peer_ip(peer);
    let (mut parts, body) = req.into_parts();
    // Read from the request's own headers (taken out, put back below): no copy per request.
    let headers = std::mem::take(&mut parts.headers);
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let r = Request2 { bind: BindValues { ip: &ip, scheme: "http", user_agent: ua }, cookies: parse_cookies(&headers) };

    let mut set_cookies: Vec<String> = vec![];
    let mut fresh_header: Option<Header> = None;
    let mut strip_authorization = false;
    let found = open(gw, &p, &r, now).await;
    let (found, others) = match found {
        Found::Valid(o) => (Some(*o), vec![]),
        Found::OtherAudiences(d) => (None, d),
        Found::None => (None, vec![]),
    };

    // Logout needs a valid session; the body is read only when the config says so.
    let mut body = body;
    if let Some(o) = &found
        && p.config.logout_methods.iter().any(|m| m == parts.method.as_str())
    {
        let mut buffered = None;
        if p.config.read_body_for_logout
            && matches!(parts.method, Method::POST | Method::DELETE | Method::PUT | Method::PATCH)
        {
            match axum::body::to_bytes(body, 1 << 20).await {
                Ok(b) => buffered = Some(b),
                Err(_) => {
                    return error_response(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the request body is too large");
                }
            }
            body = Body::from(buffered.clone().unwrap_or_default());
        }
        if is_logout(&p, &parts, &headers, buffered.as_deref()) {
            let Some(o) = found else { unreachable!() };
            return logout(gw, &p, o, &r.bind, now).await;
        }
        let _ = o;
    }

    let identity = match found {
        Some(mut o) => match refresh(gw, &p, &mut o, &r.bind, now).await {
            Ok(Some(c)) => {
                set_cookies = c;
                fresh_header = Some(o.header);
                Some(o.identity)
            }
            Ok(None) => None,
            Err(res) => return res,
        },
        None => None,
    };
    let identity = match identity {
        Some(i) => Some(i),
        None => match remembered(gw, &p, &r, &ip, now).await {
            Ok(Some((c, i, h))) => {
                set_cookies = c;
                fresh_header = Some(h);
                Some(i)
            }
            Ok(None) => match basic_credentials(&headers) {
                Some((email, password)) => {
                    let sign_in = SignIn {
                        email,
                        password,
                        organization: Some(p.org),
                        client_ip: Some(peer.ip().to_canonical()),
                    };
                    match gw.app.check_password(&sign_in).await {
                        Ok((user, _)) => match create(gw, &p, &user, &ip, &r.bind, others, now).await {
                            Ok((c, i, h)) => {
                                strip_authorization = true;
                                set_cookies = c;
                                fresh_header = Some(h);
                                Some(i)
                            }
                            Err(res) => return res,
                        },
                        Err(tessera_app::AppError::Unavailable(m)) => {
                            return error_response(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &m);
                        }
                        Err(_) => {
                            return error_response(
                                StatusCode::UNAUTHORIZED,
                                "unauthorized",
                                tessera_app::SIGN_IN_FAILED,
                            );
                        }
                    }
                }
                None => None,
            },
            Err(res) => return res,
        },
    };

    drop(r);
    parts.headers = headers;
    if strip_authorization {
        parts.headers.remove(header::AUTHORIZATION);
    }
    let Some(identity) = identity else {
        match p.config.unauthenticated.as_str() {
            "pass" => {
                for h in IDENTITY_HEADERS {
                    parts.headers.remove(*h);
                }
                return proxy::forward(m, Request::from_parts(parts, body), peer, rid).await;
            }
            "redirect" if wants_html(&parts) => {
                let next = parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
                let location = format!("{LOGIN_PATH}?next={}", percent_encode(next));
                return Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, location)
                    .body(Body::empty())
                    .expect("static parts");
            }
            _ => {
                return error_response(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    &format!("sign in first: POST {LOGIN_PATH}, or send HTTP Basic credentials"),
                );
            }
        }
    };

    // Identity headers: never trust what the client sent.
    let h = &mut parts.headers;
    for name in IDENTITY_HEADERS {
        h.remove(*name);
    }
    let set = |h: &mut HeaderMap, name: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(name, v);
        }
    };
    set(h, "x-consumer-id", &identity.user_id);
    set(h, "x-consumer-username", &identity.subject);
    set(h, "x-credential-identifier", &identity.credential);
    if !identity.groups.is_empty() {
        set(h, "x-authenticated-groups", &identity.groups.join(", "));
    }
    strip_session_cookies(h, &p);
    let header_now = fresh_header;
    if let (Some(list), Some(hd)) = (&p.config.request_headers, &header_now) {
        for (name, v) in session_headers(&p, list, hd, &identity, now) {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(name, v);
            }
        }
    }

    let mut res = proxy::forward(m, Request::from_parts(parts, body), peer, rid).await;
    let rh = res.headers_mut();
    if !set_cookies.is_empty() {
        // Ours replace an upstream cookie of the same name.
        let ours: Vec<&str> = set_cookies.iter().filter_map(|c| c.split('=').next()).collect();
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
        append_cookies(rh, &set_cookies);
    }
    if let (Some(list), Some(hd)) = (&p.config.response_headers, &header_now) {
        for (name, v) in session_headers(&p, list, hd, &identity, now) {
            if let Ok(v) = HeaderValue::from_str(&v) {
                rh.insert(name, v);
            }
        }
    }
    res
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
    let user = match gw.app.store().get_user(p.org, uid).await {
        Ok(Some(u)) if u.status == UserStatus::Active => u,
        Ok(_) => return Ok(None),
        Err(e) => return Err(unavailable(&e.into())),
    };
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
