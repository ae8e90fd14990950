//! `tessera serve`: configuration, store selection, bootstrap, and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use tessera_app::{App, BootstrapOutcome, BootstrapRequest, SystemClock};
use tessera_server::ServerConfig;
use tessera_store::Store;
use tessera_store_sqlite::SqliteStore;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address for the HTTP API.
    #[arg(long, env = "TESSERA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address for the session gateway (the reverse proxy with the session plugin), or
    /// `off` to run without it.
    #[arg(long, env = "TESSERA_GATEWAY_LISTEN", default_value = "127.0.0.1:8000")]
    pub gateway_listen: String,

    /// Where data lives: `sqlite:///abs/path.db`, `sqlite://rel/path.db`, or a plain file
    /// path. Defaults to tessera.db in --data-dir.
    #[arg(long, env = "TESSERA_DATABASE")]
    pub database: Option<String>,

    /// Directory for the default SQLite database.
    #[arg(long, env = "TESSERA_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,

    /// Email of the administrator created on the first start.
    #[arg(long, env = "TESSERA_ADMIN_EMAIL", default_value = "admin@tessera.local")]
    pub admin_email: String,

    /// Add `Secure` to the login-session cookie (do this whenever clients reach Tessera over HTTPS).
    #[arg(long, env = "TESSERA_COOKIE_SECURE")]
    pub cookie_secure: bool,

    /// SameSite of the login-session cookie: Lax, Strict or None.
    #[arg(long, env = "TESSERA_COOKIE_SAME_SITE", default_value = "Lax", value_parser = ["Lax", "Strict", "None"])]
    pub cookie_same_site: String,

    /// A proxy (IP or CIDR) whose X-Forwarded-For and X-Forwarded-Proto/Host are believed
    /// and that may call /v2/auth/forward. Repeat for several; none by default, because any
    /// process that can reach the port from a trusted address can claim any client address.
    #[arg(long = "trusted-proxy", env = "TESSERA_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// A peer (IP or CIDR) that may call /v2/auth/forward without being a trusted proxy (its
    /// X-Forwarded-For is ignored). Repeat for several; defaults to loopback.
    #[arg(long = "forward-auth-caller", env = "TESSERA_FORWARD_AUTH_CALLERS", value_delimiter = ',')]
    pub forward_auth_callers: Vec<String>,

    /// An origin (`https://console.example.com`) besides the server's own that may send
    /// cookie-authenticated state changes and sign-ins. Repeat for several; none by default.
    #[arg(long = "allowed-origin", env = "TESSERA_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Days ended and terminated sessions stay queryable before they are purged.
    #[arg(long, env = "TESSERA_SESSION_RETENTION_DAYS", default_value_t = 30)]
    pub session_retention_days: u32,

    /// Days audit events are kept before the sweep purges them.
    #[arg(long, env = "TESSERA_AUDIT_RETENTION_DAYS", default_value_t = 90)]
    pub audit_retention_days: u32,

    /// Seconds between sweeps that mark timed-out sessions ended and purge old records.
    #[arg(long, env = "TESSERA_SWEEP_INTERVAL", default_value_t = 30)]
    pub sweep_interval: u64,

    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "TESSERA_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
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

/// Opens the store a `--database` value names.
pub async fn open_store(database: Option<&str>, data_dir: &std::path::Path) -> anyhow::Result<Arc<dyn Store>> {
    let path = match database {
        None => data_dir.join("tessera.db"),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = tessera_store_postgres::PgStore::connect(url)
                .await
                .map_err(|e| anyhow::anyhow!("cannot use PostgreSQL at {}: {e}", redact(url)))?;
            tracing::info!(url = %redact(url), "using PostgreSQL store");
            return Ok(Arc::new(store));
        }
        Some(url) => match url.strip_prefix("sqlite://") {
            Some(rest) => PathBuf::from(rest),
            None if url.contains("://") => bail!("unsupported --database URL scheme in '{url}'; use sqlite://"),
            None => PathBuf::from(url.strip_prefix("sqlite:").unwrap_or(url)),
        },
    };
    let store = SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
    tracing::info!(path = %path.display(), "using SQLite store");
    Ok(Arc::new(store))
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
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

