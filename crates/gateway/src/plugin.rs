//! A session plugin's stored configuration parsed, once per table rebuild, into what one
//! request needs: keys derived from the secret, timeouts in seconds, and enums for every
//! mode that the stored JSON spells as a string. Past this edge nothing compares strings.

use axum::http::{HeaderName, Method};
use tessera_domain::gateway::Plugin;
use tessera_domain::ids::OrgId;
use tessera_session_cookie::{
    Bind, CookieAttributes, CookieFlags, Keys, MAX_TTL, RememberExpiry, SameSite, Storage, Timeouts,
};
use uuid::Uuid;

/// What a request without a valid session gets (`config.unauthenticated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    /// 401 JSON (the default).
    Reject,
    /// Browsers asking for HTML with `GET` go to the sign-in page; other requests get 401.
    Redirect,
    /// Upstream, without identity headers (Kong's own behaviour).
    Pass,
}

impl Unauthenticated {
    /// The stored name; anything unknown rejects (the API accepts only the three names).
    fn from_name(name: &str) -> Self {
        match name {
            "redirect" => Self::Redirect,
            "pass" => Self::Pass,
            _ => Self::Reject,
        }
    }
}

/// One of the `Session-*` headers a plugin may add (`request_headers`, `response_headers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionHeader {
    Id,
    Audience,
    Subject,
    Timeout,
    IdlingTimeout,
    RollingTimeout,
    AbsoluteTimeout,
}

impl SessionHeader {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "id" => Self::Id,
            "audience" => Self::Audience,
            "subject" => Self::Subject,
            "timeout" => Self::Timeout,
            "idling-timeout" => Self::IdlingTimeout,
            "rolling-timeout" => Self::RollingTimeout,
            "absolute-timeout" => Self::AbsoluteTimeout,
            _ => return None,
        })
    }

    pub fn header_name(self) -> HeaderName {
        HeaderName::from_static(match self {
            Self::Id => "session-id",
            Self::Audience => "session-audience",
            Self::Subject => "session-subject",
            Self::Timeout => "session-timeout",
            Self::IdlingTimeout => "session-idling-timeout",
            Self::RollingTimeout => "session-rolling-timeout",
            Self::AbsoluteTimeout => "session-absolute-timeout",
        })
    }

    fn list(names: Option<&Vec<String>>) -> Vec<Self> {
        names.into_iter().flatten().filter_map(|n| Self::from_name(n)).collect()
    }
}

/// A session plugin ready to run: its config plus keys derived once from its secret.
pub struct SessionPlugin {
    pub id: Uuid,
    pub org: OrgId,
    pub audience: String,
    pub cookie_name: String,
    pub remember: bool,
    /// Also stripped from upstream requests when `remember` is off.
    pub remember_cookie_name: String,
    pub keys: Keys,
    pub timeouts: Timeouts,
    pub remember_timeouts: Timeouts,
    pub bind: Bind,
    /// `stale_ttl` rounded up to whole seconds (see [`ceil_secs`]).
    pub stale_ttl: u64,
    /// `cookie`, or `server` (Kong's `kong` too): the cookie holds only the header.
    pub storage: Storage,
    /// The attributes every `Set-Cookie` of this plugin carries.
    pub flags: CookieFlags,
    pub unauthenticated: Unauthenticated,
    pub logout_methods: Vec<Method>,
    pub logout_query_arg: String,
    pub logout_post_arg: String,
    pub read_body_for_logout: bool,
    pub request_headers: Vec<SessionHeader>,
    pub response_headers: Vec<SessionHeader>,
    /// The requests the plugin runs for (Kong's plugin `protocols`).
    pub protocols: crate::table::Protocols,
}

impl std::fmt::Debug for SessionPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPlugin").field("id", &self.id).field("cookie", &self.cookie_name).finish()
    }
}

/// A Kong number of seconds as given (the API accepts 0 to 1e10); nonsense is 0.
fn secs(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}

/// The whole seconds a store deadline needs so that a key lives exactly as long as a
/// fractional Kong time allows: valid while `now < start + ceil(v)`, i.e. for `7.29` at
/// `+7` and no longer at `+8`, as `expire(key, 7.29)` would in lua-resty-session's shm.
fn ceil_secs(v: f64) -> u64 {
    secs(v).ceil() as u64
}

