//! The gateway's objects, shaped like Kong's Admin API: services (upstreams), routes (what
//! requests they take) and plugins (only `session` for now), with Kong's defaults and
//! validation. Pure: the gateway crate compiles these into a routing table.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::Timestamp;
use crate::error::FieldError;
use crate::path::normalize;

/// Refuses control characters (C0, DEL, C1: CR/LF, NUL, ESC for ANSI escapes) in every
/// string of a gateway object's JSON, naming the first offending field (`config.audience`,
/// `tags[2]`). They have no use in names, paths, hosts or secrets, and would reach headers,
/// cookies and logs.
pub fn check_text(value: &Value) -> Result<(), FieldError> {
    fn walk(v: &Value, at: &mut String) -> Result<(), FieldError> {
        match v {
            Value::String(s) if s.chars().any(char::is_control) => {
                let field = if at.is_empty() { "body".to_owned() } else { at.clone() };
                Err(FieldError::new(field, "control characters (CR, LF, NUL, ESC, ...) are not allowed"))
            }
            Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                let r = walk(item, at);
                at.truncate(len);
                r
            }),
            Value::Object(m) => m.iter().try_for_each(|(k, item)| {
                let len = at.len();
                if !at.is_empty() {
                    at.push('.');
                }
                at.push_str(k);
                let r = walk(item, at);
                at.truncate(len);
                r
            }),
            _ => Ok(()),
        }
    }
    walk(value, &mut String::new())
}

/// A host name or address: DNS characters, or an IPv6 address in brackets.
fn valid_host(h: &str) -> bool {
    if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !h.is_empty()
        && h.len() <= 253
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && !h.starts_with(['.', '-'])
}

/// A path that is already in the form the gateway matches and forwards.
fn normalised_path(field: &str, p: &str) -> Result<(), FieldError> {
    match normalize(p) {
        Ok(n) if n == p => Ok(()),
        Ok(n) => Err(FieldError::new(field, format!("must be a normalised path; did you mean '{n}'?"))),
        Err(e) => Err(FieldError::new(field, e.to_string())),
    }
}

/// A reference to another object by id, as Kong writes it: `{"id": "..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ref {
    pub id: Uuid,
}

fn default_timeout_ms() -> u64 {
    60_000
}
fn default_retries() -> u32 {
    5
}
fn yes() -> bool {
    true
}

/// An upstream, `{"name", "url"}` or its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    #[serde(default)]
    pub id: Option<Uuid>,
    #[serde(default)]
    pub name: Option<String>,
    /// Shorthand for protocol, host, port and path; written back as its parts.
    #[serde(default, skip_serializing)]
    pub url: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_timeout_ms")]
    pub connect_timeout: u64,
    #[serde(default = "default_timeout_ms")]
    pub write_timeout: u64,
    #[serde(default = "default_timeout_ms")]
    pub read_timeout: u64,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
    /// For an `https` service: whether the upstream's certificate is verified. Unset means
    /// verified (Kong's unset follows `nginx_proxy_proxy_ssl_verify`, which is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
    /// For an `https` service: the CA certificate objects (ids) its certificate is verified
    /// against, instead of the gateway's default roots. Unset (or empty) means the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<Vec<Uuid>>,
    /// For a verified `https` service: the most intermediate CA certificates allowed between
    /// the upstream's certificate and a trusted root (0-64; nginx's `proxy_ssl_verify_depth`).
    /// Unset means no limit of Tessera's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify_depth: Option<u32>,
}

