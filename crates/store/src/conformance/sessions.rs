//! Conformance cases: sessions of every kind and the session query.

use super::*;

pub async fn sessions_live_and_end(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let u = f.user("ann@example.com");
    store.create_user(&u, None).await.unwrap();
    let role = f.role("deployer");
    store.create_role(&role).await.unwrap();
    let (s1, d1) = f.session(&u, Some(&role), T0);
    let (s2, d2) = f.session(&u, Some(&role), T0.plus_secs(10));
    let (expired, d3) = f.session(&u, None, T0.plus_secs(-7_200));
    for (s, d) in [(&s1, &d1), (&s2, &d2), (&expired, &d3)] {
        store.create_session(s, d).await.unwrap();
    }
    assert_eq!(store.get_session(f.org, s1.id).await.unwrap(), Some(s1.clone()));
    match store.find_credential(TokenKind::RoleSession, &d2).await.unwrap() {
        Some(Credential::Session { session, user }) => {
            assert_eq!(*session, s2);
            assert_eq!(user, Some(u.clone()));
        }
        other => panic!("expected the session, got {other:?}"),
    }
    let active = store.list_active_sessions(f.org, u.id, None, T0.plus_secs(20), PageRequest::first(10)).await.unwrap();
    assert_eq!(active.items.iter().map(|s| s.id).collect::<Vec<_>>(), vec![s1.id, s2.id]);
    let ended = store.end_session(f.org, s1.id, EndReason::Terminated, T0.plus_secs(30)).await.unwrap().unwrap();
    assert_eq!(ended.status, SessionStatus::Terminated);
    assert_eq!(ended.end_reason, Some(EndReason::Terminated));
    assert_eq!(ended.ended, Some(T0.plus_secs(30)));
    assert!(store.end_session(f.org, s1.id, EndReason::Logout, T0.plus_secs(40)).await.unwrap().is_none());
    assert_eq!(store.get_session(f.org, s1.id).await.unwrap(), Some(ended));
    let active = store.list_active_sessions(f.org, u.id, None, T0.plus_secs(20), PageRequest::first(10)).await.unwrap();
    assert_eq!(active.total, 1);
}

/// Disabling a user ends its sessions of every kind in the same write; enabling it again
/// revives none of them.
pub async fn disabling_a_user_terminates_its_sessions(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let mut u = f.user("ann@example.com");
    store.create_user(&u, None).await.unwrap();
    let bystander = f.user("bob@example.com");
    store.create_user(&bystander, None).await.unwrap();
    let role = f.role("deployer");
    store.create_role(&role).await.unwrap();
    let (login, dl) = login_session(&mut f, &u, T0);
    let (assumed, da) = f.session(&u, Some(&role), T0);
    let (mut gateway, dg) = f.session(&u, None, T0);
    gateway.kind = SessionKind::Gateway;
    let (theirs, dt) = login_session(&mut f, &bystander, T0);
    store.create_session(&login, &dl).await.unwrap();
    store.create_session(&assumed, &da).await.unwrap();
    store.create_gateway_session(&gateway, &dg, "sealed", T0.plus_secs(3_600)).await.unwrap();
    store.create_session(&theirs, &dt).await.unwrap();

    u.status = UserStatus::Disabled;
    let ended = store.update_user(&u, T0.plus_secs(5)).await.unwrap().expect("the user exists");
    let mut ids: Vec<SessionId> = ended.iter().map(|s| s.id).collect();
    ids.sort();
    let mut want = vec![login.id, assumed.id, gateway.id];
    want.sort();
    assert_eq!(ids, want);
    for s in &ended {
        assert_eq!(
            (s.status, s.end_reason, s.ended),
            (SessionStatus::Terminated, Some(EndReason::UserDisabled), Some(T0.plus_secs(5)))
        );
        assert_eq!(store.get_session(f.org, s.id).await.unwrap().as_ref(), Some(s));
    }
    assert_eq!(store.get_session(f.org, theirs.id).await.unwrap().unwrap().status, SessionStatus::Active);

    u.status = UserStatus::Active;
    assert_eq!(store.update_user(&u, T0.plus_secs(6)).await.unwrap(), Some(vec![]));
    for id in &want {
        assert_eq!(store.get_session(f.org, *id).await.unwrap().unwrap().status, SessionStatus::Terminated);
    }
    let active = store.list_active_sessions(f.org, u.id, None, T0.plus_secs(7), PageRequest::first(10)).await.unwrap();
    assert_eq!(active.total, 0, "enabling the user revives nothing");
}

