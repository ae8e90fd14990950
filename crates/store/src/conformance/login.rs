//! Conformance cases: sign-in state, login sessions and their cap.

use super::*;

pub async fn sign_in_state_round_trips(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let policy = LockoutPolicy::default();
    let u = f.user("ann@example.com");
    store.create_user(&u, Some("$argon2id$fake")).await.unwrap();
    let found = store.find_login(&Email::parse("ANN@example.com").unwrap()).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].user, u);
    assert_eq!(found[0].password_hash.as_deref(), Some("$argon2id$fake"));
    assert_eq!(found[0].state, LoginState::default());
    // Each claim is stored as the policy computes it.
    let mut expected = LoginState::default();
    for i in 0..5 {
        let claim = store.claim_login_attempt(f.org, u.id, T0.plus_secs(i), &policy).await.unwrap().unwrap();
        assert_eq!(claim, policy.claim(expected.clone(), T0.plus_secs(i)));
        expected = claim.after;
    }
    assert!(expected.is_locked(T0.plus_secs(5)));
    let refused = store.claim_login_attempt(f.org, u.id, T0.plus_secs(5), &policy).await.unwrap().unwrap();
    assert!(!refused.admitted);
    assert_eq!(store.find_login(&u.email).await.unwrap()[0].state, expected);
    // Clearing the lock keeps the count the user will be told of.
    assert!(store.clear_login_lock(f.org, u.id).await.unwrap());
    let cleared = store.find_login(&u.email).await.unwrap()[0].state.clone();
    assert!(!cleared.is_locked(T0.plus_secs(5)));
    assert_eq!((cleared.failed_logins, cleared.window_failures, cleared.lock_count), (5, 0, 0));
    let claim = store.claim_login_attempt(f.org, u.id, T0.plus_secs(6), &policy).await.unwrap().unwrap();
    assert!(claim.admitted);
    assert!(
        store.record_login_success(f.org, u.id, claim.attempt, T0.plus_secs(7), "10.0.0.9", &policy).await.unwrap()
    );
    let state = store.find_login(&u.email).await.unwrap()[0].state.clone();
    assert_eq!(state, policy.after_success(&claim.after, claim.attempt, T0.plus_secs(7), "10.0.0.9"));
    assert_eq!((state.failed_logins, state.last_login_client.as_str()), (0, "10.0.0.9"));

    assert!(store.set_password(f.org, u.id, "$argon2id$new").await.unwrap());
    let found = store.find_login(&u.email).await.unwrap();
    assert_eq!(found[0].password_hash.as_deref(), Some("$argon2id$new"));
    assert!(store.find_login(&Email::parse("nobody@example.com").unwrap()).await.unwrap().is_empty());
    let other = OrgId::generate(&mut f.rng);
    assert!(!store.set_password(other, u.id, "x").await.unwrap(), "other orgs untouched");
    assert!(store.claim_login_attempt(other, u.id, T0, &policy).await.unwrap().is_none());
    assert!(!store.clear_login_lock(other, u.id).await.unwrap());

    assert_eq!(store.get_session_limits(f.org).await.unwrap(), SessionLimits::default());
    let limits = SessionLimits::new(600, 3_600, 2).unwrap();
    store.put_session_limits(f.org, &limits).await.unwrap();
    assert_eq!(store.get_session_limits(f.org).await.unwrap(), limits);
    let limits = SessionLimits::new(900, 7_200, 3).unwrap();
    store.put_session_limits(f.org, &limits).await.unwrap();
    assert_eq!(store.get_session_limits(f.org).await.unwrap(), limits);
}

/// Fifty wrong guesses at once, as parallel requests on one or several nodes make them:
/// exactly `max_failures` are admitted to a password check, and the account ends locked.
pub async fn parallel_sign_in_claims_admit_exactly_the_allowed_failures(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let policy = LockoutPolicy::default();
    let u = f.user("ann@example.com");
    store.create_user(&u, Some("$argon2id$fake")).await.unwrap();
    let claims = futures_util::future::join_all((0..50).map(|_| store.claim_login_attempt(f.org, u.id, T0, &policy)))
        .await
        .into_iter()
        .map(|c| c.unwrap().unwrap())
        .collect::<Vec<_>>();
    let admitted: Vec<i64> = claims.iter().filter(|c| c.admitted).map(|c| c.attempt).collect();
    assert_eq!(admitted.len() as i64, policy.max_failures, "admitted attempts: {admitted:?}");
    let mut numbers = admitted.clone();
    numbers.sort();
    assert_eq!(numbers, (1..=policy.max_failures).collect::<Vec<_>>(), "each admitted attempt has its own number");
    let state = store.find_login(&u.email).await.unwrap()[0].state.clone();
    assert!(state.is_locked(T0));
    assert_eq!((state.failed_logins, state.attempts, state.lock_count), (policy.max_failures, policy.max_failures, 1));
}

pub async fn login_sessions_are_capped_per_user(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let u = f.user("ann@example.com");
    store.create_user(&u, None).await.unwrap();
    let mut ids = vec![];
    for i in 0..3 {
        let (s, d) = login_session(&mut f, &u, T0.plus_secs(i));
        let ended = store.create_login_session(&s, &d, 2, T0.plus_secs(i)).await.unwrap();
        if i < 2 {
            assert!(ended.is_empty());
        } else {
            assert_eq!(ended.len(), 1);
            assert_eq!(ended[0].id, ids[0], "the oldest makes room");
            assert_eq!(ended[0].end_reason, Some(EndReason::Replaced));
            assert_eq!(ended[0].status, SessionStatus::Ended);
        }
        ids.push(s.id);
    }
    let active = store
        .list_active_sessions(f.org, u.id, Some(SessionKind::Login), T0.plus_secs(5), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(active.items.iter().map(|s| s.id).collect::<Vec<_>>(), ids[1..].to_vec());
    let ended =
        store.end_user_sessions(f.org, u.id, EndReason::Terminated, T0.plus_secs(9), Some(ids[2])).await.unwrap();
    assert_eq!(ended.iter().map(|s| s.id).collect::<Vec<_>>(), vec![ids[1]]);
    let left = store.list_active_sessions(f.org, u.id, None, T0.plus_secs(9), PageRequest::first(10)).await.unwrap();
    assert_eq!(left.items.len(), 1);
    assert_eq!(left.items[0].id, ids[2]);
}
