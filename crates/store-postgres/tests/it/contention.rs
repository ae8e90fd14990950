//! Writes that collide with concurrent ones (PostgreSQL's deadlocks, 40P01, and serialization
//! failures, 40001): the store re-runs the whole transaction a bounded number of times, and
//! one that still collides is `Contended` with nothing of it saved.

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tessera_domain::Timestamp;
use tessera_domain::audit::{ActorKind, AuditEvent, AuditResult};
use tessera_domain::gateway::GatewayKind::*;
use tessera_domain::ids::{GroupId, OrgId, SessionId, UserId};
use tessera_domain::session::{Principal, Session, SessionKind, SessionStatus};
use tessera_domain::token::{TokenDigest, TokenKind, mint};
use tessera_domain::user::{Email, Group, User, UserStatus};
use tessera_store::{Conflict, GatewayObject, GatewayStore, IamStore, SessionStore, StoreBackend, StoreError};
use tessera_store_postgres::PgStore;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

use crate::gateway::{ORG, body, object, organization};

const T0: Timestamp = Timestamp(1_800_000_000);

/// A connection of the test's own to the test database (as an operator's `psql` would be).
async fn raw(url: &str) -> Client {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    c
}

/// Makes the first `times` statements inserting into `table` fail with SQLSTATE `code`, as a
/// deadlock or a serialization failure would; `rows` > 1 makes only statements inserting at
/// least that many rows fail (the session writer's batches). The attempts are counted by a
/// sequence, which a rolled-back transaction does not undo: [`attempts`] reads it.
async fn collide(c: &Client, table: &str, code: &str, times: i64, rows: i64) {
    c.batch_execute(&format!(
        "CREATE SEQUENCE collisions; \
         CREATE FUNCTION collide() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF (SELECT count(*) FROM inserted) >= {rows} AND nextval('collisions') <= {times} THEN \
             RAISE EXCEPTION 'made to collide' USING ERRCODE = '{code}'; \
           END IF; RETURN NULL; END $$; \
         CREATE TRIGGER collide AFTER INSERT ON {table} REFERENCING NEW TABLE AS inserted \
           FOR EACH STATEMENT EXECUTE FUNCTION collide()"
    ))
    .await
    .unwrap();
}

/// How many inserts the trigger of [`collide`] saw (failed or not).
async fn attempts(c: &Client) -> i64 {
    c.query_one("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM collisions", &[]).await.unwrap().get(0)
}