pub async fn sessions_touch_sweep_and_purge(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let u = f.user("ann@example.com");
    store.create_user(&u, None).await.unwrap();
    let (busy, d1) = login_session(&mut f, &u, T0);
    let (idle, d2) = login_session(&mut f, &u, T0);
    store.create_login_session(&busy, &d1, 10, T0).await.unwrap();
    store.create_login_session(&idle, &d2, 10, T0).await.unwrap();
    store.touch_session(f.org, busy.id, T0.plus_secs(500)).await.unwrap();
    // An older touch never moves activity back.
    store.touch_session(f.org, busy.id, T0.plus_secs(100)).await.unwrap();
    let read = store.get_session(f.org, busy.id).await.unwrap().unwrap();
    assert_eq!(read.last_activity, T0.plus_secs(500));
    assert_eq!(store.sweep_sessions(T0.plus_secs(700)).await.unwrap(), 1, "only the idle one ends");
    let idle_read = store.get_session(f.org, idle.id).await.unwrap().unwrap();
    assert_eq!(idle_read.end_reason, Some(EndReason::IdleTimeout));
    assert_eq!(idle_read.ended, Some(T0.plus_secs(600)));
    assert_eq!(store.get_session(f.org, busy.id).await.unwrap().unwrap().status, SessionStatus::Active);
    assert_eq!(store.sweep_sessions(T0.plus_secs(4_000)).await.unwrap(), 1);
    let busy_read = store.get_session(f.org, busy.id).await.unwrap().unwrap();
    assert_eq!(busy_read.end_reason, Some(EndReason::IdleTimeout), "idle deadline came before expiry");
    assert_eq!(store.purge_sessions(T0.plus_secs(601)).await.unwrap(), 1);
    assert!(store.get_session(f.org, idle.id).await.unwrap().is_none());
    assert!(store.get_session(f.org, busy.id).await.unwrap().is_some());
}

fn q(filter: Option<&str>, order: &str, top: u32) -> SessionQuery {
    use tessera_domain::filter::{parse_filter, parse_orderby};
    SessionQuery {
        filter: filter.map(|f| parse_filter(f, &SESSION_SCHEMA, T0.plus_secs(1_000)).unwrap()),
        order: if order.is_empty() { vec![] } else { parse_orderby(order, &SESSION_SCHEMA).unwrap() },
        top,
        skip: 0,
        after: None,
        count: true,
        rows: true,
    }
}

