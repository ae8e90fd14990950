//! `Application::build`: the one wiring of a Tessera node, used by `tessera serve` and by
//! testkit's `spawn_app` alike: listeners, store, app, bootstrap, gateway and every
//! background task.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_app::{App, BootstrapOutcome, BootstrapRequest, Clock, SystemClock};
use tessera_gateway::{Gateway, GatewayConfig, UpstreamTls};
use tessera_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::settings::{DatabaseUrl, Settings};

/// Why a node could not start. Nothing is created in the store before every listener is
/// bound, so a `Bind` error leaves no trace.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address} for the {listener} (--{flag}, {key} in a configuration file): {source}")]
    Bind { listener: &'static str, flag: &'static str, key: &'static str, address: SocketAddr, source: io::Error },
    #[error("cannot use PostgreSQL at {url}: {message}")]
    Postgres { url: String, message: String },
    #[error("opening {path}: {message}")]
    Sqlite { path: String, message: String },
    #[error("bootstrapping the first organization: {0}")]
    Bootstrap(tessera_app::AppError),
    #[error("loading the gateway configuration: {0}")]
    Gateway(tessera_app::AppError),
    #[error("serving the API: {0}")]
    Serve(io::Error),
    /// A certificate, key or CA bundle that cannot be used, named with its setting.
    #[error("TLS for the {listener}: {message}")]
    Tls { listener: &'static str, message: String },
}

/// A running node: its listeners are bound and serving, its background tasks running.
/// Dropping it stops everything at once; [`Application::run_until_stopped`] stops gracefully.
pub struct Application {
    api_addr: SocketAddr,
    gateway_addr: Option<SocketAddr>,
    app: Arc<App>,
    store: Arc<dyn Store>,
    gateway: Option<Arc<Gateway>>,
    bootstrap: BootstrapOutcome,
    stop: Arc<watch::Sender<bool>>,
    api: Option<JoinHandle<io::Result<()>>>,
    gateway_task: Option<JoinHandle<io::Result<()>>>,
    metrics_addr: Option<SocketAddr>,
    metrics_task: Option<JoinHandle<io::Result<()>>>,
    sweeper: Option<JoinHandle<()>>,
    follower: Option<JoinHandle<()>>,
    reloader: Option<JoinHandle<()>>,
    /// Reloads the listeners' certificates on SIGHUP or when their files change.
    tls_reloader: Option<JoinHandle<()>>,
}

/// Stops a running [`Application`] gracefully: listeners close, in-flight requests finish.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

impl Application {
    /// A node on the system clock and the operating system's randomness.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        Application::build_with(settings, Arc::new(SystemClock), Box::new(rand::rngs::OsRng)).await
    }

    /// A node whose time and randomness come from the caller (tests move a `ManualClock`).
    pub async fn build_with(
        settings: Settings,
        clock: Arc<dyn Clock>,
        rng: Box<dyn rand::RngCore + Send>,
    ) -> Result<Application, StartupError> {
        // Every port first: a port in use must fail before anything is created.
        let api_listener = bind(settings.server.listen, "API", "listen", "server.listen").await?;
        let api_addr = api_listener.local_addr().map_err(StartupError::Serve)?;
        tracing::info!(address = %api_addr, "Tessera API listening");
        let gateway_listener = match settings.gateway.listen.0 {
            Some(address) => Some(bind(address, "gateway", "gateway-listen", "gateway.listen").await?),
            None => None,
        };
        let gateway_addr =
            gateway_listener.as_ref().map(TcpListener::local_addr).transpose().map_err(StartupError::Serve)?;
        if let Some(address) = gateway_addr {
            tracing::info!(%address, "Tessera gateway listening");
        }
        let metrics_listener = match settings.metrics.listen.0 {
            Some(address) => Some(bind(address, "metrics", "metrics-listen", "metrics.listen").await?),
            None => None,
        };
        let metrics_addr =
            metrics_listener.as_ref().map(TcpListener::local_addr).transpose().map_err(StartupError::Serve)?;
        // Certificates next: a file that cannot be used must fail before anything is created.
        let api_cert = load_cert("API", settings.server.tls_cert.as_deref(), settings.server.tls_key.as_deref())?;
        let gateway_cert = match gateway_listener {
            Some(_) => load_cert("gateway", settings.gateway.tls_cert.as_deref(), settings.gateway.tls_key.as_deref())?,
            None => None,
        };
        let upstream_tls = match &settings.gateway.upstream_ca {
            Some(path) => UpstreamTls::from_pem_file(path)
                .map_err(|message| StartupError::Tls { listener: "gateway's https services", message })?,
            None => UpstreamTls::default(),
        };
        let acceptor = |listener, cert: &Option<Arc<crate::tls::ReloadingCert>>, alpn: &[&[u8]]| {
            cert.as_ref()
                .map(|c| crate::tls::acceptor(c, alpn).map_err(|message| StartupError::Tls { listener, message }))
                .transpose()
        };
        let api_tls = acceptor("API", &api_cert, &[b"http/1.1"])?;
        let gateway_tls = acceptor("gateway", &gateway_cert, tessera_gateway::ALPN)?;

        let store = open_store(&settings.database.location()).await?;
        let app = Arc::new(
            App::new(Arc::clone(&store), clock, rng)
                .with_session_retention(i64::from(settings.sessions.retention_days) * 86_400)
                .with_audit_retention(i64::from(settings.audit.retention_days) * 86_400)
                .with_hashing_limits(tessera_app::hashing::HashingLimits {
                    nice: settings.passwords.hashing_nice,
                    ..Default::default()
                })
                .with_key_fetcher(Arc::new(crate::oidc_keys::HttpKeyFetcher::new())),
        );
        let from_settings = settings.bootstrap.api_key.is_some();
        let bootstrap = app
            .bootstrap(
                tessera_app::System::BOOTSTRAP,
                BootstrapRequest {
                    organization_name: settings.bootstrap.organization.clone(),
                    admin_email: settings.bootstrap.admin_email.clone(),
                    api_key: settings.bootstrap.api_key.as_ref().map(|k| k.expose().to_owned()),
                },
            )
            .await
            .map_err(StartupError::Bootstrap)?;
        if let BootstrapOutcome::Created { organization, admin, .. } = &bootstrap {
            tracing::info!(%organization, %admin, key_from_env = from_settings, "created the first organization and its administrator");
        }

        let mut server_config = settings.server.server_config();
        // Request metrics are counted only when something can read them.
        let metrics = metrics_listener.map(|l| (l, Arc::new(tessera_server::metrics::ApiMetrics::new())));
        server_config.metrics = metrics.as_ref().map(|(_, m)| Arc::clone(m));
        // The console's settings page shows what `tessera config check` prints.
        server_config.effective_config = Some(settings.to_redacted_toml().into());
        let gateway = match gateway_listener {
            Some(listener) => {
                // The gateway believes forwarding headers from the same proxies the API does.
                // It keeps the API's cookies from upstreams on the same host name.
                let config = GatewayConfig {
                    trusted_proxies: server_config.trusted_proxies.clone(),
                    upstream_tls,
                    api_cookies: vec![
                        server_config.cookie_name.clone(),
                        server_config.csrf_cookie_name.clone(),
                        server_config.login_csrf_cookie_name(),
                    ],
                };
                let gw = Gateway::with_config(Arc::clone(&app), config).await.map_err(StartupError::Gateway)?;
                Some((gw, listener))
            }
            None => None,
        };

        let (stop, _) = watch::channel(false);
        let stop = Arc::new(stop);
        let follower = app.follow_store_changes();
        let sweeper = tokio::spawn(sweep_loop(Arc::clone(&app), settings.sessions.sweep_interval, stop.subscribe()));
        let (gateway, gateway_task, reloader) = match gateway {
            Some((gw, listener)) => {
                let reloader = gw.follow_changes();
                let task = tokio::spawn(tessera_gateway::serve_tls(
                    Arc::clone(&gw),
                    listener,
                    gateway_tls,
                    stopped(stop.subscribe()),
                ));
                (Some(gw), Some(task), Some(reloader))
            }
            None => (None, None, None),
        };
        let metrics_task = metrics.map(|(l, m)| {
            // The gateway's upstream metrics, when it runs.
            let more: Vec<tessera_server::metrics::Section> = gateway
                .iter()
                .map(|gw| {
                    let gw = Arc::clone(gw);
                    Arc::new(move |out: &mut String| gw.render_metrics(out)) as tessera_server::metrics::Section
                })
                .collect();
            tokio::spawn(tessera_server::metrics::serve(l, m, Arc::clone(&app), more, stopped(stop.subscribe())))
        });
        let api = tokio::spawn(tessera_server::serve_tls(
            api_listener,
            Arc::clone(&app),
            server_config,
            api_tls,
            stopped(stop.subscribe()),
        ));
        let certs: Vec<_> = api_cert.into_iter().chain(gateway_cert).collect();
        let tls_reloader = (!certs.is_empty()).then(|| tokio::spawn(crate::tls::follow(certs, stop.subscribe())));
        Ok(Application {
            api_addr,
            gateway_addr,
            app,
            store,
            gateway,
            bootstrap,
            stop,
            api: Some(api),
            gateway_task,
            metrics_addr,
            metrics_task,
            sweeper: Some(sweeper),
            follower,
            reloader,
            tls_reloader,
        })
    }

    /// Where the API listens (the real port when the settings said port 0).
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where the gateway listens; None when it is `off`.
    pub fn gateway_addr(&self) -> Option<SocketAddr> {
        self.gateway_addr
    }

    /// Where `GET /metrics` is served; None when it is `off`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The store this node opened.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn gateway(&self) -> Option<&Arc<Gateway>> {
        self.gateway.as_ref()
    }

    /// What the first-start bootstrap did on this start.
    pub fn bootstrap(&self) -> &BootstrapOutcome {
        &self.bootstrap
    }

    /// The administrator's key when this start minted one: to be shown once, never logged.
    pub fn minted_key(&self) -> Option<&str> {
        match &self.bootstrap {
            BootstrapOutcome::Created { minted_key: Some(key), .. } => Some(key),
            _ => None,
        }
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(Arc::clone(&self.stop))
    }

    /// Stops applying the store's change feed (as if this node missed every notice).
    pub fn stop_following_changes(&mut self) {
        if let Some(f) = self.follower.take() {
            f.abort();
        }
    }

    /// Serves until a [`ShutdownHandle`] says stop (or the API listener fails), then lets
    /// in-flight requests finish and stops every background task.
    pub async fn run_until_stopped(mut self) -> Result<(), StartupError> {
        let served = match self.api.take() {
            Some(api) => api.await.unwrap_or_else(|e| Err(io::Error::other(e))),
            None => Ok(()),
        };
        self.stop.send_replace(true);
        if let Some(sweeper) = self.sweeper.take() {
            let _ = sweeper.await;
        }
        if let Some(reloader) = self.reloader.take() {
            reloader.abort();
        }
        if let Some(task) = self.gateway_task.take()
            && let Ok(Err(e)) = task.await
        {
            tracing::warn!(error = %e, "the gateway stopped with an error");
        }
        if let Some(task) = self.metrics_task.take() {
            let _ = task.await;
        }
        if let Some(f) = self.follower.take() {
            f.abort();
        }
        if let Some(t) = self.tls_reloader.take() {
            t.abort();
        }
        served.map_err(StartupError::Serve)
    }
}

