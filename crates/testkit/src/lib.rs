//! Test support: [`spawn_app`] starts a real Tessera node on 127.0.0.1 (port 0) over a fresh
//! store, with a [`ManualClock`], through the same `Application::build` as `tessera serve`
//! (gateway, sweeper and change feed included), and returns a client already holding the
//! administrator's key. Dropping the [`TestApp`] shuts the node down.

pub mod oidc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rand::SeedableRng;
use tessera_api_types as wire;
use tessera_app::{App, BootstrapOutcome, ManualClock};
use tessera_client::Client;
use tessera_domain::Timestamp;
use tessera_startup::{Application, DatabaseUrl, Listen, Secret, Settings};
use tessera_store::Store;

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
    /// The node, wired by `Application::build` as `tessera serve` wires it.
    node: Application,
    _dir: tempfile::TempDir,
    // Declared last: dropped after the server and store let go of their connections.
    _db: Option<TempDatabase>,
}

/// A running gateway listener.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub url: String,
    pub gateway: Arc<tessera_gateway::Gateway>,
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

/// The settings every test node starts from: `tessera serve`'s defaults, with both listeners
/// on free 127.0.0.1 ports, the test administrator's key, and a sweeper that sweeps once at
/// start and then hourly (a test that wants it sooner says so, see [`spawn_app_with`]).
pub fn test_settings(database: DatabaseUrl) -> Settings {
    let mut settings = Settings::default();
    settings.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.gateway.listen = Listen(Some(SocketAddr::from(([127, 0, 0, 1], 0))));
    settings.database.url = Some(database);
    settings.bootstrap.organization = "test".into();
    settings.bootstrap.admin_email = "admin@example.com".into();
    settings.bootstrap.api_key = Some(Secret::new(ADMIN_KEY));
    settings.sessions.sweep_interval = std::time::Duration::from_secs(3_600);
    settings
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// [`spawn_app`] with the test settings changed by `configure` first.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (database, db_path, db) = match backend {
        Backend::Sqlite => {
            let path = dir.path().join("tessera.db");
            (DatabaseUrl::Sqlite(path.clone()), Some(path), None)
        }
        Backend::Postgres(admin_url) => {
            let temp = TempDatabase::create(&admin_url).await;
            (temp.url.parse().expect("a PostgreSQL URL"), None, Some(temp))
        }
    };
    let mut settings = test_settings(database);
    configure(&mut settings);
    let clock = ManualClock::new(T0);
    let node = build(settings, &clock).await;
    let admin_id = match node.bootstrap() {
        BootstrapOutcome::Created { admin, .. } => admin.to_string(),
        BootstrapOutcome::AlreadyInitialized => panic!("fresh store was already initialized"),
    };
    TestApp::new(node, admin_id, clock, db_path, dir, db)
}

async fn build(settings: Settings, clock: &ManualClock) -> Application {
    let rng = Box::new(rand::rngs::StdRng::from_entropy());
    Application::build_with(settings, Arc::new(clock.clone()), rng).await.expect("the test node starts")
}

impl TestApp {
    fn new(
        node: Application,
        admin_id: String,
        clock: ManualClock,
        db_path: Option<PathBuf>,
        dir: tempfile::TempDir,
        db: Option<TempDatabase>,
    ) -> TestApp {
        let addr = node.api_addr();
        let url = format!("http://{addr}");
        TestApp {
            addr,
            admin: Client::new(url.clone(), Some(ADMIN_KEY.into())),
            url,
            admin_id,
            clock,
            app: Arc::clone(node.app()),
            db_path,
            node,
            _dir: dir,
            _db: db,
        }
    }

    /// Another node on the same PostgreSQL database, sharing this node's clock: what a load
    /// balancer in front of several Tessera processes looks like, in one test.
    pub async fn another_node(&self) -> TestApp {
        let url = self._db.as_ref().expect("another_node needs the PostgreSQL backend").url.parse().expect("a URL");
        let node = build(test_settings(url), &self.clock).await;
        let dir = tempfile::tempdir().expect("temp dir");
        TestApp::new(node, self.admin_id.clone(), self.clock.clone(), None, dir, None)
    }

