//! Every change a cache on another node must see sends its `NOTIFY` inside its own
//! transaction: the notice goes out when, and only when, the change commits. When the notice
//! cannot be sent, the change is undone and the caller told, never saved behind an error.

use rand::SeedableRng;
use rand::rngs::StdRng;
use tessera_domain::Timestamp;
use tessera_domain::ids::{OrgId, RoleId, TrustId, UserId};
use tessera_domain::role::{MaxSessionDuration, Role, RoleType};
use tessera_domain::trust::{RoleTrust, TrustConditions, TrustPrincipal};
use tessera_domain::user::{Email, Organization, User, UserStatus};
use tessera_store::{IamStore, StoreBackend, StoreChange};
use tessera_store_postgres::PgStore;
use tokio_postgres::NoTls;

const T0: Timestamp = Timestamp(1_800_000_000);

struct Facts {
    org: OrgId,
    user: User,
    role: Role,
    trust: RoleTrust,
}

async fn seed(store: &PgStore) -> Facts {
    let mut rng = StdRng::seed_from_u64(7);
    let org = OrgId::generate(&mut rng);
    store.create_organization(&Organization { id: org, name: "o".into(), date_created: T0 }).await.unwrap();
    let user = User {
        id: UserId::generate(&mut rng),
        org_id: org,
        email: Email::parse("ann@example.com").unwrap(),
        first_name: "Ann".into(),
        last_name: "A".into(),
        status: UserStatus::Active,
        date_created: T0,
    };
    store.create_user(&user, None).await.unwrap();
    let role = Role {
        id: RoleId::generate(&mut rng),
        org_id: org,
        name: "deployer".into(),
        description: "d".into(),
        role_type: RoleType::Assumable,
        max_session_duration: MaxSessionDuration::new(3_600).unwrap(),
        date_created: T0,
    };
    store.create_role(&role).await.unwrap();
    let trust = RoleTrust {
        id: TrustId::generate(&mut rng),
        org_id: org,
        role_id: role.id,
        trust_type: "TemporaryAssumption".into(),
        principal: TrustPrincipal::User(user.id),
        conditions: TrustConditions::default(),
        valid_until: None,
        date_created: T0,
    };
    Facts { org, user, role, trust }
}

/// The next change the feed reports, within a generous deadline; the feed's own comings and
/// goings and the readiness probes ([`listening`]) are passed over.
async fn next_change(feed: &mut tokio::sync::broadcast::Receiver<StoreChange>) -> StoreChange {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let change = tokio::time::timeout_at(deadline, feed.recv())
            .await
            .expect("a change notice within the deadline")
            .expect("the feed is open");
        if !matches!(change, StoreChange::FeedLost | StoreChange::FeedRestored | StoreChange::Gateway) {
            return change;
        }
    }
}

/// Waits until the store's feed is listening: a notice sent before its `LISTEN` is never
/// delivered, so probe (a gateway notice) until one arrives.
async fn listening(url: &str, feed: &mut tokio::sync::broadcast::Receiver<StoreChange>) {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    for _ in 0..60 {
        c.execute("SELECT pg_notify('tessera_changes', 'g')", &[]).await.unwrap();
        let probe = tokio::time::timeout(std::time::Duration::from_millis(500), async {
            while !matches!(feed.recv().await, Ok(StoreChange::Gateway)) {}
        });
        if probe.await.is_ok() {
            return;
        }
    }
    panic!("the change feed never started listening");
}

#[tokio::test]
async fn role_and_trust_changes_reach_the_feed() {
    let Some(db) = crate::fresh().await else { return };
    let f = seed(&db.store).await;
    let mut feed = db.store.changes().unwrap();
    listening(&crate::with_database(&db.admin_url, &db.name), &mut feed).await;
    let mut role = f.role.clone();
    role.description = "changed".into();
    assert!(db.store.update_role(&role).await.unwrap());
    assert_eq!(next_change(&mut feed).await, StoreChange::Permissions, "update_role");
    db.store.create_trust(&f.trust).await.unwrap();
    assert_eq!(next_change(&mut feed).await, StoreChange::Permissions, "create_trust");
    let trust = RoleTrust { trust_type: "Other".into(), ..f.trust.clone() };
    assert!(db.store.update_trust(&trust).await.unwrap());
    assert_eq!(next_change(&mut feed).await, StoreChange::Permissions, "update_trust");
    assert!(db.store.delete_trust(f.org, f.trust.id).await.unwrap());
    assert_eq!(next_change(&mut feed).await, StoreChange::Permissions, "delete_trust");
}

/// A node whose `pg_notify` fails (a function of the same name earlier on its search path):
/// every cache-visible change it attempts must fail and leave nothing behind.
#[tokio::test]
async fn a_change_whose_notice_fails_is_not_saved() {
    let Some(db) = crate::fresh().await else { return };
    let f = seed(&db.store).await;
    db.store.create_trust(&f.trust).await.unwrap();
    let url = crate::with_database(&db.admin_url, &db.name);
    let (c, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    c.batch_execute(&format!(
        "CREATE FUNCTION public.pg_notify(text, text) RETURNS void LANGUAGE plpgsql \
         AS $$ BEGIN RAISE EXCEPTION 'notices are refused here'; END $$; \
         ALTER DATABASE {} SET search_path = public, pg_catalog",
        db.name
    ))
    .await
    .unwrap();
    let broken = PgStore::connect(&url).await.unwrap();

    let mut role = f.role.clone();
    role.description = "changed".into();
    assert!(broken.update_role(&role).await.is_err(), "update_role");
    assert_eq!(db.store.get_role(f.org, f.role.id).await.unwrap(), Some(f.role.clone()));

    let trust = RoleTrust { trust_type: "Other".into(), ..f.trust.clone() };
    assert!(broken.update_trust(&trust).await.is_err(), "update_trust");
    assert!(broken.delete_trust(f.org, f.trust.id).await.is_err(), "delete_trust");
    assert_eq!(db.store.get_trust(f.org, f.trust.id).await.unwrap(), Some(f.trust.clone()));

    let new_trust = RoleTrust { id: TrustId::generate(&mut StdRng::seed_from_u64(9)), ..f.trust.clone() };
    assert!(broken.create_trust(&new_trust).await.is_err(), "create_trust");
    assert_eq!(db.store.get_trust(f.org, new_trust.id).await.unwrap(), None);

    assert!(broken.delete_role(f.org, f.role.id).await.is_err(), "delete_role");
    let disabled = User { status: UserStatus::Disabled, ..f.user.clone() };
    assert!(broken.update_user(&disabled, T0).await.is_err(), "update_user");
    assert!(broken.delete_user(f.org, f.user.id, T0).await.is_err(), "delete_user");
    assert_eq!(db.store.get_user(f.org, f.user.id).await.unwrap(), Some(f.user.clone()));
    assert!(db.store.get_role(f.org, f.role.id).await.unwrap().is_some());
}
