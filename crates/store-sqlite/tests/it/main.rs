//! The store conformance suite against SQLite, one fresh database file per test.

use std::sync::Arc;

use tessera_store::{IamStore, Store};
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

/// A file migrated before the users list kept its total (migration 11) starts from its real
/// count when a newer Tessera opens it, and counts from there.
#[tokio::test]
async fn a_file_migrated_before_the_total_existed_starts_from_its_count() {
    use tessera_domain::Timestamp;
    use tessera_domain::ids::{OrgId, UserId};
    use tessera_domain::page::PageRequest;
    use tessera_domain::user::{Email, Organization, User, UserStatus};

    let id = |n: u32| format!("00000000-0000-4000-8000-{n:012}");
    let user = |n: u32, org: OrgId| User {
        id: id(n).parse::<UserId>().unwrap(),
        org_id: org,
        email: Email::parse(&format!("u{n}@example.com")).unwrap(),
        first_name: "F".into(),
        last_name: "L".into(),
        status: UserStatus::Active,
        date_created: Timestamp(0),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let (org, empty) = (id(1).parse::<OrgId>().unwrap(), id(2).parse::<OrgId>().unwrap());
    let store = SqliteStore::open(&path).unwrap();
    for o in [org, empty] {
        store.create_organization(&Organization { id: o, name: "o".into(), date_created: Timestamp(0) }).await.unwrap();
    }
    for n in 10..17 {
        store.create_user(&user(n, org), None).await.unwrap();
    }
    store.shutdown();
    drop(store);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TRIGGER users_total_insert; DROP TRIGGER users_total_delete; DROP TABLE list_totals; \
             DROP INDEX users_by_org; PRAGMA user_version = 10;",
        )
        .unwrap();
    let store = SqliteStore::open(&path).expect("migrates again");
    assert_eq!(store.list_users(org, PageRequest::first(2)).await.unwrap().total, 7);
    assert_eq!(store.list_users(empty, PageRequest::first(2)).await.unwrap().total, 0);
    store.create_user(&user(20, org), None).await.unwrap();
    store.create_user(&user(21, empty), None).await.unwrap();
    assert!(store.delete_user(org, user(10, org).id, Timestamp(0)).await.unwrap());
    assert_eq!(store.list_users(org, PageRequest::first(2)).await.unwrap().total, 7);
    assert_eq!(store.list_users(empty, PageRequest::first(2)).await.unwrap().total, 1);
}
