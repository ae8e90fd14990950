//! lua-resty-session's `refresh()` for an opened session: nothing while it is fresh, a
//! **touch** after 60 s idle (same id, new idling offset: only the first cookie changes), a
//! **renewal** past ¾ of the rolling timeout (new id; with server storage the record moves
//! to a new key and the old one stays valid for `stale_ttl` seconds).

use tessera_app::System;
use tessera_app::gateway::GatewayRenewal;
use tessera_domain::Timestamp;
use tessera_domain::token::TokenDigest;
use tessera_session_cookie::{BindValues, RefreshAction, SealError, SealOptions, Sealed, chunk};

use super::open::{Open, ServerKey};
use super::start::key_ttl;
use super::{Answer, session_error};
use crate::Gateway;
use crate::error::app_error;
use crate::plugin::SessionPlugin;

/// Seconds without a save after which a request touches the session.
const TOUCH_THRESHOLD: u64 = 60;

/// Touches or renews the session as its header says. Returns the cookies to send, or None
/// when the session could not be renewed (it ended meanwhile).
pub(super) async fn refresh(
    gw: &Gateway,
    p: &SessionPlugin,
    o: &mut Open,
    bind: &BindValues<'_>,
    now: u64,
) -> Result<Option<Vec<String>>, Answer> {
    match o.header.refresh_action(&p.timeouts, TOUCH_THRESHOLD, now) {
        RefreshAction::None => Ok(Some(vec![])),
        RefreshAction::Touch => Ok(Some(touch(p, o, bind, now))),
        RefreshAction::Renew => {
            let sealed = reseal(p, o, bind, now).map_err(|e| session_error(&e.to_string()))?;
            renew(gw, p, o, sealed, now).await
        }
    }
}

fn touch(p: &SessionPlugin, o: &mut Open, bind: &BindValues<'_>, now: u64) -> Vec<String> {
    let t = tessera_session_cookie::touch(&p.keys, &o.header, &o.value, bind, now);
    // Only the first cookie changes on touch (the payload chunks stay).
    let first = chunk::split(&p.cookie_name, &t.value)
        .ok()
        .and_then(|c| c.into_iter().next().map(|c| p.flags.set_cookie(&c.name, c.value, None)));
    o.header = t.header;
    o.value = t.value;
    first.into_iter().collect()
}

/// The session's data sealed under a new id, keeping its creation time.
fn reseal(p: &SessionPlugin, o: &Open, bind: &BindValues<'_>, now: u64) -> Result<Sealed, SealError> {
    let opts = SealOptions { storage: p.storage, bind: p.bind, ..SealOptions::default() }.renewing(&o.header);
    tessera_session_cookie::seal(&p.keys, &opts, &o.data, bind, now)
}

/// Adopts the renewed cookie: with server storage the record moves to its key first. None
/// when the session ended meanwhile.
async fn renew(
    gw: &Gateway,
    p: &SessionPlugin,
    o: &mut Open,
    sealed: Sealed,
    now: u64,
) -> Result<Option<Vec<String>>, Answer> {
    if let Some(server) = o.server {
        let Some(moved) = rekey(gw, p, server, &sealed, now).await? else { return Ok(None) };
        o.server = Some(moved);
    }
    let mut cookies =
        p.flags.set_cookies(&p.cookie_name, &sealed.value, None).map_err(|e| session_error(&e.to_string()))?;
    let n = cookies.len();
    if o.chunks > n {
        cookies.extend(p.flags.expire_chunks(&p.cookie_name, n + 1..=o.chunks));
    }
    o.header = sealed.header;
    o.value = sealed.value;
    o.chunks = n;
    Ok(Some(cookies))
}

/// Server storage: the record moves to the renewed cookie's key; the old key keeps working
/// for `stale_ttl` seconds. None when the session ended meanwhile.
async fn rekey(
    gw: &Gateway,
    p: &SessionPlugin,
    server: ServerKey,
    sealed: &Sealed,
    now: u64,
) -> Result<Option<ServerKey>, Answer> {
    let new = TokenDigest::of(&sealed.storage_key());
    let renewal = GatewayRenewal {
        org: server.org,
        session: server.session,
        old: server.key,
        new,
        data: sealed.storage_record(),
        stale_until: Timestamp((now + p.stale_ttl) as i64),
        expires: Timestamp((now + key_ttl(p, now, sealed.header.creation_time)) as i64),
    };
    let moved = gw.app.renew_gateway_session(System::GATEWAY, renewal).await.map_err(|e| app_error(&e))?;
    Ok(moved.then_some(ServerKey { key: new, ..server }))
}
