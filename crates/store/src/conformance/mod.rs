//! The store conformance suite: written once, run against every backend, one module per
//! store area (`iam`, `sessions`, `login`, `gateway`, `trail` for the audit trail).
//!
//! A backend's test file calls [`store_conformance_tests!`] with an async expression that
//! yields a fresh, empty store; each case below becomes one test there.

pub(crate) use rand::SeedableRng;
pub(crate) use rand::rngs::StdRng;
pub(crate) use tessera_domain::Timestamp;
pub(crate) use tessera_domain::audit::{ActorKind, AuditEvent, AuditResult};
pub(crate) use tessera_domain::ids::*;
pub(crate) use tessera_domain::login::{LockoutPolicy, LoginState, SessionLimits};
pub(crate) use tessera_domain::policy::PolicyDocument;
pub(crate) use tessera_domain::role::{MaxSessionDuration, Role, RoleType};
pub(crate) use tessera_domain::session::{EndReason, Principal, Session, SessionKind, SessionStatus};
pub(crate) use tessera_domain::token::{TokenDigest, TokenKind, mint};
pub(crate) use tessera_domain::trust::{RoleTrust, TimeOfDay, TrustConditions, TrustPrincipal, parse_ip_range};
pub(crate) use tessera_domain::user::{ApiKey, Email, Group, Organization, User, UserStatus};

mod assignments;
mod gateway;
mod iam;
mod login;
mod oidc;
mod sessions;
mod trail;

pub use assignments::*;
pub use gateway::*;
pub use iam::*;
pub use login::*;
pub use oidc::*;
pub use sessions::*;
pub use trail::*;

pub(crate) use crate::*;

/// Generates one `#[tokio::test]` per conformance case. `$make` is an async expression
/// returning a value that derefs to a `Store` (for example `Arc<dyn Store>` or a guard that
/// drops a temporary database).
#[macro_export]
macro_rules! store_conformance_tests {
    // `$make` yields `Option<store>`; `None` skips the case (e.g. no database configured).
    (optional $make:expr) => {
        $crate::store_conformance_tests!(@optional $make;
            bootstrap_runs_once, users_round_trip_and_conflict, organizations_never_mix,
            paging_walks_forward_and_back, users_total_follows_creates_and_deletes,
            parallel_user_writes_keep_the_total_exact, api_keys_resolve_by_digest_only, groups_and_members,
            policies_attach_and_resolve, roles_and_trusts_round_trip, sessions_live_and_end,
            deleting_a_user_cleans_up, sign_in_state_round_trips, login_sessions_are_capped_per_user,
            sessions_touch_sweep_and_purge, session_query_filters_orders_and_pages, sessions_aggregate_by_group,
            gateway_objects_round_trip, one_session_plugin_per_scope_even_in_parallel, gateway_keys_rekey_and_expire,
            gateway_refs_hold_across_writers, deleting_a_route_or_service_takes_its_plugins,
            deletes_racing_writers_leave_no_dangling_route_or_plugin,
            parallel_sign_in_claims_admit_exactly_the_allowed_failures, disabling_a_user_terminates_its_sessions,
            a_roles_trusts_are_read_in_full, values_no_database_can_hold_are_invalid_everywhere,
            audit_events_commit_or_roll_back_with_their_change, every_change_carries_its_audit_event,
            audit_query_filters_orders_pages_and_purges, oidc_issuers_round_trip_and_name_their_trusts,
            a_workloads_session_resolves_without_a_user, assigned_roles_join_a_users_permissions,
            concurrent_session_creates_commit_each_with_its_event, a_failing_session_create_fails_alone);
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
            paging_walks_forward_and_back, users_total_follows_creates_and_deletes,
            parallel_user_writes_keep_the_total_exact, api_keys_resolve_by_digest_only, groups_and_members,
            policies_attach_and_resolve, roles_and_trusts_round_trip, sessions_live_and_end,
            deleting_a_user_cleans_up, sign_in_state_round_trips, login_sessions_are_capped_per_user,
            sessions_touch_sweep_and_purge, session_query_filters_orders_and_pages, sessions_aggregate_by_group,
            gateway_objects_round_trip, one_session_plugin_per_scope_even_in_parallel, gateway_keys_rekey_and_expire,
            gateway_refs_hold_across_writers, deleting_a_route_or_service_takes_its_plugins,
            deletes_racing_writers_leave_no_dangling_route_or_plugin,
            parallel_sign_in_claims_admit_exactly_the_allowed_failures, disabling_a_user_terminates_its_sessions,
            a_roles_trusts_are_read_in_full, values_no_database_can_hold_are_invalid_everywhere,
            audit_events_commit_or_roll_back_with_their_change, every_change_carries_its_audit_event,
            audit_query_filters_orders_pages_and_purges, oidc_issuers_round_trip_and_name_their_trusts,
            a_workloads_session_resolves_without_a_user, assigned_roles_join_a_users_permissions,
            concurrent_session_creates_commit_each_with_its_event, a_failing_session_create_fails_alone);
    };
    (@cases $make:expr; $($case:ident),*) => {$(
        #[tokio::test]
        async fn $case() {
            let store = $make.await;
            $crate::conformance::$case(&*store).await;
        }
    )*};
}

pub(crate) struct Fixture {
    pub(crate) rng: StdRng,
    pub(crate) org: OrgId,
}

impl Fixture {
    pub(crate) async fn new(store: &dyn Store) -> Self {
        let mut rng = StdRng::seed_from_u64(42);
        let org = OrgId::generate(&mut rng);
        let mut f = Self { rng, org };
        let b = f.bootstrap_for(org);
        assert!(store.bootstrap(&b).await.unwrap());
        f
    }

    pub(crate) fn bootstrap_for(&mut self, org: OrgId) -> Bootstrap {
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

    pub(crate) fn user(&mut self, email: &str) -> User {
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

    pub(crate) fn policy(&mut self, name: &str, doc: &str) -> Policy {
        Policy {
            id: PolicyId::generate(&mut self.rng),
            org_id: self.org,
            name: name.into(),
            description: String::new(),
            document: PolicyDocument::from_json(serde_json_doc(doc), "d").unwrap(),
            date_created: T0,
        }
    }

    pub(crate) fn role(&mut self, name: &str) -> Role {
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

    pub(crate) fn session(&mut self, user: &User, role: Option<&Role>, created: Timestamp) -> (Session, TokenDigest) {
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
            session_policy: None,
        };
        (s, token.digest)
    }
}

pub(crate) const T0: Timestamp = Timestamp(1_800_000_000);

pub(crate) fn serde_json_doc(doc: &str) -> tessera_domain::policy::PolicyDocumentJson {
    // The domain crate owns serde_json; go through its wire type.
    tessera_domain::policy::parse_document_json(doc).expect("test document parses")
}

pub(crate) fn login_session(f: &mut Fixture, user: &User, created: Timestamp) -> (Session, TokenDigest) {
    let (mut s, d) = f.session(user, None, created);
    s.kind = SessionKind::Login;
    s.idle_timeout = Some(600);
    s.bound_ip = None;
    (s, d)
}
