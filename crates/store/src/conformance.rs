//! The store conformance suite: written once, run against every backend.
//!
//! A backend's test file calls [`store_conformance_tests!`] with an async expression that
//! yields a fresh, empty store; each case below becomes one test there.

use rand::SeedableRng;
use rand::rngs::StdRng;
use tessera_domain::Timestamp;
use tessera_domain::audit::{ActorKind, AuditEvent, AuditResult};
use tessera_domain::ids::*;
use tessera_domain::login::{LockoutPolicy, LoginState, SessionLimits};
use tessera_domain::policy::PolicyDocument;
use tessera_domain::role::{MaxSessionDuration, Role, RoleType};
use tessera_domain::session::{EndReason, Principal, Session, SessionKind, SessionStatus};
use tessera_domain::token::{TokenDigest, TokenKind, mint};
use tessera_domain::trust::{HourWindow, RoleTrust, TrustConditions, TrustPrincipal, parse_ip_range};
use tessera_domain::user::{ApiKey, Email, Group, Organization, User, UserStatus};

use crate::*;

/// Generates one `#[tokio::test]` per conformance case. `$make` is an async expression
/// returning a value that derefs to a `Store` (for example `Arc<dyn Store>` or a guard that
/// drops a temporary database).
#[macro_export]
macro_rules! store_conformance_tests {
    // `$make` yields `Option<store>`; `None` skips the case (e.g. no database configured).
    (optional $make:expr) => {
        $crate::store_conformance_tests!(@optional $make;
            bootstrap_runs_once, users_round_trip_and_conflict, organizations_never_mix,
            paging_walks_forward_and_back, api_keys_resolve_by_digest_only, groups_and_members,
            policies_attach_and_resolve, roles_and_trusts_round_trip, sessions_live_and_end,
            deleting_a_user_cleans_up, sign_in_state_round_trips, login_sessions_are_capped_per_user,
            sessions_touch_sweep_and_purge, session_query_filters_orders_and_pages,
            gateway_objects_round_trip, gateway_keys_rekey_and_expire,
            parallel_sign_in_claims_admit_exactly_the_allowed_failures, disabling_a_user_terminates_its_sessions,
            a_roles_trusts_are_read_in_full, values_no_database_can_hold_are_invalid_everywhere,
            audit_events_commit_or_roll_back_with_their_change, every_change_carries_its_audit_event,
            audit_query_filters_orders_pages_and_purges);
    };
    (@optional $make:expr; $($case:ident),*) => {$(
        #[tokio::test]
        async fn $case() {
            let Some(store) = $make.await else { return };
            $crate::conformance::$case(&*store).await;
        }
    )*};
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            bootstrap_runs_once, users_round_trip_and_conflict, organizations_never_mix,
            paging_walks_forward_and_back, api_keys_resolve_by_digest_only, groups_and_members,
            policies_attach_and_resolve, roles_and_trusts_round_trip, sessions_live_and_end,
            deleting_a_user_cleans_up, sign_in_state_round_trips, login_sessions_are_capped_per_user,
            sessions_touch_sweep_and_purge, session_query_filters_orders_and_pages,
            gateway_objects_round_trip, gateway_keys_rekey_and_expire,
            parallel_sign_in_claims_admit_exactly_the_allowed_failures, disabling_a_user_terminates_its_sessions,
            a_roles_trusts_are_read_in_full, values_no_database_can_hold_are_invalid_everywhere,
            audit_events_commit_or_roll_back_with_their_change, every_change_carries_its_audit_event,
            audit_query_filters_orders_pages_and_purges);
    };
    (@cases $make:expr; $($case:ident),*) => {$(
        #[tokio::test]
        async fn $case() {
            let store = $make.await;
            $crate::conformance::$case(&*store).await;
        }
    )*};
}

struct Fixture {
    rng: StdRng,
    org: OrgId,
}

const T0: Timestamp = Timestamp(1_800_000_000);

impl Fixture {
    async fn new(store: &dyn Store) -> Self {
        let mut rng = StdRng::seed_from_u64(42);
        let org = OrgId::generate(&mut rng);
        let mut f = Self { rng, org };
        let b = f.bootstrap_for(org);
        assert!(store.bootstrap(&b).await.unwrap());
        f
    }

