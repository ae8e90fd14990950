//! The typed settings of a Tessera node, and the layers they come from: defaults < TOML file
//! (`--config`) < environment (`TESSERA_…`) < flags.
//!
//! Every setting is listed once in [`SETTINGS`] with its file key, variable, flag and default;
//! the environment and flag layers, `tessera serve --help` and the table in docs/config.md are
//! all read from that list, so they cannot drift apart.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything `tessera serve` can be told, parsed into types that cannot be wrong.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub gateway: GatewaySettings,
    pub database: DatabaseSettings,
    pub bootstrap: BootstrapSettings,
    pub sessions: SessionSettings,
    pub audit: AuditSettings,
    pub log: LogSettings,
}

/// The HTTP API listener and what it believes about its clients.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub cookie_secure: bool,
    pub cookie_same_site: SameSite,
    pub trusted_proxies: Vec<Network>,
    pub forward_auth_callers: Vec<Network>,
    pub allowed_origins: Vec<Origin>,
    pub max_uri_bytes: usize,
    pub max_headers: usize,
    pub max_header_bytes: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        let server = tessera_server::ServerConfig::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cookie_secure: server.cookie_secure,
            cookie_same_site: SameSite::Lax,
            trusted_proxies: server.trusted_proxies.into_iter().map(Network).collect(),
            forward_auth_callers: server.forward_auth_callers.into_iter().map(Network).collect(),
            allowed_origins: vec![],
            max_uri_bytes: server.max_uri_bytes,
            max_headers: server.max_headers,
            max_header_bytes: server.max_header_bytes,
        }
    }
}

impl ServerSettings {
    /// The server crate's configuration these settings describe.
    pub fn server_config(&self) -> tessera_server::ServerConfig {
        tessera_server::ServerConfig {
            cookie_secure: self.cookie_secure,
            cookie_same_site: self.cookie_same_site.as_str().to_owned(),
            trusted_proxies: self.trusted_proxies.iter().map(|n| n.0).collect(),
            forward_auth_callers: self.forward_auth_callers.iter().map(|n| n.0).collect(),
            allowed_origins: self.allowed_origins.iter().map(|o| o.0.clone()).collect(),
            max_uri_bytes: self.max_uri_bytes,
            max_headers: self.max_headers,
            max_header_bytes: self.max_header_bytes,
            ..Default::default()
        }
    }
}

/// The session gateway's listener; `off` runs without it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    pub listen: Listen,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self { listen: Listen(Some(SocketAddr::from(([127, 0, 0, 1], 8000)))) }
    }
}

/// Where the data lives.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// None: `tessera.db` in `data_dir`.
    pub url: Option<DatabaseUrl>,
    pub data_dir: PathBuf,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: None, data_dir: default_data_dir() }
    }
}

impl DatabaseSettings {
    /// The database these settings name, the default SQLite file included.
    pub fn location(&self) -> DatabaseUrl {
        self.url.clone().unwrap_or_else(|| DatabaseUrl::Sqlite(self.data_dir.join("tessera.db")))
    }
}

fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("tessera");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".local/share/tessera");
    }
    PathBuf::from("tessera-data")
}

/// What the first start creates when the store holds no organization.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapSettings {
    pub admin_email: String,
    /// The operator's own string as the administrator's key, instead of a minted one.
    pub api_key: Option<Secret>,
    /// The first organization's name. Not a setting an operator sees (always `default` for
    /// `tessera serve`); tests name theirs.
    #[serde(skip)]
    pub organization: String,
}

impl Default for BootstrapSettings {
    fn default() -> Self {
        Self { admin_email: "admin@tessera.local".into(), api_key: None, organization: "default".into() }
    }
}

/// Session records and the sweeper.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    pub retention_days: u32,
    /// Between two sweeps; whole seconds (at least one) in a file, variable or flag, and any
    /// duration from code (tests sweep every few milliseconds).
    #[serde(with = "seconds")]
    pub sweep_interval: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self { retention_days: 30, sweep_interval: Duration::from_secs(30) }
    }
}

/// The audit trail.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    pub retention_days: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self { retention_days: 90 }
    }
}

/// Logs (to standard error).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter for Tessera's own code, e.g. `debug` or `tessera_server=debug`.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: LogFormat::Text, filter: "info".into() }
    }
}

/// Implements `Deserialize`/`Serialize` through `FromStr`/`Display`, so the file, the
/// environment and the flags parse a value the same way.
macro_rules! serde_via_str {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}