impl Service {
    /// Fills the parts from `url`, applies Kong's defaults and checks every field.
    pub fn normalize(&mut self) -> Result<(), FieldError> {
        if let Some(url) = self.url.take() {
            let (scheme, rest) =
                url.split_once("://").ok_or_else(|| FieldError::new("url", "must be an absolute http:// URL"))?;
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                    (h, Some(p.parse::<u16>().map_err(|_| FieldError::new("url", "invalid port"))?))
                }
                _ => (authority, None),
            };
            self.protocol = Some(scheme.to_ascii_lowercase());
            self.host = Some(host.to_owned());
            self.port = port;
            self.path = if path.is_empty() { None } else { Some(path.to_owned()) };
        }
        let protocol = self.protocol.get_or_insert_with(|| "http".into());
        if protocol != "http" && protocol != "https" {
            return Err(FieldError::new(
                "protocol",
                format!("'{protocol}' is not supported: upstreams are http or https"),
            ));
        }
        let default_port = if protocol == "https" { 443 } else { 80 };
        match &self.host {
            Some(h) if valid_host(h) => {}
            Some(h) if !h.is_empty() => {
                return Err(FieldError::new(
                    "host",
                    "must be a host name (letters, digits, '-', '.', '_') or an address ([::1] for IPv6)",
                ));
            }
            _ => return Err(FieldError::new("host", "required: the upstream's host name or address")),
        }
        self.port.get_or_insert(default_port);
        if let Some(p) = &self.path {
            normalised_path("path", p)?;
        }
        if let Some(n) = &self.name {
            check_name("name", n)?;
        }
        if self.ca_certificates.as_ref().is_some_and(Vec::is_empty) {
            self.ca_certificates = None;
        }
        for (i, id) in self.ca_certificates.iter().flatten().enumerate() {
            if self.ca_certificates.iter().flatten().take(i).any(|earlier| earlier == id) {
                return Err(FieldError::new(format!("ca_certificates[{i}]"), format!("{id} is named twice")));
            }
        }
        if self.tls_verify_depth.is_some_and(|d| d > 64) {
            return Err(FieldError::new("tls_verify_depth", "must be between 0 and 64"));
        }
        for (field, v) in [
            ("connect_timeout", self.connect_timeout),
            ("write_timeout", self.write_timeout),
            ("read_timeout", self.read_timeout),
        ] {
            if v == 0 || v > 2_147_483_646 {
                return Err(FieldError::new(field, "must be between 1 and 2147483646 milliseconds"));
            }
        }
        Ok(())
    }
}

/// A CA certificate the gateway can verify `https` services against (Kong's
/// `ca_certificate`): one PEM certificate of a CA, and the hex SHA-256 of its DER, which is
/// unique within the organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaCertificate {
    #[serde(default)]
    pub id: Option<Uuid>,
    pub cert: String,
    /// Computed from `cert`; a value sent is replaced (as Kong replaces it).
    #[serde(default)]
    pub cert_digest: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
}

impl CaCertificate {
    /// Checks `cert` (one PEM certificate of a CA, still valid at `now`: Kong refuses an
    /// expired one when it is written) and sets `cert_digest` from it.
    pub fn normalize(&mut self, now: Timestamp) -> Result<(), FieldError> {
        if self.cert.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(FieldError::new("cert", "control characters other than line breaks are not allowed"));
        }
        let ca = crate::x509::CaCert::from_pem(&self.cert).map_err(|m| FieldError::new("cert", m))?;
        if ca.expired_at(now) {
            return Err(FieldError::new(
                "cert",
                format!("certificate expired, \"Not After\" time is in the past ({})", ca.not_after),
            ));
        }
        self.cert_digest = Some(ca.digest);
        Ok(())
    }

    /// The certificate's DER, for the gateway's trust store (`None` when the stored PEM no
    /// longer passes the checks, which the API never stores). A stored certificate that has
    /// expired since it was written is still given: only a write refuses one.
    pub fn der(&self) -> Option<Vec<u8>> {
        crate::x509::CaCert::from_pem(&self.cert).ok().map(|c| c.der)
    }
}

fn check_name(field: &str, n: &str) -> Result<(), FieldError> {
    if n.is_empty() || n.len() > 128 || !n.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)) {
        return Err(FieldError::new(field, "must be 1-128 characters of letters, digits, '-', '.', '_' or '~'"));
    }
    Ok(())
}

/// Which requests go to a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default)]
    pub id: Option<Uuid>,
    #[serde(default)]
    pub name: Option<String>,
    /// Prefixes, or regular expressions written with Kong's `~` prefix (anchored at the
    /// start of the path, as Kong 3 anchors them).
    #[serde(default, deserialize_with = "null_as_default")]
    pub paths: Vec<String>,
    /// Host names; `*.example.com` (any subdomain) and `example.*` (any ending) are wildcards.
    #[serde(default, deserialize_with = "null_as_default")]
    pub hosts: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub methods: Vec<String>,
    /// Request headers that must be present, each with one of its values (case-insensitive;
    /// a value starting with `~*` is a regular expression).
    #[serde(default, deserialize_with = "null_as_default")]
    pub headers: std::collections::BTreeMap<String, Vec<String>>,
    /// Accepted as Kong writes it; only an empty list (TLS server names are not matched).
    #[serde(default, deserialize_with = "null_as_default")]
    pub snis: Vec<String>,
    #[serde(default = "default_route_protocols")]
    pub protocols: Vec<String>,
    /// Orders routes whose regex paths match the same request (higher first).
    #[serde(default)]
    pub regex_priority: i64,
    /// What a plain-http request gets from a route that only takes https: 426 (Kong's
    /// default) or a redirect (301, 302, 307, 308) to the https URL.
    #[serde(default = "default_https_redirect")]
    pub https_redirect_status_code: u16,
    #[serde(default = "yes")]
    pub strip_path: bool,
    #[serde(default)]
    pub preserve_host: bool,
    pub service: Option<Ref>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
}