async fn count(c: &Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

fn metrics(store: &PgStore) -> String {
    let mut out = String::new();
    store.render_metrics(&mut out);
    out
}

fn event(org: OrgId, action: &str) -> AuditEvent {
    AuditEvent {
        id: Uuid::new_v4(),
        org_id: org,
        time: T0,
        actor_kind: ActorKind::ApiKey,
        actor_id: "u-1".into(),
        actor_email: "admin@example.com".into(),
        credential_id: "k-1".into(),
        action: action.into(),
        target_kind: "group".into(),
        target_id: "*".into(),
        source_ip: "192.0.2.7".into(),
        request_id: "req-1".into(),
        result: AuditResult::Success,
        reason: String::new(),
    }
}

fn group(org: OrgId, rng: &mut StdRng, name: &str) -> Group {
    Group {
        id: GroupId::generate(rng),
        org_id: org,
        display_name: name.into(),
        description: "d".into(),
        date_created: T0,
    }
}

async fn user(store: &PgStore, org: OrgId, rng: &mut StdRng) -> User {
    let u = User {
        id: UserId::generate(rng),
        org_id: org,
        email: Email::parse("ann@example.com").unwrap(),
        first_name: "Ann".into(),
        last_name: "A".into(),
        status: UserStatus::Active,
        date_created: T0,
    };
    store.create_user(&u, None).await.unwrap();
    u
}

fn session(user: &User, rng: &mut StdRng) -> (Session, TokenDigest) {
    let token = mint(TokenKind::RoleSession, rng);
    let s = Session {
        id: SessionId::generate(rng),
        org_id: user.org_id,
        handle: token.digest.handle(),
        kind: SessionKind::Login,
        principal: Principal::user(user.id, user.email.as_str()),
        role_id: None,
        role_name: String::new(),
        session_name: "s".into(),
        auth_method: "password".into(),
        duration: 3_600,
        bound_ip: None,
        source_ip: "127.0.0.1".into(),
        conditions_met: vec![],
        created: T0,
        modified: T0,
        expires: T0.plus_secs(3_600),
        idle_timeout: None,
        last_activity: T0,
        status: SessionStatus::Active,
        ended: None,
        end_reason: None,
        failed_logins: 0,
        last_login_time: None,
        last_login_client: String::new(),
        session_policy: None,
    };
    (s, token.digest)
}

/// Two nodes delete a route and its own service at once while plugins name both: each delete
/// removes the plugins naming its object, so both lock the same plugins. Every round ends in
/// a delete or the service's "still in use", never a store failure, and no deadlock happens
/// on the way (the plugins are locked in one order).
///
/// A fresh database finds the plugins naming a route and those naming its service in the same
/// order, so the two deletes cannot deadlock there by chance. A database that has lived a
/// while keeps the references in another physical order than it wrote them (space reused
/// after updates and vacuum), and its plans walk them in that order: the test builds that
/// state — nested-loop plans over the references' index, and the service's references
/// rewritten in reverse — where deleting the plugins in the order a scan meets them
/// deadlocks.
#[tokio::test]
async fn nodes_deleting_a_route_and_its_service_at_once_never_fail() {
    let Some(db) = crate::fresh().await else { return };
    let url = crate::with_database(&db.admin_url, &db.name);
    let (raw, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let a = Arc::clone(&db.store);
    let b = Arc::new(PgStore::connect(&url).await.unwrap());
    let org = organization(&a, ORG).await;
    let mut n = 1000u128;
    let mut next = || {
        n += 1;
        Uuid::from_u128(n)
    };
    // Plugins of another route: enough that the planner starts from the few references to the
    // deleted object rather than from every plugin of the organization.
    let (other_svc, other_route) = (next(), next());
    a.put_gateway_object(&object(org, other_svc, Service, &[], "{}".into()), true).await.unwrap();
    a.put_gateway_object(&object(org, other_route, Route, &[other_svc], body(None, Some(other_svc))), true)
        .await
        .unwrap();
    for _ in 0..200 {
        let p = object(org, next(), Plugin, &[other_route], body(Some(other_route), None));
        a.put_gateway_object(&p, true).await.unwrap();
    }
    raw.batch_execute("ANALYZE").await.unwrap();
    let mut services_deleted = 0;
    for round in 0..20 {
        let (svc, route) = (next(), next());
        a.put_gateway_object(&object(org, svc, Service, &[], "{}".into()), true).await.unwrap();
        a.put_gateway_object(&object(org, route, Route, &[svc], body(None, Some(svc))), true).await.unwrap();
        let plugins: Vec<GatewayObject> =
            (0..8).map(|_| object(org, next(), Plugin, &[route, svc], body(Some(route), Some(svc)))).collect();
        for p in &plugins {
            a.put_gateway_object(p, true).await.unwrap();
        }
        raw.batch_execute(&format!(
            "CREATE TEMP TABLE moved AS SELECT * FROM gateway_refs WHERE to_id = '{svc}'; \
             DELETE FROM gateway_refs WHERE to_id = '{svc}'; \
             INSERT INTO gateway_refs SELECT * FROM moved ORDER BY from_id DESC; DROP TABLE moved"
        ))
        .await
        .unwrap();
        if round == 0 {
            let plan = raw
                .query(
                    &format!(
                        "EXPLAIN DELETE FROM gateway_objects WHERE org_id = '{org}' AND kind = 'plugin' \
                         AND id IN (SELECT from_id FROM gateway_refs WHERE to_id = '{svc}')"
                    ),
                    &[],
                )
                .await
                .unwrap();
            for r in plan {
                println!("{}", r.get::<_, String>(0));
            }
        }
        let (route_deleted, service_deleted) =
            tokio::join!(a.delete_gateway_object(org, Route, route), b.delete_gateway_object(org, Service, svc));
        assert_eq!(route_deleted, Ok(true), "round {round}");
        match service_deleted {
            Ok(true) => services_deleted += 1,
            Err(StoreError::Conflict(Conflict::GatewayInUse { kind: Service, id })) if id == svc => {
                assert!(b.delete_gateway_object(org, Service, svc).await.unwrap(), "round {round}");
            }
            other => panic!("round {round}: the service's delete answered {other:?}"),
        }
        for p in &plugins {
            assert!(a.get_gateway_object(org, Plugin, p.id).await.unwrap().is_none(), "round {round}");
        }
    }
    println!("services deleted in the race: {services_deleted} of 20");
    for store in [&a, &b] {
        let mut metrics = String::new();
        tessera_store::StoreBackend::render_metrics(&**store, &mut metrics);
        assert!(!metrics.contains("kind=\"internal\""), "{metrics}");
        assert!(!metrics.contains("kind=\"contended\""), "a delete deadlocked: {metrics}");
    }
}

/// A real deadlock, set up step by step: another connection holds the user's session, the
/// store's transaction disabling the user locks the user and waits for that session, then the
/// other connection asks for the user. PostgreSQL breaks the cycle by rolling the store's
/// transaction back (the other connection waits far longer before it would look); the store
/// runs it again from `BEGIN`, which waits until the other connection commits, and succeeds.
#[tokio::test]
async fn a_transaction_chosen_as_a_deadlock_victim_runs_again_and_succeeds() {
    let Some(db) = crate::fresh().await else { return };
    let url = crate::with_database(&db.admin_url, &db.name);
    let store = &db.store;
    let mut rng = StdRng::seed_from_u64(11);
    let org = organization(store, ORG).await;
    let ann = user(store, org, &mut rng).await;
    let (sess, digest) = session(&ann, &mut rng);
    store.create_session(&sess, &digest).await.unwrap();

    let mut other = raw(&url).await;
    let tx = other.transaction().await.unwrap();
    tx.batch_execute("SET LOCAL deadlock_timeout = '60s'").await.unwrap();
    tx.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", &[&sess.id.to_string()]).await.unwrap();

    let disabled = User { status: UserStatus::Disabled, ..ann.clone() };
    let disable = store.update_user(&disabled, T0.plus_secs(5));
    let deadlock = async {
        let watcher = raw(&url).await;
        // The store's transaction has locked the user and waits for the session.
        let waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tessera' \
                       AND wait_event_type = 'Lock' AND datname = current_database()";
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while count(&watcher, waiting).await == 0 {
            assert!(std::time::Instant::now() < deadline, "the store's transaction never waited");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Closes the cycle; answered once the store's transaction was rolled back.
        tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&ann.id.to_string()]).await.unwrap();
        tx.commit().await.unwrap();
    };
    let (ended, ()) = tokio::join!(disable, deadlock);
    let ended = ended.expect("the victim's transaction ran again and succeeded");
    assert_eq!(ended.map(|e| e.into_iter().map(|s| s.id).collect::<Vec<_>>()), Some(vec![sess.id]));
    let m = metrics(store);
    assert!(m.contains("tessera_store_write_retries_total{result=\"retried\"} 1"), "{m}");
    assert!(m.contains("kind=\"contended\""), "the deadlock was counted: {m}");
    let status: String =
        other.query_one("SELECT status FROM users WHERE id = $1", &[&ann.id.to_string()]).await.unwrap().get(0);
    assert_eq!(status, "disabled");
}

/// A write that collides twice is written on the third attempt, with its audit event, once.
#[tokio::test]
async fn a_write_colliding_twice_is_saved_on_the_third_attempt() {
    let Some(db) = crate::fresh().await else { return };
    let url = crate::with_database(&db.admin_url, &db.name);
    let c = raw(&url).await;
    let org = organization(&db.store, ORG).await;
    let mut rng = StdRng::seed_from_u64(12);
    collide(&c, "groups", "40001", 2, 1).await;
    let g = group(org, &mut rng, "admins");
    let (created, recorded) = tessera_store::audit::scope(event(org, "create admins"), db.store.create_group(&g)).await;
    assert_eq!(created, Ok(()));
    assert!(recorded, "the event rode with the attempt that committed");
    assert_eq!(attempts(&c).await, 3);
    assert_eq!(db.store.get_group(org, g.id).await.unwrap().map(|g| g.display_name), Some("admins".into()));
    assert_eq!(count(&c, "SELECT count(*) FROM audit_events").await, 1);
}

/// A write that collides on all three attempts is `Contended`, and nothing of it was saved:
/// not the object, not the references written after it in its transaction, not its event.
#[tokio::test]
async fn a_write_colliding_three_times_is_contended_and_leaves_nothing() {
    let Some(db) = crate::fresh().await else { return };
    let url = crate::with_database(&db.admin_url, &db.name);
    let c = raw(&url).await;
    let org = organization(&db.store, ORG).await;
    let svc = Uuid::from_u128(1);
    db.store.put_gateway_object(&object(org, svc, Service, &[], "{}".into()), true).await.unwrap();
    // The route's row is written first, its reference to the service after it.
    collide(&c, "gateway_refs", "40P01", 3, 1).await;
    let route = object(org, Uuid::from_u128(2), Route, &[svc], body(None, Some(svc)));
    let (put, recorded) =
        tessera_store::audit::scope(event(org, "create route"), db.store.put_gateway_object(&route, true)).await;
    assert!(matches!(&put, Err(StoreError::Contended(m)) if m.contains("40P01")), "{put:?}");
    assert!(!recorded);
    assert_eq!(attempts(&c).await, 3, "three attempts, no more");
    assert_eq!(db.store.get_gateway_object(org, Route, route.id).await.unwrap(), None);
    assert_eq!(count(&c, "SELECT count(*) FROM gateway_refs").await, 0);
    assert_eq!(count(&c, "SELECT count(*) FROM audit_events").await, 0);
    let m = metrics(&db.store);
    assert!(m.contains("tessera_store_write_retries_total{result=\"gave_up\"} 1"), "{m}");
    // The collisions are over: the same write goes through.
    assert_eq!(db.store.put_gateway_object(&route, true).await, Ok(true));
}

/// The session writer's batch (one statement for many sessions) that collides is written again
/// as a batch, not row by row; one that collides on every attempt answers each of its callers
/// `Contended` and writes none of them.
#[tokio::test]
async fn a_colliding_session_batch_is_written_again_whole() {
    let Some(db) = crate::fresh().await else { return };
    let url = crate::with_database(&db.admin_url, &db.name);
    let c = raw(&url).await;
    let org = organization(&db.store, ORG).await;
    let mut rng = StdRng::seed_from_u64(13);
    let ann = user(&db.store, org, &mut rng).await;
    // Only statements of 2 rows or more collide: the batch, never a row written alone.
    collide(&c, "sessions", "40001", 2, 2).await;
    let sessions: Vec<_> = (0..20).map(|_| session(&ann, &mut rng)).collect();
    // The test's runtime runs one task at a time: all 20 are queued before a writer takes
    // them, so they go as one batch.
    let created = futures_util::future::join_all(sessions.iter().map(|(s, d)| db.store.create_session(s, d))).await;
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    assert_eq!(attempts(&c).await, 3, "the batch ran a third time rather than row by row");
    assert_eq!(count(&c, "SELECT count(*) FROM sessions").await, 20);

    c.batch_execute("SELECT setval('collisions', 1, false)").await.unwrap();
    c.batch_execute(
        "CREATE OR REPLACE FUNCTION collide() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF (SELECT count(*) FROM inserted) >= 2 THEN PERFORM nextval('collisions'); \
         RAISE EXCEPTION 'made to collide' USING ERRCODE = '40001'; END IF; RETURN NULL; END $$",
    )
    .await
    .unwrap();
    let more: Vec<_> = (0..20).map(|_| session(&ann, &mut rng)).collect();
    let created = futures_util::future::join_all(more.iter().map(|(s, d)| db.store.create_session(s, d))).await;
    assert!(created.iter().all(|r| matches!(r, Err(StoreError::Contended(_)))), "{created:?}");
    assert_eq!(attempts(&c).await, 3);
    assert_eq!(count(&c, "SELECT count(*) FROM sessions").await, 20, "none of the contended batch was written");
}
