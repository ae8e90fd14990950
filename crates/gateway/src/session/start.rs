//! Starting a session for a user on one plugin (sign-in, HTTP Basic, the remember cookie):
//! seal a new cookie that keeps the other audiences' entries, store the record with server
//! storage, and add the remember cookie when configured.

use serde_json::json;
use tessera_app::System;
use tessera_domain::Timestamp;
use tessera_domain::user::User;
use tessera_session_cookie::{
    BindValues, CookieKind, RememberSafety, SealOptions, Sealed, SessionData, SessionEntry, Storage,
};

use super::open::identity_from_entry;
use super::{Answer, Signed, session_error};
use crate::Gateway;
use crate::error::app_error;
use crate::plugin::SessionPlugin;

/// Kong's `remember_safety` is not configurable: Medium, 10 000 PBKDF2 iterations.
pub(super) const REMEMBER: CookieKind = CookieKind::Remember(RememberSafety::Medium);

/// Signs `user` in on this plugin: seals a new cookie (keeping `others`, the other
/// audiences' entries), stores the record with server storage, and adds the remember
/// cookie when configured.
pub(crate) async fn start_session(
    gw: &Gateway,
    p: &SessionPlugin,
    user: &User,
    bind: &BindValues<'_>,
    mut others: SessionData,
    now: u64,
) -> Result<Signed, Answer> {
    // With server storage the record's id is the credential; pick it before sealing.
    let session_id = gw.app.new_session_id();
    let credential = if p.server_storage() { session_id.to_string() } else { user.id.to_string() };
    let entry = entry_for(gw, p, user, &credential).await?;
    let identity = identity_from_entry(&entry).ok_or_else(|| session_error("the session entry has no user"))?;
    others.retain(|e| e.audience != p.audience);
    others.push(entry);
    let opts = SealOptions { storage: p.storage, bind: p.bind, ..SealOptions::default() };
    let sealed = tessera_session_cookie::seal(&p.keys, &opts, &others, bind, now).map_err(|e| {
        tracing::warn!(error = %e, "cannot seal a session cookie");
        session_error(&e.to_string())
    })?;
    if p.server_storage() {
        store_record(gw, p, user, bind.ip, &sealed, session_id, now).await?;
    }
    let mut cookies = p
        .flags
        .set_cookies(&p.cookie_name, &sealed.value, None)
        .map_err(|e| session_error(&format!("{e}: the session data is too large")))?;
    if p.remember {
        cookies.extend(remember_cookie(p, &others, bind, now));
    }
    Ok(Signed { identity, cookies, header: sealed.header, by_password: false })
}

/// The data Tessera keeps for a signed-in user, in Kong's shape:
/// `[user_id, credential_id, [group names]]`, subject = email.
async fn entry_for(gw: &Gateway, p: &SessionPlugin, user: &User, credential: &str) -> Result<SessionEntry, Answer> {
    let groups = gw.app.gateway_groups(System::GATEWAY, user).await.map_err(|e| app_error(&e))?;
    let data = json!([user.id.to_string(), credential, groups]);
    Ok(SessionEntry::new(data, p.audience.clone(), user.email.as_str()))
}

/// Server storage: the session record (a `gateway` session) and its first key.
async fn store_record(
    gw: &Gateway,
    p: &SessionPlugin,
    user: &User,
    client_ip: &str,
    sealed: &Sealed,
    session_id: tessera_domain::ids::SessionId,
    now: u64,
) -> Result<(), Answer> {
    let digest = tessera_domain::token::TokenDigest::of(&sealed.storage_key());
    let absolute = (p.timeouts.absolute > 0.0).then_some(p.timeouts.absolute.ceil() as i64);
    let mut record = gw.app.gateway_session_record(user, client_ip, &digest, absolute);
    record.id = session_id;
    let key_expires = Timestamp((now + key_ttl(p, now, sealed.header.creation_time)) as i64);
    gw.app
        .create_gateway_session(System::GATEWAY, &record, &digest, &sealed.storage_record(), key_expires)
        .await
        .map_err(|e| app_error(&e))
}

/// A new remember cookie over the same entries (always cookie storage); none when it
/// cannot be sealed.
fn remember_cookie(p: &SessionPlugin, data: &SessionData, bind: &BindValues<'_>, now: u64) -> Vec<String> {
    let opts = SealOptions { storage: Storage::Cookie, kind: REMEMBER, bind: p.bind, ..SealOptions::default() };
    let Ok(r) = tessera_session_cookie::seal(&p.keys, &opts, data, bind, now) else { return vec![] };
    let expiry = p.remember_expiry(r.header.creation_time);
    p.flags.set_cookies(&p.remember_cookie_name, &r.value, Some(&expiry)).unwrap_or_default()
}

/// How long a server-side key should live: to the rolling deadline, capped by the absolute
/// one, or 400 days when neither bounds it.
pub(super) fn key_ttl(p: &SessionPlugin, now: u64, creation: u64) -> u64 {
    p.key_ttl(now, creation)
}