fn null_as_default<'de, D: serde::Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn default_route_protocols() -> Vec<String> {
    vec!["http".into(), "https".into()]
}

fn default_https_redirect() -> u16 {
    426
}

/// The compiled form of a route's regex (re-exported so the gateway needs no second dependency).
pub use regex::Regex;

/// The most a route's regular expression may compile to (bytes of automaton), so a route
/// cannot make the gateway build a huge one; Kong's own paths stay far below it.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// At most this many characters in one regex path or header pattern.
pub const REGEX_MAX_LEN: usize = 1024;

/// Compiles a Kong regex (without its `~` or `~*` marker) as the gateway matches it:
/// anchored at the start, bounded in size. `case_insensitive` for header values.
pub fn compile_regex(pattern: &str, case_insensitive: bool) -> Result<Regex, String> {
    if pattern.len() > REGEX_MAX_LEN {
        return Err(format!("a regular expression of at most {REGEX_MAX_LEN} characters"));
    }
    // Kong (traditional_compatible) prefixes `^` and rewrites PCRE's `(?<name>` to `(?P<name>`.
    // Look-around and back-references do not exist here (the regex crate runs in linear time).
    let anchored = format!("^(?:{})", pattern.replace("(?<", "(?P<"));
    regex::RegexBuilder::new(&anchored)
        .case_insensitive(case_insensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "the regular expression is too large".to_owned(),
            other => format!("invalid regular expression: {}", other.to_string().lines().last().unwrap_or("")),
        })
}

/// A header name as HTTP writes it: a token.
fn valid_header_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 256 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Route {
    pub fn normalize(&mut self) -> Result<(), FieldError> {
        if let Some(n) = &self.name {
            check_name("name", n)?;
        }
        if self.paths.is_empty() && self.hosts.is_empty() && self.methods.is_empty() && self.headers.is_empty() {
            return Err(FieldError::new("paths", "a route needs at least one of paths, hosts, methods or headers"));
        }
        for (i, p) in self.paths.iter().enumerate() {
            let field = format!("paths[{i}]");
            if let Some(re) = p.strip_prefix('~') {
                if !re.starts_with('/') {
                    return Err(FieldError::new(field, "must start with / (a prefix) or ~/ (a regex path)"));
                }
                compile_regex(re, false).map_err(|m| FieldError::new(field, m))?;
                continue;
            }
            // Requests are matched on their normalised path: a route path in another form
            // would silently never match.
            normalised_path(&field, p)?;
        }
        for (i, h) in self.hosts.iter_mut().enumerate() {
            *h = h.to_ascii_lowercase();
            let bare = h.strip_prefix("*.").or_else(|| h.strip_suffix(".*")).unwrap_or(h);
            if bare.contains('*') || !valid_host(bare) {
                return Err(FieldError::new(
                    format!("hosts[{i}]"),
                    "must be a host name, optionally with a wildcard: '*.example.com' or 'example.*'",
                ));
            }
        }
        for (i, m) in self.methods.iter_mut().enumerate() {
            *m = m.to_ascii_uppercase();
            if m.is_empty() || !m.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(FieldError::new(format!("methods[{i}]"), "must be an HTTP method such as GET"));
            }
        }
        let mut headers = std::collections::BTreeMap::new();
        for (name, values) in std::mem::take(&mut self.headers) {
            let lower = name.to_ascii_lowercase();
            let field = format!("headers.{name}");
            if !valid_header_name(&lower) {
                return Err(FieldError::new(field, "must be an HTTP header name"));
            }
            if lower == "host" {
                return Err(FieldError::new(field, "use hosts to match the Host header"));
            }
            if values.is_empty() {
                return Err(FieldError::new(field, "needs at least one value"));
            }
            for (i, v) in values.iter().enumerate() {
                if let Some(re) = v.strip_prefix("~*") {
                    compile_regex(re, true).map_err(|m| FieldError::new(format!("{field}[{i}]"), m))?;
                }
            }
            if headers.insert(lower, values).is_some() {
                return Err(FieldError::new(field, "named twice (header names are case-insensitive)"));
            }
        }
        self.headers = headers;
        if !self.snis.is_empty() {
            return Err(FieldError::new("snis", "not supported: routes cannot match on the TLS server name yet"));
        }
        if self.protocols.is_empty() {
            return Err(FieldError::new("protocols", "needs at least one of http, https, ws, wss"));
        }
        for (i, p) in self.protocols.iter_mut().enumerate() {
            *p = p.to_ascii_lowercase();
            if !["http", "https", "ws", "wss"].contains(&p.as_str()) {
                return Err(FieldError::new(format!("protocols[{i}]"), "must be one of http, https, ws, wss"));
            }
        }
        if ![426, 301, 302, 307, 308].contains(&self.https_redirect_status_code) {
            return Err(FieldError::new("https_redirect_status_code", "must be one of 426, 301, 302, 307, 308"));
        }
        if self.regex_priority.unsigned_abs() > 1 << 31 {
            return Err(FieldError::new("regex_priority", "must be between -2147483648 and 2147483648"));
        }
        if self.service.is_none() {
            return Err(FieldError::new("service", "required: {\"id\": \"<service id>\"}"));
        }
        Ok(())
    }
}

