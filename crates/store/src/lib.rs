//! The storage boundary: the store traits by area (`Store` is all of them), their error type,
//! the query types, and the conformance suite.
//!
//! Every method takes the organization it works in and never reads or writes a row of another
//! one, with these exceptions, each because nothing names an organization yet or because the
//! work spans them all:
//! - what a secret resolves (the secret names the organization): [`IamStore::find_credential`],
//!   [`IamStore::find_oidc_issuer`] (a workload's token names its issuer),
//!   [`LoginStore::find_login`] (by email), [`GatewayStore::find_gateway_key`] and
//!   [`GatewayStore::delete_gateway_key`] (by key digest);
//! - the first start and new tenants: [`IamStore::bootstrap`], [`IamStore::create_organization`];
//! - the gateway listener, which serves every organization: [`GatewayStore::list_gateway_objects`]
//!   with no organization;
//! - retention, across all organizations: [`SessionStore::sweep_sessions`],
//!   [`SessionStore::purge_sessions`], [`AuditStore::purge_audit_events`].

pub mod audit;
pub mod conformance;
pub mod session_query;

pub use audit::{AUDIT_SCHEMA, AuditQueryResult};
pub use session_query::{SESSION_SCHEMA, SessionQuery, SessionQueryResult, check_apply};
use tessera_domain::filter::Apply;
pub use tessera_domain::filter::Cell;
pub use tessera_domain::gateway::GatewayKind;
pub use tessera_domain::page::{Page, PageRequest, PageToken};
pub use tessera_domain::policy::{Policy, PolicyTarget};

use async_trait::async_trait;
use tessera_domain::FieldError;
use tessera_domain::Timestamp;
use tessera_domain::audit::AuditEvent;
use tessera_domain::ids::{ApiKeyId, GroupId, OidcIssuerId, OrgId, PolicyId, RoleId, SessionId, TrustId, UserId};
use tessera_domain::login::{LockoutPolicy, LoginClaim, LoginState, SessionLimits};
use tessera_domain::oidc::OidcIssuer;
use tessera_domain::policy::PolicyDocument;
use tessera_domain::role::{Assignee, Role, RoleAssignment};
use tessera_domain::session::SessionKind;
use tessera_domain::session::{EndReason, Session};
use tessera_domain::token::{TokenDigest, TokenKind};
use tessera_domain::trust::RoleTrust;
use tessera_domain::user::{ApiKey, Email, Group, Organization, User};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (duplicate email, name, membership). The app words what
    /// users read.
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    /// A row the write refers to does not exist (e.g. attaching a policy to a deleted user).
    /// The app words what users read.
    #[error("{0} not found")]
    NotFound(Entity),
    /// The database cannot be reached or is overloaded; the request may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The write collided with a concurrent one (PostgreSQL's deadlock, 40P01, or
    /// serialization failure, 40001) on every attempt the backend made; it was rolled back
    /// each time, so nothing of it was saved and the request may be retried as it was.
    #[error("store contended: {0}")]
    Contended(String),
    #[error("store failure: {0}")]
    Internal(String),
    /// A value the database cannot hold (a NUL character in text, a page token of the wrong
    /// type). The edge refuses these first; this is the store's own guard, so such input is
    /// a 400 on every backend and never a 500.
    #[error(transparent)]
    Invalid(FieldError),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a [`StoreError::Conflict`] collided with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Another user of the organization has this email.
    UserEmail(String),
    /// Another group of the organization has this display name.
    GroupName(String),
    PolicyName(String),
    RoleName(String),
    /// Another gateway object of this kind in the organization has this name.
    GatewayName {
        kind: GatewayKind,
        name: String,
    },
    /// Another gateway object of this kind in the organization holds this scope (one
    /// `session` plugin per route, service or the whole organization).
    GatewayScope {
        kind: GatewayKind,
        scope: String,
    },
    /// This gateway object is still named by another one (a service by a route, a CA
    /// certificate by a service).
    GatewayInUse {
        kind: GatewayKind,
        id: uuid::Uuid,
    },
    /// A uniqueness rule the store has no name for (the database's own words).
    Other(String),
}

