//! lua-resty-session's `open()` for the session cookie of one plugin: verify the header
//! (MAC, timeouts, binding), then read the data from the cookie (decrypting it, or taking a
//! payload already decrypted) or from the store (server storage), and check that the user it
//! names may still be signed in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tessera_app::System;

use serde_json::Value;
use tessera_domain::ids::{OrgId, SessionId, UserId};
use tessera_domain::token::TokenDigest;
use tessera_session_cookie::{CookieKind, Header, OpenOptions, SessionData, SessionEntry, Storage, chunk};

use super::{Answer, Identity, Presented};
use crate::Gateway;
use crate::error::app_error;
use crate::plugin::SessionPlugin;

/// The length of a cookie's header, before its payload.
const HEADER_LEN: usize = 110;

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

/// The stored record and key a server-storage cookie names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerKey {
    pub org: OrgId,
    pub session: SessionId,
    pub key: TokenDigest,
}

/// An opened, valid session of this plugin's audience.
pub(crate) struct Open {
    pub header: Header,
    pub value: String,
    pub data: Arc<SessionData>,
    pub identity: Identity,
    /// Server storage: the record and the key the cookie names.
    pub server: Option<ServerKey>,
    pub chunks: usize,
}

/// What the request's cookies hold for this plugin.
pub(crate) enum Found {
    Valid(Box<Open>),
    /// A valid cookie without this audience: its entries are kept on the next save.
    OtherAudiences(SessionData),
    None,
}

impl Found {
    /// The valid session, and the other audiences' entries a new session must keep.
    pub fn into_parts(self) -> (Option<Open>, SessionData) {
        match self {
            Found::Valid(o) => (Some(*o), vec![]),
            Found::OtherAudiences(d) => (None, d),
            Found::None => (None, vec![]),
        }
    }
}

/// The data a verified header leads to, and, with server storage, its record.
struct Payload {
    data: Arc<SessionData>,
    server: Option<(ServerKey, Identity)>,
}

/// Kong's entry data `[user_id, credential_id, [group names]]`, subject = email.
pub(crate) fn identity_from_entry(e: &SessionEntry) -> Option<Identity> {
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

/// Opens this plugin's session cookie. `Err` only when the store cannot answer.
pub(crate) async fn open(gw: &Gateway, p: &SessionPlugin, r: &Presented<'_>, now: u64) -> Result<Found, Answer> {
    let Ok(value) = chunk::join(&p.cookie_name, |n| r.cookies.get(n).copied()) else { return Ok(Found::None) };
    let opts = OpenOptions { storage: p.storage, kind: CookieKind::Session, timeouts: p.timeouts };
    let header = match tessera_session_cookie::verify(&p.keys, &opts, &value, &r.bind, now) {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(reason = %e, cookie = %p.cookie_name, "session cookie rejected");
            return Ok(Found::None);
        }
    };
    let payload = match p.storage {
        Storage::Cookie => from_cookie(gw, p, &header, &value[HEADER_LEN..]),
        Storage::Server => from_store(gw, p, &header).await?,
    };
    let Some(Payload { data, server }) = payload else { return Ok(Found::None) };
    let Some(entry) = data.iter().find(|e| e.audience == p.audience) else {
        return Ok(Found::OtherAudiences((*data).clone()));
    };
    let Some(mut identity) = identity_from_entry(entry) else { return Ok(Found::None) };
    let server = match server {
        // The record knows the user and the credential; the cookie still carries the groups.
        Some((key, stored)) => {
            identity = Identity { groups: identity.groups, ..stored };
            Some(key)
        }
        None if still_signed_in(gw, p.org, &identity).await? => None,
        None => return Ok(Found::None),
    };
    let chunks = chunk::count(p.cookie_name.len(), value.len().saturating_sub(HEADER_LEN)).unwrap_or(1);
    Ok(Found::Valid(Box::new(Open { header, value: value.into_owned(), data, identity, server, chunks })))
}

/// Cookie storage carries the identity: the user it names must still exist and be active,
/// as the app's credential cache says.
async fn still_signed_in(gw: &Gateway, org: OrgId, identity: &Identity) -> Result<bool, Answer> {
    let Ok(user) = identity.user_id.parse::<UserId>() else { return Ok(false) };
    Ok(gw.app.gateway_user(System::GATEWAY, org, user).await.map_err(|e| app_error(&e))?.is_some())
}

/// The cookie's own payload, decrypted (or as decrypted before).
fn from_cookie(gw: &Gateway, p: &SessionPlugin, header: &Header, payload: &str) -> Option<Payload> {
    if let Some(data) = gw.decoded.get(p.id, header, payload) {
        return Some(Payload { data, server: None });
    }
    match tessera_session_cookie::decrypt(&p.keys, CookieKind::Session, header, payload) {
        Ok(d) => {
            let data = Arc::new(d);
            gw.decoded.put(p.id, header, payload, &data);
            Some(Payload { data, server: None })
        }
        Err(e) => {
            tracing::debug!(reason = %e, "session payload rejected");
            None
        }
    }
}

/// The record a server-storage cookie names: a live key of this organization whose data
/// decrypts with the cookie's header.
async fn from_store(gw: &Gateway, p: &SessionPlugin, header: &Header) -> Result<Option<Payload>, Answer> {
    let digest = TokenDigest::of(&header.storage_key());
    let found = gw.app.find_gateway_key(System::GATEWAY, &digest).await.map_err(|e| app_error(&e))?;
    let Some(key) = found.filter(|k| k.session.org_id == p.org) else { return Ok(None) };
    let Ok(record) = tessera_session_cookie::decode_storage_record(&key.data) else { return Ok(None) };
    let Ok(data) = tessera_session_cookie::decrypt(&p.keys, CookieKind::Session, header, &record.ciphertext) else {
        return Ok(None);
    };
    let stored = Identity {
        user_id: key.user.id.to_string(),
        subject: key.user.email.as_str().to_owned(),
        credential: key.session.id.to_string(),
        groups: vec![],
    };
    let server = ServerKey { org: key.session.org_id, session: key.session.id, key: digest };
    Ok(Some(Payload { data: Arc::new(data), server: Some((server, stored)) }))
}
