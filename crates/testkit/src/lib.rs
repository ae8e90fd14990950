//! Test support: [`spawn_app`] starts a real Tessera API server on 127.0.0.1 (port 0) over a
//! fresh store, with a [`ManualClock`], and returns a client already holding the
//! administrator's key. Dropping the [`TestApp`] shuts the server down.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rand::SeedableRng;
use tessera_api_types as wire;
use tessera_app::{App, BootstrapOutcome, BootstrapRequest, ManualClock};
use tessera_client::Client;
use tessera_domain::Timestamp;
use tessera_store::Store;
use tessera_store_sqlite::SqliteStore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which store a test runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// A server URL (`TEST_POSTGRES_URL`); each app gets a fresh database on it.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL when `TEST_POSTGRES_URL` is set; otherwise None, after the current test (named
    /// by its thread, as the test harness names it) printed `SKIPPED` — or failed, under CI.
    pub fn postgres() -> Option<Backend> {
        let thread = std::thread::current();
        Backend::postgres_or_skip(thread.name().unwrap_or("a PostgreSQL test"))
    }

    /// PostgreSQL for the test named `test`, or None after printing `SKIPPED` when
    /// `TEST_POSTGRES_URL` is unset. Under CI (`CI` set) a missing database is a failure, not
    /// a skip: a test that cannot run must never look like one that passed.
    pub fn postgres_or_skip(test: &str) -> Option<Backend> {
        if let Some(url) = std::env::var("TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) {
            return Some(Backend::Postgres(url));
        }
        skip_unless_ci(test, "TEST_POSTGRES_URL is not set");
        None
    }
}

/// True when running under CI: `CI` is set to anything but empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Reports that `test` cannot run for `reason`: a panic under CI, a visible `SKIPPED` line
/// otherwise (printed to both streams, so neither `--nocapture` nor a captured run hides it).
pub fn skip_unless_ci(test: &str, reason: &str) {
    if in_ci() {
        panic!("{test} cannot run under CI: {reason}");
    }
    println!("SKIPPED {test}: {reason}");
    eprintln!("SKIPPED {test}: {reason}");
}

/// Runs each named `async fn(Backend)` test once per backend: `sqlite::name` always and
/// `postgres::name` when `TEST_POSTGRES_URL` is set (CI always sets it; without it the
/// PostgreSQL half fails under CI and prints `SKIPPED` elsewhere). The module names are the
/// convention `cargo xtask ci` counts tests per backend by.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        $crate::postgres_only!($($name),*);
    };
}

/// Runs each named `async fn(Backend)` test on PostgreSQL only, as `postgres::name`, with the
/// same rule as [`both_backends!`] when `TEST_POSTGRES_URL` is unset.
#[macro_export]
macro_rules! postgres_only {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let test = concat!(module_path!(), "::", stringify!($name));
                    if let Some(b) = $crate::Backend::postgres_or_skip(test) {
                        super::$name(b).await
                    }
                }
            )*
        }
    };
}

/// A database created for one test on a PostgreSQL server, dropped with the test app unless
/// the test failed (then it is kept for inspection).
pub struct TempDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TempDatabase {
    pub async fn create(admin_url: &str) -> TempDatabase {
        let name = format!("tessera_e2e_{:016x}", rand::random::<u64>());
        let (client, conn) =
            tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await.expect("connect to TEST_POSTGRES_URL");
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
        let (base, query) = admin_url.split_once('?').map_or((admin_url, ""), |(b, q)| (b, q));
        let base = match base.rfind('/') {
            Some(i) if i > "postgres://".len() => &base[..i],
            _ => base,
        };
        let url = if query.is_empty() { format!("{base}/{name}") } else { format!("{base}/{name}?{query}") };
        TempDatabase { url, admin_url: admin_url.to_owned(), name }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept database {} for inspection", self.name);
            return;
        }
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            })
        })
        .join();
    }
}

/// 2030-01-01T10:00:00Z: a fixed, mid-morning UTC start for every test clock.
pub const T0: Timestamp = Timestamp(1_893_492_000);

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef0123456789";

pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    /// A client acting as the bootstrap administrator.
    pub admin: Client,
    pub admin_id: String,
    pub clock: ManualClock,
    pub app: Arc<App>,
    /// The SQLite file, for tests that inspect what is stored.
    pub db_path: Option<PathBuf>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
    follower: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
    // Declared last: dropped after the server and store let go of their connections.
    _db: Option<TempDatabase>,
}

/// A running gateway listener.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub url: String,
    pub gateway: Arc<tessera_gateway::Gateway>,
    task: JoinHandle<()>,
    reloader: JoinHandle<()>,
}

