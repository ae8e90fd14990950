//! HTTP-level settings: the session cookie, which proxies' forwarding headers to believe,
//! which origins may send cookie-authenticated state changes, and the request-head limits.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Name of the login-session cookie set by `POST /v2/sessions`.
    pub cookie_name: String,
    /// Name of the readable cookie carrying the session's CSRF token (double submit).
    pub csrf_cookie_name: String,
    /// Add `Secure` to the cookies (on for any deployment served over HTTPS); the server's own
    /// origin is then `https://<host>` unless a trusted proxy says otherwise.
    pub cookie_secure: bool,
    /// `Lax` (default), `Strict` or `None`.
    pub cookie_same_site: String,
    /// Peers whose `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` are believed.
    /// Empty by default: otherwise any process that can reach the port from one of these
    /// addresses (every local process, for loopback) could claim any client address and so
    /// satisfy an IP-bound session or a trust's IP condition.
    pub trusted_proxies: Vec<IpNet>,
    /// Peers that may call the forward-auth endpoint (`/v2/auth/forward`), besides trusted
    /// proxies. Loopback by default, so an nginx on the same host works out of the box; its
    /// `X-Forwarded-For` is believed only when it is also a trusted proxy.
    pub forward_auth_callers: Vec<IpNet>,
    /// Origins (`https://console.example.com`) besides the server's own that may send
    /// cookie-authenticated state changes and sign-ins.
    pub allowed_origins: Vec<String>,
    /// The longest request target (path and query) answered; longer ones get 414.
    pub max_uri_bytes: usize,
    /// The most header fields, and header bytes, a request may carry; more gets 431.
    pub max_headers: usize,
    pub max_header_bytes: usize,
    /// Request counters and latency histograms, served on the metrics listener; `None` (the
    /// default) adds nothing to a request.
    pub metrics: Option<std::sync::Arc<crate::metrics::ApiMetrics>>,
    /// The effective configuration as `tessera config check` prints it (secrets redacted),
    /// shown read-only on the console's settings page; `None` when the embedder gave none.
    pub effective_config: Option<std::sync::Arc<str>>,
}

impl ServerConfig {
    /// Name of the console sign-in form's token cookie (double submit, no session yet): the
    /// CSRF cookie's name with `_login`, so a deployment that renames one renames both.
    pub fn login_csrf_cookie_name(&self) -> String {
        format!("{}_login", self.csrf_cookie_name)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            cookie_name: "tessera_session".into(),
            csrf_cookie_name: "tessera_csrf".into(),
            cookie_secure: false,
            cookie_same_site: "Lax".into(),
            trusted_proxies: vec![],
            forward_auth_callers: vec!["127.0.0.0/8".parse().expect("valid"), "::1/128".parse().expect("valid")],
            allowed_origins: vec![],
            max_uri_bytes: 8 * 1024,
            max_headers: 100,
            max_header_bytes: 32 * 1024,
            metrics: None,
            effective_config: None,
        }
    }
}

impl ServerConfig {
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(&ip.to_canonical()))
    }

    /// Whether `ip` may ask `/v2/auth/forward`.
    pub fn may_forward_auth(&self, ip: IpAddr) -> bool {
        self.is_trusted_proxy(ip) || self.forward_auth_callers.iter().any(|n| n.contains(&ip.to_canonical()))
    }
}