/// What a [`StoreError::NotFound`] did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    User,
    Group,
    Policy,
    Role,
    Trust,
    Session,
    OidcIssuer,
    /// A row a foreign key points at, found missing by the database itself (a write racing
    /// a delete).
    Referenced,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entity::User => "user",
            Entity::Group => "group",
            Entity::Policy => "policy",
            Entity::Role => "role",
            Entity::Trust => "trust",
            Entity::Session => "session",
            Entity::OidcIssuer => "oidc issuer",
            Entity::Referenced => "referenced row",
        })
    }
}

/// Everything the first start writes, in one transaction.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub organization: Organization,
    pub admin: User,
    pub policy: Policy,
    pub api_key: ApiKey,
}

/// A user as sign-in sees it: with its password hash and its failed-login state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    pub user: User,
    pub password_hash: Option<String>,
    pub state: LoginState,
}

/// What a bearer token resolves to: one indexed read on the authentication path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    ApiKey {
        key: ApiKey,
        user: User,
    },
    /// `user` is `None` for a workload's session (its principal is an OIDC subject).
    Session {
        session: Box<Session>,
        user: Option<User>,
    },
}

/// A change made through another node (or this one) that caches must reflect. Backends
/// shared by several nodes publish these; a single-node backend has nothing to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChange {
    /// A user, key or password changed: cached credentials must be re-read.
    Credentials,
    /// A policy, attachment, membership or role changed: cached permissions must be rebuilt.
    Permissions,
    /// A session ended (logout, termination, replacement).
    SessionEnded { id: SessionId, expires: Timestamp },
    /// A gateway service, route or plugin changed: the routing table must be rebuilt.
    Gateway,
    /// The change feed was lost: changes may be missed, so caches must not be trusted.
    FeedLost,
    /// The change feed is back: caches may be used again (after being emptied).
    FeedRestored,
}

/// What every backend says of itself: its name, and the changes other nodes made.
pub trait StoreBackend: Send + Sync + 'static {
    /// A short name for logs and errors ("sqlite", "postgres").
    fn backend(&self) -> &'static str;

    /// Changes made by any node, when the backend can be shared by several.
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<StoreChange>> {
        None
    }

    /// Appends the backend's own metrics (statement latency and errors, the change feed) in
    /// Prometheus's text format; `App::render_metrics` serves them on the metrics listener.
    fn render_metrics(&self, out: &mut String) {
        let _ = out;
    }
}

/// Organizations, users, API keys, groups, policies, roles and trusts: who may do what.
#[async_trait]
pub trait IamStore: Send + Sync {
    /// Writes the first organization, its administrator, policy and key, unless any
    /// organization exists already; returns whether it wrote.
    async fn bootstrap(&self, b: &Bootstrap) -> StoreResult<bool>;
    async fn get_organization(&self, org: OrgId) -> StoreResult<Option<Organization>>;
    /// Adds another organization (tenant); its id must be new.
    async fn create_organization(&self, org: &Organization) -> StoreResult<()>;

    // Users.
    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()>;
    async fn get_user(&self, org: OrgId, id: UserId) -> StoreResult<Option<User>>;
    async fn list_users(&self, org: OrgId, page: PageRequest) -> StoreResult<Page<User>>;
    /// Saves a user's fields; `None` when there is no such user. When the saved status is
    /// disabled, every active session of the user (login, role and gateway) ends
    /// (`Terminated`, reason `user_disabled`) in the same transaction, and those are returned:
    /// enabling the user again later does not revive them.
    async fn update_user(&self, user: &User, now: Timestamp) -> StoreResult<Option<Vec<Session>>>;
    /// Deletes the user with its keys, memberships and attachments, and ends its sessions.
    async fn delete_user(&self, org: OrgId, id: UserId, now: Timestamp) -> StoreResult<bool>;

    // API keys.
    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn list_api_keys(&self, org: OrgId, user: UserId, page: PageRequest) -> StoreResult<Page<ApiKey>>;
    async fn delete_api_key(&self, org: OrgId, user: UserId, id: ApiKeyId) -> StoreResult<bool>;