/// The `session` plugin's `config`, with every field of Kong 3.12 and its defaults. Timeouts
/// are numbers of seconds with fractions kept (Kong's schema says number; lua-resty-session
/// compares whole elapsed seconds with the number, so `0.19` expires after one second).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Write-only: the API answers it as `null`, and `null` on a write means "keep it".
    #[serde(deserialize_with = "null_as_empty")]
    pub secret: String,
    pub storage: String,
    pub audience: String,
    pub idling_timeout: f64,
    pub rolling_timeout: f64,
    pub absolute_timeout: f64,
    pub stale_ttl: f64,
    pub cookie_name: String,
    pub cookie_path: String,
    pub cookie_domain: Option<String>,
    pub cookie_same_site: String,
    pub cookie_http_only: bool,
    pub cookie_secure: bool,
    pub remember: bool,
    pub remember_cookie_name: String,
    pub remember_rolling_timeout: f64,
    pub remember_absolute_timeout: f64,
    pub request_headers: Option<Vec<String>>,
    pub response_headers: Option<Vec<String>>,
    pub logout_methods: Vec<String>,
    pub logout_query_arg: String,
    pub logout_post_arg: String,
    pub read_body_for_logout: bool,
    pub hash_subject: bool,
    pub store_metadata: bool,
    pub bind: Option<Vec<String>>,
    /// Tessera: what a request without a valid session gets. `reject` (401 JSON), `redirect`
    /// (browsers asking for HTML go to the login page, others 401) or `pass` (Kong's own
    /// behaviour: the request goes upstream without identity headers).
    pub unauthenticated: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            secret: String::new(),
            storage: "cookie".into(),
            audience: "default".into(),
            idling_timeout: 900.0,
            rolling_timeout: 3600.0,
            absolute_timeout: 86400.0,
            stale_ttl: 10.0,
            cookie_name: "session".into(),
            cookie_path: "/".into(),
            cookie_domain: None,
            cookie_same_site: "Strict".into(),
            cookie_http_only: true,
            cookie_secure: true,
            remember: false,
            remember_cookie_name: "remember".into(),
            remember_rolling_timeout: 604_800.0,
            remember_absolute_timeout: 2_592_000.0,
            request_headers: None,
            response_headers: None,
            logout_methods: vec!["POST".into(), "DELETE".into()],
            logout_query_arg: "session_logout".into(),
            logout_post_arg: "session_logout".into(),
            read_body_for_logout: false,
            hash_subject: false,
            store_metadata: false,
            bind: None,
            unauthenticated: "reject".into(),
        }
    }
}

pub const SESSION_HEADERS: &[&str] =
    &["id", "audience", "subject", "timeout", "idling-timeout", "rolling-timeout", "absolute-timeout"];

