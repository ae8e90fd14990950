//! The remember cookie, when the session cookie is missing or invalid: opened (PBKDF2), it
//! starts a new session for the user it names, if that user may still sign in, and is
//! renewed itself with its original creation time, as lua-resty-session does.

use tessera_app::System;
use tessera_domain::ids::UserId;
use tessera_session_cookie::{OpenOptions, Opened, SealOptions, Storage, chunk};

use super::open::identity_from_entry;
use super::start::{REMEMBER, start_session};
use super::{Answer, Presented, Signed};
use crate::Gateway;
use crate::error::app_error;
use crate::plugin::SessionPlugin;

/// A new session from the remember cookie, or None when there is none to restore.
pub(super) async fn restore(
    gw: &Gateway,
    p: &SessionPlugin,
    r: &Presented<'_>,
    now: u64,
) -> Result<Option<Signed>, Answer> {
    if !p.remember {
        return Ok(None);
    }
    let Some(opened) = open_remember(p, r, now) else { return Ok(None) };
    let Some(identity) = opened.entry(&p.audience).and_then(identity_from_entry) else { return Ok(None) };
    let Ok(uid) = identity.user_id.parse::<UserId>() else { return Ok(None) };
    let Some(user) = gw.app.gateway_user(System::GATEWAY, p.org, uid).await.map_err(|e| app_error(&e))? else {
        return Ok(None);
    };
    let mut signed = start_session(gw, p, &user, &r.bind, opened.data.clone(), now).await?;
    // `start_session` issued a new remember cookie; keep the original creation time instead,
    // as lua-resty-session renews the remember session rather than starting a new one.
    let prefix = format!("{}=", p.remember_cookie_name);
    signed.cookies.retain(|c| !c.starts_with(&prefix));
    signed.cookies.extend(renewed(p, &opened, r, now));
    Ok(Some(signed))
}

fn open_remember(p: &SessionPlugin, r: &Presented<'_>, now: u64) -> Option<Opened> {
    let value = chunk::join(&p.remember_cookie_name, |n| r.cookies.get(n).copied()).ok()?;
    let opts = OpenOptions { storage: Storage::Cookie, kind: REMEMBER, timeouts: p.remember_timeouts };
    tessera_session_cookie::open(&p.keys, &opts, &value, None, &r.bind, now).ok()
}

/// The remember cookie renewed: same data, same creation time, new rolling deadline.
fn renewed(p: &SessionPlugin, opened: &Opened, r: &Presented<'_>, now: u64) -> Vec<String> {
    let opts = SealOptions { storage: Storage::Cookie, kind: REMEMBER, bind: p.bind, ..SealOptions::default() }
        .renewing(&opened.header);
    let Ok(s) = tessera_session_cookie::seal(&p.keys, &opts, &opened.data, &r.bind, now) else { return vec![] };
    let expiry = p.remember_expiry(s.header.creation_time);
    p.flags.set_cookies(&p.remember_cookie_name, &s.value, Some(&expiry)).unwrap_or_default()
}