    /// Resolves a token digest to its API key or session, with the owning user.
    /// `kind` (from the token's prefix) picks the one table to look in.
    async fn find_credential(&self, kind: TokenKind, digest: &TokenDigest) -> StoreResult<Option<Credential>>;

    // Groups.
    async fn create_group(&self, group: &Group) -> StoreResult<()>;
    async fn get_group(&self, org: OrgId, id: GroupId) -> StoreResult<Option<Group>>;
    async fn list_groups(&self, org: OrgId, page: PageRequest) -> StoreResult<Page<Group>>;
    async fn update_group(&self, group: &Group) -> StoreResult<bool>;
    async fn delete_group(&self, org: OrgId, id: GroupId) -> StoreResult<bool>;
    /// Returns false when the user already was a member.
    async fn add_group_member(&self, org: OrgId, group: GroupId, user: UserId) -> StoreResult<bool>;
    async fn remove_group_member(&self, org: OrgId, group: GroupId, user: UserId) -> StoreResult<bool>;
    async fn list_group_members(&self, org: OrgId, group: GroupId, page: PageRequest) -> StoreResult<Page<User>>;
    async fn groups_of_user(&self, org: OrgId, user: UserId) -> StoreResult<Vec<GroupId>>;
    /// The display names of the user's groups, in membership order, in one read.
    async fn group_names_of_user(&self, org: OrgId, user: UserId) -> StoreResult<Vec<String>>;

    // Policies.
    async fn create_policy(&self, policy: &Policy) -> StoreResult<()>;
    async fn get_policy(&self, org: OrgId, id: PolicyId) -> StoreResult<Option<Policy>>;
    async fn list_policies(&self, org: OrgId, page: PageRequest) -> StoreResult<Page<Policy>>;
    async fn update_policy(&self, policy: &Policy) -> StoreResult<bool>;
    async fn delete_policy(&self, org: OrgId, id: PolicyId) -> StoreResult<bool>;
    /// Returns false when the policy already was attached there.
    async fn attach_policy(&self, org: OrgId, policy: PolicyId, target: PolicyTarget) -> StoreResult<bool>;
    async fn detach_policy(&self, org: OrgId, policy: PolicyId, target: PolicyTarget) -> StoreResult<bool>;
    /// Policies attached directly to the target.
    async fn list_attached_policies(
        &self,
        org: OrgId,
        target: PolicyTarget,
        page: PageRequest,
    ) -> StoreResult<Page<Policy>>;
    async fn list_policy_users(&self, org: OrgId, policy: PolicyId, page: PageRequest) -> StoreResult<Page<User>>;
    async fn list_policy_groups(&self, org: OrgId, policy: PolicyId, page: PageRequest) -> StoreResult<Page<Group>>;
    /// The documents that make up a user's own permissions: attached to it, to its groups and
    /// to the assignable roles assigned to it or to its groups.
    async fn user_policy_documents(&self, org: OrgId, user: UserId) -> StoreResult<Vec<PolicyDocument>>;
    async fn role_policy_documents(&self, org: OrgId, role: RoleId) -> StoreResult<Vec<PolicyDocument>>;

    // Roles and trusts.
    async fn create_role(&self, role: &Role) -> StoreResult<()>;
    async fn get_role(&self, org: OrgId, id: RoleId) -> StoreResult<Option<Role>>;
    async fn list_roles(&self, org: OrgId, page: PageRequest) -> StoreResult<Page<Role>>;
    async fn update_role(&self, role: &Role) -> StoreResult<bool>;
    async fn delete_role(&self, org: OrgId, id: RoleId) -> StoreResult<bool>;
    async fn create_trust(&self, trust: &RoleTrust) -> StoreResult<()>;
    async fn get_trust(&self, org: OrgId, id: TrustId) -> StoreResult<Option<RoleTrust>>;
    async fn list_trusts(&self, org: OrgId, role: Option<RoleId>, page: PageRequest) -> StoreResult<Page<RoleTrust>>;
    async fn update_trust(&self, trust: &RoleTrust) -> StoreResult<bool>;
    async fn delete_trust(&self, org: OrgId, id: TrustId) -> StoreResult<bool>;
    /// Every trust of one role, in creation order: the complete set an assume decides on,
    /// never a page of it.
    async fn role_trusts(&self, org: OrgId, role: RoleId) -> StoreResult<Vec<RoleTrust>>;