impl SessionConfig {
    /// Applies Kong's rules; `secret` is generated by the caller when empty.
    pub fn normalize(&mut self) -> Result<(), FieldError> {
        let f = |name: &str| FieldError::new(format!("config.{name}"), "");
        let one_of = |name: &str, v: &str, allowed: &[&str]| -> Result<(), FieldError> {
            if allowed.contains(&v) {
                Ok(())
            } else {
                Err(FieldError { message: format!("'{v}': must be one of {}", allowed.join(", ")), ..f(name) })
            }
        };
        one_of("storage", &self.storage, &["cookie", "server", "kong"])?;
        one_of("cookie_same_site", &self.cookie_same_site, &["Strict", "Lax", "None", "Default"])?;
        one_of("unauthenticated", &self.unauthenticated, &["reject", "redirect", "pass"])?;
        for (name, v) in [
            ("idling_timeout", self.idling_timeout),
            ("rolling_timeout", self.rolling_timeout),
            ("absolute_timeout", self.absolute_timeout),
            ("stale_ttl", self.stale_ttl),
            ("remember_rolling_timeout", self.remember_rolling_timeout),
            ("remember_absolute_timeout", self.remember_absolute_timeout),
        ] {
            if !(0.0..=1e10).contains(&v) || v.is_nan() {
                return Err(FieldError { message: "must be a number of seconds >= 0".into(), ..f(name) });
            }
        }
        for (name, v) in [("cookie_name", &self.cookie_name), ("remember_cookie_name", &self.remember_cookie_name)] {
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(FieldError {
                    message: "must be a cookie name (letters, digits, '-', '_', '.')".into(),
                    ..f(name)
                });
            }
        }
        if self.cookie_path.contains([';', ',']) {
            return Err(FieldError { message: "must be a path without ';' or ','".into(), ..f("cookie_path") });
        }
        normalised_path("config.cookie_path", &self.cookie_path)?;
        if let Some(d) = &self.cookie_domain
            && !valid_host(d.strip_prefix('.').unwrap_or(d))
        {
            return Err(FieldError {
                message: "must be a domain name (letters, digits, '-', '.')".into(),
                ..f("cookie_domain")
            });
        }
        // The audience is sent as the `Session-Audience` header: printable ASCII only.
        if self.audience.is_empty()
            || self.audience.len() > 256
            || !self.audience.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(FieldError { message: "must be 1-256 printable ASCII characters".into(), ..f("audience") });
        }
        for (name, v) in [("logout_query_arg", &self.logout_query_arg), ("logout_post_arg", &self.logout_post_arg)] {
            if v.is_empty() || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
                return Err(FieldError {
                    message: "must be 1-128 letters, digits, '-', '.', '_' or '~'".into(),
                    ..f(name)
                });
            }
        }
        for (i, m) in self.logout_methods.iter_mut().enumerate() {
            *m = m.to_ascii_uppercase();
            one_of(&format!("logout_methods[{i}]"), m, &["GET", "POST", "DELETE"])?;
        }
        for (list, name) in [(&self.request_headers, "request_headers"), (&self.response_headers, "response_headers")] {
            for (i, h) in list.iter().flatten().enumerate() {
                one_of(&format!("{name}[{i}]"), h, SESSION_HEADERS)?;
            }
        }
        if let Some(b) = &mut self.bind {
            for (i, v) in b.iter_mut().enumerate() {
                if v == "user_agent" {
                    *v = "user-agent".into();
                }
                one_of(&format!("bind[{i}]"), v, &["ip", "scheme", "user-agent"])?;
            }
        }
        if self.secret.len() > 1024 {
            return Err(FieldError { message: "at most 1024 characters".into(), ..f("secret") });
        }
        Ok(())
    }

    pub fn server_storage(&self) -> bool {
        self.storage != "cookie"
    }
}

/// A plugin instance. Only `session` is known; its `config` is a [`SessionConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plugin {
    #[serde(default)]
    pub id: Option<Uuid>,
    pub name: String,
    #[serde(default)]
    pub instance_name: Option<String>,
    #[serde(default)]
    pub config: SessionConfig,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_plugin_protocols")]
    pub protocols: Vec<String>,
    #[serde(default)]
    pub route: Option<Ref>,
    #[serde(default)]
    pub service: Option<Ref>,
    #[serde(default)]
    pub consumer: Option<Ref>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Accepted and stored for compatibility with Kong's schema; the gateway runs one plugin,
    /// so ordering has nothing to order.
    #[serde(default)]
    pub ordering: Option<Value>,
    #[serde(default)]
    pub partials: Option<Vec<Value>>,
    #[serde(default = "default_workspace")]
    pub workspace: String,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
}

