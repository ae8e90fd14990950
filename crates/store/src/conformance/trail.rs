//! Conformance cases: the audit trail: events riding with their changes, and the audit query.

use super::gateway::gateway_object;
use super::*;

// ---- the audit trail ------------------------------------------------------------------

fn audit_event(f: &mut Fixture, org: OrgId, action: &str, time: Timestamp) -> AuditEvent {
    let mut random = [0u8; 10];
    rand::RngCore::fill_bytes(&mut f.rng, &mut random);
    AuditEvent {
        id: uuid::Builder::from_unix_timestamp_millis(time.0 as u64 * 1_000, &random).into_uuid(),
        org_id: org,
        time,
        actor_kind: ActorKind::ApiKey,
        actor_id: "u-1".into(),
        actor_email: "admin@example.com".into(),
        credential_id: "k-1".into(),
        action: action.into(),
        target_kind: "user".into(),
        target_id: "*".into(),
        source_ip: "192.0.2.7".into(),
        request_id: "req-1".into(),
        result: AuditResult::Success,
        reason: String::new(),
    }
}

fn all_events() -> SessionQuery {
    SessionQuery { filter: None, order: vec![], top: 1_000, skip: 0, after: None, count: true, rows: true }
}

async fn actions(store: &dyn Store, org: OrgId) -> Vec<String> {
    let r = store.query_audit_events(org, &all_events()).await.unwrap();
    r.events.into_iter().map(|e| e.action).collect()
}

/// A change and its staged event commit together, or neither does; a write that changes
/// nothing, fails, or only keeps books leaves the event for the next write.
pub async fn audit_events_commit_or_roll_back_with_their_change(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let org = f.org;
    let ann = f.user("ann@example.com");
    let e1 = audit_event(&mut f, org, "create ann", T0);
    let (r, recorded) = crate::audit::scope(e1.clone(), store.create_user(&ann, None)).await;
    r.unwrap();
    assert!(recorded);
    let stored = store.query_audit_events(org, &all_events()).await.unwrap();
    assert_eq!(stored.events, vec![e1.clone()], "the event is stored exactly as staged");

    // A failing write rolls its event back with it.
    let dup = User { id: UserId::generate(&mut f.rng), ..ann.clone() };
    let e2 = audit_event(&mut f, org, "create ann again", T0);
    let (r, recorded) = crate::audit::scope(e2, store.create_user(&dup, None)).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))));
    assert!(!recorded);
    // A write that changes nothing carries no event.
    let missing = Group {
        id: GroupId::generate(&mut f.rng),
        org_id: org,
        display_name: "ghosts".into(),
        description: String::new(),
        date_created: T0,
    };
    let e3 = audit_event(&mut f, org, "update a missing group", T0);
    let (r, recorded) = crate::audit::scope(e3, store.update_group(&missing)).await;
    assert!(!r.unwrap() && !recorded);
    // Writes outside any scope record nothing.
    store.create_group(&missing).await.unwrap();
    assert_eq!(actions(store, org).await, vec!["create ann"]);

    // The event's own failure undoes the change: an event without an action breaks the
    // table's rule, and the user it came with is not created either.
    let broken = AuditEvent { action: String::new(), ..e1.clone() };
    let bob = f.user("bob@example.com");
    let (r, recorded) = crate::audit::scope(broken.clone(), store.create_user(&bob, None)).await;
    assert!(r.is_err(), "the change must fail when its event cannot be stored");
    assert!(!recorded);
    assert_eq!(store.get_user(org, bob.id).await.unwrap(), None, "no change without its event");
    // The same for the hot path of assuming a role (one statement on PostgreSQL).
    let (assumed, digest) = f.session(&ann, None, T0);
    let (r, recorded) = crate::audit::scope(broken, store.create_session(&assumed, &digest)).await;
    assert!(r.is_err() && !recorded, "a session must not be created without its event");
    assert_eq!(store.get_session(org, assumed.id).await.unwrap(), None);

    // Bookkeeping (a sign-in claim) never takes the event; the change after it does.
    store.set_password(org, ann.id, "$argon2id$not-a-real-hash").await.unwrap();
    let (sess, digest) = login_session(&mut f, &ann, T0);
    let e4 = audit_event(&mut f, org, "sign in", T0);
    let ((), recorded) = crate::audit::scope(e4, async {
        let claim = store.claim_login_attempt(org, ann.id, T0, &LockoutPolicy::default()).await.unwrap();
        assert!(claim.is_some_and(|c| c.admitted));
        store.touch_session(org, sess.id, T0).await.unwrap();
        store.create_login_session(&sess, &digest, 10, T0).await.unwrap();
        // A second change in the same scope has no event left to carry.
        store.end_session(org, sess.id, EndReason::Logout, T0).await.unwrap();
    })
    .await;
    assert!(recorded);
    assert_eq!(actions(store, org).await, vec!["create ann", "sign in"]);
}