    fn bootstrap_for(&mut self, org: OrgId) -> Bootstrap {
        let admin = User {
            id: UserId::generate(&mut self.rng),
            org_id: org,
            email: Email::parse("admin@example.com").unwrap(),
            first_name: "Ada".into(),
            last_name: "Admin".into(),
            status: UserStatus::Active,
            date_created: T0,
        };
        let key = mint(TokenKind::ApiKey, &mut self.rng);
        Bootstrap {
            organization: Organization { id: org, name: "default".into(), date_created: T0 },
            policy: Policy {
                id: PolicyId::generate(&mut self.rng),
                org_id: org,
                name: "Administrator".into(),
                description: "everything".into(),
                document: PolicyDocument::allow_all(),
                date_created: T0,
            },
            api_key: ApiKey {
                id: ApiKeyId::generate(&mut self.rng),
                org_id: org,
                user_id: admin.id,
                name: "bootstrap".into(),
                digest: key.digest,
                date_created: T0,
                date_expire: None,
            },
            admin,
        }
    }

    fn user(&mut self, email: &str) -> User {
        User {
            id: UserId::generate(&mut self.rng),
            org_id: self.org,
            email: Email::parse(email).unwrap(),
            first_name: "First".into(),
            last_name: "Last".into(),
            status: UserStatus::Active,
            date_created: T0,
        }
    }

    fn policy(&mut self, name: &str, doc: &str) -> Policy {
        Policy {
            id: PolicyId::generate(&mut self.rng),
            org_id: self.org,
            name: name.into(),
            description: String::new(),
            document: PolicyDocument::from_json(serde_json_doc(doc), "d").unwrap(),
            date_created: T0,
        }
    }

    fn role(&mut self, name: &str) -> Role {
        Role {
            id: RoleId::generate(&mut self.rng),
            org_id: self.org,
            name: name.into(),
            description: "d".into(),
            role_type: RoleType::Assumable,
            max_session_duration: MaxSessionDuration::new(7_200).unwrap(),
            date_created: T0,
        }
    }

    fn session(&mut self, user: &User, role: Option<&Role>, created: Timestamp) -> (Session, TokenDigest) {
        let token = mint(TokenKind::RoleSession, &mut self.rng);
        let s = Session {
            id: SessionId::generate(&mut self.rng),
            org_id: self.org,
            handle: token.digest.handle(),
            kind: if role.is_some() { SessionKind::AssumedRole } else { SessionKind::Login },
            principal: Principal::user(user.id, user.email.as_str()),
            role_id: role.map(|r| r.id),
            role_name: role.map(|r| r.name.clone()).unwrap_or_default(),
            session_name: "s".into(),
            auth_method: "api_key".into(),
            duration: 3_600,
            bound_ip: Some("10.0.0.1".parse().unwrap()),
            source_ip: "127.0.0.1".into(),
            conditions_met: vec!["ip_address".into()],
            created,
            modified: created,
            expires: created.plus_secs(3_600),
            idle_timeout: None,
            last_activity: created,
            status: SessionStatus::Active,
            ended: None,
            end_reason: None,
            failed_logins: 0,
            last_login_time: None,
            last_login_client: String::new(),
        };
        (s, token.digest)
    }
}

fn serde_json_doc(doc: &str) -> tessera_domain::policy::PolicyDocumentJson {
    // The domain crate owns serde_json; go through its wire type.
    tessera_domain::policy::parse_document_json(doc).expect("test document parses")
}

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
    assert!(matches!(store.create_user(&dup, None).await, Err(StoreError::Conflict(_))));
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
    assert!(matches!(attach, Err(StoreError::MissingReference(_))), "{attach:?}");
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
    assert!(matches!(missing, Err(StoreError::MissingReference(_))), "{missing:?}");
    assert_eq!(store.groups_of_user(f.org, u.id).await.unwrap(), vec![g.id]);
    let members = store.list_group_members(f.org, g.id, PageRequest::first(10)).await.unwrap();
    assert_eq!(members.items, vec![u.clone()]);
    g.description = "on call".into();
    assert!(store.update_group(&g).await.unwrap());
    assert_eq!(store.get_group(f.org, g.id).await.unwrap(), Some(g.clone()));
    assert!(store.remove_group_member(f.org, g.id, u.id).await.unwrap());
    assert!(store.groups_of_user(f.org, u.id).await.unwrap().is_empty());
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
    assert!(matches!(store.create_policy(&dup).await, Err(StoreError::Conflict(_))));
}

