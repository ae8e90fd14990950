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
            "DROP TABLE gateway_refs; DROP INDEX gateway_objects_scope_key_unique; ALTER TABLE gateway_objects DROP COLUMN scope_key; \
             DROP TRIGGER users_total_insert; DROP TRIGGER users_total_delete; DROP TABLE list_totals; \
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

/// A file migrated before session plugins had a unique scope (migration 12): the oldest
/// session plugin of each scope gets its key (a race may have left a second one, which stays
/// keyless: the gateway applies the oldest), other plugins get none, and from then on a
/// second session plugin in a held scope is refused.
#[tokio::test]
async fn a_file_migrated_before_plugin_scopes_keys_the_oldest_session_plugin_of_each_scope() {
    use tessera_domain::Timestamp;
    use tessera_domain::gateway::GatewayKind;
    use tessera_domain::ids::OrgId;
    use tessera_domain::user::Organization;
    use tessera_store::{Conflict, GatewayObject, GatewayStore, StoreError};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let org: OrgId = "00000000-0000-4000-8000-000000000001".parse().unwrap();
    let plugin = |n: u128, body: &str| GatewayObject {
        org_id: org,
        kind: GatewayKind::Plugin,
        id: uuid::Uuid::from_u128(n),
        name: None,
        scope_key: None,
        refs: vec![],
        body: body.into(),
        created: Timestamp(n as i64),
        updated: Timestamp(n as i64),
    };
    let store = SqliteStore::open(&path).unwrap();
    store.create_organization(&Organization { id: org, name: "o".into(), date_created: Timestamp(0) }).await.unwrap();
    let bodies = [
        r#"{"name":"session"}"#,
        r#"{"name":"session","route":{"id":"r1"}}"#,
        r#"{"name":"session"}"#,
        r#"{"name":"cors"}"#,
        r#"{"name":"session","route":{"id":"r1"},"service":null}"#,
    ];
    for (n, body) in bodies.iter().enumerate() {
        assert!(store.put_gateway_object(&plugin(n as u128 + 1, body), true).await.unwrap());
    }
    store.shutdown();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE gateway_refs; DROP INDEX gateway_objects_scope_key_unique; ALTER TABLE gateway_objects DROP COLUMN scope_key; \
         PRAGMA user_version = 11;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).expect("migrates again");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut keys = conn.prepare("SELECT scope_key FROM gateway_objects ORDER BY seq").unwrap();
    let keys: Vec<Option<String>> = keys.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(
        keys,
        [Some("session route=* service=*".to_owned()), Some("session route=r1 service=*".to_owned()), None, None, None,]
    );
    let mut another = plugin(9, r#"{"name":"session"}"#);
    another.scope_key = Some("session route=* service=*".into());
    assert_eq!(
        store.put_gateway_object(&another, true).await,
        Err(StoreError::Conflict(Conflict::GatewayScope {
            kind: GatewayKind::Plugin,
            scope: "session route=* service=*".into()
        }))
    );
}

/// A file from before gateway references (migration 13) keeps its objects, and from then on
/// a CA certificate a service names cannot be deleted.
#[tokio::test]
async fn a_file_migrated_before_gateway_refs_gains_them() {
    use tessera_domain::Timestamp;
    use tessera_domain::gateway::GatewayKind;
    use tessera_domain::ids::OrgId;
    use tessera_domain::user::Organization;
    use tessera_store::{Conflict, GatewayObject, GatewayStore, StoreError};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let org: OrgId = "00000000-0000-4000-8000-000000000001".parse().unwrap();
    let object = |n: u128, kind: GatewayKind| GatewayObject {
        org_id: org,
        kind,
        id: uuid::Uuid::from_u128(n),
        name: Some(format!("o{n}")),
        scope_key: None,
        refs: vec![],
        body: "{}".into(),
        created: Timestamp(n as i64),
        updated: Timestamp(n as i64),
    };
    let store = SqliteStore::open(&path).unwrap();
    store.create_organization(&Organization { id: org, name: "o".into(), date_created: Timestamp(0) }).await.unwrap();
    assert!(store.put_gateway_object(&object(1, GatewayKind::CaCertificate), true).await.unwrap());
    assert!(store.put_gateway_object(&object(2, GatewayKind::Service), true).await.unwrap());
    store.shutdown();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE gateway_refs; PRAGMA user_version = 12;").unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).expect("migrates again");
    assert_eq!(
        store.list_gateway_objects(Some(org), GatewayKind::Service).await.unwrap(),
        [object(2, GatewayKind::Service)]
    );
    let mut service = object(2, GatewayKind::Service);
    service.refs = vec![uuid::Uuid::from_u128(1)];
    assert!(store.put_gateway_object(&service, false).await.unwrap());
    assert_eq!(
        store.delete_gateway_object(org, GatewayKind::CaCertificate, uuid::Uuid::from_u128(1)).await,
        Err(StoreError::Conflict(Conflict::GatewayInUse {
            kind: GatewayKind::CaCertificate,
            id: uuid::Uuid::from_u128(1)
        }))
    );
}