serde_via_str!(SameSite, Network, Origin, Listen, DatabaseUrl, LogFormat, Secret);

/// `SameSite` of the login-session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

impl FromStr for SameSite {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "Lax" => Ok(SameSite::Lax),
            "Strict" => Ok(SameSite::Strict),
            "None" => Ok(SameSite::None),
            _ => Err(format!("'{s}' is not Lax, Strict or None")),
        }
    }
}

impl fmt::Display for SameSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IP address or CIDR block (an address is its own /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network(pub ipnet::IpNet);

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<ipnet::IpNet>()
            .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(Network)
            .map_err(|_| format!("'{s}' is neither an IP address nor a CIDR block"))
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A web origin (`https://console.example.com`), lower case, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl FromStr for Origin {
    type Err = String;
    fn from_str(origin: &str) -> Result<Self, String> {
        let trimmed = origin.trim_end_matches('/');
        let authority = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://"));
        if authority.is_some_and(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_graphic() && !"/?#@\\".contains(c)))
        {
            Ok(Origin(trimmed.to_ascii_lowercase()))
        } else {
            Err(format!("'{origin}' must be an origin such as https://console.example.com (no path)"))
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A listener address, or `off` (None).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" | "" => Ok(Listen(None)),
            _ => s.parse().map(|a| Listen(Some(a))).map_err(|_| format!("'{s}' is not an address (or 'off')")),
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => a.fmt(f),
            None => f.write_str("off"),
        }
    }
}

/// Logs for people (`text`) or for log pipelines (`json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("'{s}' is not text or json")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// A string that never shows itself: `Debug`, `Display` and `Serialize` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(Secret(s.to_owned()))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The store: an SQLite file or a PostgreSQL URL (whose password is a secret).
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(Secret),
}

impl FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(Secret(url.to_owned())));
        }
        match url.strip_prefix("sqlite://") {
            Some(rest) => Ok(DatabaseUrl::Sqlite(PathBuf::from(rest))),
            None if url.contains("://") => Err(format!("unsupported URL scheme in '{}'; use sqlite://", redact(url))),
            None => Ok(DatabaseUrl::Sqlite(PathBuf::from(url.strip_prefix("sqlite:").unwrap_or(url)))),
        }
    }
}

/// The URL with its password replaced by `***`.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => f.write_str(&redact(url.expose())),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// A database URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Whole seconds in files, at least one (as `--sweep-interval` always had it).
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?.max(1)))
    }

    pub fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(v.as_secs())
    }
}

/// How a setting is written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `--flag value`.
    Value,
    /// `--flag value`, repeatable; the variable is comma-separated.
    List,
    /// `--flag` alone turns it on; the variable says `true` or `false`.
    Switch,
}

/// One setting: where it is read from, and what it means.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// `section.name` in the TOML file.
    pub key: &'static str,
    pub env: Option<&'static str>,
    /// The long flag, without `--`.
    pub flag: Option<&'static str>,
    pub shape: Shape,
    /// The values a flag accepts, when they are few (shown by `--help`).
    pub choices: &'static [&'static str],
    /// The default as docs/config.md shows it (Markdown).
    pub default: &'static str,
    pub about: &'static str,
}

const fn setting(key: &'static str, env: &'static str, flag: &'static str, default: &'static str) -> Setting {
    Setting {
        key,
        env: if env.is_empty() { None } else { Some(env) },
        flag: if flag.is_empty() { None } else { Some(flag) },
        shape: Shape::Value,
        choices: &[],
        default,
        about: "",
    }
}

impl Setting {
    const fn list(mut self) -> Self {
        self.shape = Shape::List;
        self
    }
    const fn switch(mut self) -> Self {
        self.shape = Shape::Switch;
        self
    }
    const fn choices(mut self, choices: &'static [&'static str]) -> Self {
        self.choices = choices;
        self
    }
    const fn about(mut self, about: &'static str) -> Self {
        self.about = about;
        self
    }
}