pub async fn roles_and_trusts_round_trip(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let u = f.user("ann@example.com");
    store.create_user(&u, None).await.unwrap();
    let mut role = f.role("deployer");
    store.create_role(&role).await.unwrap();
    assert!(matches!(
        store.create_role(&Role { id: RoleId::generate(&mut f.rng), ..role.clone() }).await,
        Err(StoreError::Conflict(_))
    ));
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
            time_of_day: Some(HourWindow::new(22, 6).unwrap()),
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
    assert!(matches!(store.create_trust(&bad).await, Err(StoreError::MissingReference(_))));
    assert!(store.delete_role(f.org, role.id).await.unwrap());
    assert!(store.get_trust(f.org, trust.id).await.unwrap().is_none(), "a role's trusts go with it");
    assert!(store.delete_trust(f.org, other_trust.id).await.unwrap());
    assert!(!store.delete_trust(f.org, other_trust.id).await.unwrap());
}

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
            assert_eq!(user, u);
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
            TrustPrincipal::Group(_) => panic!("only user trusts were made"),
        })
        .collect();
    assert_eq!(principals, users, "every trust, in creation order");
    assert!(store.role_trusts(OrgId::generate(&mut f.rng), role.id).await.unwrap().is_empty());
}

/// A NUL in a filter's text and a skip token that does not fit its order are refused
/// alike by every backend, as invalid input and never as an outage or a failure.
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

fn login_session(f: &mut Fixture, user: &User, created: Timestamp) -> (Session, TokenDigest) {
    let (mut s, d) = f.session(user, None, created);
    s.kind = SessionKind::Login;
    s.idle_timeout = Some(600);
    s.bound_ip = None;
    (s, d)
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

fn gateway_object(f: &mut Fixture, kind: GatewayKind, name: Option<&str>, body: &str) -> GatewayObject {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut f.rng, &mut bytes);
    GatewayObject {
        org_id: f.org,
        kind,
        id: uuid::Uuid::from_bytes(bytes),
        name: name.map(str::to_owned),
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
    assert!(matches!(store.put_gateway_object(&dup, true).await, Err(StoreError::Conflict(_))));
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
    let (r, recorded) = audit::scope(e1.clone(), store.create_user(&ann, None)).await;
    r.unwrap();
    assert!(recorded);
    let stored = store.query_audit_events(org, &all_events()).await.unwrap();
    assert_eq!(stored.events, vec![e1.clone()], "the event is stored exactly as staged");

    // A failing write rolls its event back with it.
    let dup = User { id: UserId::generate(&mut f.rng), ..ann.clone() };
    let e2 = audit_event(&mut f, org, "create ann again", T0);
    let (r, recorded) = audit::scope(e2, store.create_user(&dup, None)).await;
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
    let (r, recorded) = audit::scope(e3, store.update_group(&missing)).await;
    assert!(!r.unwrap() && !recorded);
    // Writes outside any scope record nothing.
    store.create_group(&missing).await.unwrap();
    assert_eq!(actions(store, org).await, vec!["create ann"]);

    // The event's own failure undoes the change: an event without an action breaks the
    // table's rule, and the user it came with is not created either.
    let broken = AuditEvent { action: String::new(), ..e1.clone() };
    let bob = f.user("bob@example.com");
    let (r, recorded) = audit::scope(broken.clone(), store.create_user(&bob, None)).await;
    assert!(r.is_err(), "the change must fail when its event cannot be stored");
    assert!(!recorded);
    assert_eq!(store.get_user(org, bob.id).await.unwrap(), None, "no change without its event");
    // The same for the hot path of assuming a role (one statement on PostgreSQL).
    let (assumed, digest) = f.session(&ann, None, T0);
    let (r, recorded) = audit::scope(broken, store.create_session(&assumed, &digest)).await;
    assert!(r.is_err() && !recorded, "a session must not be created without its event");
    assert_eq!(store.get_session(org, assumed.id).await.unwrap(), None);

    // Bookkeeping (a sign-in claim) never takes the event; the change after it does.
    store.set_password(org, ann.id, "$argon2id$not-a-real-hash").await.unwrap();
    let (sess, digest) = login_session(&mut f, &ann, T0);
    let e4 = audit_event(&mut f, org, "sign in", T0);
    let ((), recorded) = audit::scope(e4, async {
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

/// Every write a use case makes carries its event on this backend: one case per write
/// method, so a backend that forgets one fails here by name.
pub async fn every_change_carries_its_audit_event(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let org = f.org;
    let mut expected: Vec<&str> = vec![];
    macro_rules! audited {
        ($name:literal, $write:expr) => {{
            let e = audit_event(&mut f, org, $name, T0);
            let (r, recorded) = audit::scope(e, $write).await;
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
    let (r, recorded) = audit::scope(store2_event, store.bootstrap(&b)).await;
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