pub async fn session_query_filters_orders_and_pages(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let ann = f.user("ann%_@example.com");
    let bob = f.user("bob@example.com");
    store.create_user(&ann, None).await.unwrap();
    store.create_user(&bob, None).await.unwrap();
    let mut ids = vec![];
    for i in 0..10 {
        let who = if i % 2 == 0 { &ann } else { &bob };
        let (mut s, d) = login_session(&mut f, who, T0.plus_secs(i * 10));
        s.failed_logins = i;
        store.create_login_session(&s, &d, 100, T0).await.unwrap();
        ids.push(s.id);
    }
    store.end_session(f.org, ids[3], EndReason::Terminated, T0.plus_secs(500)).await.unwrap();
    // Another organization's sessions never show.
    let other = OrgId::generate(&mut f.rng);
    let r = store.query_sessions(other, &q(None, "", 100)).await.unwrap();
    assert_eq!((r.count, r.sessions.len()), (Some(0), 0));

    let r = store.query_sessions(f.org, &q(Some("status eq 'Terminated'"), "", 100)).await.unwrap();
    assert_eq!(r.sessions.iter().map(|s| s.id).collect::<Vec<_>>(), vec![ids[3]]);
    // '%' and '_' are literal, and matching is case-sensitive.
    let r = store.query_sessions(f.org, &q(Some("contains(user_id_or_email, '%_')"), "", 100)).await.unwrap();
    assert_eq!(r.count, Some(5));
    let r = store.query_sessions(f.org, &q(Some("startswith(user_id_or_email, 'BOB')"), "", 100)).await.unwrap();
    assert_eq!(r.count, Some(0));
    let r = store
        .query_sessions(f.org, &q(Some("endswith(user_id_or_email, 'example.com') and failed_logins ge 8"), "", 100))
        .await
        .unwrap();
    assert_eq!(r.count, Some(2));
    let r = store
        .query_sessions(f.org, &q(Some("failed_logins in (1, 2, 3) and not (status eq 'Terminated')"), "", 100))
        .await
        .unwrap();
    assert_eq!(r.sessions.iter().map(|s| s.failed_logins).collect::<Vec<_>>(), vec![1, 2]);
    let r = store.query_sessions(f.org, &q(Some("end_time eq null"), "", 100)).await.unwrap();
    assert_eq!(r.count, Some(9));
    let r = store.query_sessions(f.org, &q(Some("create_time ge now() sub PT950S"), "", 100)).await.unwrap();
    assert_eq!(r.count, Some(5), "created at T0+50 and later");

    // Ordering with paging by $skip and by keyset agree.
    let mut page = q(None, "failed_logins desc", 4);
    let first = store.query_sessions(f.org, &page).await.unwrap();
    assert_eq!(first.sessions.iter().map(|s| s.failed_logins).collect::<Vec<_>>(), vec![9, 8, 7, 6]);
    assert_eq!(first.count, Some(10));
    page.after = first.next.clone();
    let second = store.query_sessions(f.org, &page).await.unwrap();
    assert_eq!(second.sessions.iter().map(|s| s.failed_logins).collect::<Vec<_>>(), vec![5, 4, 3, 2]);
    page.after = second.next.clone();
    let third = store.query_sessions(f.org, &page).await.unwrap();
    assert_eq!(third.sessions.iter().map(|s| s.failed_logins).collect::<Vec<_>>(), vec![1, 0]);
    assert!(third.next.is_none());
    let mut skipped = q(None, "failed_logins desc", 4);
    skipped.skip = 4;
    assert_eq!(store.query_sessions(f.org, &skipped).await.unwrap().sessions, second.sessions);
    // Ties on the sort key still page without overlap (insertion order breaks them).
    let mut by_user = q(None, "user_id_or_email", 3);
    let mut seen = vec![];
    loop {
        let r = store.query_sessions(f.org, &by_user).await.unwrap();
        seen.extend(r.sessions.iter().map(|s| s.id));
        match r.next {
            Some(n) => by_user.after = Some(n),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!((seen.len(), sorted.len()), (10, 10));
    let mut count_only = q(Some("kind eq 'login'"), "", 10);
    count_only.rows = false;
    let r = store.query_sessions(f.org, &count_only).await.unwrap();
    assert_eq!((r.count, r.sessions.len()), (Some(10), 0));
}

/// A NUL in a filter's text and a skip token that does not fit its order are refused
/// alike by every backend, as invalid input and never as an outage or a failure.
pub async fn sessions_aggregate_by_group(store: &dyn Store) {
    use tessera_domain::filter::{MAX_GROUPS, parse_apply};
    let mut f = Fixture::new(store).await;
    let ann = f.user("ann@example.com");
    let bob = f.user("bob@example.com");
    store.create_user(&ann, None).await.unwrap();
    store.create_user(&bob, None).await.unwrap();
    let mut ids = vec![];
    for i in 0..6 {
        let who = if i < 4 { &ann } else { &bob };
        let (mut s, d) = login_session(&mut f, who, T0.plus_secs(i * 10));
        s.failed_logins = i;
        store.create_login_session(&s, &d, 100, T0).await.unwrap();
        ids.push(s.id);
    }
    store.end_session(f.org, ids[0], EndReason::Terminated, T0.plus_secs(500)).await.unwrap();
    let apply = |t: &str| parse_apply(t, &SESSION_SCHEMA, T0.plus_secs(1_000)).unwrap();
    let rows = store
        .aggregate_sessions(
            f.org,
            &apply("groupby((UserIdOrEmail,status),aggregate($count as n, failed_logins with max as worst, failed_logins with average as avg, create_time with min as first))"),
        )
        .await
        .unwrap();
    let t = |s: &str| Cell::Text(s.into());
    assert_eq!(
        rows,
        vec![
            vec![
                t("ann@example.com"),
                t("Active"),
                Cell::Int(3),
                Cell::Int(3),
                Cell::Float(2.0),
                Cell::Time(T0.plus_secs(10))
            ],
            vec![t("ann@example.com"), t("Terminated"), Cell::Int(1), Cell::Int(0), Cell::Float(0.0), Cell::Time(T0)],
            vec![
                t("bob@example.com"),
                t("Active"),
                Cell::Int(2),
                Cell::Int(5),
                Cell::Float(4.5),
                Cell::Time(T0.plus_secs(40))
            ],
        ]
    );
    // One row without grouping; the filter applies first; nulls are values too.
    let rows = store
        .aggregate_sessions(f.org, &apply("filter(failed_logins ge 2)/aggregate($count as n, end_time with max as e, user_id with countdistinct as users)"))
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![Cell::Int(4), Cell::Null, Cell::Int(2)]]);
    let rows = store.aggregate_sessions(f.org, &apply("groupby((end_reason))")).await.unwrap();
    assert_eq!(rows, vec![vec![t("terminated")], vec![Cell::Null]], "NULL sorts last");
    // Another organization sees nothing of these.
    let other = OrgId::generate(&mut f.rng);
    let rows = store.aggregate_sessions(other, &apply("aggregate($count as n)")).await.unwrap();
    assert_eq!(rows, vec![vec![Cell::Int(0)]]);
    let rows = store.aggregate_sessions(other, &apply("groupby((kind))")).await.unwrap();
    assert!(rows.is_empty());
    // The metrics' gauge: live sessions by kind, in every organization, as authentication sees them.
    assert_eq!(store.count_live_sessions(T0.plus_secs(60)).await.unwrap(), vec![("login".to_owned(), 5)]);
    assert_eq!(store.count_live_sessions(T0.plus_secs(400 * 86_400)).await.unwrap(), vec![]);
    // The row cap lets a caller see there are too many groups.
    let rows = store.aggregate_sessions(f.org, &apply("groupby((moid))")).await.unwrap();
    assert!(rows.len() <= MAX_GROUPS + 1);
}