/// A file from before routes and plugins kept their references (migration 14) gains them
/// from the stored bodies: a route's service, a plugin's route and service. A reference whose
/// object is gone (an old race), is of another kind or in another organization is skipped and
/// the object that holds it is kept as it was; from then on the database keeps the rest.
#[tokio::test]
async fn a_file_migrated_before_route_and_plugin_refs_gains_them_from_the_bodies() {
    use tessera_domain::Timestamp;
    use tessera_domain::gateway::GatewayKind::{self, *};
    use tessera_domain::ids::OrgId;
    use tessera_domain::user::Organization;
    use tessera_store::{Conflict, GatewayObject, GatewayStore, StoreError};
    use uuid::Uuid;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let (org, other): (OrgId, OrgId) = (
        "00000000-0000-4000-8000-000000000001".parse().unwrap(),
        "00000000-0000-4000-8000-000000000002".parse().unwrap(),
    );
    let id = Uuid::from_u128;
    let object = |org: OrgId, n: u128, kind: GatewayKind, body: String| GatewayObject {
        org_id: org,
        kind,
        id: id(n),
        name: (kind != Plugin).then(|| format!("o{n}")),
        scope_key: None,
        refs: vec![],
        body,
        created: Timestamp(n as i64),
        updated: Timestamp(n as i64),
    };
    let by_id = |field: &str, n: u128| format!(r#""{field}":{{"id":"{}"}}"#, id(n));
    let store = SqliteStore::open(&path).unwrap();
    for o in [org, other] {
        store.create_organization(&Organization { id: o, name: "o".into(), date_created: Timestamp(0) }).await.unwrap();
    }
    let mut service = object(org, 2, Service, "{}".into());
    let objects = [
        object(org, 1, CaCertificate, "{}".into()),
        object(org, 3, Route, format!("{{{}}}", by_id("service", 2))),
        object(org, 4, Plugin, format!("{{{},{}}}", by_id("route", 3), by_id("service", 2))),
        object(org, 5, Plugin, format!("{{{}}}", by_id("service", 2))),
        // Dangling, left by races: a service and a route that are gone.
        object(org, 6, Route, format!("{{{}}}", by_id("service", 99))),
        object(org, 7, Plugin, format!("{{{},{}}}", by_id("route", 98), by_id("service", 2))),
        // Of the wrong kind, and in another organization.
        object(org, 8, Route, format!("{{{}}}", by_id("service", 3))),
        object(other, 9, Route, format!("{{{}}}", by_id("service", 2))),
        object(org, 10, Route, r#"{"service":null}"#.into()),
    ];
    for o in &objects {
        assert!(store.put_gateway_object(o, true).await.unwrap(), "{o:?}");
    }
    service.refs = vec![id(1)];
    assert!(store.put_gateway_object(&service, true).await.unwrap());
    store.shutdown();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 13;").unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).expect("migrates again");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut refs = conn.prepare("SELECT from_id, to_id FROM gateway_refs ORDER BY from_id, to_id").unwrap();
    let refs: Vec<(String, String)> =
        refs.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    let pair = |from: u128, to: u128| (id(from).to_string(), id(to).to_string());
    assert_eq!(refs, [pair(2, 1), pair(3, 2), pair(4, 2), pair(4, 3), pair(5, 2), pair(7, 2)]);
    // Every object is kept as it was, the dangling ones too.
    for o in &objects {
        let found = store.get_gateway_object(o.org_id, o.kind, o.id).await.unwrap().expect("kept");
        assert_eq!(found.body, o.body);
    }
    // From now on: the route keeps its service; deleting the route takes its plugin (and not
    // the one on the service); writing a dangling route again is refused; deleting it works.
    assert_eq!(
        store.delete_gateway_object(org, Service, id(2)).await,
        Err(StoreError::Conflict(Conflict::GatewayInUse { kind: Service, id: id(2) }))
    );
    assert!(store.delete_gateway_object(org, Route, id(3)).await.unwrap());
    assert!(store.get_gateway_object(org, Plugin, id(4)).await.unwrap().is_none());
    assert!(store.get_gateway_object(org, Plugin, id(5)).await.unwrap().is_some());
    let mut dangling = objects.iter().find(|o| o.id == id(6)).unwrap().clone();
    dangling.refs = vec![id(99)];
    assert_eq!(
        store.put_gateway_object(&dangling, false).await,
        Err(StoreError::NotFound(tessera_store::Entity::Referenced))
    );
    assert!(store.delete_gateway_object(org, Route, id(6)).await.unwrap());
}
