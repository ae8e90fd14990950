//! Conformance cases: organizations, users, keys, groups, policies, roles and trusts.

use super::*;

pub async fn bootstrap_runs_once(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let other = OrgId::generate(&mut f.rng);
    let again = f.bootstrap_for(other);
    assert!(!store.bootstrap(&again).await.unwrap(), "a second bootstrap must not write");
    assert!(store.get_organization(again.organization.id).await.unwrap().is_none());
    let org = store.get_organization(f.org).await.unwrap().unwrap();
    assert_eq!(org.name, "default");
}

pub async fn users_round_trip_and_conflict(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let mut u = f.user("ann@example.com");
    store.create_user(&u, None).await.unwrap();
    assert_eq!(store.get_user(f.org, u.id).await.unwrap(), Some(u.clone()));
    let dup = f.user("ann@example.com");
    assert_eq!(
        store.create_user(&dup, None).await,
        Err(StoreError::Conflict(Conflict::UserEmail("ann@example.com".into())))
    );
    u.first_name = "Annie".into();
    u.status = UserStatus::Disabled;
    assert_eq!(store.update_user(&u, T0).await.unwrap(), Some(vec![]));
    assert_eq!(store.get_user(f.org, u.id).await.unwrap(), Some(u.clone()));
    let ghost = f.user("ghost@example.com");
    assert!(store.update_user(&ghost, T0).await.unwrap().is_none());
}