/// IP addresses or CIDR blocks from a repeatable flag.
fn parse_networks(values: &[String], flag: &str) -> anyhow::Result<Vec<ipnet::IpNet>> {
    values
        .iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .with_context(|| format!("{flag} '{s}' is neither an IP address nor a CIDR block"))
        })
        .collect()
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(&args.log_format);
    let store = open_store(args.database.as_deref(), &args.data_dir).await?;
    let mut config = ServerConfig {
        cookie_secure: args.cookie_secure,
        cookie_same_site: args.cookie_same_site.clone(),
        ..Default::default()
    };
    config.trusted_proxies = parse_networks(&args.trusted_proxies, "--trusted-proxy")?;
    if !args.forward_auth_callers.is_empty() {
        config.forward_auth_callers = parse_networks(&args.forward_auth_callers, "--forward-auth-caller")?;
    }
    for origin in &args.allowed_origins {
        let trimmed = origin.trim_end_matches('/');
        let authority = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://"));
        anyhow::ensure!(
            authority
                .is_some_and(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_graphic() && !"/?#@\\".contains(c))),
            "--allowed-origin '{origin}' must be an origin such as https://console.example.com (no path)"
        );
        config.allowed_origins.push(trimmed.to_ascii_lowercase());
    }
    let app = Arc::new(
        App::new(store, Arc::new(SystemClock), Box::new(rand::rngs::OsRng))
            .with_session_retention(i64::from(args.session_retention_days) * 86_400)
            .with_audit_retention(i64::from(args.audit_retention_days) * 86_400),
    );

    let bootstrap_key = std::env::var("TESSERA_BOOTSTRAP_API_KEY").ok().filter(|k| !k.is_empty());
    let from_env = bootstrap_key.is_some();
    let outcome = app
        .bootstrap(BootstrapRequest {
            organization_name: "default".into(),
            admin_email: args.admin_email.clone(),
            api_key: bootstrap_key,
        })
        .await
        .context("bootstrapping the first organization")?;
    if let BootstrapOutcome::Created { organization, admin, minted_key } = outcome {
        tracing::info!(%organization, %admin, key_from_env = from_env, "created the first organization and its administrator");
        if let Some(key) = minted_key {
            // Printed once on stdout, never logged: it is stored only as a digest.
            println!("\nTessera created the first organization and administrator ({}).", args.admin_email);
            println!("Administrator API key (shown once, store it now):\n\n    {key}\n");
        }
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "Tessera API listening");
    let gateway_listener = match args.gateway_listen.as_str() {
        "off" | "" => None,
        addr => {
            let addr: SocketAddr =
                addr.parse().with_context(|| format!("--gateway-listen '{addr}' is not an address (or 'off')"))?;
            let l = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
            tracing::info!(address = %l.local_addr()?, "Tessera gateway listening");
            Some(l)
        }
    };
    let follower = app.follow_store_changes();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(sweep_loop(Arc::clone(&app), args.sweep_interval.max(1), stop_rx.clone()));
    let gateway = match gateway_listener {
        Some(l) => {
            // The gateway believes forwarding headers from the same proxies the API does.
            let gateway_config = tessera_gateway::GatewayConfig { trusted_proxies: config.trusted_proxies.clone() };
            let gw = tessera_gateway::Gateway::with_config(Arc::clone(&app), gateway_config)
                .await
                .context("loading the gateway configuration")?;
            let reloader = gw.follow_changes();
            let mut stop = stop_rx.clone();
            let task = tokio::spawn(tessera_gateway::serve(gw, l, async move {
                let _ = stop.wait_for(|s| *s).await;
            }));
            Some((task, reloader))
        }
        None => None,
    };
    let stop_tx = Arc::new(stop_tx);
    let on_signal = Arc::clone(&stop_tx);
    let served = tessera_server::serve(listener, app, config, async move {
        shutdown_signal().await;
        let _ = on_signal.send(true);
    })
    .await;
    let _ = stop_tx.send(true);
    let _ = sweeper.await;
    if let Some((task, reloader)) = gateway {
        reloader.abort();
        if let Ok(Err(e)) = task.await {
            tracing::warn!(error = %e, "the gateway stopped with an error");
        }
    }
    if let Some(f) = follower {
        f.abort();
    }
    served.context("serving the API")?;
    tracing::info!("stopped");
    Ok(())
}

/// Marks timed-out sessions ended and purges old records until told to stop. Nothing
/// depends on it for correctness: expired sessions never authenticate either way.
async fn sweep_loop(app: Arc<App>, every: u64, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => match app.sweep().await {
                Ok((0, 0)) => {}
                Ok((ended, purged)) => tracing::info!(ended, purged, "swept sessions"),
                Err(e) => tracing::warn!(error = %e, "session sweep failed"),
            },
            _ = stop.changed() => return,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// `TESSERA_LOG` chooses what Tessera's own code logs. Dependencies log what they are handed:
/// tokio-postgres prints every query's parameters at debug (password hashes, plugin secrets),
/// HTTP stacks print headers (tokens, cookies) at trace. So every target outside Tessera is
/// capped at info, whatever `TESSERA_LOG` says, even `trace` or `tokio_postgres=trace`.
fn init_logging(format: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let dependencies_capped = tracing_subscriber::filter::filter_fn(|meta| {
        meta.target().starts_with("tessera") || *meta.level() <= tracing::Level::INFO
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().finish().with(dependencies_capped).init();
    } else {
        builder.finish().with(dependencies_capped).init();
    }
}
