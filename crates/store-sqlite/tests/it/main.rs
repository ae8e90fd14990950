//! The store conformance suite against SQLite, one fresh database file per test.

use std::sync::Arc;

use tessera_store::Store;
use tessera_store_sqlite::SqliteStore;

struct TempStore {
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TempStore {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

async fn fresh() -> TempStore {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("tessera.db")).unwrap());
    TempStore { store, _dir: dir }
}

tessera_store::store_conformance_tests!(fresh());