impl Drop for Application {
    /// No detached tasks: whatever is still running stops with the application.
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for task in [self.sweeper.take(), self.follower.take(), self.reloader.take(), self.tls_reloader.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        for task in [self.api.take(), self.gateway_task.take(), self.metrics_task.take()].into_iter().flatten() {
            task.abort();
        }
    }
}

async fn bind(
    address: SocketAddr,
    listener: &'static str,
    flag: &'static str,
    key: &'static str,
) -> Result<TcpListener, StartupError> {
    TcpListener::bind(address).await.map_err(|source| StartupError::Bind { listener, flag, key, address, source })
}

/// A listener's certificate from its two settings: both or neither.
fn load_cert(
    listener: &'static str,
    cert: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
) -> Result<Option<Arc<crate::tls::ReloadingCert>>, StartupError> {
    let (cert_flag, key_flag) =
        if listener == "API" { ("--tls-cert", "--tls-key") } else { ("--gateway-tls-cert", "--gateway-tls-key") };
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => crate::tls::ReloadingCert::load(listener, cert, key)
            .map(Some)
            .map_err(|message| StartupError::Tls { listener, message }),
        _ => Err(StartupError::Tls {
            listener,
            message: format!("{cert_flag} and {key_flag} go together: set both or neither"),
        }),
    }
}