impl SessionPlugin {
    pub fn new(org: OrgId, p: &Plugin) -> Self {
        let c = &p.config;
        Self {
            id: p.id.unwrap_or_default(),
            org,
            protocols: crate::table::Protocols::from_names(&p.protocols),
            keys: Keys::from_secret(c.secret.as_bytes()),
            timeouts: Timeouts {
                idling: secs(c.idling_timeout),
                rolling: secs(c.rolling_timeout),
                absolute: secs(c.absolute_timeout),
            },
            remember_timeouts: Timeouts {
                idling: 0.0,
                rolling: secs(c.remember_rolling_timeout),
                absolute: secs(c.remember_absolute_timeout),
            },
            bind: Bind::from_names(c.bind.iter().flatten().map(String::as_str)).unwrap_or_default(),
            stale_ttl: ceil_secs(c.stale_ttl),
            storage: if c.server_storage() { Storage::Server } else { Storage::Cookie },
            flags: CookieAttributes {
                path: c.cookie_path.clone(),
                domain: c.cookie_domain.clone(),
                same_site: SameSite::from_name(&c.cookie_same_site).unwrap_or_default(),
                secure: c.cookie_secure,
                http_only: c.cookie_http_only,
            }
            .render(),
            unauthenticated: Unauthenticated::from_name(&c.unauthenticated),
            logout_methods: c.logout_methods.iter().filter_map(|m| Method::from_bytes(m.as_bytes()).ok()).collect(),
            request_headers: SessionHeader::list(c.request_headers.as_ref()),
            response_headers: SessionHeader::list(c.response_headers.as_ref()),
            audience: c.audience.clone(),
            cookie_name: c.cookie_name.clone(),
            remember: c.remember,
            remember_cookie_name: c.remember_cookie_name.clone(),
            logout_query_arg: c.logout_query_arg.clone(),
            logout_post_arg: c.logout_post_arg.clone(),
            read_body_for_logout: c.read_body_for_logout,
        }
    }

    /// The remember cookie's `Expires`/`Max-Age`, as lua-resty-session writes them:
    /// `Max-Age=%d` of `remember_rolling_timeout` (a fraction is cut: 6.15 -> 6; 0 or over
    /// 400 days is 400 days) and `Expires` = `http_time(creation + max_age)`.
    pub fn remember_expiry(&self, creation: u64) -> RememberExpiry {
        let t = self.remember_timeouts.rolling;
        let max_age = if t == 0.0 || t > MAX_TTL as f64 { MAX_TTL } else { t as u64 };
        RememberExpiry { expires: (creation as f64 + t.min(MAX_TTL as f64)) as u64, max_age }
    }

    /// Seconds a server-side key lives from `now`: to the rolling deadline, capped by the
    /// absolute one (lua-resty-session's `get_store_ttl`), or 400 days when neither bounds
    /// it; rounded up, at least 1.
    pub fn key_ttl(&self, now: u64, creation: u64) -> u64 {
        let t = &self.timeouts;
        let mut ttl = if t.rolling > 0.0 { t.rolling.min(MAX_TTL as f64) } else { MAX_TTL as f64 };
        if t.absolute > 0.0 {
            ttl = ttl.min(t.absolute - (now as f64 - creation as f64));
        }
        (ttl.ceil() as u64).max(1)
    }

    /// Whether the session data lives in the store (the cookie is its header only).
    pub fn server_storage(&self) -> bool {
        self.storage == Storage::Server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(config: serde_json::Value) -> SessionPlugin {
        let mut p: Plugin = serde_json::from_value(serde_json::json!({"name": "session", "config": config})).unwrap();
        p.normalize().unwrap();
        SessionPlugin::new(OrgId(Uuid::nil()), &p)
    }

    #[test]
    fn stored_names_become_enums_with_kongs_defaults() {
        let p = plugin(serde_json::json!({}));
        assert_eq!(p.unauthenticated, Unauthenticated::Reject);
        assert_eq!(p.storage, Storage::Cookie);
        assert_eq!(p.logout_methods, [Method::POST, Method::DELETE]);
        assert!(p.request_headers.is_empty());
        let p = plugin(serde_json::json!({
            "unauthenticated": "redirect", "storage": "kong", "logout_methods": ["get"],
            "response_headers": ["id", "absolute-timeout"], "cookie_same_site": "Lax"
        }));
        assert_eq!(p.unauthenticated, Unauthenticated::Redirect);
        assert!(p.server_storage(), "Kong's `kong` storage is server storage");
        assert_eq!(p.logout_methods, [Method::GET]);
        assert_eq!(p.response_headers, [SessionHeader::Id, SessionHeader::AbsoluteTimeout]);
        assert!(p.flags.set_cookie("s", "v", None).contains("SameSite=Lax"), "{:?}", p.flags);
        assert_eq!(plugin(serde_json::json!({"unauthenticated": "pass"})).unauthenticated, Unauthenticated::Pass);
    }
}
