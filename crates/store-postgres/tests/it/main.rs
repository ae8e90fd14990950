//! The store conformance suite against PostgreSQL: each test gets a fresh database, dropped
//! when the test passes (kept for inspection when it fails). Runs when `TEST_POSTGRES_URL`
//! is set; CI always sets it.

mod contention;
mod gateway;
mod notify;
mod parity;
mod totals;

use std::sync::Arc;

use tessera_store::Store;
use tessera_store_postgres::PgStore;

struct TempDb {
    store: Arc<PgStore>,
    admin_url: String,
    name: String,
}

impl std::ops::Deref for TempDb {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept database {} for inspection", self.name);
            return;
        }
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
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

fn with_database(url: &str, name: &str) -> String {
    // Replace the path of postgres://user@host:port/db?params with the new database name.
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    if query.is_empty() { format!("{base}/{name}") } else { format!("{base}/{name}?{query}") }
}

async fn fresh() -> Option<TempDb> {
    let Some(admin_url) = std::env::var("TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
        // A case that cannot run never passes silently: SKIPPED, and a failure under CI.
        let test = std::thread::current().name().unwrap_or("a conformance case").to_owned();
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"));
        assert!(!ci, "{test} cannot run under CI: TEST_POSTGRES_URL is not set");
        println!("SKIPPED {test}: TEST_POSTGRES_URL is not set");
        eprintln!("SKIPPED {test}: TEST_POSTGRES_URL is not set");
        return None;
    };
    let name = format!("tessera_test_{:016x}", rand::random::<u64>());
    let (client, conn) =
        tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.expect("connect to TEST_POSTGRES_URL");
    tokio::spawn(conn);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    let store = PgStore::connect(&with_database(&admin_url, &name)).await.expect("open the store");
    Some(TempDb { store: Arc::new(store), admin_url, name })
}

tessera_store::store_conformance_tests!(optional fresh());