/// Resolves when the stop signal is given.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Opens (and migrates) the store the settings name.
pub async fn open_store(location: &DatabaseUrl) -> Result<Arc<dyn Store>, StartupError> {
    match location {
        DatabaseUrl::Postgres(url) => {
            let store = tessera_store_postgres::PgStore::connect(url.expose())
                .await
                .map_err(|e| StartupError::Postgres { url: location.to_string(), message: e.to_string() })?;
            tracing::info!(url = %location, "using PostgreSQL store");
            Ok(Arc::new(store))
        }
        DatabaseUrl::Sqlite(path) => {
            let store = tessera_store_sqlite::SqliteStore::open(path)
                .map_err(|e| StartupError::Sqlite { path: path.display().to_string(), message: e.to_string() })?;
            tracing::info!(path = %path.display(), "using SQLite store");
            Ok(Arc::new(store))
        }
    }
}

/// Marks timed-out sessions ended and purges old records until told to stop. Nothing
/// depends on it for correctness: expired sessions never authenticate either way.
async fn sweep_loop(app: Arc<App>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => match app.sweep(tessera_app::System::SWEEPER).await {
                Ok((0, 0)) => {}
                Ok((ended, purged)) => tracing::info!(ended, purged, "swept sessions"),
                Err(e) => tracing::warn!(error = %e, "session sweep failed"),
            },
            _ = stop.changed() => return,
        }
    }
}