fn default_plugin_protocols() -> Vec<String> {
    vec!["grpc".into(), "grpcs".into(), "http".into(), "https".into()]
}
fn default_workspace() -> String {
    "default".into()
}

impl Plugin {
    pub fn normalize(&mut self) -> Result<(), FieldError> {
        if self.name != "session" {
            return Err(FieldError::new(
                "name",
                format!("plugin '{}' is not available; available: session", self.name),
            ));
        }
        if self.consumer.is_some() {
            return Err(FieldError::new("consumer", "the session plugin cannot be scoped to a consumer"));
        }
        if let Some(n) = &self.instance_name {
            check_name("instance_name", n)?;
        }
        for (i, p) in self.protocols.iter().enumerate() {
            if !["grpc", "grpcs", "http", "https", "ws", "wss"].contains(&p.as_str()) {
                return Err(FieldError::new(
                    format!("protocols[{i}]"),
                    "must be one of grpc, grpcs, http, https, ws, wss",
                ));
            }
        }
        if let Some(o) = &self.ordering
            && !o.is_object()
        {
            return Err(FieldError::new("ordering", "must be an object {\"before\": {...}, \"after\": {...}}"));
        }
        self.config.normalize()
    }
}

/// Merges a JSON patch into a stored object (Kong's PATCH): objects merge key by key,
/// everything else is replaced, `null` removes.
pub fn merge_patch(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(&k);
                } else {
                    merge_patch(t.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_url_becomes_its_parts() {
        let mut s: Service = serde_json::from_str(r#"{"name":"echo","url":"http://127.0.0.1:9000/api"}"#).unwrap();
        s.normalize().unwrap();
        assert_eq!(
            (s.protocol.as_deref(), s.host.as_deref(), s.port, s.path.as_deref()),
            (Some("http"), Some("127.0.0.1"), Some(9000), Some("/api"))
        );
        let v = serde_json::to_value(&s).unwrap();
        assert!(v.get("url").is_none());
        assert_eq!(v["connect_timeout"], 60_000);
    }

    #[test]
    fn https_upstreams_default_to_443_and_bad_names_are_refused_with_the_field() {
        let mut s: Service = serde_json::from_str(r#"{"url":"https://example.com"}"#).unwrap();
        s.normalize().unwrap();
        assert_eq!((s.protocol.as_deref(), s.port, s.tls_verify), (Some("https"), Some(443), None));
        let mut s: Service = serde_json::from_str(r#"{"url":"ftp://example.com"}"#).unwrap();
        assert_eq!(s.normalize().unwrap_err().field, "protocol");
        let mut s: Service = serde_json::from_str(r#"{"name":"a b","url":"http://x"}"#).unwrap();
        assert_eq!(s.normalize().unwrap_err().field, "name");
    }

    #[test]
    fn a_route_needs_a_matcher_and_a_service() {
        let mut r: Route = serde_json::from_str(r#"{"name":"r"}"#).unwrap();
        assert_eq!(r.normalize().unwrap_err().field, "paths");
        let mut r: Route =
            serde_json::from_str(r#"{"paths":["/a","b"],"service":{"id":"00000000-0000-0000-0000-000000000001"}}"#)
                .unwrap();
        assert_eq!(r.normalize().unwrap_err().field, "paths[1]");
        let mut r: Route =
            serde_json::from_str(r#"{"methods":["get"],"service":{"id":"00000000-0000-0000-0000-000000000001"}}"#)
                .unwrap();
        r.normalize().unwrap();
        assert_eq!(r.methods, ["GET"]);
        assert!(r.strip_path);
    }

    #[test]
    fn session_config_has_kongs_defaults_and_validation() {
        let mut p: Plugin = serde_json::from_str(r#"{"name":"session"}"#).unwrap();
        p.normalize().unwrap();
        assert_eq!(p.config.cookie_same_site, "Strict");
        assert_eq!(p.config.rolling_timeout, 3600.0);
        assert_eq!(p.config.logout_methods, ["POST", "DELETE"]);
        let mut p: Plugin =
            serde_json::from_str(r#"{"name":"session","config":{"cookie_same_site":"Loose"}}"#).unwrap();
        let e = p.normalize().unwrap_err();
        assert_eq!(e.field, "config.cookie_same_site");
        assert!(e.message.contains("Default, Lax") || e.message.contains("Strict, Lax"), "{e}");
        let mut p: Plugin = serde_json::from_str(r#"{"name":"session","config":{"storage":"kong"}}"#).unwrap();
        p.normalize().unwrap();
        assert!(p.config.server_storage());
        let mut p: Plugin =
            serde_json::from_str(r#"{"name":"session","config":{"bind":["ip","user_agent"]}}"#).unwrap();
        p.normalize().unwrap();
        assert_eq!(p.config.bind.unwrap(), ["ip", "user-agent"]);
        let mut p: Plugin = serde_json::from_str(r#"{"name":"key-auth"}"#).unwrap();
        assert_eq!(p.normalize().unwrap_err().field, "name");
        assert!(serde_json::from_str::<Plugin>(r#"{"name":"session","config":{"nope":1}}"#).is_err());
    }

    #[test]
    fn control_characters_are_refused_wherever_they_hide() {
        let v = serde_json::json!({"name": "a", "tags": ["ok", "x\u{1b}[31m"], "config": {"audience": "a\r\nb"}});
        let e = check_text(&v).unwrap_err();
        assert!(e.field == "tags[1]" || e.field == "config.audience", "{e}");
        assert_eq!(
            check_text(&serde_json::json!({"config": {"secret": "a\u{0}"}})).unwrap_err().field,
            "config.secret"
        );
        assert_eq!(check_text(&serde_json::json!("\u{85}")).unwrap_err().field, "body");
        assert!(check_text(&serde_json::json!({"name": "é ok", "n": 1, "l": [true, null]})).is_ok());
    }

    fn plugin_error(config: Value) -> String {
        let mut p: Plugin = serde_json::from_value(serde_json::json!({"name": "session", "config": config})).unwrap();
        p.normalize().unwrap_err().field
    }

    #[test]
    fn cookie_attributes_audiences_and_logout_args_are_checked() {
        assert_eq!(plugin_error(serde_json::json!({"cookie_path": "/a;b"})), "config.cookie_path");
        assert_eq!(plugin_error(serde_json::json!({"cookie_path": "/a/../b"})), "config.cookie_path");
        assert_eq!(plugin_error(serde_json::json!({"cookie_path": "a"})), "config.cookie_path");
        assert_eq!(plugin_error(serde_json::json!({"cookie_domain": "a.com;x"})), "config.cookie_domain");
        assert_eq!(plugin_error(serde_json::json!({"cookie_domain": "a com"})), "config.cookie_domain");
        assert_eq!(plugin_error(serde_json::json!({"audience": ""})), "config.audience");
        assert_eq!(plugin_error(serde_json::json!({"audience": "é"})), "config.audience");
        assert_eq!(plugin_error(serde_json::json!({"logout_query_arg": "a&b"})), "config.logout_query_arg");
        let mut p: Plugin = serde_json::from_value(
            serde_json::json!({"name": "session", "config": {"cookie_domain": ".example.com", "cookie_path": "/app/"}}),
        )
        .unwrap();
        p.normalize().unwrap();
    }

    #[test]
    fn upstreams_and_route_paths_must_be_what_the_gateway_matches() {
        for (url, field) in [
            ("http://a b/", "host"),
            ("http://evil.com@x/", "host"),
            ("http://x/a/../b", "path"),
            ("http://x/a%2fb", "path"),
            ("http://x//a", "path"),
        ] {
            let mut s: Service = serde_json::from_value(serde_json::json!({"url": url})).unwrap();
            assert_eq!(s.normalize().unwrap_err().field, field, "{url}");
        }
        let mut s: Service = serde_json::from_value(serde_json::json!({"url": "http://[::1]:8080/api"})).unwrap();
        s.normalize().unwrap();
        assert_eq!(s.host.as_deref(), Some("[::1]"));
        let sid = "00000000-0000-0000-0000-000000000001";
        for (paths, hosts, field) in [
            (vec!["/a/../b"], vec![], "paths[0]"),
            (vec!["/ok", "/%2e%2e/x"], vec![], "paths[1]"),
            (vec!["/a%7e"], vec![], "paths[0]"),
            (vec!["//a"], vec![], "paths[0]"),
            (vec!["/a"], vec!["a b"], "hosts[0]"),
            (vec!["/a"], vec!["a/b"], "hosts[0]"),
        ] {
            let mut r: Route =
                serde_json::from_value(serde_json::json!({"paths": paths, "hosts": hosts, "service": {"id": sid}}))
                    .unwrap();
            let e = r.normalize().unwrap_err();
            assert_eq!(e.field, field, "{paths:?} {hosts:?}");
        }
        let mut r: Route = serde_json::from_value(
            serde_json::json!({"paths": ["/api/", "/a~b"], "hosts": ["*.Example.com"], "service": {"id": sid}}),
        )
        .unwrap();
        r.normalize().unwrap();
        assert_eq!(r.hosts, ["*.example.com"]);
    }

    fn route_error(v: Value) -> (String, String) {
        let mut body = serde_json::json!({"service": {"id": "00000000-0000-0000-0000-000000000001"}});
        merge_patch(&mut body, v);
        let mut r: Route = serde_json::from_value(body).unwrap();
        let e = r.normalize().unwrap_err();
        (e.field, e.message)
    }

    #[test]
    fn kong_router_fields_are_checked_with_the_field_and_index() {
        let (field, message) = route_error(serde_json::json!({"paths": ["/ok", "~/users/(\\d+"]}));
        assert_eq!(field, "paths[1]");
        assert!(message.contains("invalid regular expression"), "{message}");
        assert_eq!(route_error(serde_json::json!({"paths": ["~users"]})).0, "paths[0]");
        // A pattern that compiles to a huge automaton is refused, not built.
        let (field, message) = route_error(serde_json::json!({"paths": ["~/\\w{1000}{1000}"]}));
        assert_eq!((field.as_str(), message.as_str()), ("paths[0]", "the regular expression is too large"));
        assert_eq!(route_error(serde_json::json!({"paths": [format!("~/{}", "a".repeat(2000))]})).0, "paths[0]");
        assert_eq!(route_error(serde_json::json!({"headers": {"x-v": ["~*("]}})).0, "headers.x-v[0]");
        assert_eq!(route_error(serde_json::json!({"headers": {"x-v": []}})).0, "headers.x-v");
        assert_eq!(route_error(serde_json::json!({"headers": {"Host": ["a"]}})).0, "headers.Host");
        assert_eq!(route_error(serde_json::json!({"hosts": ["a.*.com"]})).0, "hosts[0]");
        assert_eq!(route_error(serde_json::json!({"hosts": ["*"]})).0, "hosts[0]");
        assert_eq!(route_error(serde_json::json!({"paths": ["/"], "protocols": ["grpc"]})).0, "protocols[0]");
        assert_eq!(route_error(serde_json::json!({"paths": ["/"], "snis": ["a.com"]})).0, "snis");
        assert_eq!(
            route_error(serde_json::json!({"paths": ["/"], "https_redirect_status_code": 303})).0,
            "https_redirect_status_code"
        );
        let mut r: Route = serde_json::from_value(serde_json::json!({
            "paths": ["~/users/(?<id>\\d+)$", "/plain"], "hosts": ["*.Example.com", "example.*"],
            "headers": {"X-Version": ["v1", "~*^v2"]}, "regex_priority": 5, "snis": null,
            "protocols": ["HTTPS", "wss"], "service": {"id": "00000000-0000-0000-0000-000000000001"}
        }))
        .unwrap();
        r.normalize().unwrap();
        assert_eq!(r.hosts, ["*.example.com", "example.*"]);
        assert_eq!(r.headers.keys().collect::<Vec<_>>(), ["x-version"]);
        assert_eq!(r.protocols, ["https", "wss"]);
        assert!(compile_regex("/users/(?<id>\\d+)$", false).unwrap().is_match("/users/42"));
        assert!(!compile_regex("/users", false).unwrap().is_match("/v1/users"), "anchored at the start");
    }

    #[test]
    fn merge_patch_merges_objects_and_replaces_the_rest() {
        let mut v = serde_json::json!({"a": 1, "config": {"x": 1, "y": [1]}});
        merge_patch(&mut v, serde_json::json!({"config": {"y": [2], "z": null}, "b": 2}));
        assert_eq!(v, serde_json::json!({"a": 1, "b": 2, "config": {"x": 1, "y": [2]}}));
    }
}

/// The kinds of stored gateway objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GatewayKind {
    Service,
    Route,
    Plugin,
    CaCertificate,
}

impl GatewayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Route => "route",
            Self::Plugin => "plugin",
            Self::CaCertificate => "ca_certificate",
        }
    }
}
