//! The typed settings of a Tessera node, and the layers they come from: defaults < TOML file
//! (`--config`) < environment (`TESSERA_…`) < flags.
//!
//! Every setting is listed once in [`SETTINGS`] (table.rs) with its file key, variable, flag
//! and default; the environment and flag layers, `tessera serve --help` and the table in
//! docs/config.md are all read from that list, so they cannot drift apart.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::table::{SETTINGS, Setting, Shape};
pub use crate::values::{DatabaseUrl, Listen, LogFormat, Network, Origin, SameSite, Secret};

/// Everything `tessera serve` can be told, parsed into types that cannot be wrong.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub gateway: GatewaySettings,
    pub metrics: MetricsSettings,
    pub database: DatabaseSettings,
    pub bootstrap: BootstrapSettings,
    pub sessions: SessionSettings,
    pub passwords: PasswordSettings,
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
    /// PEM certificate chain and key: the API serves HTTPS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
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
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl ServerSettings {
    /// The server crate's configuration these settings describe.
    pub fn server_config(&self) -> tessera_server::ServerConfig {
        tessera_server::ServerConfig {
            // A listener that serves TLS itself is reached over https: its cookies are
            // `Secure` and its own origin is https, whatever `cookie_secure` says.
            cookie_secure: self.cookie_secure || self.tls_cert.is_some(),
            cookie_same_site: self.cookie_same_site.as_str().to_owned(),
            trusted_proxies: self.trusted_proxies.iter().map(|n| n.0).collect(),
            forward_auth_callers: self.forward_auth_callers.iter().map(|n| n.0).collect(),
            allowed_origins: self.allowed_origins.iter().map(|o| o.as_str().to_owned()).collect(),
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
    /// PEM certificate chain and key: the gateway serves HTTPS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle `https` services are verified against (None: Mozilla's roots).
    pub upstream_ca: Option<PathBuf>,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            listen: Listen(Some(SocketAddr::from(([127, 0, 0, 1], 8000)))),
            tls_cert: None,
            tls_key: None,
            upstream_ca: None,
        }
    }
}

/// The Prometheus listener (`GET /metrics`); `off` (the default) counts nothing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    pub listen: Listen,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self { listen: Listen(None) }
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

/// Password hashing (sign-ins, password changes).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordSettings {
    /// The hashing threads' nice value, 0 (as the process) to 19 (only idle CPU, nearly).
    #[serde(deserialize_with = "nice")]
    pub hashing_nice: i32,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self { hashing_nice: tessera_app::hashing::DEFAULT_NICE }
    }
}

/// A nice value from a file, 0 to 19.
fn nice<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let n = i32::deserialize(d)?;
    check_nice(n).map_err(serde::de::Error::custom)
}

fn check_nice(n: i32) -> Result<i32, String> {
    if (0..=19).contains(&n) { Ok(n) } else { Err(format!("'{n}': a nice value is 0 to 19")) }
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
            "server.tls_cert" => self.server.tls_cert = Some(PathBuf::from(value)),
            "server.tls_key" => self.server.tls_key = Some(PathBuf::from(value)),
            "gateway.tls_cert" => self.gateway.tls_cert = Some(PathBuf::from(value)),
            "gateway.tls_key" => self.gateway.tls_key = Some(PathBuf::from(value)),
            "gateway.upstream_ca" => self.gateway.upstream_ca = Some(PathBuf::from(value)),
            "metrics.listen" => self.metrics.listen = parse(value)?,
            "database.url" => self.database.url = Some(parse(value)?),
            "database.data_dir" => self.database.data_dir = PathBuf::from(value),
            "bootstrap.admin_email" => self.bootstrap.admin_email = value.to_owned(),
            "bootstrap.api_key" => self.bootstrap.api_key = Some(Secret::new(value)),
            "sessions.retention_days" => self.sessions.retention_days = parse(value)?,
            "sessions.sweep_interval" => {
                self.sessions.sweep_interval = Duration::from_secs(parse::<u64>(value)?.max(1))
            }
            "audit.retention_days" => self.audit.retention_days = parse(value)?,
            "passwords.hashing_nice" => self.passwords.hashing_nice = check_nice(parse(value)?)?,
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