/// Every setting, in the order docs/config.md lists them.
pub const SETTINGS: &[Setting] = &[
    setting("server.listen", "TESSERA_LISTEN", "listen", "`127.0.0.1:8080`").about("address of the HTTP API"),
    setting("gateway.listen", "TESSERA_GATEWAY_LISTEN", "gateway-listen", "`127.0.0.1:8000`")
        .about("address of the session gateway (reverse proxy), or `off`; see [gateway.md](gateway.md)"),
    setting("database.url", "TESSERA_DATABASE", "database", "`tessera.db` in `data_dir`").about(
        "`sqlite:///abs/path.db`, `sqlite://relative.db`, a plain path, or `postgres://user:password@host:5432/db` (the password is never printed)",
    ),
    setting("database.data_dir", "TESSERA_DATA_DIR", "data-dir", "`$XDG_DATA_HOME/tessera`, else `~/.local/share/tessera`")
        .about("where the default database lives (created if missing)"),
    setting("bootstrap.admin_email", "TESSERA_ADMIN_EMAIL", "admin-email", "`admin@tessera.local`")
        .about("email of the administrator created on the first start"),
    setting("bootstrap.api_key", "TESSERA_BOOTSTRAP_API_KEY", "", "unset").about(
        "on the first start, use this string (32+ characters) as the administrator's API key instead of minting one; never printed",
    ),
    setting("server.cookie_secure", "TESSERA_COOKIE_SECURE", "cookie-secure", "`false`")
        .switch()
        .about("add `Secure` to the login-session cookie; turn on whenever clients reach Tessera over HTTPS"),
    setting("server.cookie_same_site", "TESSERA_COOKIE_SAME_SITE", "cookie-same-site", "`Lax`")
        .choices(&["Lax", "Strict", "None"])
        .about("`Lax`, `Strict` or `None` (`None` implies `Secure`)"),
    setting("server.trusted_proxies", "TESSERA_TRUSTED_PROXIES", "trusted-proxy", "none").list().about(
        "proxies (IP or CIDR) whose `X-Forwarded-For` (and `X-Forwarded-Proto`/`Host`) is believed and that may call `/v2/auth/forward`. None by default: a trusted address lets any process there claim any client address and so satisfy IP-bound sessions and trust IP conditions",
    ),
    setting("server.forward_auth_callers", "TESSERA_FORWARD_AUTH_CALLERS", "forward-auth-caller", "`127.0.0.0/8`, `::1`")
        .list()
        .about("peers that may call `/v2/auth/forward` without being trusted proxies (their `X-Forwarded-For` is ignored)"),
    setting("server.allowed_origins", "TESSERA_ALLOWED_ORIGINS", "allowed-origin", "none").list().about(
        "origins besides the server's own (`https://console.example.com`) that may send cookie-authenticated state changes and sign-ins (CSRF rule, see docs/api.md)",
    ),
    setting("server.max_uri_bytes", "TESSERA_MAX_URI_BYTES", "", "`8192`")
        .about("the longest request target (path and query) the API answers; longer ones get 414"),
    setting("server.max_headers", "TESSERA_MAX_HEADERS", "", "`100`")
        .about("the most header fields a request to the API may carry; more get 431"),
    setting("server.max_header_bytes", "TESSERA_MAX_HEADER_BYTES", "", "`32768`")
        .about("the most header bytes a request to the API may carry; more get 431"),
    setting("sessions.retention_days", "TESSERA_SESSION_RETENTION_DAYS", "session-retention-days", "`30`")
        .about("how long ended and terminated session records stay queryable"),
    setting("audit.retention_days", "TESSERA_AUDIT_RETENTION_DAYS", "audit-retention-days", "`90`")
        .about("how long audit events (`GET /v2/audit-events`) are kept before the sweep deletes them"),
    setting("sessions.sweep_interval", "TESSERA_SWEEP_INTERVAL", "sweep-interval", "`30`")
        .about("seconds between sweeps that mark timed-out sessions ended and purge old records"),
    setting("log.format", "TESSERA_LOG_FORMAT", "log-format", "`text`")
        .choices(&["text", "json"])
        .about("`text` or `json` (logs go to stderr)"),
    setting("log.filter", "TESSERA_LOG", "", "`info`").about("log filter, e.g. `debug` or `tessera_server=debug`"),
];

/// The variable naming the configuration file, like `--config`.
pub const CONFIG_ENV: &str = "TESSERA_CONFIG";

/// Why the settings could not be read; each names where the bad value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    ReadFile { path: PathBuf, source: std::io::Error },
    /// A TOML error names the line and column, and an unknown key by name.
    #[error("in the configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{source_name}: {message}")]
    Value { source_name: String, message: String },
}