/// A session create staged with an event for it, as the assume hot path makes them.
fn assume(f: &mut Fixture, user: &User, role: &Role, i: i64) -> (Session, TokenDigest, AuditEvent) {
    let (s, d) = f.session(user, Some(role), T0.plus_secs(i));
    let e = AuditEvent {
        target_kind: "session".into(),
        target_id: s.id.to_string(),
        ..audit_event(f, s.org_id, "assume", T0)
    };
    (s, d, e)
}

/// Creates every session at once, each in its own audit scope (as concurrent requests do):
/// a backend that batches them gets them queued together. Answers each result and whether
/// its event was recorded, in the given order.
async fn create_all(store: &dyn Store, all: &[(Session, TokenDigest, AuditEvent)]) -> Vec<(StoreResult<()>, bool)> {
    futures_util::future::join_all(
        all.iter().map(|(s, d, e)| crate::audit::scope(e.clone(), store.create_session(s, d))),
    )
    .await
}

/// The session ids of the stored `assume` events.
async fn assume_events(store: &dyn Store, org: OrgId) -> Vec<String> {
    let r = store.query_audit_events(org, &all_events()).await.unwrap();
    let mut ids: Vec<String> = r.events.into_iter().filter(|e| e.action == "assume").map(|e| e.target_id).collect();
    ids.sort();
    ids
}

/// Many sessions created at once (PostgreSQL inserts them in batches) are each committed
/// with exactly its own event, each caller is told so, and every one reads back whole.
pub async fn concurrent_session_creates_commit_each_with_its_event(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let ann = f.user("ann@example.com");
    store.create_user(&ann, None).await.unwrap();
    let role = f.role("deployer");
    store.create_role(&role).await.unwrap();
    let all: Vec<_> = (0..300).map(|i| assume(&mut f, &ann, &role, i)).collect();
    for (i, (r, recorded)) in create_all(store, &all).await.into_iter().enumerate() {
        r.unwrap_or_else(|e| panic!("create {i}: {e}"));
        assert!(recorded, "create {i} was answered without its event recorded");
    }
    for (s, d, _) in &all {
        assert_eq!(store.get_session(f.org, s.id).await.unwrap().as_ref(), Some(s));
        match store.find_credential(TokenKind::RoleSession, d).await.unwrap() {
            Some(Credential::Session { session, .. }) => assert_eq!(session.id, s.id),
            other => panic!("the token of {} does not resolve to it: {other:?}", s.id),
        }
    }
    let mut expected: Vec<String> = all.iter().map(|(s, _, _)| s.id.to_string()).collect();
    expected.sort();
    assert_eq!(assume_events(store, f.org).await, expected, "one event per session, none lost or doubled");
}

/// Among sessions created at once, one that cannot be stored (its token is taken, its event
/// breaks the table's rule, it duplicates a batch-mate) fails alone: its neighbours are
/// committed and told so, and it leaves neither a session nor an event.
pub async fn a_failing_session_create_fails_alone(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let ann = f.user("ann@example.com");
    store.create_user(&ann, None).await.unwrap();
    let role = f.role("deployer");
    store.create_role(&role).await.unwrap();
    let (existing, existing_digest, _) = assume(&mut f, &ann, &role, -1);
    store.create_session(&existing, &existing_digest).await.unwrap();

    let mut all: Vec<_> = (0..60).map(|i| assume(&mut f, &ann, &role, i)).collect();
    // 10: a token that is already taken.
    all[10].1 = existing_digest;
    // 20: an event without an action, which the audit table refuses.
    all[20].2.action = String::new();
    // 30 and 31: the same session twice (its id and token): exactly one can be stored.
    all[31].0 = all[30].0.clone();
    all[31].1 = all[30].1;
    all[31].2.target_id = all[30].0.id.to_string();
    let results = create_all(store, &all).await;

    let (r, recorded) = &results[10];
    assert!(matches!(r, Err(StoreError::Conflict(_))), "a taken token is a conflict: {r:?}");
    assert!(!recorded);
    let (r, recorded) = &results[20];
    assert!(r.is_err() && !recorded, "a session must not be created without its event: {r:?}");
    let twins = [&results[30], &results[31]];
    assert_eq!(twins.iter().filter(|(r, _)| r.is_ok()).count(), 1, "one of two equal sessions is stored: {twins:?}");
    for (r, recorded) in twins {
        assert_eq!(r.is_ok(), *recorded);
        if let Err(e) = r {
            assert!(matches!(e, StoreError::Conflict(_)), "the second of two equal sessions is a conflict: {e}");
        }
    }
    let mut expected = vec![all[30].0.id.to_string()];
    for (i, ((s, _, _), (r, recorded))) in all.iter().zip(&results).enumerate() {
        if [10, 20, 30, 31].contains(&i) {
            continue;
        }
        r.as_ref().unwrap_or_else(|e| panic!("create {i} failed with a bad neighbour: {e}"));
        assert!(recorded, "create {i} was answered without its event recorded");
        assert_eq!(store.get_session(f.org, s.id).await.unwrap().as_ref(), Some(s));
        expected.push(s.id.to_string());
    }
    for bad in [10, 20] {
        assert_eq!(store.get_session(f.org, all[bad].0.id).await.unwrap(), None, "create {bad} left a session");
    }
    expected.sort();
    assert_eq!(assume_events(store, f.org).await, expected, "an event for each stored session only");
}