pub async fn values_no_database_can_hold_are_invalid_everywhere(store: &dyn Store) {
    let f = Fixture::new(store).await;
    let invalid = |r: StoreResult<SessionQueryResult>, field: &str| match r {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, field, "{e}"),
        other => panic!("expected an invalid {field}, got {other:?}"),
    };
    let mut nul = q(None, "", 10);
    nul.filter = Some(tessera_domain::filter::Expr::Compare {
        field: SESSION_SCHEMA.fields.iter().find(|d| d.name == "session_name").unwrap(),
        op: tessera_domain::filter::CmpOp::Eq,
        value: tessera_domain::filter::Value::Text("a\0b".into()),
    });
    invalid(store.query_sessions(f.org, &nul).await, "$filter");
    // Skip tokens are the backend's own: one that does not decode, or that continues another
    // order than the one it is given with, is refused naming the parameter.
    let mut f = f;
    let u = f.user("tokens@example.com");
    store.create_user(&u, None).await.unwrap();
    for i in 0..3 {
        let (s, d) = login_session(&mut f, &u, T0.plus_secs(i));
        store.create_login_session(&s, &d, 100, T0).await.unwrap();
    }
    let token = |order: &'static str| async move {
        let r = store.query_sessions(f.org, &q(None, order, 1)).await.unwrap();
        r.next.expect("more rows follow")
    };
    let by_time = token("create_time").await;
    let by_email = token("user_id_or_email").await;
    for (order, after) in [
        ("create_time", by_email),
        ("user_id_or_email", by_time.clone()),
        ("status,create_time", by_time.clone()),
        ("", PageToken::new("not a token".into())),
        ("create_time", PageToken::new(String::new())),
    ] {
        let mut page = q(None, order, 10);
        page.after = Some(after);
        invalid(store.query_sessions(f.org, &page).await, "$skiptoken");
    }
    let mut fits = q(None, "create_time", 10);
    fits.after = Some(by_time);
    assert_eq!(store.query_sessions(f.org, &fits).await.unwrap().sessions.len(), 2);
    match store.list_users(f.org, PageRequest { per_page: 3, cursor: Some(PageToken::new("n:1".into())) }).await {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "cursor"),
        other => panic!("expected an invalid cursor, got {other:?}"),
    }
}
