//! Conformance cases: gateway objects and server-side gateway sessions.

use super::*;

pub(crate) fn gateway_object(f: &mut Fixture, kind: GatewayKind, name: Option<&str>, body: &str) -> GatewayObject {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut f.rng, &mut bytes);
    GatewayObject {
        org_id: f.org,
        kind,
        id: uuid::Uuid::from_bytes(bytes),
        name: name.map(str::to_owned),
        scope_key: None,
        refs: vec![],
        body: body.into(),
        created: T0,
        updated: T0,
    }
}

pub async fn gateway_objects_round_trip(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let a = gateway_object(&mut f, GatewayKind::Service, Some("echo"), r#"{"name":"echo"}"#);
    assert!(store.put_gateway_object(&a, true).await.unwrap());
    let dup = gateway_object(&mut f, GatewayKind::Service, Some("echo"), "{}");
    assert_eq!(
        store.put_gateway_object(&dup, true).await,
        Err(StoreError::Conflict(Conflict::GatewayName { kind: GatewayKind::Service, name: "echo".into() }))
    );
    // An id is taken whatever the kind, name or organization (a client may choose one).
    let mut same_id = gateway_object(&mut f, GatewayKind::Route, Some("other"), "{}");
    same_id.id = a.id;
    assert_eq!(
        store.put_gateway_object(&same_id, true).await,
        Err(StoreError::Conflict(Conflict::Other(format!("a route with id {} already exists", a.id))))
    );
    // The same name under another kind, and unnamed objects, do not conflict.
    let r = gateway_object(&mut f, GatewayKind::Route, Some("echo"), "{}");
    assert!(store.put_gateway_object(&r, true).await.unwrap());
    for _ in 0..2 {
        let p = gateway_object(&mut f, GatewayKind::Plugin, None, "{}");
        assert!(store.put_gateway_object(&p, true).await.unwrap());
    }
    let mut a2 = a.clone();
    a2.body = r#"{"name":"echo","port":81}"#.into();
    a2.updated = T0.plus_secs(5);
    assert!(store.put_gateway_object(&a2, false).await.unwrap());
    assert_eq!(store.get_gateway_object(f.org, GatewayKind::Service, a.id).await.unwrap(), Some(a2.clone()));
    assert_eq!(store.get_gateway_object(f.org, GatewayKind::Route, a.id).await.unwrap(), None, "kinds stay apart");
    let other = OrgId::generate(&mut f.rng);
    assert_eq!(store.get_gateway_object(other, GatewayKind::Service, a.id).await.unwrap(), None);
    assert_eq!(store.list_gateway_objects(Some(f.org), GatewayKind::Plugin).await.unwrap().len(), 2);
    assert_eq!(store.list_gateway_objects(None, GatewayKind::Service).await.unwrap(), vec![a2]);
    assert_eq!(store.list_gateway_objects(Some(other), GatewayKind::Service).await.unwrap(), vec![]);
    assert!(!store.delete_gateway_object(other, GatewayKind::Service, a.id).await.unwrap());
    assert!(store.delete_gateway_object(f.org, GatewayKind::Service, a.id).await.unwrap());
    assert!(!store.put_gateway_object(&a, false).await.unwrap(), "replacing a deleted object answers false");
}

/// Writes racing for one scope (as two nodes would: nothing but the store between them)
/// leave exactly one holder; other scopes and keyless objects never collide; a replace that
/// moves an object into a held scope is refused and changes nothing.
pub async fn one_session_plugin_per_scope_even_in_parallel(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let scoped = |f: &mut Fixture, key: &str| {
        let mut p = gateway_object(f, GatewayKind::Plugin, None, r#"{"name":"session"}"#);
        p.scope_key = Some(key.into());
        p
    };
    let global = "session route=* service=*";
    let racers: Vec<GatewayObject> = (0..8).map(|_| scoped(&mut f, global)).collect();
    let results = futures_util::future::join_all(racers.iter().map(|p| store.put_gateway_object(p, true))).await;
    assert_eq!(results.iter().filter(|r| matches!(r, Ok(true))).count(), 1, "{results:?}");
    for r in results.iter().filter(|r| !matches!(r, Ok(true))) {
        assert_eq!(
            r,
            &Err(StoreError::Conflict(Conflict::GatewayScope { kind: GatewayKind::Plugin, scope: global.into() }))
        );
    }
    assert_eq!(store.list_gateway_objects(Some(f.org), GatewayKind::Plugin).await.unwrap().len(), 1);
    // Another scope, keyless plugins, and another organization's global scope are free.
    let on_route = scoped(&mut f, "session route=r1 service=*");
    assert!(store.put_gateway_object(&on_route, true).await.unwrap());
    for _ in 0..2 {
        assert!(
            store.put_gateway_object(&gateway_object(&mut f, GatewayKind::Plugin, None, "{}"), true).await.unwrap()
        );
    }
    let mut elsewhere = scoped(&mut f, global);
    elsewhere.org_id = OrgId::generate(&mut f.rng);
    let org = tessera_domain::user::Organization { id: elsewhere.org_id, name: "other".into(), date_created: T0 };
    store.create_organization(&org).await.unwrap();
    assert!(store.put_gateway_object(&elsewhere, true).await.unwrap());
    // Moving the route's plugin to the global scope is refused and leaves it where it was.
    let mut moved = on_route.clone();
    moved.scope_key = Some(global.into());
    moved.body = r#"{"name":"session","moved":true}"#.into();
    assert_eq!(
        store.put_gateway_object(&moved, false).await,
        Err(StoreError::Conflict(Conflict::GatewayScope { kind: GatewayKind::Plugin, scope: global.into() }))
    );
    assert_eq!(
        store.get_gateway_object(f.org, GatewayKind::Plugin, on_route.id).await.unwrap(),
        Some(on_route.clone())
    );
    // Once the holder goes, the scope is free again.
    let holder = racers.iter().zip(&results).find(|(_, r)| matches!(r, Ok(true))).map(|(p, _)| p.id).unwrap();
    assert!(store.delete_gateway_object(f.org, GatewayKind::Plugin, holder).await.unwrap());
    assert!(store.put_gateway_object(&moved, false).await.unwrap());
}

/// An object's refs are stored and read back with it; a ref to a missing object is refused;
/// a named object cannot be deleted while named (the holder's delete frees it); and a delete
/// racing writes that name the object (as nodes would race) never leaves a name dangling.
pub async fn gateway_refs_hold_across_writers(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let ca = gateway_object(&mut f, GatewayKind::CaCertificate, Some("digest-a"), "{}");
    let other = gateway_object(&mut f, GatewayKind::CaCertificate, Some("digest-b"), "{}");
    assert!(store.put_gateway_object(&ca, true).await.unwrap());
    assert!(store.put_gateway_object(&other, true).await.unwrap());
    let mut svc = gateway_object(&mut f, GatewayKind::Service, Some("svc"), "{}");
    svc.refs = vec![ca.id.min(other.id), ca.id.max(other.id)];
    assert!(store.put_gateway_object(&svc, true).await.unwrap());
    assert_eq!(store.get_gateway_object(f.org, GatewayKind::Service, svc.id).await.unwrap(), Some(svc.clone()));
    assert_eq!(store.list_gateway_objects(Some(f.org), GatewayKind::Service).await.unwrap(), vec![svc.clone()]);
    let in_use = |id| Err(StoreError::Conflict(Conflict::GatewayInUse { kind: GatewayKind::CaCertificate, id }));
    assert_eq!(store.delete_gateway_object(f.org, GatewayKind::CaCertificate, ca.id).await, in_use(ca.id));
    assert!(store.get_gateway_object(f.org, GatewayKind::CaCertificate, ca.id).await.unwrap().is_some());
    // A replace names only `other` now: `ca` is free, `other` is not.
    svc.refs = vec![other.id];
    assert!(store.put_gateway_object(&svc, false).await.unwrap());
    assert_eq!(store.get_gateway_object(f.org, GatewayKind::Service, svc.id).await.unwrap().unwrap().refs, [other.id]);
    assert!(store.delete_gateway_object(f.org, GatewayKind::CaCertificate, ca.id).await.unwrap());
    assert_eq!(store.delete_gateway_object(f.org, GatewayKind::CaCertificate, other.id).await, in_use(other.id));
    // Naming a deleted object is refused and writes nothing.
    let mut dangling = gateway_object(&mut f, GatewayKind::Service, Some("dangling"), "{}");
    dangling.refs = vec![ca.id];
    assert_eq!(store.put_gateway_object(&dangling, true).await, Err(StoreError::NotFound(Entity::Referenced)));
    assert_eq!(store.get_gateway_object(f.org, GatewayKind::Service, dangling.id).await.unwrap(), None);
    // The holder's delete takes its refs with it.
    assert!(store.delete_gateway_object(f.org, GatewayKind::Service, svc.id).await.unwrap());
    assert!(store.delete_gateway_object(f.org, GatewayKind::CaCertificate, other.id).await.unwrap());
    // Races: a delete against writes naming the object. Whatever wins, no service that was
    // written names a CA that is gone.
    for round in 0..5 {
        let ca = gateway_object(&mut f, GatewayKind::CaCertificate, Some(&format!("race-{round}")), "{}");
        assert!(store.put_gateway_object(&ca, true).await.unwrap());
        let writers: Vec<GatewayObject> = (0..4)
            .map(|i| {
                let mut s = gateway_object(&mut f, GatewayKind::Service, Some(&format!("r{round}-{i}")), "{}");
                s.refs = vec![ca.id];
                s
            })
            .collect();
        let delete = store.delete_gateway_object(f.org, GatewayKind::CaCertificate, ca.id);
        let writes = futures_util::future::join_all(writers.iter().map(|s| store.put_gateway_object(s, true)));
        let (deleted, written) = futures_util::join!(delete, writes);
        let written = written.iter().filter(|r| matches!(r, Ok(true))).count();
        match deleted {
            Ok(true) => assert_eq!(written, 0, "round {round}: services name a deleted CA"),
            Err(e) => {
                assert_eq!(Err::<(), _>(e), in_use(ca.id).map(|_: bool| ()));
                assert!(written > 0, "round {round}: the delete was refused but nothing names the CA");
            }
            other => panic!("round {round}: {other:?}"),
        }
        for s in &writers {
            if let Some(found) = store.get_gateway_object(f.org, GatewayKind::Service, s.id).await.unwrap() {
                for r in &found.refs {
                    assert!(store.get_gateway_object(f.org, GatewayKind::CaCertificate, *r).await.unwrap().is_some());
                }
            }
        }
    }
}

/// An object of `kind` naming `refs`, as the app writes one (a route its service, a plugin
/// its route and service).
fn naming(f: &mut Fixture, kind: GatewayKind, name: Option<&str>, refs: &[uuid::Uuid]) -> GatewayObject {
    let mut o = gateway_object(f, kind, name, "{}");
    o.refs = refs.to_vec();
    o.refs.sort_unstable();
    o
}

async fn exists(store: &dyn Store, o: &GatewayObject) -> bool {
    store.get_gateway_object(o.org_id, o.kind, o.id).await.unwrap().is_some()
}

/// Every object of the organization that names something names an object that exists.
async fn nothing_dangles(store: &dyn Store, org: OrgId, when: &str) {
    let mut all = vec![];
    for kind in [GatewayKind::Service, GatewayKind::Route, GatewayKind::Plugin, GatewayKind::CaCertificate] {
        all.extend(store.list_gateway_objects(Some(org), kind).await.unwrap());
    }
    for o in &all {
        for r in &o.refs {
            assert!(all.iter().any(|t| t.id == *r), "{when}: {} {} names {r}, which is gone", o.kind.as_str(), o.id);
        }
    }
}

/// Deleting a route or a service takes the plugins that name it, in the delete's own
/// transaction; a service a route names is kept (and so are its plugins: the refused delete
/// changes nothing); the delete of a plugin or of an unnamed object takes nothing else.
pub async fn deleting_a_route_or_service_takes_its_plugins(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let svc = naming(&mut f, GatewayKind::Service, Some("svc"), &[]);
    let other_svc = naming(&mut f, GatewayKind::Service, Some("other"), &[]);
    let route = naming(&mut f, GatewayKind::Route, Some("route"), &[svc.id]);
    let on_route = naming(&mut f, GatewayKind::Plugin, None, &[route.id]);
    let on_service = naming(&mut f, GatewayKind::Plugin, None, &[svc.id]);
    let on_both = naming(&mut f, GatewayKind::Plugin, None, &[route.id, svc.id]);
    let on_other = naming(&mut f, GatewayKind::Plugin, None, &[other_svc.id]);
    let global = naming(&mut f, GatewayKind::Plugin, None, &[]);
    let all = [&svc, &other_svc, &route, &on_route, &on_service, &on_both, &on_other, &global];
    for o in all {
        assert!(store.put_gateway_object(o, true).await.unwrap(), "{o:?}");
    }
    assert_eq!(
        store.get_gateway_object(f.org, GatewayKind::Plugin, on_both.id).await.unwrap().as_ref(),
        Some(&on_both)
    );
    // Named by a route: kept, with every plugin.
    assert_eq!(
        store.delete_gateway_object(f.org, GatewayKind::Service, svc.id).await,
        Err(StoreError::Conflict(Conflict::GatewayInUse { kind: GatewayKind::Service, id: svc.id }))
    );
    for o in all {
        assert!(exists(store, o).await, "a refused delete took {o:?}");
    }
    // The route goes with its plugins, and with the plugin on the route and its service.
    assert!(store.delete_gateway_object(f.org, GatewayKind::Route, route.id).await.unwrap());
    for (o, kept) in [(&route, false), (&on_route, false), (&on_both, false), (&svc, true), (&on_service, true)] {
        assert_eq!(exists(store, o).await, kept, "{o:?}");
    }
    // Deleting a plugin takes nothing else; the service goes with its last plugin.
    assert!(store.delete_gateway_object(f.org, GatewayKind::Plugin, global.id).await.unwrap());
    assert!(store.delete_gateway_object(f.org, GatewayKind::Service, svc.id).await.unwrap());
    assert!(!exists(store, &on_service).await);
    assert!(exists(store, &other_svc).await && exists(store, &on_other).await);
    assert!(!store.delete_gateway_object(f.org, GatewayKind::Service, svc.id).await.unwrap(), "gone already");
    // A write naming what is gone, or what another organization holds, is refused.
    let late = naming(&mut f, GatewayKind::Plugin, None, &[route.id]);
    assert_eq!(store.put_gateway_object(&late, true).await, Err(StoreError::NotFound(Entity::Referenced)));
    let elsewhere = OrgId::generate(&mut f.rng);
    store.create_organization(&Organization { id: elsewhere, name: "other".into(), date_created: T0 }).await.unwrap();
    let mut foreign = naming(&mut f, GatewayKind::Route, Some("foreign"), &[other_svc.id]);
    foreign.org_id = elsewhere;
    assert_eq!(store.put_gateway_object(&foreign, true).await, Err(StoreError::NotFound(Entity::Referenced)));
    assert!(!exists(store, &late).await && !exists(store, &foreign).await);
    nothing_dangles(store, f.org, "after the deletes").await;
}

/// A route's or service's delete racing writes that name it (as nodes would race: nothing
/// but the store between them). A plugin written meanwhile is either refused or goes with the
/// route, and never stops its delete; a route written meanwhile either is refused or keeps
/// the service. Whatever wins, nothing is left naming an object that is gone.
pub async fn deletes_racing_writers_leave_no_dangling_route_or_plugin(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let refused = || Err(StoreError::NotFound(Entity::Referenced));
    for round in 0..5 {
        let svc = naming(&mut f, GatewayKind::Service, Some(&format!("svc-{round}")), &[]);
        let route = naming(&mut f, GatewayKind::Route, Some(&format!("route-{round}")), &[svc.id]);
        let kept = naming(&mut f, GatewayKind::Plugin, None, &[route.id]);
        for o in [&svc, &route, &kept] {
            assert!(store.put_gateway_object(o, true).await.unwrap());
        }
        // Plugins created on the route, and the one there moved to the route and service.
        let mut writers: Vec<(GatewayObject, bool)> =
            (0..4).map(|_| (naming(&mut f, GatewayKind::Plugin, None, &[route.id]), true)).collect();
        writers.push((naming(&mut f, GatewayKind::Plugin, None, &[route.id, svc.id]), true));
        let mut moved = kept.clone();
        moved.refs = naming(&mut f, GatewayKind::Plugin, None, &[route.id, svc.id]).refs;
        moved.body = r#"{"moved":true}"#.into();
        writers.push((moved, false));
        let delete = store.delete_gateway_object(f.org, GatewayKind::Route, route.id);
        let writes =
            futures_util::future::join_all(writers.iter().map(|(p, create)| store.put_gateway_object(p, *create)));
        let (deleted, written) = futures_util::join!(delete, writes);
        assert_eq!(deleted, Ok(true), "round {round}: plugins never keep a route");
        for (r, (p, _)) in written.iter().zip(&writers) {
            // Refused (the route was gone), written and then taken, or (the moved one) found gone.
            assert!(r.is_ok() || *r == refused(), "round {round}: {r:?}");
            assert!(!exists(store, p).await, "round {round}: plugin {} outlived its route", p.id);
        }
        nothing_dangles(store, f.org, &format!("round {round}, route")).await;

        // Routes (and plugins) created on the service while it is deleted.
        let writers: Vec<GatewayObject> = (0..6)
            .map(|i| match i {
                0..4 => naming(&mut f, GatewayKind::Route, Some(&format!("r{round}-{i}")), &[svc.id]),
                _ => naming(&mut f, GatewayKind::Plugin, None, &[svc.id]),
            })
            .collect();
        let delete = store.delete_gateway_object(f.org, GatewayKind::Service, svc.id);
        let writes = futures_util::future::join_all(writers.iter().map(|o| store.put_gateway_object(o, true)));
        let (deleted, written) = futures_util::join!(delete, writes);
        let routes_written =
            writers.iter().zip(&written).filter(|(o, r)| o.kind == GatewayKind::Route && **r == Ok(true));
        let routes_written = routes_written.count();
        for r in &written {
            assert!(*r == Ok(true) || *r == refused(), "round {round}: {r:?}");
        }
        match deleted {
            Ok(true) => {
                assert_eq!(routes_written, 0, "round {round}: routes name a deleted service");
                for o in &writers {
                    assert!(!exists(store, o).await, "round {round}: {o:?} outlived its service");
                }
            }
            Err(e) => {
                assert_eq!(e, StoreError::Conflict(Conflict::GatewayInUse { kind: GatewayKind::Service, id: svc.id }));
                assert!(routes_written > 0, "round {round}: the delete was refused but no route names the service");
                assert!(exists(store, &svc).await);
            }
            other => panic!("round {round}: {other:?}"),
        }
        nothing_dangles(store, f.org, &format!("round {round}, service")).await;
    }
}

pub async fn gateway_keys_rekey_and_expire(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let u = f.user("gw@example.com");
    store.create_user(&u, None).await.unwrap();
    let (mut sess, _) = f.session(&u, None, T0);
    sess.kind = SessionKind::Gateway;
    let k1 = mint(TokenKind::GatewaySession, &mut f.rng).digest;
    store.create_gateway_session(&sess, &k1, "ct-1", T0.plus_secs(3_600)).await.unwrap();
    let found = store.find_gateway_key(&k1).await.unwrap().expect("key 1 resolves");
    assert_eq!(
        (found.session.id, found.user.id, found.data.as_str(), found.expires),
        (sess.id, u.id, "ct-1", T0.plus_secs(3_600))
    );
    assert_eq!(found.session.kind, SessionKind::Gateway);
    let k2 = mint(TokenKind::GatewaySession, &mut f.rng).digest;
    let rk = GatewayRekey {
        org_id: f.org,
        session: sess.id,
        old: k1,
        old_expires: T0.plus_secs(10),
        new: k2,
        data: "ct-2".into(),
        new_expires: T0.plus_secs(7_200),
        now: T0.plus_secs(1),
    };
    assert!(store.rekey_gateway_session(&rk).await.unwrap());
    assert_eq!(store.find_gateway_key(&k1).await.unwrap().unwrap().expires, T0.plus_secs(10), "old key goes stale");
    assert_eq!(store.find_gateway_key(&k2).await.unwrap().unwrap().data, "ct-2");
    // A stale key is never lengthened by a later renewal from it.
    let k3 = mint(TokenKind::GatewaySession, &mut f.rng).digest;
    let rk3 = GatewayRekey { old_expires: T0.plus_secs(99), new: k3, ..rk.clone() };
    assert!(store.rekey_gateway_session(&rk3).await.unwrap());
    assert_eq!(store.find_gateway_key(&k1).await.unwrap().unwrap().expires, T0.plus_secs(10));
    store.delete_gateway_key(&k3).await.unwrap();
    assert!(store.find_gateway_key(&k3).await.unwrap().is_none());
    // An ended session cannot be renewed, and its keys resolve to the ended record.
    store.end_session(f.org, sess.id, EndReason::Terminated, T0.plus_secs(2)).await.unwrap();
    let k4 = mint(TokenKind::GatewaySession, &mut f.rng).digest;
    assert!(!store.rekey_gateway_session(&GatewayRekey { new: k4, ..rk }).await.unwrap());
    assert!(store.find_gateway_key(&k4).await.unwrap().is_none());
    assert_eq!(store.find_gateway_key(&k2).await.unwrap().unwrap().session.status, SessionStatus::Terminated);
    // Purging the ended record takes its keys with it.
    store.purge_sessions(T0.plus_secs(100_000)).await.unwrap();
    assert!(store.find_gateway_key(&k2).await.unwrap().is_none());
}