/// One layer above the file: values by setting key, as text.
pub type Overrides = Vec<(&'static str, String)>;

impl Settings {
    /// Defaults, then the file (if any), then the environment as `env` reads it, then flags.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &Overrides,
    ) -> Result<Settings, ConfigError> {
        let mut settings = match file {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        for s in SETTINGS {
            // An empty variable counts as unset, as it always did.
            if let Some(value) = s.env.and_then(|name| env(name).filter(|v| !v.is_empty())) {
                settings.set(s.key, &value).map_err(|message| ConfigError::Value {
                    source_name: s.env.unwrap_or_default().to_owned(),
                    message,
                })?;
            }
        }
        for (key, value) in flags {
            settings.set(key, value).map_err(|message| {
                let flag = SETTINGS.iter().find(|s| s.key == *key).and_then(|s| s.flag).unwrap_or(key);
                ConfigError::Value { source_name: format!("--{flag}"), message }
            })?;
        }
        Ok(settings)
    }

    /// The settings a TOML file gives over the defaults. Unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile { path: path.to_owned(), source })?;
        Settings::from_toml(&text).map_err(|message| ConfigError::File { path: path.to_owned(), message })
    }

    /// The settings a TOML text gives over the defaults; the error names the line.
    pub fn from_toml(text: &str) -> Result<Settings, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    /// The effective settings as a TOML file would say them, secrets shown as `***`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string(self).expect("settings are plain TOML")
    }

    /// Sets one setting from its text, as the environment or a flag gives it. Lists are
    /// comma-separated and replace what lower layers said.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "server.listen" => self.server.listen = parse(value)?,
            "server.cookie_secure" => self.server.cookie_secure = parse_bool(value)?,
            "server.cookie_same_site" => self.server.cookie_same_site = parse(value)?,
            "server.trusted_proxies" => self.server.trusted_proxies = parse_list(value)?,
            "server.forward_auth_callers" => self.server.forward_auth_callers = parse_list(value)?,
            "server.allowed_origins" => self.server.allowed_origins = parse_list(value)?,
            "server.max_uri_bytes" => self.server.max_uri_bytes = parse(value)?,
            "server.max_headers" => self.server.max_headers = parse(value)?,
            "server.max_header_bytes" => self.server.max_header_bytes = parse(value)?,
            "gateway.listen" => self.gateway.listen = parse(value)?,
            "database.url" => self.database.url = Some(parse(value)?),
            "database.data_dir" => self.database.data_dir = PathBuf::from(value),
            "bootstrap.admin_email" => self.bootstrap.admin_email = value.to_owned(),
            "bootstrap.api_key" => self.bootstrap.api_key = Some(Secret::new(value)),
            "sessions.retention_days" => self.sessions.retention_days = parse(value)?,
            "sessions.sweep_interval" => {
                self.sessions.sweep_interval = Duration::from_secs(parse::<u64>(value)?.max(1))
            }
            "audit.retention_days" => self.audit.retention_days = parse(value)?,
            "log.format" => self.log.format = parse(value)?,
            "log.filter" => self.log.filter = value.to_owned(),
            _ => return Err(format!("no setting is called {key}")),
        }
        Ok(())
    }

    /// The Markdown table of every setting, as docs/config.md holds it.
    pub fn docs_table() -> String {
        let mut out = String::from("| file key | variable | flag | default | meaning |\n|---|---|---|---|---|\n");
        for s in SETTINGS {
            let code = |v: Option<String>| v.map_or("—".to_owned(), |v| format!("`{v}`"));
            let env = match (s.env, s.shape) {
                (Some(e), Shape::List) => format!("`{e}` (comma-separated)"),
                (e, _) => code(e.map(str::to_owned)),
            };
            let flag = code(s.flag.map(|f| format!("--{f}")));
            out.push_str(&format!("| `{}` | {env} | {flag} | {} | {} |\n", s.key, s.default, s.about));
        }
        out
    }
}

fn parse<T: FromStr>(value: &str) -> Result<T, String>
where
    T::Err: fmt::Display,
{
    value.trim().parse().map_err(|e: T::Err| {
        let message = e.to_string();
        // Our own types quote the value; the standard library's errors do not.
        if message.contains('\'') { message } else { format!("'{value}': {message}") }
    })
}

fn parse_list<T: FromStr>(value: &str) -> Result<Vec<T>, String>
where
    T::Err: fmt::Display,
{
    value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(parse).collect()
}

/// What clap accepted for a switch's variable, and the usual spellings.
fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "on" => Ok(true),
        "false" | "0" | "no" | "n" | "off" => Ok(false),
        _ => Err(format!("'{value}' is not true or false")),
    }
}
