//! Writes that collide with concurrent ones (PostgreSQL's deadlocks, 40P01, and serialization
//! failures, 40001): the store re-runs the whole transaction a bounded number of times, and
//! one that still collides is `Contended` with nothing of it saved.

use std::sync::Arc;

use tessera_domain::gateway::GatewayKind::*;
use tessera_store::{Conflict, GatewayObject, GatewayStore, StoreError};
use tessera_store_postgres::PgStore;
use uuid::Uuid;

use crate::gateway::{ORG, body, object, organization};

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