    // Role assignments (assignable roles given to users and groups).
    /// Assigns a role; false when it already was assigned there. The role and the assignee
    /// must exist in the organization (whether the role is assignable is the app's to check).
    async fn assign_role(&self, org: OrgId, role: RoleId, to: Assignee, at: Timestamp) -> StoreResult<bool>;
    async fn unassign_role(&self, org: OrgId, role: RoleId, from: Assignee) -> StoreResult<bool>;
    /// The users (`groups` false) or the groups a role is assigned to, oldest first.
    async fn list_role_assignments(
        &self,
        org: OrgId,
        role: RoleId,
        groups: bool,
        page: PageRequest,
    ) -> StoreResult<Page<RoleAssignment>>;
    /// Every assignable role of a user, given directly (assignee the user) or through a group
    /// (assignee the group): complete, never a page.
    async fn roles_of_user(&self, org: OrgId, user: UserId) -> StoreResult<Vec<RoleAssignment>>;

    // OIDC issuers.
    async fn create_oidc_issuer(&self, issuer: &OidcIssuer) -> StoreResult<()>;
    async fn get_oidc_issuer(&self, org: OrgId, id: OidcIssuerId) -> StoreResult<Option<OidcIssuer>>;
    /// The issuer by id alone, in any organization: at assume, the caller is a workload with
    /// no Tessera credential, and the issuer it names is what names the organization.
    async fn find_oidc_issuer(&self, id: OidcIssuerId) -> StoreResult<Option<OidcIssuer>>;
    async fn list_oidc_issuers(&self, org: OrgId, page: PageRequest) -> StoreResult<Page<OidcIssuer>>;
    /// Saves the issuer's source, uri and inline keys; false when there is no such issuer.
    async fn update_oidc_issuer(&self, issuer: &OidcIssuer) -> StoreResult<bool>;
    /// Deletes the issuer and the trusts that name it; its sessions end by their own clock
    /// (or are revoked like any other).
    async fn delete_oidc_issuer(&self, org: OrgId, id: OidcIssuerId) -> StoreResult<bool>;
}

/// Sessions of every kind: creating, reading, ending, and the session query.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session; when this returns, the session is durable.
    async fn create_session(&self, session: &Session, digest: &TokenDigest) -> StoreResult<()>;
    async fn get_session(&self, org: OrgId, id: SessionId) -> StoreResult<Option<Session>>;
    /// Active, unexpired sessions of a user (of one kind, or all), oldest first.
    async fn list_active_sessions(
        &self,
        org: OrgId,
        user: UserId,
        kind: Option<SessionKind>,
        now: Timestamp,
        page: PageRequest,
    ) -> StoreResult<Page<Session>>;
    /// Ends an active session; returns the ended record, or None when it was not active.
    async fn end_session(
        &self,
        org: OrgId,
        id: SessionId,
        reason: EndReason,
        now: Timestamp,
    ) -> StoreResult<Option<Session>>;

    /// Records activity: moves the session's idle deadline (written back lazily by the app).
    async fn touch_session(&self, org: OrgId, id: SessionId, at: Timestamp) -> StoreResult<()>;
    /// Ends every active session of a user, except `except`; returns the ended records.
    async fn end_user_sessions(
        &self,
        org: OrgId,
        user: UserId,
        reason: EndReason,
        now: Timestamp,
        except: Option<SessionId>,
    ) -> StoreResult<Vec<Session>>;
    /// Marks sessions whose absolute or idle deadline passed as ended, in every organization.
    async fn sweep_sessions(&self, now: Timestamp) -> StoreResult<u64>;
    /// Deletes ended and terminated session records that ended before `before`.
    async fn purge_sessions(&self, before: Timestamp) -> StoreResult<u64>;

    /// Answers the session query within one organization.
    async fn query_sessions(&self, org: OrgId, query: &SessionQuery) -> StoreResult<SessionQueryResult>;

    /// Answers `$apply` over the sessions of one organization: one row per group (ordered by
    /// the grouping values), the grouping values then the aggregates, each typed by its field.
    /// At most [`tessera_domain::filter::MAX_GROUPS`] + 1 rows, so a caller can tell "too many".
    async fn aggregate_sessions(&self, org: OrgId, apply: &Apply) -> StoreResult<Vec<Vec<Cell>>>;

    /// Sessions live at `now` by kind (`login`, `assumed_role`, `gateway`), in every
    /// organization: the metrics' gauge, read at most every few seconds.
    async fn count_live_sessions(&self, now: Timestamp) -> StoreResult<Vec<(String, u64)>>;
}

