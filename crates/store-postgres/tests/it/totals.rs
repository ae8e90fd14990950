//! The users list's total (`list_totals`, kept by triggers) stays exact when several nodes
//! write one organization's users at once, and a database migrated before the total existed
//! starts from its real count.

use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tessera_domain::Timestamp;
use tessera_domain::ids::{OrgId, UserId};
use tessera_domain::page::PageRequest;
use tessera_domain::user::{Email, Organization, User, UserStatus};
use tessera_store::IamStore;
use tessera_store_postgres::PgStore;
use tokio_postgres::NoTls;

const T0: Timestamp = Timestamp(1_800_000_000);

fn user(rng: &mut StdRng, org: OrgId, email: &str) -> User {
    User {
        id: UserId::generate(rng),
        org_id: org,
        email: Email::parse(email).unwrap(),
        first_name: "F".into(),
        last_name: "L".into(),
        status: UserStatus::Active,
        date_created: T0,
    }
}

async fn organization(store: &PgStore, rng: &mut StdRng) -> OrgId {
    let org = OrgId::generate(rng);
    store.create_organization(&Organization { id: org, name: "o".into(), date_created: T0 }).await.unwrap();
    org
}

async fn counted(url: &str, org: OrgId) -> i64 {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    c.query_one("SELECT count(*) FROM users WHERE org_id = $1", &[&org.to_string()]).await.unwrap().get(0)
}

#[tokio::test]
async fn nodes_creating_and_deleting_users_at_once_keep_the_total_exact() {
    let Some(db) = crate::fresh().await else { return };
    let url = crate::with_database(&db.admin_url, &db.name);
    let mut rng = StdRng::seed_from_u64(11);
    let org = organization(&db.store, &mut rng).await;
    let doomed: Vec<User> = (0..20).map(|i| user(&mut rng, org, &format!("doomed{i}@example.com"))).collect();
    for u in &doomed {
        db.store.create_user(u, None).await.unwrap();
    }
    // Four nodes, each with its own pool: 4 × 40 creates and the 20 deletes, all at once.
    let mut nodes = vec![Arc::clone(&db.store)];
    for _ in 0..3 {
        nodes.push(Arc::new(PgStore::connect(&url).await.unwrap()));
    }
    let mut writes = tokio::task::JoinSet::new();
    for (n, node) in nodes.iter().enumerate() {
        for i in 0..40 {
            let (node, u) = (Arc::clone(node), user(&mut rng, org, &format!("n{n}u{i}@example.com")));
            writes.spawn(async move { node.create_user(&u, None).await.map(|()| true) });
        }
    }
    for (i, u) in doomed.iter().enumerate() {
        let (node, id) = (Arc::clone(&nodes[i % nodes.len()]), u.id);
        writes.spawn(async move { node.delete_user(org, id, T0).await });
    }
    while let Some(w) = writes.join_next().await {
        assert_eq!(w.unwrap(), Ok(true));
    }
    for node in &nodes {
        assert_eq!(node.list_users(org, PageRequest::first(10)).await.unwrap().total, 160);
    }
    assert_eq!(counted(&url, org).await, 160);
}

#[tokio::test]
async fn a_database_migrated_before_the_total_existed_starts_from_its_count() {
    let Some(db) = crate::fresh().await else { return };
    let url = crate::with_database(&db.admin_url, &db.name);
    let mut rng = StdRng::seed_from_u64(12);
    let (org, empty) = (organization(&db.store, &mut rng).await, organization(&db.store, &mut rng).await);
    for i in 0..7 {
        db.store.create_user(&user(&mut rng, org, &format!("u{i}@example.com")), None).await.unwrap();
    }
    let (c, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    // Undo migrations 12 and 11 (the users it counted stay), as a database from before it was.
    c.batch_execute(
        "DROP TABLE gateway_refs; DROP INDEX gateway_objects_scope_key_unique; ALTER TABLE gateway_objects DROP COLUMN scope_key; \
         DROP TRIGGER users_total_insert ON users; DROP TRIGGER users_total_delete ON users; \
         DROP FUNCTION tessera_list_total(); DROP TABLE list_totals; DROP INDEX users_by_org; \
         UPDATE tessera_schema_version SET version = 10",
    )
    .await
    .unwrap();
    let reopened = PgStore::connect(&url).await.expect("migrates again");
    assert_eq!(reopened.list_users(org, PageRequest::first(2)).await.unwrap().total, 7);
    assert_eq!(reopened.list_users(empty, PageRequest::first(2)).await.unwrap().total, 0);
    reopened.create_user(&user(&mut rng, org, "late@example.com"), None).await.unwrap();
    reopened.create_user(&user(&mut rng, empty, "first@example.com"), None).await.unwrap();
    assert_eq!(reopened.list_users(org, PageRequest::first(2)).await.unwrap().total, 8);
    assert_eq!(reopened.list_users(empty, PageRequest::first(2)).await.unwrap().total, 1);
}
