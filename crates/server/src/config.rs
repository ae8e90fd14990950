//! HTTP-level settings: the session cookie and which proxies' forwarding headers to believe.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Name of the login-session cookie set by `POST /v2/sessions`.
    pub cookie_name: String,
    /// Add `Secure` to the cookie (on for any deployment served over HTTPS).
    pub cookie_secure: bool,
    /// `Lax` (default), `Strict` or `None`.
    pub cookie_same_site: String,
    /// Peers whose `X-Forwarded-For` is believed, and who may call the forward-auth endpoint.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            cookie_name: "tessera_session".into(),
            cookie_secure: false,
            cookie_same_site: "Lax".into(),
            trusted_proxies: vec!["127.0.0.0/8".parse().expect("valid"), "::1/128".parse().expect("valid")],
        }
    }
}

impl ServerConfig {
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(&ip.to_canonical()))
    }
}