pub async fn organizations_never_mix(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let other = OrgId::generate(&mut f.rng);
    let second = Organization { id: other, name: "second".into(), date_created: T0 };
    store.create_organization(&second).await.unwrap();
    assert_eq!(store.get_organization(other).await.unwrap(), Some(second.clone()));
    assert!(matches!(store.create_organization(&second).await, Err(StoreError::Conflict(_))));
    let u = f.user("ann@example.com");
    store.create_user(&u, None).await.unwrap();
    assert!(store.get_user(other, u.id).await.unwrap().is_none());
    assert_eq!(store.list_users(other, PageRequest::first(10)).await.unwrap().total, 0);
    assert!(!store.delete_user(other, u.id, T0).await.unwrap());
    let p = f.policy("p", r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#);
    store.create_policy(&p).await.unwrap();
    assert!(store.get_policy(other, p.id).await.unwrap().is_none());
    let attach = store.attach_policy(other, p.id, PolicyTarget::User(u.id)).await;
    assert_eq!(attach, Err(StoreError::NotFound(Entity::Policy)), "another organization's policy is not found");
    assert!(store.user_policy_documents(other, u.id).await.unwrap().is_empty());
}

pub async fn paging_walks_forward_and_back(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let mut created = vec![];
    for i in 0..7 {
        let u = f.user(&format!("u{i}@example.com"));
        store.create_user(&u, None).await.unwrap();
        created.push(u.id);
    }
    // The bootstrap admin is first.
    let p1 = store.list_users(f.org, PageRequest::first(3)).await.unwrap();
    assert_eq!(p1.total, 8);
    assert_eq!(p1.items.len(), 3);
    assert!(p1.prev.is_none());
    let p2 = store.list_users(f.org, PageRequest { per_page: 3, cursor: p1.next.clone() }).await.unwrap();
    let p3 = store.list_users(f.org, PageRequest { per_page: 3, cursor: p2.next.clone() }).await.unwrap();
    assert_eq!(p3.items.len(), 2);
    assert!(p3.next.is_none());
    let walked: Vec<UserId> = [&p1, &p2, &p3].iter().flat_map(|p| p.items.iter().map(|u| u.id)).collect();
    assert_eq!(&walked[1..], &created[..]);
    let back = store.list_users(f.org, PageRequest { per_page: 3, cursor: p3.prev }).await.unwrap();
    assert_eq!(back.items, p2.items);
    let first = store.list_users(f.org, PageRequest { per_page: 3, cursor: back.prev }).await.unwrap();
    assert_eq!(first.items, p1.items);
    assert!(first.prev.is_none());
}

/// Every id on every page of the organization's users, walked from the first.
async fn all_user_ids(store: &dyn Store, org: OrgId) -> Vec<UserId> {
    let mut ids = vec![];
    let mut cursor = None;
    loop {
        let page = store.list_users(org, PageRequest { per_page: 50, cursor }).await.unwrap();
        ids.extend(page.items.iter().map(|u| u.id));
        let Some(next) = page.next else { return ids };
        cursor = Some(next);
    }
}

pub async fn users_total_follows_creates_and_deletes(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let total = |org| async move { store.list_users(org, PageRequest::first(2)).await.unwrap().total };
    assert_eq!(total(f.org).await, 1, "the bootstrap administrator");
    let mut users = vec![];
    for i in 0..5 {
        let u = f.user(&format!("u{i}@example.com"));
        store.create_user(&u, None).await.unwrap();
        users.push(u);
    }
    assert_eq!(total(f.org).await, 6);
    let dup = f.user("u0@example.com");
    assert!(matches!(store.create_user(&dup, None).await, Err(StoreError::Conflict(_))));
    assert_eq!(total(f.org).await, 6, "a refused create counts nothing");
    let other = OrgId::generate(&mut f.rng);
    store.create_organization(&Organization { id: other, name: "second".into(), date_created: T0 }).await.unwrap();
    assert_eq!(total(other).await, 0);
    for i in 0..2 {
        let mut u = f.user(&format!("u{i}@example.com"));
        u.org_id = other;
        store.create_user(&u, None).await.unwrap();
    }
    assert_eq!((total(f.org).await, total(other).await), (6, 2), "each organization counts its own");
    assert!(!store.delete_user(other, users[0].id, T0).await.unwrap());
    assert_eq!(total(f.org).await, 6, "another organization's delete removes nothing");
    assert!(store.delete_user(f.org, users[0].id, T0).await.unwrap());
    assert!(store.delete_user(f.org, users[1].id, T0).await.unwrap());
    assert!(!store.delete_user(f.org, users[1].id, T0).await.unwrap());
    assert_eq!((total(f.org).await, total(other).await), (4, 2));
    let first = store.list_users(f.org, PageRequest::first(3)).await.unwrap();
    let second = store.list_users(f.org, PageRequest { per_page: 3, cursor: first.next }).await.unwrap();
    assert_eq!((first.total, second.total, second.items.len()), (4, 4, 1), "every page carries the total");
    assert_eq!(all_user_ids(store, f.org).await.len(), 4);
}

pub async fn parallel_user_writes_keep_the_total_exact(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let doomed: Vec<User> = (0..10).map(|i| f.user(&format!("doomed{i}@example.com"))).collect();
    for u in &doomed {
        store.create_user(u, None).await.unwrap();
    }
    let created: Vec<User> = (0..40).map(|i| f.user(&format!("new{i}@example.com"))).collect();
    let creates = futures_util::future::join_all(created.iter().map(|u| store.create_user(u, None)));
    let deletes = futures_util::future::join_all(doomed.iter().map(|u| store.delete_user(f.org, u.id, T0)));
    let (creates, deletes) = futures_util::future::join(creates, deletes).await;
    assert!(creates.iter().all(Result::is_ok), "{creates:?}");
    assert!(deletes.iter().all(|d| d == &Ok(true)), "{deletes:?}");
    let page = store.list_users(f.org, PageRequest::first(10)).await.unwrap();
    assert_eq!(page.total, 41, "the administrator and the 40 created");
    assert_eq!(all_user_ids(store, f.org).await.len(), 41);
}

pub async fn api_keys_resolve_by_digest_only(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let u = f.user("ann@example.com");
    store.create_user(&u, None).await.unwrap();
    let token = mint(TokenKind::ApiKey, &mut f.rng);
    let key = ApiKey {
        id: ApiKeyId::generate(&mut f.rng),
        org_id: f.org,
        user_id: u.id,
        name: "ci".into(),
        digest: token.digest,
        date_created: T0,
        date_expire: Some(T0.plus_secs(60)),
    };
    store.create_api_key(&key).await.unwrap();
    match store.find_credential(TokenKind::ApiKey, &token.digest).await.unwrap() {
        Some(Credential::ApiKey { key: k, user }) => {
            assert_eq!(k, key);
            assert_eq!(user, u);
        }
        other => panic!("expected the api key, got {other:?}"),
    }
    assert!(store.find_credential(TokenKind::ApiKey, &TokenDigest::of("nope")).await.unwrap().is_none());
    let page = store.list_api_keys(f.org, u.id, PageRequest::first(10)).await.unwrap();
    assert_eq!(page.items, vec![key.clone()]);
    assert!(!store.delete_api_key(f.org, UserId::generate(&mut f.rng), key.id).await.unwrap());
    assert!(store.delete_api_key(f.org, u.id, key.id).await.unwrap());
    assert!(store.find_credential(TokenKind::ApiKey, &token.digest).await.unwrap().is_none());
}

pub async fn groups_and_members(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let u = f.user("ann@example.com");
    store.create_user(&u, None).await.unwrap();
    let mut g = Group {
        id: GroupId::generate(&mut f.rng),
        org_id: f.org,
        display_name: "ops".into(),
        description: String::new(),
        date_created: T0,
    };
    store.create_group(&g).await.unwrap();
    assert!(store.add_group_member(f.org, g.id, u.id).await.unwrap());
    assert!(!store.add_group_member(f.org, g.id, u.id).await.unwrap(), "second add is a no-op");
    let missing = store.add_group_member(f.org, g.id, UserId::generate(&mut f.rng)).await;
    assert_eq!(missing, Err(StoreError::NotFound(Entity::User)));
    assert_eq!(store.groups_of_user(f.org, u.id).await.unwrap(), vec![g.id]);
    assert_eq!(store.group_names_of_user(f.org, u.id).await.unwrap(), vec!["ops".to_owned()]);
    let members = store.list_group_members(f.org, g.id, PageRequest::first(10)).await.unwrap();
    assert_eq!(members.items, vec![u.clone()]);
    g.description = "on call".into();
    assert!(store.update_group(&g).await.unwrap());
    assert_eq!(store.get_group(f.org, g.id).await.unwrap(), Some(g.clone()));
    assert!(store.remove_group_member(f.org, g.id, u.id).await.unwrap());
    assert!(store.groups_of_user(f.org, u.id).await.unwrap().is_empty());
    assert!(store.group_names_of_user(f.org, u.id).await.unwrap().is_empty());
    assert!(store.delete_group(f.org, g.id).await.unwrap());
    assert!(store.get_group(f.org, g.id).await.unwrap().is_none());
    assert_eq!(store.list_groups(f.org, PageRequest::first(10)).await.unwrap().total, 0);
}

pub async fn policies_attach_and_resolve(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let u = f.user("ann@example.com");
    store.create_user(&u, None).await.unwrap();
    let g = Group {
        id: GroupId::generate(&mut f.rng),
        org_id: f.org,
        display_name: "g".into(),
        description: String::new(),
        date_created: T0,
    };
    store.create_group(&g).await.unwrap();
    store.add_group_member(f.org, g.id, u.id).await.unwrap();
    let direct = f.policy("direct", r#"{"Statement":[{"Effect":"Allow","Action":"iam.user.Read"}]}"#);
    let via_group = f.policy("group", r#"{"Statement":[{"Effect":"Deny","Action":"iam.user.Delete"}]}"#);
    let for_role = f.policy("role", r#"{"Statement":[{"Effect":"Allow","Action":"iam.role.*"}]}"#);
    for p in [&direct, &via_group, &for_role] {
        store.create_policy(p).await.unwrap();
    }
    let role = f.role("deployer");
    store.create_role(&role).await.unwrap();
    assert!(store.attach_policy(f.org, direct.id, PolicyTarget::User(u.id)).await.unwrap());
    assert!(!store.attach_policy(f.org, direct.id, PolicyTarget::User(u.id)).await.unwrap());
    assert!(store.attach_policy(f.org, via_group.id, PolicyTarget::Group(g.id)).await.unwrap());
    assert!(store.attach_policy(f.org, for_role.id, PolicyTarget::Role(role.id)).await.unwrap());

    let mut docs = store.user_policy_documents(f.org, u.id).await.unwrap();
    docs.sort_by_key(|d| d.statements[0].actions[0].as_str().to_owned());
    assert_eq!(docs, vec![via_group.document.clone(), direct.document.clone()]);
    assert_eq!(store.role_policy_documents(f.org, role.id).await.unwrap(), vec![for_role.document.clone()]);
    let attached =
        store.list_attached_policies(f.org, PolicyTarget::Role(role.id), PageRequest::first(10)).await.unwrap();
    assert_eq!(attached.items, vec![for_role.clone()]);
    assert_eq!(store.list_policy_users(f.org, direct.id, PageRequest::first(10)).await.unwrap().items, vec![u.clone()]);
    assert_eq!(
        store.list_policy_groups(f.org, via_group.id, PageRequest::first(10)).await.unwrap().items,
        vec![g.clone()]
    );

    let mut changed = direct.clone();
    changed.document = PolicyDocument::allow_all();
    changed.name = "renamed".into();
    assert!(store.update_policy(&changed).await.unwrap());
    assert_eq!(store.get_policy(f.org, direct.id).await.unwrap(), Some(changed));

    assert!(store.detach_policy(f.org, direct.id, PolicyTarget::User(u.id)).await.unwrap());
    assert!(!store.detach_policy(f.org, direct.id, PolicyTarget::User(u.id)).await.unwrap());
    assert!(store.delete_policy(f.org, via_group.id).await.unwrap());
    assert!(store.user_policy_documents(f.org, u.id).await.unwrap().is_empty());
    let dup = Policy { id: PolicyId::generate(&mut f.rng), ..for_role.clone() };
    assert_eq!(store.create_policy(&dup).await, Err(StoreError::Conflict(Conflict::PolicyName(dup.name.clone()))));
}

pub async fn roles_and_trusts_round_trip(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let u = f.user("ann@example.com");
    store.create_user(&u, None).await.unwrap();
    let mut role = f.role("deployer");
    store.create_role(&role).await.unwrap();
    assert_eq!(
        store.create_role(&Role { id: RoleId::generate(&mut f.rng), ..role.clone() }).await,
        Err(StoreError::Conflict(Conflict::RoleName("deployer".into())))
    );
    role.max_session_duration = MaxSessionDuration::new(900).unwrap();
    role.role_type = RoleType::Assignable;
    assert!(store.update_role(&role).await.unwrap());
    assert_eq!(store.get_role(f.org, role.id).await.unwrap(), Some(role.clone()));
    let other_role = f.role("reader");
    store.create_role(&other_role).await.unwrap();

    let mut trust = RoleTrust {
        id: TrustId::generate(&mut f.rng),
        org_id: f.org,
        role_id: role.id,
        trust_type: "TemporaryAssumption".into(),
        principal: TrustPrincipal::User(u.id),
        conditions: TrustConditions {
            ip_ranges: vec![parse_ip_range("10.0.0.0/8").unwrap(), parse_ip_range("2001:db8::/32").unwrap()],
            time_of_day: Some(
                TimeOfDay::new(Some(22), Some(6), Some("+05:30"), Some(&["friday".to_owned(), "sunday".to_owned()]))
                    .unwrap(),
            ),
            oidc_claims: Default::default(),
        },
        valid_until: Some(T0.plus_secs(86_400)),
        date_created: T0,
    };
    store.create_trust(&trust).await.unwrap();
    let other_trust = RoleTrust { id: TrustId::generate(&mut f.rng), role_id: other_role.id, ..trust.clone() };
    store.create_trust(&other_trust).await.unwrap();
    assert_eq!(store.get_trust(f.org, trust.id).await.unwrap(), Some(trust.clone()));
    let by_role = store.list_trusts(f.org, Some(role.id), PageRequest::first(10)).await.unwrap();
    assert_eq!(by_role.items, vec![trust.clone()]);
    assert_eq!(store.list_trusts(f.org, None, PageRequest::first(10)).await.unwrap().total, 2);
    trust.conditions = TrustConditions::default();
    trust.valid_until = None;
    assert!(store.update_trust(&trust).await.unwrap());
    assert_eq!(store.get_trust(f.org, trust.id).await.unwrap(), Some(trust.clone()));
    let bad = RoleTrust { id: TrustId::generate(&mut f.rng), role_id: RoleId::generate(&mut f.rng), ..trust.clone() };
    assert_eq!(store.create_trust(&bad).await, Err(StoreError::NotFound(Entity::Role)));
    assert!(store.delete_role(f.org, role.id).await.unwrap());
    assert!(store.get_trust(f.org, trust.id).await.unwrap().is_none(), "a role's trusts go with it");
    assert!(store.delete_trust(f.org, other_trust.id).await.unwrap());
    assert!(!store.delete_trust(f.org, other_trust.id).await.unwrap());
}

pub async fn deleting_a_user_cleans_up(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let u = f.user("ann@example.com");
    store.create_user(&u, None).await.unwrap();
    let token = mint(TokenKind::ApiKey, &mut f.rng);
    let key = ApiKey {
        id: ApiKeyId::generate(&mut f.rng),
        org_id: f.org,
        user_id: u.id,
        name: "k".into(),
        digest: token.digest,
        date_created: T0,
        date_expire: None,
    };
    store.create_api_key(&key).await.unwrap();
    let (s, d) = f.session(&u, None, T0);
    store.create_session(&s, &d).await.unwrap();
    assert!(store.delete_user(f.org, u.id, T0.plus_secs(5)).await.unwrap());
    assert!(store.get_user(f.org, u.id).await.unwrap().is_none());
    assert!(store.find_credential(TokenKind::ApiKey, &token.digest).await.unwrap().is_none());
    let kept = store.get_session(f.org, s.id).await.unwrap().expect("the record is kept for audit");
    assert_eq!(kept.status, SessionStatus::Terminated);
    assert!(
        store.find_credential(TokenKind::LoginSession, &d).await.unwrap().is_none(),
        "a deleted user's sessions stop working"
    );
    // The same email can be used again.
    store.create_user(&f.user("ann@example.com"), None).await.unwrap();
}

/// More trusts than any page holds: the assume path reads them all.
pub async fn a_roles_trusts_are_read_in_full(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let role = f.role("deployer");
    store.create_role(&role).await.unwrap();
    let n = PageRequest::MAX_PER_PAGE as usize + 1;
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let u = f.user(&format!("u{i}@example.com"));
        store.create_user(&u, None).await.unwrap();
        let trust = RoleTrust {
            id: TrustId::generate(&mut f.rng),
            org_id: f.org,
            role_id: role.id,
            trust_type: "TemporaryAssumption".into(),
            principal: TrustPrincipal::User(u.id),
            conditions: TrustConditions::default(),
            valid_until: None,
            date_created: T0,
        };
        store.create_trust(&trust).await.unwrap();
        users.push(u.id);
    }
    let trusts = store.role_trusts(f.org, role.id).await.unwrap();
    let principals: Vec<UserId> = trusts
        .iter()
        .map(|t| match t.principal {
            TrustPrincipal::User(u) => u,
            TrustPrincipal::Group(_) | TrustPrincipal::OidcIssuer(_) => panic!("only user trusts were made"),
        })
        .collect();
    assert_eq!(principals, users, "every trust, in creation order");
    assert!(store.role_trusts(OrgId::generate(&mut f.rng), role.id).await.unwrap().is_empty());
}