/// Every write a use case makes carries its event on this backend: one case per write
/// method, so a backend that forgets one fails here by name.
pub async fn every_change_carries_its_audit_event(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let org = f.org;
    let mut expected: Vec<&str> = vec![];
    macro_rules! audited {
        ($name:literal, $write:expr) => {{
            let e = audit_event(&mut f, org, $name, T0);
            let (r, recorded) = crate::audit::scope(e, $write).await;
            let out = r.unwrap_or_else(|e| panic!("{}: {e}", $name));
            assert!(recorded, "{} committed without its audit event", $name);
            expected.push($name);
            out
        }};
    }
    let mut u = f.user("ann@example.com");
    audited!("create_user", store.create_user(&u, None));
    u.first_name = "Annie".into();
    audited!("update_user", store.update_user(&u, T0));
    audited!("set_password", store.set_password(org, u.id, "$argon2id$x"));
    audited!("clear_login_lock", store.clear_login_lock(org, u.id));
    let token = mint(TokenKind::ApiKey, &mut f.rng);
    let key = ApiKey {
        id: ApiKeyId::generate(&mut f.rng),
        org_id: org,
        user_id: u.id,
        name: "k".into(),
        digest: token.digest,
        date_created: T0,
        date_expire: None,
    };
    audited!("create_api_key", store.create_api_key(&key));
    audited!("delete_api_key", store.delete_api_key(org, u.id, key.id));
    let mut g = Group {
        id: GroupId::generate(&mut f.rng),
        org_id: org,
        display_name: "ops".into(),
        description: String::new(),
        date_created: T0,
    };
    audited!("create_group", store.create_group(&g));
    g.description = "d".into();
    audited!("update_group", store.update_group(&g));
    audited!("add_group_member", store.add_group_member(org, g.id, u.id));
    audited!("remove_group_member", store.remove_group_member(org, g.id, u.id));
    let mut p =
        f.policy("p", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["*"],"Resource":["*"]}]}"#);
    audited!("create_policy", store.create_policy(&p));
    p.description = "d".into();
    audited!("update_policy", store.update_policy(&p));
    audited!("attach_policy", store.attach_policy(org, p.id, PolicyTarget::User(u.id)));
    audited!("detach_policy", store.detach_policy(org, p.id, PolicyTarget::User(u.id)));
    let mut role = f.role("deployer");
    audited!("create_role", store.create_role(&role));
    role.description = "changed".into();
    audited!("update_role", store.update_role(&role));
    let mut trust = RoleTrust {
        id: TrustId::generate(&mut f.rng),
        org_id: org,
        role_id: role.id,
        trust_type: "TemporaryAssumption".into(),
        principal: TrustPrincipal::User(u.id),
        conditions: TrustConditions::default(),
        valid_until: None,
        date_created: T0,
    };
    audited!("create_trust", store.create_trust(&trust));
    trust.trust_type = "Other".into();
    audited!("update_trust", store.update_trust(&trust));
    audited!("delete_trust", store.delete_trust(org, trust.id));
    let (assumed, da) = f.session(&u, Some(&role), T0);
    audited!("create_session", store.create_session(&assumed, &da));
    audited!("end_session", store.end_session(org, assumed.id, EndReason::Terminated, T0));
    let (login, dl) = login_session(&mut f, &u, T0);
    audited!("create_login_session", store.create_login_session(&login, &dl, 10, T0));
    audited!("end_user_sessions", store.end_user_sessions(org, u.id, EndReason::Terminated, T0, None));
    let (mut gw, dg) = f.session(&u, None, T0);
    gw.kind = SessionKind::Gateway;
    audited!("create_gateway_session", store.create_gateway_session(&gw, &dg, "sealed", T0.plus_secs(60)));
    audited!("put_session_limits", store.put_session_limits(org, &SessionLimits::default()));
    let svc = gateway_object(&mut f, GatewayKind::Service, Some("echo"), "{}");
    audited!("put_gateway_object", store.put_gateway_object(&svc, true));
    audited!("delete_gateway_object", store.delete_gateway_object(org, GatewayKind::Service, svc.id));
    audited!("delete_policy", store.delete_policy(org, p.id));
    audited!("delete_role", store.delete_role(org, role.id));
    audited!("delete_group", store.delete_group(org, g.id));
    audited!("delete_user", store.delete_user(org, u.id, T0));
    assert_eq!(actions(store, org).await, expected, "every change's event, in commit order");

    // The first start's bootstrap carries its event into the new organization.
    let other = OrgId::generate(&mut f.rng);
    let store2_event = audit_event(&mut f, org, "bootstrap again", T0);
    let b = f.bootstrap_for(other);
    let (r, recorded) = crate::audit::scope(store2_event, store.bootstrap(&b)).await;
    assert!(!r.unwrap() && !recorded, "a bootstrap that writes nothing records nothing");
}

