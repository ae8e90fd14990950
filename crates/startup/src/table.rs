//! Every setting once: its file key, variable, flag and default. The environment and flag
//! layers, `--help` and the table in docs/config.md are all read from [`SETTINGS`].

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
    setting("server.tls_cert", "TESSERA_TLS_CERT", "tls-cert", "unset").about(
        "PEM certificate chain: the API serves HTTPS (with `server.tls_key`); reloaded on SIGHUP or when the file changes; see [operations.md](operations.md#tls)",
    ),
    setting("server.tls_key", "TESSERA_TLS_KEY", "tls-key", "unset")
        .about("PEM private key of `server.tls_cert` (PKCS#8, PKCS#1 or SEC1); reloaded with it"),
    setting("gateway.tls_cert", "TESSERA_GATEWAY_TLS_CERT", "gateway-tls-cert", "unset").about(
        "PEM certificate chain: the gateway serves HTTPS, HTTP/2 or HTTP/1.1 by ALPN (with `gateway.tls_key`); reloaded on SIGHUP or when the file changes",
    ),
    setting("gateway.tls_key", "TESSERA_GATEWAY_TLS_KEY", "gateway-tls-key", "unset")
        .about("PEM private key of `gateway.tls_cert`; reloaded with it"),
    setting("gateway.upstream_ca", "TESSERA_GATEWAY_UPSTREAM_CA", "gateway-upstream-ca", "Mozilla's roots").about(
        "PEM bundle of the CA certificates `https` services are verified against, instead of Mozilla's roots (a service with `tls_verify: false` is not verified; one with `ca_certificates` is verified against those CA certificate objects instead)",
    ),
    setting("metrics.listen", "TESSERA_METRICS_LISTEN", "metrics-listen", "`off`").about(
        "address of the Prometheus listener (`GET /metrics`, no authentication: keep it on loopback or a private network), or `off`; see [operations.md](operations.md)",
    ),
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
    setting("server.cookie_secure", "TESSERA_COOKIE_SECURE", "cookie-secure", "`false` (always on when `server.tls_cert` is set)")
        .switch()
        .about("add `Secure` to the login-session and CSRF cookies, and take `https` as the API's own origin in the cross-site check; turn on whenever clients reach Tessera over HTTPS through a proxy"),
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
    setting("passwords.hashing_nice", "TESSERA_PASSWORD_HASHING_NICE", "password-hashing-nice", "`10`").about(
        "nice value (0 to 19) of the threads that hash passwords (Argon2id, tens of ms of a core per sign-in): \
         when sign-ins and token-authenticated requests compete for the cores, the requests get them; on idle \
         cores a hash runs at full speed. `0` runs hashes at the process's priority; see [operations.md](operations.md#password-hashing)",
    ),
    setting("log.format", "TESSERA_LOG_FORMAT", "log-format", "`text`")
        .choices(&["text", "json"])
        .about("`text` or `json` (logs go to stderr)"),
    setting("log.filter", "TESSERA_LOG", "", "`info`").about("log filter, e.g. `debug` or `tessera_server=debug`"),
];