/// Sign-in: the lockout state, passwords, session limits and login sessions.
#[async_trait]
pub trait LoginStore: Send + Sync {
    /// The users with this email, in any organization: like [`IamStore::find_credential`], the
    /// email is what names the organization here.
    async fn find_login(&self, email: &Email) -> StoreResult<Vec<LoginRecord>>;
    /// Claims one sign-in attempt before its password is checked, in one atomic write on
    /// every backend and across nodes: applies [`LockoutPolicy::claim`] to the stored state
    /// and stores the result. `None` when there is no such user.
    async fn claim_login_attempt(
        &self,
        org: OrgId,
        user: UserId,
        now: Timestamp,
        policy: &LockoutPolicy,
    ) -> StoreResult<Option<LoginClaim>>;
    /// Records that admitted attempt number `attempt` proved the password, in one atomic
    /// write ([`LockoutPolicy::after_success`]).
    async fn record_login_success(
        &self,
        org: OrgId,
        user: UserId,
        attempt: i64,
        now: Timestamp,
        client: &str,
        policy: &LockoutPolicy,
    ) -> StoreResult<bool>;
    /// Lifts a lock and empties the failure window; the count of failures since the last
    /// success is kept (the user still learns of them).
    async fn clear_login_lock(&self, org: OrgId, user: UserId) -> StoreResult<bool>;
    async fn set_password(&self, org: OrgId, user: UserId, hash: &str) -> StoreResult<bool>;
    /// The organization's limits, or the defaults when none were set.
    async fn get_session_limits(&self, org: OrgId) -> StoreResult<SessionLimits>;
    async fn put_session_limits(&self, org: OrgId, limits: &SessionLimits) -> StoreResult<()>;
    /// Stores a login session and, in the same transaction, ends (reason `replaced`) the
    /// user's oldest active login sessions so that at most `max_active` remain. Returns
    /// the sessions it ended.
    async fn create_login_session(
        &self,
        session: &Session,
        digest: &TokenDigest,
        max_active: u32,
        now: Timestamp,
    ) -> StoreResult<Vec<Session>>;
}

/// The gateway's configuration (Kong-shaped services, routes and plugins, stored as their
/// JSON) and its server-side sessions.
#[async_trait]
pub trait GatewayStore: Send + Sync {
    /// Inserts (`create`) or replaces an object, with the objects it names (`refs`, replacing
    /// those it named before). A duplicate name within the organization and kind is a
    /// conflict; a ref to an object that does not exist in the organization (deleted
    /// meanwhile, by any node) is `NotFound(Entity::Referenced)`, and what it names cannot be
    /// deleted until the write is done; replacing an object that does not exist answers `false`.
    async fn put_gateway_object(&self, obj: &GatewayObject, create: bool) -> StoreResult<bool>;
    async fn get_gateway_object(
        &self,
        org: OrgId,
        kind: GatewayKind,
        id: uuid::Uuid,
    ) -> StoreResult<Option<GatewayObject>>;
    /// Objects of one kind in creation order; `None` lists every organization's (the gateway
    /// listener serves them all).
    async fn list_gateway_objects(&self, org: Option<OrgId>, kind: GatewayKind) -> StoreResult<Vec<GatewayObject>>;
    /// Deletes an object with the plugins that name it (Kong's cascade of a route's or
    /// service's plugins), in one transaction; its own refs go with it. An object anything
    /// else still names (a service by a route, a CA certificate by a service) is kept, and so
    /// are its plugins: [`Conflict::GatewayInUse`]. The database decides, so a delete racing
    /// a write that names the object (on any node) never leaves the name dangling: the write
    /// is refused, or it is kept (a route) or taken (a plugin).
    async fn delete_gateway_object(&self, org: OrgId, kind: GatewayKind, id: uuid::Uuid) -> StoreResult<bool>;