/// The audit query: the session query's options over events, within one organization;
/// and the retention purge.
pub async fn audit_query_filters_orders_pages_and_purges(store: &dyn Store) {
    use tessera_domain::filter::{parse_filter, parse_orderby};
    let mut f = Fixture::new(store).await;
    let org = f.org;
    for i in 0..10 {
        let mut e =
            audit_event(&mut f, org, if i % 2 == 0 { "iam.user.Create" } else { "iam.group.Create" }, T0.plus_secs(i));
        if i == 7 {
            e.result = AuditResult::Denied;
            e.reason = "not allowed".into();
        }
        store.record_audit_event(&e).await.unwrap();
    }
    let other = OrgId::generate(&mut f.rng);
    let theirs = audit_event(&mut f, other, "iam.user.Create", T0);
    store.record_audit_event(&theirs).await.unwrap();
    let query = |filter: Option<&str>, order: &str, top: u32| SessionQuery {
        filter: filter.map(|x| parse_filter(x, &AUDIT_SCHEMA, T0.plus_secs(100)).unwrap()),
        order: if order.is_empty() { vec![] } else { parse_orderby(order, &AUDIT_SCHEMA).unwrap() },
        top,
        skip: 0,
        after: None,
        count: true,
        rows: true,
    };
    let r = store.query_audit_events(org, &query(Some("action eq 'iam.user.Create'"), "", 100)).await.unwrap();
    assert_eq!(r.count, Some(5));
    assert!(r.events.iter().all(|e| e.org_id == org), "another organization's events never show");
    let r = store.query_audit_events(org, &query(Some("result eq 'denied'"), "", 100)).await.unwrap();
    assert_eq!(r.events.iter().map(|e| e.time).collect::<Vec<_>>(), vec![T0.plus_secs(7)]);
    let r = store.query_audit_events(other, &query(None, "", 100)).await.unwrap();
    assert_eq!(r.events, vec![theirs]);
    // Newest first, three at a time, by skip token.
    let mut page = query(None, "time desc", 3);
    let mut times = vec![];
    loop {
        let r = store.query_audit_events(org, &page).await.unwrap();
        assert_eq!(r.count, Some(10));
        times.extend(r.events.iter().map(|e| e.time.0 - T0.0));
        match r.next {
            Some(n) => page.after = Some(n),
            None => break,
        }
    }
    assert_eq!(times, (0..10).rev().collect::<Vec<_>>());
    let mut skipped = query(None, "time", 2);
    skipped.skip = 8;
    let r = store.query_audit_events(org, &skipped).await.unwrap();
    assert_eq!(r.events.iter().map(|e| e.time.0 - T0.0).collect::<Vec<_>>(), vec![8, 9]);
    let mut count_only = query(Some("actor_kind eq 'api_key'"), "", 10);
    count_only.rows = false;
    let r = store.query_audit_events(org, &count_only).await.unwrap();
    assert_eq!((r.count, r.events.len()), (Some(10), 0));

    // Retention: events older than the cut go, in every organization.
    assert_eq!(store.purge_audit_events(T0.plus_secs(5)).await.unwrap(), 6);
    let r = store.query_audit_events(org, &query(None, "", 100)).await.unwrap();
    assert_eq!(r.count, Some(5));
}