    /// Where the node serves `GET /metrics`; None unless the settings turned it on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.node.metrics_addr()
    }

    /// The store the node opened, for tests that look beneath the API.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.node.store()
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

    /// A connection to this node's own PostgreSQL database, for tests that change it behind
    /// the server's back (None on SQLite).
    pub async fn postgres_database(&self) -> Option<tokio_postgres::Client> {
        let db = self._db.as_ref()?;
        let (client, conn) =
            tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.expect("connect to the test database");
        tokio::spawn(conn);
        Some(client)
    }

    /// Stops applying the store's change feed (as if this node missed every notice).
    pub fn stop_following_changes(&mut self) {
        self.node.stop_following_changes();
    }

    /// The session gateway of this node, on its own 127.0.0.1 port, following configuration
    /// changes as `tessera serve` does (it is the very listener `tessera serve` runs).
    pub async fn spawn_gateway(&self) -> TestGateway {
        let addr = self.node.gateway_addr().expect("the test settings turn the gateway on");
        let gateway = Arc::clone(self.node.gateway().expect("the test settings turn the gateway on"));
        TestGateway { addr, url: format!("http://{addr}"), gateway }
    }

    /// A client with no credentials.
    pub fn anonymous(&self) -> Client {
        Client::new(self.url.clone(), None)
    }

    pub fn client(&self, token: &str) -> Client {
        Client::new(self.url.clone(), Some(token.into()))
    }

    /// Stops the server and waits for in-flight requests to finish.
    pub async fn shutdown(self) {
        self.node.shutdown_handle().shutdown();
        let _ = self.node.run_until_stopped().await;
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

/// A policy document allowing the given actions on every resource.
pub fn allow(actions: &[&str]) -> serde_json::Value {
    serde_json::json!({"Version": "2026-03-20", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]})
}

/// [`allow`]`(actions)` padded with actions nobody checks (`pad.xxx…`) to exactly `len`
/// characters of compact JSON, the size the policy bounds measure.
pub fn allow_of_packed_size(actions: &[&str], len: usize) -> serde_json::Value {
    let mut doc = allow(actions);
    let room = len - doc.to_string().len();
    // Each padding action costs its length, two quotes and a comma; at most 200 characters.
    let count = room.div_ceil(203);
    let padding = (0..count).map(|i| {
        let cost = room / count + usize::from(i < room % count);
        serde_json::Value::String(format!("pad.{}", "x".repeat(cost - 7)))
    });
    doc["Statement"][0]["Action"].as_array_mut().expect("a list of actions").extend(padding);
    assert_eq!(doc.to_string().len(), len, "{doc}");
    doc
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    const PASSWORD: &str = "correct horse battery staple";

    /// The node runs `tessera serve`'s sweeper: once time alone has carried an ended login
    /// session past the retention, it vanishes from the session query. (The query marks
    /// timed-out sessions ended by itself, but only the sweeper purges.)
    #[tokio::test]
    async fn the_sweeper_runs_and_purges_what_time_has_ended() {
        let t = spawn_app_with(Backend::Sqlite, |s| {
            s.sessions.retention_days = 1;
            s.sessions.sweep_interval = Duration::from_millis(20);
        })
        .await;
        let email = "swept@example.com";
        let user = wire::UserCreate { email: email.into(), password: Some(PASSWORD.into()), ..Default::default() };
        t.admin.create_user(&user).await.expect("create user");
        let sign_in = wire::SignInRequest { email: email.into(), password: PASSWORD.into(), organization_id: None };
        t.anonymous().sign_in(&sign_in).await.expect("sign in");
        let logins = || async { t.admin.query_sessions(&[("$filter", "kind eq 'login'")]).await.expect("query").count };
        assert_eq!(logins().await, Some(1));

        t.clock.advance(400 * 86_400);
        let deadline = Instant::now() + Duration::from_secs(15);
        while logins().await != Some(0) {
            assert!(Instant::now() < deadline, "the sweeper never purged the ended session");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