    // Gateway sessions kept server-side (`storage = server`): the session record plus one
    /// key per cookie generation (renewal makes a new key; the old one lives `stale_ttl` on).
    async fn create_gateway_session(
        &self,
        session: &Session,
        key: &TokenDigest,
        data: &str,
        key_expires: Timestamp,
    ) -> StoreResult<()>;
    /// The key, its session and user; `None` when the key is unknown (expiry is the caller's
    /// to check, from `expires` and the session's liveness).
    async fn find_gateway_key(&self, key: &TokenDigest) -> StoreResult<Option<GatewayKey>>;
    /// Renewal: adds `new` for the session and shortens `old` to expire at `old_expires`
    /// (never lengthening it). Answers `false` when the session is no longer active.
    async fn rekey_gateway_session(&self, rekey: &GatewayRekey) -> StoreResult<bool>;
    /// Logout: removes one key (the session record is ended separately).
    async fn delete_gateway_key(&self, key: &TokenDigest) -> StoreResult<()>;
}

/// The audit trail. A change's own event is not written through these: it rides along with
/// the change (see [`audit`]).
#[async_trait]
pub trait AuditStore: Send + Sync {
    // with the change (see [`audit`]).
    /// Writes one event in a write of its own: an attempt that changed nothing but matters
    /// (a refused sign-in, a denied request). Never takes the task's staged event.
    async fn record_audit_event(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Answers the audit query within one organization (the same options as the sessions').
    async fn query_audit_events(&self, org: OrgId, query: &SessionQuery) -> StoreResult<AuditQueryResult>;
    /// Deletes events older than `before`, in every organization (the retention).
    async fn purge_audit_events(&self, before: Timestamp) -> StoreResult<u64>;
}

/// The whole store: every area. Implemented for anything that implements them all, so a
/// wrapper (metrics, caching) can be written one area at a time and `Arc<dyn Store>` is what
/// the app holds.
pub trait Store: StoreBackend + IamStore + SessionStore + LoginStore + GatewayStore + AuditStore {}

impl<T: StoreBackend + IamStore + SessionStore + LoginStore + GatewayStore + AuditStore> Store for T {}

/// A gateway object as stored: its normalised Kong-shaped JSON and the columns the store
/// needs to keep names unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayObject {
    pub org_id: OrgId,
    pub kind: GatewayKind,
    pub id: uuid::Uuid,
    pub name: Option<String>,
    /// What only one object of its kind may hold in the organization, when anything: a
    /// `session` plugin's scope (`session route=<id|*> service=<id|*>`). The store refuses
    /// a second holder with [`Conflict::GatewayScope`], on every node at once.
    pub scope_key: Option<String>,
    /// The other objects of the organization this one names and needs (a route's service, a
    /// plugin's route and service, a service's CA certificates), sorted: they cannot be
    /// deleted while it names them, except that deleting a route or service takes its plugins.
    pub refs: Vec<uuid::Uuid>,
    pub body: String,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// One server-side key of a gateway session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayKey {
    pub session: Session,
    pub user: User,
    /// The sealed session data (base64url ciphertext), as the cookie would have carried it.
    pub data: String,
    pub expires: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRekey {
    pub org_id: OrgId,
    pub session: SessionId,
    pub old: TokenDigest,
    pub old_expires: Timestamp,
    pub new: TokenDigest,
    pub data: String,
    pub new_expires: Timestamp,
    pub now: Timestamp,
}