impl TestGateway {
    /// Waits until the gateway's table has `routes` routes (configuration changes apply
    /// asynchronously, as they do across nodes), within one generous deadline: a loaded
    /// machine is slow, not broken. The poll reads an in-memory count, so it costs nothing.
    pub async fn wait_for_routes(&self, routes: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while self.gateway.route_count() != routes {
            assert!(
                std::time::Instant::now() < deadline,
                "the gateway never reached {routes} routes (has {})",
                self.gateway.route_count()
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.task.abort();
        self.reloader.abort();
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut db = None;
    let (store, db_path): (Arc<dyn Store>, Option<PathBuf>) = match backend {
        Backend::Sqlite => {
            let path = dir.path().join("tessera.db");
            (Arc::new(SqliteStore::open(&path).expect("open sqlite")), Some(path))
        }
        Backend::Postgres(admin_url) => {
            let temp = TempDatabase::create(&admin_url).await;
            let store = tessera_store_postgres::PgStore::connect(&temp.url).await.expect("open postgres");
            db = Some(temp);
            (Arc::new(store), None)
        }
    };
    let clock = ManualClock::new(T0);
    let rng = Box::new(rand::rngs::StdRng::from_entropy());
    let app = Arc::new(App::new(store, Arc::new(clock.clone()), rng));
    let outcome = app
        .bootstrap(BootstrapRequest {
            organization_name: "test".into(),
            admin_email: "admin@example.com".into(),
            api_key: Some(ADMIN_KEY.into()),
        })
        .await
        .expect("bootstrap");
    let admin_id = match outcome {
        BootstrapOutcome::Created { admin, .. } => admin.to_string(),
        BootstrapOutcome::AlreadyInitialized => panic!("fresh store was already initialized"),
    };
    let follower = app.follow_store_changes();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let server_app = Arc::clone(&app);
    let handle = tokio::spawn(async move {
        tessera_server::serve(listener, server_app, tessera_server::ServerConfig::default(), async {
            let _ = rx.await;
        })
        .await
        .expect("server");
    });
    let url = format!("http://{addr}");
    let admin = Client::new(url.clone(), Some(ADMIN_KEY.into()));
    TestApp {
        addr,
        url,
        admin,
        admin_id,
        clock,
        app,
        db_path,
        shutdown: Some(tx),
        handle: Some(handle),
        follower,
        _dir: dir,
        _db: db,
    }
}

impl TestApp {
    /// Another node on the same PostgreSQL database, sharing this node's clock: what a load
    /// balancer in front of several Tessera processes looks like, in one test.
    pub async fn another_node(&self) -> TestApp {
        let url = self._db.as_ref().expect("another_node needs the PostgreSQL backend").url.clone();
        let store: Arc<dyn Store> =
            Arc::new(tessera_store_postgres::PgStore::connect(&url).await.expect("open postgres"));
        let rng = Box::new(rand::rngs::StdRng::from_entropy());
        let app = Arc::new(App::new(store, Arc::new(self.clock.clone()), rng));
        let follower = app.follow_store_changes();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let server_app = Arc::clone(&app);
        let handle = tokio::spawn(async move {
            let _ = tessera_server::serve(listener, server_app, tessera_server::ServerConfig::default(), async {
                let _ = rx.await;
            })
            .await;
        });
        let url = format!("http://{addr}");
        TestApp {
            addr,
            admin: Client::new(url.clone(), Some(ADMIN_KEY.into())),
            url,
            admin_id: self.admin_id.clone(),
            clock: self.clock.clone(),
            app,
            db_path: None,
            shutdown: Some(tx),
            handle: Some(handle),
            follower,
            _dir: tempfile::tempdir().expect("temp dir"),
            _db: None,
        }
    }

    /// A superuser connection to the PostgreSQL server this app's database lives on, and the
    /// database's name: to act as an operator (or an outage) on the real server. None for
    /// SQLite, and for nodes made by [`TestApp::another_node`] (ask the first node).
    pub async fn postgres_server(&self) -> Option<(tokio_postgres::Client, String)> {
        let db = self._db.as_ref()?;
        let (client, conn) =
            tokio_postgres::connect(&db.admin_url, tokio_postgres::NoTls).await.expect("connect to TEST_POSTGRES_URL");
        tokio::spawn(conn);
        Some((client, db.name.clone()))
    }

    /// Stops applying the store's change feed (as if this node missed every notice).
    pub fn stop_following_changes(&mut self) {
        if let Some(f) = self.follower.take() {
            f.abort();
        }
    }

    /// Starts the session gateway over this node's app on a free 127.0.0.1 port, following
    /// configuration changes as `tessera serve` does.
    pub async fn spawn_gateway(&self) -> TestGateway {
        let gw = tessera_gateway::Gateway::new(Arc::clone(&self.app)).await.expect("gateway loads");
        let reloader = gw.follow_changes();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        // The gateway's own listener (its limits and JSON answers), as `tessera serve` runs it.
        let served = Arc::clone(&gw);
        let task = tokio::spawn(async move {
            let _ = tessera_gateway::serve(served, listener, std::future::pending()).await;
        });
        TestGateway { addr, url: format!("http://{addr}"), gateway: gw, task, reloader }
    }

    /// A client with no credentials.
    pub fn anonymous(&self) -> Client {
        Client::new(self.url.clone(), None)
    }

    pub fn client(&self, token: &str) -> Client {
        Client::new(self.url.clone(), Some(token.into()))
    }

    /// Stops the server and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }

    /// Creates a user with an API key and the given policy document attached (if any).
    /// Returns the user and a client acting as that user.
    pub async fn user_with_policy(&self, email: &str, document: Option<serde_json::Value>) -> (wire::UserView, Client) {
        let user = self
            .admin
            .create_user(&wire::UserCreate {
                email: email.into(),
                first_name: "Test".into(),
                last_name: "User".into(),
                password: None,
            })
            .await
            .expect("create user");
        if let Some(doc) = document {
            let policy = self
                .admin
                .create_policy(&wire::PolicyInput {
                    name: format!("policy-for-{email}"),
                    description: String::new(),
                    policy_document: doc,
                })
                .await
                .expect("create policy");
            self.admin.attach_policy_to_user(&policy.id, &user.id).await.expect("attach");
        }
        let key = self
            .admin
            .create_api_key(&user.id, &wire::ApiKeyCreate { name: "test".into(), date_expire: None })
            .await
            .expect("api key");
        let client = self.client(key.api_key.as_deref().expect("secret shown on create"));
        (user, client)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.abort();
        }
        if let Some(f) = self.follower.take() {
            f.abort();
        }
    }
}

/// A policy document allowing the given actions on every resource.
pub fn allow(actions: &[&str]) -> serde_json::Value {
    serde_json::json!({"Version": "2026-03-20", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]})
}
